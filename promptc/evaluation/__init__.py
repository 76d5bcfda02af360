"""Evaluation: the evaluator, scoring rules, statistics, records and reports (the job that
drives them is `promptc.evaluate`, in promptc.jobs.evaluate)."""

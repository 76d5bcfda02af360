"""Evaluating a program on a labelled set: run (with `run`'s machinery), score, summarize.

How a row is scored is `promptc.evaluation.scoring` (the same rules as compile's);
`max_error_rate` turns too many endpoint failures into exit 3.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.core.program import Program
from promptc.errors import EXIT_LM, EXIT_OK, EXIT_ROWS_FAILED, OutputError
from promptc.evaluation.records import Comparison, EvalRecord, EvalSummary, MetricSummary
from promptc.evaluation.scoring import RowScores, score_row
from promptc.evaluation.stats import compare, is_regression, mean_ci, percentile
from promptc.lm.base import Usage
from promptc.metrics.config import NamedMetric
from promptc.runner.batch import BatchStats, Engine, RowResult, execute
from promptc.runner.job import RunJob, resume_hint, scan_input
from promptc.runner.jsonl import JsonlAppender
from promptc.runner.source import RowSource


@dataclass
class Gate:
    """What makes an evaluation fail CI."""

    threshold: float | None = None
    max_regression: float = 0.0
    alpha: float = 0.05
    max_error_rate: float = 0.05


@dataclass
class EvalJob:
    """Everything `promptc eval` needs, minus the terminal."""

    program: Program
    metrics: list[NamedMetric]
    data: RowSource
    output: Path | None = None
    resume: bool = False
    overwrite: bool = False
    limit: int | None = None
    on_error: str = "fail"
    concurrency: int = 16
    done: list[EvalRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what resuming repaired in the output
    engine: Engine = execute  # or `eval --batch`'s (promptc.runner.waves.BatchEngine)

    @property
    def primary(self) -> NamedMetric:
        return next(m for m in self.metrics if m.primary)

    def gold_problem(self, row: dict[str, Any]) -> str | None:
        """The first metric's complaint about this row's gold fields, or None."""
        return next((p for p in (m.gold_problem(row) for m in self.metrics) if p), None)

    def _run_job(self, output: Path) -> RunJob:
        # The data file is validated, streamed and resumed exactly like `run`'s input.
        return RunJob(program=self.program, input=self.data, output=output, resume=self.resume,
                      overwrite=self.overwrite, limit=self.limit,
                      on_error=self.on_error,  # type: ignore[arg-type]
                      concurrency=self.concurrency, row_key="row", error_key="error", check=self.gold_problem,
                      keep=lambda row: self.done.append(EvalRecord.model_validate(row)))

    def prepare(self) -> int:
        """Validate data and output; load finished records on --resume. Returns rows to run."""
        self.done = []
        if self.output is None:
            scan = scan_input(self.data, self.program, self.limit, self.gold_problem)
            if scan.invalid and self.on_error == "fail":
                raise scan.error(self.data)
            return scan.valid
        job = self._run_job(self.output)
        scan, _ = job.prepare()
        self.notes = job.notes
        return max(0, scan.valid - len(self.done))

    async def run(self, *, total: int | None = None,
                  on_update: Callable[[BatchStats], None] | None = None) -> list[EvalRecord]:
        """Run and score every row not already done; all records, in row order."""
        job = self._run_job(self.output or Path("unused"))
        done_rows = {r.row for r in self.done}
        records: list[EvalRecord] = list(self.done)
        out = JsonlAppender(self.output) if self.output is not None else None
        input_names = set(self.program.input_names)
        primary = self.primary

        def sink(result: RowResult) -> None:
            record = to_record(result, result.extra, input_names, primary)
            records.append(record)
            if out is not None:
                out.write(record.model_dump(mode="json"))

        try:
            await self.engine(self.program, job.items(done_rows, None), sink, concurrency=self.concurrency,
                              stats=BatchStats(total=total), on_update=on_update,
                              post=lambda r: score_row(r, self.metrics))
        except OutputError as exc:
            if self.output is None:
                raise
            raise resume_hint(exc, self.output, len(records)) from exc.__cause__
        finally:
            if out is not None:
                out.close()
            await self.program.aclose()
        records.sort(key=lambda r: r.row)
        return records


def to_record(result: RowResult, scored: RowScores | None, input_names: set[str],
              primary: NamedMetric) -> EvalRecord:
    """The eval record of one finished row."""
    scored = scored or RowScores()
    record = result.item.record
    score = scored.scores.get(primary.name)
    broken = [v for step in result.trace.steps for v in step.violations]
    return EvalRecord(
        row=result.item.row,
        inputs={k: v for k, v in record.items() if k in input_names},
        gold={k: v for k, v in record.items() if k not in input_names},
        prediction=dict(result.prediction) if result.prediction is not None else None,
        scores=scored.scores, score=score,
        passed=None if score is None else score >= primary.threshold,
        feedback=scored.feedback, error=result.error or scored.error,
        usage=result.usage, latency=result.seconds,
        violations=[v["constraint"] for v in broken], hard_violations=sum(1 for v in broken if v["hard"]),
    )


def summarize(records: Sequence[EvalRecord], metrics: Sequence[NamedMetric], *, spec: str,
              program: str | None, data: str, gate: Gate, wall_seconds: float,
              baseline: Sequence[EvalRecord] | None = None, baseline_name: str = "") -> EvalSummary:
    """Means with intervals, usage, latency, the CI gate and its exit code."""
    primary = next(m for m in metrics if m.primary)
    scored = [r.score for r in records if r.score is not None]
    main = mean_ci(scored)
    metric_rows = []
    for m in metrics:
        values = [r.scores[m.name] for r in records if m.name in r.scores]
        ci = mean_ci(values)
        metric_rows.append(MetricSummary(name=m.name, weight=m.weight, primary=m.primary,
                                         mean=ci.mean, low=ci.low, high=ci.high, n=ci.n))
    weighted = None
    if len(metrics) > 1 and sum(m.weight for m in metrics) > 0:
        weighted = sum(s.mean * s.weight for s in metric_rows if s.n) / sum(
            s.weight for s in metric_rows if s.n) if any(s.n for s in metric_rows) else None
    usage = Usage()
    for r in records:
        usage.add(r.usage)
    latencies = [r.latency for r in records]
    errors = sum(1 for r in records if r.error is not None)
    infra_errors = sum(1 for r in records if r.error is not None and r.score is None)
    comparison = None
    if baseline is not None:
        comparison = _compare(records, baseline, baseline_name, gate)
    passed_gate = True
    if gate.threshold is not None and (not scored or main.mean < gate.threshold):
        passed_gate = False
    if comparison is not None and comparison.regression:
        passed_gate = False
    if records and infra_errors / len(records) > gate.max_error_rate:
        exit_code = EXIT_LM
    elif not passed_gate:
        exit_code = EXIT_ROWS_FAILED
    else:
        exit_code = EXIT_OK
    return EvalSummary(
        spec=spec, program=program, data=data, n=len(records), errors=errors,
        primary=primary.name, mean=main.mean, low=main.low, high=main.high,
        threshold=gate.threshold, passed_gate=passed_gate, metrics=metric_rows, weighted_mean=weighted,
        usage=usage, latency_p50=percentile(latencies, 50) if latencies else 0.0,
        latency_p95=percentile(latencies, 95) if latencies else 0.0, wall_seconds=wall_seconds,
        comparison=comparison, exit_code=exit_code,
        soft_violations=sum(len(r.violations) - r.hard_violations for r in records),
        hard_violations=sum(r.hard_violations for r in records),
    )


def _compare(records: Sequence[EvalRecord], baseline: Sequence[EvalRecord], name: str,
             gate: Gate) -> Comparison:
    old = {r.row: r.score for r in baseline if r.score is not None}
    pairs = [(old[r.row], r.score) for r in records if r.score is not None and r.row in old]
    if not pairs:
        from promptc.errors import UsageError

        raise UsageError(f"the baseline {name} shares no scored rows with this evaluation")
    cmp = compare([a for a, _ in pairs], [b for _, b in pairs])
    return Comparison(baseline=name, n=cmp.n, baseline_mean=cmp.baseline_mean,
                      candidate_mean=cmp.candidate_mean, diff=cmp.diff, low=cmp.low, high=cmp.high,
                      p_value=cmp.p_value, method=cmp.method,
                      regression=is_regression(cmp, max_regression=gate.max_regression, alpha=gate.alpha))


def evaluate(job: EvalJob, **kw: Any) -> list[EvalRecord]:
    """Synchronous wrapper for scripts."""
    return asyncio.run(job.run(**kw))

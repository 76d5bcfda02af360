"""Compile budgets. The layer lives with the other LM layers in `promptc.lm.budget`."""

from promptc.lm.budget import Budget, BudgetedLM, budgeted

__all__ = ["Budget", "BudgetedLM", "budgeted"]

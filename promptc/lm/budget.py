"""Budgets: count what LMs really spend and refuse calls once a limit is reached.

`BudgetedLM` is a layer: it wraps any LM (usually a `CachedLM`, so cache hits are
seen as free) and charges every call to a shared `Budget`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from promptc.errors import BudgetExhausted
from promptc.lm.base import LM, LMRequest, LMResponse, Usage


@dataclass
class Budget:
    """Limits on LM calls (cache hits are free) and on cost in USD."""

    max_calls: int | None = None
    max_cost: float | None = None
    spent: Usage = field(default_factory=Usage)

    @property
    def calls(self) -> int:
        """Calls that were not answered by the cache."""
        return self.spent.calls - self.spent.cache_hits

    def check(self) -> None:
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExhausted(f"the budget of {self.max_calls} LM call(s) is spent")
        if self.max_cost is not None and self.spent.cost >= self.max_cost:
            raise BudgetExhausted(f"the budget of ${self.max_cost:.4f} is spent (${self.spent.cost:.4f})")


class BudgetedLM:
    """An LM that charges every call to a Budget and refuses calls once it is spent."""

    def __init__(self, inner: LM, budget: Budget):
        self.inner, self.budget = inner, budget
        self.model = inner.model

    async def complete(self, request: LMRequest) -> LMResponse:
        self.budget.check()
        response = await self.inner.complete(request)
        self.budget.spent.add(response.usage)
        return response

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> object:  # price, max_tokens... for estimates
        if name == "inner":  # not set yet (e.g. during copy): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"BudgetedLM({self.inner!r})"


def budgeted(lms: Mapping[str, LM], budget: Budget) -> dict[str, LM]:
    """Every LM wrapped to charge the same budget."""
    return {name: BudgetedLM(lm, budget) for name, lm in lms.items()}

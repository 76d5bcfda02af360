"""How one finished row is scored: the single rule `eval` and `compile` share.

- a row whose program failed for a model reason (unparseable reply, a hard constraint
  that never held, ...) scores 0 on every metric: a broken answer is a wrong answer;
- a row whose program failed because the endpoint did (retries exhausted), or on which
  a metric raised, is an *error row*: no score, left out of every mean, counted in
  `errors`. A metric that crashes says nothing about the answer, so it must neither
  sink nor lift a candidate; `eval` shows the error so the metric can be fixed.

A `BudgetExhausted` raised by an LM-graded metric propagates: it stops a compile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from promptc.errors import BudgetExhausted
from promptc.metrics.config import NamedMetric
from promptc.runner.batch import RowResult


@dataclass
class RowScores:
    scores: dict[str, float] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)
    error: str | None = None


async def score_row(result: RowResult, metrics: Sequence[NamedMetric]) -> RowScores:
    """Every metric on one finished row (a raising metric makes an error row)."""
    out = RowScores()
    if result.error is not None:
        if not result.infra:
            out.scores = {m.name: 0.0 for m in metrics}
        return out
    prediction = dict(result.prediction or {})
    for metric in metrics:
        try:
            got = await metric.acall(result.item.record, prediction, result.trace)
        except BudgetExhausted:
            raise
        except Exception as exc:
            out.error = f"metric '{metric.name}' raised {type(exc).__name__}: {exc}"
            out.scores = {}
            return out
        out.scores[metric.name] = got.score
        if got.feedback:
            out.feedback[metric.name] = got.feedback
    return out

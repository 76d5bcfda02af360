"""The metric contract: score one prediction against one labelled example.

A metric is called as `metric(example, prediction, trace=None)` where `example` is the
data row (inputs and gold labels) and `prediction` the program's outputs, both plain
dicts. It returns a `MetricResult` (built-ins do); custom metrics may return a bool, a
float in [0, 1], or `(score, feedback_text)`, which `MetricResult.coerce` normalizes.
Feedback text is kept with the result: optimizers read it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel


class MetricResult(BaseModel):
    """A score in [0, 1] and optional feedback."""

    score: float
    feedback: str | None = None

    @classmethod
    def coerce(cls, value: Any) -> MetricResult:
        """Normalize what a metric returned; TypeError/ValueError say what was wrong."""
        if isinstance(value, MetricResult):
            return value
        feedback = None
        if isinstance(value, tuple):
            if len(value) != 2:
                raise TypeError(f"a metric tuple must be (score, feedback), got {len(value)} items")
            value, feedback = value
            feedback = None if feedback is None else str(feedback)
        if isinstance(value, bool):
            return cls(score=1.0 if value else 0.0, feedback=feedback)
        if isinstance(value, (int, float)):
            score = float(value)
            if not 0.0 <= score <= 1.0 or score != score:
                raise ValueError(f"a metric score must be in [0, 1], got {score}")
            return cls(score=score, feedback=feedback)
        raise TypeError(f"a metric must return a bool, a float in [0, 1] or (score, feedback), "
                        f"got {type(value).__name__}")


class Metric(Protocol):
    """A named scoring function."""

    name: str

    def __call__(self, example: Mapping[str, Any], prediction: Mapping[str, Any],
                 trace: Any = None) -> MetricResult: ...

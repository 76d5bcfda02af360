"""What metrics and rewards return: a score in [0, 1] and feedback text an optimizer can read.

It lives in core because modules score candidates too (`best_of_n` and `refine` rewards);
the metric contract in `promptc.metrics` builds on it.
"""

from __future__ import annotations

from typing import Any

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

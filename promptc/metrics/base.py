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

from promptc.core.score import MetricResult


class Metric(Protocol):
    """A named scoring function."""

    name: str

    def __call__(self, example: Mapping[str, Any], prediction: Mapping[str, Any],
                 trace: Any = None) -> MetricResult: ...

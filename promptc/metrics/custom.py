"""Custom metrics by import path: `python: mypkg.metrics:score`.

The function is called as `fn(example, prediction, trace=None)`, or with two arguments
if it takes no `trace`; it may be `async def`. Its return value is normalized by
`MetricResult.coerce` when the metric is called (see `NamedMetric`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from promptc.core.imports import load_callable
from promptc.metrics.builtin import MetricFn


def _takes_trace(fn: Callable[..., Any]) -> str:
    """'kw', 'pos' or 'none': how (whether) to pass `trace`, decided once."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins/C callables have no signature
        return "kw"
    if any(p.name == "trace" and p.kind != p.POSITIONAL_ONLY for p in params):
        return "kw"
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return "kw"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 3:
        return "pos"  # DSPy's convention: a third positional parameter is the trace
    if len(positional) < 2:
        raise ValueError("a metric must accept (example, prediction[, trace])")
    return "none"


def custom_metric(path: str) -> tuple[str, MetricFn]:
    """(function name, row-level metric) for an import path; it may return an awaitable."""
    fn = load_callable(path)
    try:
        mode = _takes_trace(fn)
    except ValueError as exc:
        raise ValueError(f"metric {path!r}: {exc}") from None
    name = getattr(fn, "__name__", None) or path.rpartition(":")[2].rpartition(".")[2]

    if mode == "kw":
        def call(example: Any, prediction: Any, trace: Any = None) -> Any:
            return fn(example, prediction, trace=trace)
    elif mode == "pos":
        def call(example: Any, prediction: Any, trace: Any = None) -> Any:
            return fn(example, prediction, trace)
    else:
        def call(example: Any, prediction: Any, trace: Any = None) -> Any:
            return fn(example, prediction)

    call.__name__ = name
    call.is_async = inspect.iscoroutinefunction(fn)  # type: ignore[attr-defined]
    return name, call

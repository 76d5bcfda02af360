"""Custom metrics by import path: `python: mypkg.metrics:score`.

The function is called as `fn(example, prediction, trace=None)`, or with two arguments
if it takes no `trace`; it may be `async def`. Its return value is normalized by
`MetricResult.coerce` when the metric is called (see `NamedMetric`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from promptc.metrics.builtin import MetricFn

IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def check_import_path(path: str, what: str = "metric") -> str:
    """Raise ValueError unless `path` is spelled `module.sub:function`."""
    if not IMPORT_PATH.fullmatch(path.strip()):
        raise ValueError(f"python {what} {path!r} must be spelled 'module.path:function'")
    return path.strip()


def _ensure_cwd_importable() -> None:
    # `python -m promptc` puts cwd on sys.path but the `promptc` script does not; users
    # expect `metrics.py` next to their spec to import either way.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load_callable(path: str, what: str = "metric") -> Callable[..., Any]:
    """Import `module:attr` (attr may be dotted); ValueError says the path and the reason."""
    module_name, _, attr_path = check_import_path(path, what).partition(":")
    _ensure_cwd_importable()
    importlib.invalidate_caches()
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"cannot import {what} {path!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ValueError(f"cannot import {what} {path!r}: importing '{module_name}' raised "
                         f"{type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"cannot import {what} {path!r}: '{module_name}' has no attribute "
                             f"'{attr_path}'") from None
    if not callable(obj):
        raise ValueError(f"{what} {path!r} is not callable (it is a {type(obj).__name__})")
    return obj


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

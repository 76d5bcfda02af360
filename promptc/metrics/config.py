"""The `metric:` block of a spec, and turning it into callable, named metrics.

    metric:
      - type: exact_match            # or: python: mypkg.metrics:score
        field: answer                # output field; default: the program's main output
        gold: answer                 # example field; default: same as `field`
        weight: 1.0
        primary: true                # the score optimizers maximize (default: the first)
        threshold: 1.0               # pass/fail per example: score >= threshold

`threshold` defaults to 1.0 for the 0/1 metrics and to 0.5 for graded ones (f1,
llm_judge, python), so "passed" means "fully right" or "more right than wrong".
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from promptc.core.imports import check_import_path
from promptc.metrics.base import MetricResult
from promptc.metrics.builtin import BINARY_TYPES, MetricFn, builtin_metric
from promptc.metrics.custom import custom_metric
from promptc.metrics.judge import JudgeRunner

MetricType = Literal["exact_match", "f1", "contains", "regex", "numeric_match", "label_accuracy",
                     "json_valid", "json_schema", "max_words", "max_chars", "min_words", "llm_judge"]

# Which metric types each option applies to; setting one elsewhere is a (likely typo) error.
_OPTIONS: dict[str, frozenset[str]] = {
    "pattern": frozenset({"regex"}),
    "ignore_case": frozenset({"contains", "regex"}),
    "tolerance": frozenset({"numeric_match"}),
    "relative_tolerance": frozenset({"numeric_match"}),
    "limit": frozenset({"max_words", "max_chars", "min_words"}),
    "json_schema": frozenset({"json_schema"}),
    "rubric": frozenset({"llm_judge"}),
    "lm": frozenset({"llm_judge"}),
}
_REQUIRED = {"regex": "pattern", "max_words": "limit", "max_chars": "limit", "min_words": "limit",
             "json_schema": "json_schema", "llm_judge": "rubric"}
_SPELLING = {"json_schema": "schema"}  # how an option is written in YAML


class MetricConfig(BaseModel):
    """One metric of a spec: a built-in `type` or a `python` import path, plus options."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: MetricType | None = None
    python: str | None = None
    name: str | None = None
    field: str | None = None
    gold: str | None = None
    weight: float = Field(1.0, ge=0)
    primary: bool = False
    threshold: float | None = Field(None, ge=0, le=1)
    pattern: str | None = None
    ignore_case: bool = True
    tolerance: float = Field(1e-6, ge=0)
    relative_tolerance: float = Field(0.0, ge=0)
    limit: int | None = Field(None, ge=0)
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    rubric: str | None = None
    lm: str | None = None

    _compiled: re.Pattern[str] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self) -> MetricConfig:
        if (self.type is None) == (self.python is None):
            raise ValueError("a metric needs exactly one of 'type' (a built-in metric) or "
                             "'python' (an import path like 'mypkg.metrics:score')")
        if self.python is not None:
            self.python = check_import_path(self.python)
        if self.name is not None and not self.name.strip():
            raise ValueError("a metric name cannot be empty")
        kind = self.type or "python"
        for option in sorted(self.model_fields_set & _OPTIONS.keys()):
            if kind not in _OPTIONS[option]:
                raise ValueError(f"option '{_SPELLING.get(option, option)}' does not apply to "
                                 f"metric type '{kind}'")
        required = _REQUIRED.get(kind)
        if required and getattr(self, required) in (None, ""):
            raise ValueError(f"metric type '{kind}' needs '{_SPELLING.get(required, required)}'")
        if self.pattern is not None:
            try:
                self._compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None
        return self

    @property
    def default_name(self) -> str:
        """`name`, else the type, else the python function's name (known without importing)."""
        if self.name:
            return self.name.strip()
        if self.type:
            return self.type
        return (self.python or "metric").rpartition(":")[2].rpartition(".")[2]

    @property
    def effective_threshold(self) -> float:
        """`threshold`, else 1.0 for 0/1 metrics and 0.5 for graded ones."""
        if self.threshold is not None:
            return self.threshold
        return 1.0 if self.type in BINARY_TYPES else 0.5

    def compiled_pattern(self) -> re.Pattern[str]:
        """The regex metric's compiled pattern (compiled when the config was validated)."""
        if self._compiled is None:
            raise ValueError("this metric has no pattern")
        return self._compiled


@dataclass
class NamedMetric:
    """A built metric: call it (sync) or `await .acall(...)`; both return a MetricResult."""

    name: str
    weight: float
    primary: bool
    threshold: float
    fn: MetricFn
    field: str = ""
    kind: str = ""  # the built-in type, or "python"
    is_async: bool = False  # llm_judge and async python metrics: prefer `acall`

    def _coerce(self, value: Any) -> MetricResult:
        try:
            return MetricResult.coerce(value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"metric '{self.name}' returned a bad value: {exc}") from None

    def __call__(self, example: Mapping[str, Any], prediction: Mapping[str, Any],
                 trace: Any = None) -> MetricResult:
        """Score synchronously; an async metric is run with asyncio.run (no loop may be running)."""
        value = self.fn(example, prediction, trace)
        if inspect.isawaitable(value):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                value = asyncio.run(_wait(value))
            else:
                close = getattr(value, "close", None)
                if close is not None:
                    close()  # never awaited: close it so no "never awaited" warning is raised
                raise RuntimeError(f"metric '{self.name}' is async; inside an event loop "
                                   "use `await metric.acall(...)`")
        return self._coerce(value)

    async def acall(self, example: Mapping[str, Any], prediction: Mapping[str, Any],
                    trace: Any = None) -> MetricResult:
        """Score inside an event loop (sync metrics simply return)."""
        value = self.fn(example, prediction, trace)
        if inspect.isawaitable(value):
            value = await value
        return self._coerce(value)

    def passed(self, result: MetricResult | float) -> bool:
        """Whether a score counts as a pass: score >= threshold."""
        score = result.score if isinstance(result, MetricResult) else float(result)
        return score >= self.threshold


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def build_metrics(configs: list[MetricConfig], *, default_field: str,
                  judge: JudgeRunner | None = None) -> list[NamedMetric]:
    """Build callable metrics; ValueError on two primaries, a bad import, or a missing judge LM.

    Duplicate names get `_2`, `_3`... suffixes; with no metric marked primary, the first is.
    """
    primaries = [c.default_name for c in configs if c.primary]
    if len(primaries) > 1:
        raise ValueError(f"only one metric can be primary, but {len(primaries)} are: "
                         + ", ".join(primaries))
    out: list[NamedMetric] = []
    taken: set[str] = set()
    for i, cfg in enumerate(configs):
        base = name = cfg.default_name
        n = 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        field = cfg.field or default_field
        gold = cfg.gold or field
        is_async = False
        if cfg.python is not None:
            _, fn = custom_metric(cfg.python)
            is_async = getattr(fn, "is_async", False)
        elif cfg.type == "llm_judge":
            if judge is None:
                raise ValueError(f"metric '{name}' (llm_judge) needs LMs to run the judge on")
            fn = judge.metric(rubric=cfg.rubric or "", field=field, gold=gold, lm=cfg.lm,
                              gold_required=cfg.gold is not None)
            is_async = True
        else:
            fn = builtin_metric(cfg, field, gold)
        out.append(NamedMetric(name=name, weight=cfg.weight, primary=cfg.primary or (
            not primaries and i == 0), threshold=cfg.effective_threshold, fn=fn, field=field,
            kind=cfg.type or "python", is_async=is_async))
    return out


__all__ = ["MetricConfig", "MetricType", "NamedMetric", "build_metrics"]

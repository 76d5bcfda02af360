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
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from promptc.core.imports import check_import_path
from promptc.core.variants import Variants
from promptc.metrics.base import MetricResult
from promptc.metrics.builtin import (
    BINARY_TYPES,
    GOLD_TYPES,
    MetricFn,
    Scorer,
    builtin_metric,
    contains,
    exact_match,
    f1,
    gold_problem,
    json_schema,
    json_valid,
    label_accuracy,
    max_chars,
    max_words,
    min_words,
    numeric_match,
    regex,
)
from promptc.metrics.custom import custom_metric
from promptc.metrics.judge import JudgeRunner

MetricType = Literal["exact_match", "f1", "contains", "regex", "numeric_match", "label_accuracy",
                     "json_valid", "json_schema", "max_words", "max_chars", "min_words", "llm_judge"]


class MetricBase(BaseModel):
    """What every metric may say; each variant below adds only its own options."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = None
    field: str | None = None
    gold: str | None = None
    weight: float = Field(1.0, ge=0)
    primary: bool = False
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a metric name cannot be empty")
        return v

    @property
    def kind(self) -> str:
        """The built-in type, or "python"."""
        return str(getattr(self, "type", "python"))

    @property
    def default_name(self) -> str:
        """`name`, else the type, else the python function's name (known without importing)."""
        return self.name.strip() if self.name else self.kind

    @property
    def effective_threshold(self) -> float:
        """`threshold`, else 1.0 for 0/1 metrics and 0.5 for graded ones."""
        if self.threshold is not None:
            return self.threshold
        return 1.0 if self.kind in BINARY_TYPES else 0.5


class BuiltinMetric(MetricBase):
    """A built-in metric scored in-process."""

    def scorer(self) -> Scorer:
        raise NotImplementedError


class PlainMetric(BuiltinMetric):
    type: Literal["exact_match", "f1", "label_accuracy", "json_valid"]

    def scorer(self) -> Scorer:
        scorers: dict[str, Scorer] = {"exact_match": exact_match, "f1": f1,
                                      "label_accuracy": label_accuracy,
                                      "json_valid": lambda p, _: json_valid(p)}
        return scorers[self.type]


class ContainsMetric(BuiltinMetric):
    type: Literal["contains"]
    ignore_case: bool = True

    def scorer(self) -> Scorer:
        return lambda p, g: contains(p, g, ignore_case=self.ignore_case)


class RegexMetric(BuiltinMetric):
    type: Literal["regex"]
    pattern: str
    ignore_case: bool = True

    _compiled: re.Pattern[str] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _compile(self) -> RegexMetric:
        try:
            self._compiled = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        except re.error as exc:
            raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None
        return self

    def compiled_pattern(self) -> re.Pattern[str]:
        """The pattern, compiled when the config was validated."""
        assert self._compiled is not None
        return self._compiled

    def scorer(self) -> Scorer:
        pattern = self.compiled_pattern()
        return lambda p, _: regex(p, pattern)


class NumericMetric(BuiltinMetric):
    type: Literal["numeric_match"]
    tolerance: float = Field(1e-6, ge=0)
    relative_tolerance: float = Field(0.0, ge=0)

    def scorer(self) -> Scorer:
        return lambda p, g: numeric_match(p, g, tolerance=self.tolerance,
                                          relative_tolerance=self.relative_tolerance)


class LengthMetric(BuiltinMetric):
    type: Literal["max_words", "max_chars", "min_words"]
    limit: int = Field(ge=0)

    def scorer(self) -> Scorer:
        fn = {"max_words": max_words, "max_chars": max_chars, "min_words": min_words}[self.type]
        return lambda p, _: fn(p, self.limit)


class JsonSchemaMetric(BuiltinMetric):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")

    def scorer(self) -> Scorer:
        return lambda p, _: json_schema(p, self.json_schema)


class JudgeMetric(MetricBase):
    """An LM grades the output against `rubric` (with `lm`, a name under `lms:`)."""

    type: Literal["llm_judge"]
    rubric: str
    lm: str | None = None

    @field_validator("rubric")
    @classmethod
    def _rubric(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("metric type 'llm_judge' needs 'rubric' (what a good answer must do)")
        return v


class PythonMetric(MetricBase):
    """User code by import path: `fn(example, prediction, trace)`."""

    python: str

    @field_validator("python")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_import_path(v)

    @property
    def default_name(self) -> str:
        if self.name:
            return self.name.strip()
        return self.python.rpartition(":")[2].rpartition(".")[2]


MetricConfig = Annotated[
    Annotated[PlainMetric, Tag("exact_match")]
    | Annotated[PlainMetric, Tag("f1")]
    | Annotated[ContainsMetric, Tag("contains")]
    | Annotated[RegexMetric, Tag("regex")]
    | Annotated[NumericMetric, Tag("numeric_match")]
    | Annotated[PlainMetric, Tag("label_accuracy")]
    | Annotated[PlainMetric, Tag("json_valid")]
    | Annotated[JsonSchemaMetric, Tag("json_schema")]
    | Annotated[LengthMetric, Tag("max_words")]
    | Annotated[LengthMetric, Tag("max_chars")]
    | Annotated[LengthMetric, Tag("min_words")]
    | Annotated[JudgeMetric, Tag("llm_judge")]
    | Annotated[PythonMetric, Tag("python")],
    Variants(key="type", noun="metric type", alternative="python",
             exclusive="a metric needs exactly one of 'type' (a built-in metric) or "
                       "'python' (an import path like 'mypkg.metrics:score')"),
]
"""One metric of a spec: a built-in `type` or a `python` import path, plus its options."""


@cache
def _adapter() -> TypeAdapter[MetricConfig]:
    return TypeAdapter(MetricConfig, config=ConfigDict(title="MetricConfig"))  # names it in error titles


def parse_metric(data: Mapping[str, Any] | MetricBase | None = None, /, **options: Any) -> MetricConfig:
    """One metric config as its variant's model: `parse_metric({"type": "f1"})` or
    `parse_metric(type="f1")`; pydantic's ValidationError says what is wrong."""
    return _adapter().validate_python(options if data is None else data)


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
    gold: str | None = None  # the example field this metric needs (None: it needs none)
    numeric_gold: bool = False  # numeric_match: the gold must read as a number

    def gold_problem(self, example: Mapping[str, Any]) -> str | None:
        """What is wrong with `example`'s gold for this metric (checked before a job runs)."""
        if self.gold is None:
            return None
        problem = gold_problem(example, self.gold, numeric=self.numeric_gold)
        return f"{problem} (metric '{self.name}')" if problem else None

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


def build_metrics(configs: Sequence[MetricBase], *, default_field: str,
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
        needs = gold if cfg.kind in GOLD_TYPES or (isinstance(cfg, JudgeMetric) and cfg.gold) else None
        if isinstance(cfg, PythonMetric):
            _, fn = custom_metric(cfg.python)
            is_async = getattr(fn, "is_async", False)
        elif isinstance(cfg, JudgeMetric):
            if judge is None:
                raise ValueError(f"metric '{name}' (llm_judge) needs LMs to run the judge on")
            fn = judge.metric(rubric=cfg.rubric, field=field, gold=gold, lm=cfg.lm,
                              gold_required=cfg.gold is not None)
            is_async = True
        elif isinstance(cfg, BuiltinMetric):
            fn = builtin_metric(cfg.kind, cfg.scorer(), field, gold)
        else:
            raise TypeError(f"not a metric config: {cfg!r}")
        out.append(NamedMetric(name=name, weight=cfg.weight, primary=cfg.primary or (
            not primaries and i == 0), threshold=cfg.effective_threshold, fn=fn, field=field,
            kind=cfg.kind, is_async=is_async, gold=needs, numeric_gold=cfg.kind == "numeric_match"))
    return out


__all__ = ["BuiltinMetric", "ContainsMetric", "JsonSchemaMetric", "JudgeMetric", "LengthMetric",
           "MetricBase", "MetricConfig", "MetricType", "NamedMetric", "NumericMetric", "PlainMetric",
           "PythonMetric", "RegexMetric", "build_metrics", "parse_metric"]

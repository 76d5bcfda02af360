"""The `assert:` / `suggest:` entries of a step, one model per `check`, and building them.

    assert:
      - {check: max_words, field: answer, limit: 60, message: "Keep it under 60 words."}
    suggest:
      - {python: mypkg.checks:no_hedging}

What each check does at run time is in `promptc.core.constraints`; here each check
declares only its own options, with their defaults, and an option of another check is
reported as such (see `promptc.core.variants`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from promptc.core import constraints as rt
from promptc.core.constraints import Constraint, ConstraintSet
from promptc.core.imports import check_import_path
from promptc.core.variants import Variants


def _compiled(value: str, option: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regex in '{option}' {value!r}: {exc}") from None
    return value


class CheckBase(BaseModel):
    """What every entry may say: the output `field` (default: the step's main output) and
    the `message` the LM is told when the check fails (default: one per check)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str | None = None
    message: str | None = None

    @field_validator("message")
    @classmethod
    def _message(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a constraint message cannot be empty")
        return v

    def build(self, field: str, *, hard: bool) -> Constraint:
        raise NotImplementedError


class LengthCheck(CheckBase):
    check: Literal["max_words", "max_chars", "min_words"]
    limit: int = Field(ge=0)

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.length(self.check, field, self.limit, hard=hard, message=self.message)


class RegexCheck(CheckBase):
    check: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _valid(cls, v: str) -> str:
        return _compiled(v, "pattern")

    def build(self, field: str, *, hard: bool) -> Constraint:
        rx = re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)
        return rt.regex(field, rx, hard=hard, message=self.message)


class OneOfCheck(CheckBase):
    check: Literal["one_of"]
    values: list[str]
    ignore_case: bool = False

    @field_validator("values", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        # YAML reads `values: [1, 2]` as ints; outputs are compared as text anyway.
        if isinstance(v, list):
            return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
                    for x in v]
        return v

    @field_validator("values")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("check 'one_of' needs 'values' (at least one)")
        return v

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.one_of(field, self.values, ignore_case=self.ignore_case, hard=hard,
                         message=self.message)


class JsonSchemaCheck(CheckBase):
    check: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.json_schema(field, self.json_schema, hard=hard, message=self.message)


class NotEmptyCheck(CheckBase):
    check: Literal["not_empty"]

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.not_empty(field, hard=hard, message=self.message)


class CitationCheck(CheckBase):
    check: Literal["contains_citation"]
    citation_pattern: str = r"\[\d+\]"

    @field_validator("citation_pattern")
    @classmethod
    def _valid(cls, v: str) -> str:
        return _compiled(v, "citation_pattern")

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.contains_citation(field, re.compile(self.citation_pattern), hard=hard,
                                    message=self.message)


class PythonCheck(CheckBase):
    python: str

    @field_validator("python")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_import_path(v, "check")

    def build(self, field: str, *, hard: bool) -> Constraint:
        return rt.python_check(self.python, field, hard=hard, message=self.message)


ConstraintConfig = Annotated[
    Annotated[LengthCheck, Tag("max_words")]
    | Annotated[LengthCheck, Tag("max_chars")]
    | Annotated[LengthCheck, Tag("min_words")]
    | Annotated[RegexCheck, Tag("regex")]
    | Annotated[OneOfCheck, Tag("one_of")]
    | Annotated[JsonSchemaCheck, Tag("json_schema")]
    | Annotated[NotEmptyCheck, Tag("not_empty")]
    | Annotated[CitationCheck, Tag("contains_citation")]
    | Annotated[PythonCheck, Tag("python")],
    Variants(key="check", noun="check", alternative="python",
             exclusive="a constraint needs exactly one of 'check' (a built-in check) or "
                       "'python' (an import path like 'mypkg.checks:no_hedging')"),
]


@cache
def _adapter() -> TypeAdapter[ConstraintConfig]:
    return TypeAdapter(ConstraintConfig, config=ConfigDict(title="ConstraintConfig"))  # names it in error titles


def parse_constraint(data: Mapping[str, Any] | CheckBase | None = None, /, **options: Any) -> ConstraintConfig:
    """One entry as its check's model: `parse_constraint({"check": "not_empty"})` or
    `parse_constraint(check="not_empty")`; pydantic's ValidationError says what is wrong."""
    return _adapter().validate_python(options if data is None else data)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def build_constraint(cfg: Mapping[str, Any] | CheckBase, *, default_field: str, hard: bool,
                     output_names: Collection[str] | None = None) -> Constraint:
    """A runnable constraint; ValueError for a bad entry, an unknown field or code that won't load."""
    if not isinstance(cfg, CheckBase):
        try:
            cfg = parse_constraint(cfg)
        except ValidationError as exc:  # one line per problem, without pydantic's framing
            raise ValueError("; ".join(_describe(e) for e in exc.errors())) from None
    field = cfg.field or default_field
    if output_names is not None and field not in output_names:
        raise ValueError(f"constraint field {field!r} is not an output "
                         f"(outputs: {', '.join(output_names) or 'none'})")
    return cfg.build(field, hard=hard)


def build_constraints(asserts: Sequence[Mapping[str, Any] | CheckBase] = (),
                      suggests: Sequence[Mapping[str, Any] | CheckBase] = (), *,
                      default_field: str, max_retries: int = 2,
                      output_names: Collection[str] | None = None) -> ConstraintSet:
    """Every constraint of a step; ValueError names the failing entry (`assert[0]: ...`)."""
    built: dict[bool, list[Constraint]] = {True: [], False: []}
    for hard, key, configs in ((True, "assert", asserts), (False, "suggest", suggests)):
        for i, cfg in enumerate(configs):
            try:
                built[hard].append(build_constraint(cfg, default_field=default_field, hard=hard,
                                                    output_names=output_names))
            except ValueError as exc:
                raise ValueError(f"{key}[{i}]: {exc}") from None
    return ConstraintSet(built[True], built[False], max_retries)


__all__ = ["CheckBase", "ConstraintConfig", "build_constraint", "build_constraints",
           "parse_constraint"]

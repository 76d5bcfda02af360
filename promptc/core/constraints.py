"""Run-time constraints on a step's outputs, after DSPy Assertions.

    assert:                       # hard: retried with feedback, then the row fails
      - {check: max_words, field: answer, limit: 60, message: "Keep it under 60 words."}
    suggest:                      # soft: retried with feedback, then kept as is
      - {check: contains_citation, field: answer}
      - {python: mypkg.checks:no_hedging, message: "Don't hedge."}

Built-in checks read one output field (`field`, default: the step's main output):
max_words / min_words / max_chars (`limit`; words are whitespace-separated), regex
(`pattern`, searched anywhere: anchor it with ^...$), one_of (`values`, `ignore_case`),
json_schema (`schema`; a string output is parsed as JSON if it does not match as is),
not_empty (null, blank text, [] and {} are empty; 0 and false are not) and
contains_citation: at least one match of `citation_pattern` (default `[n]`); every
integer inside a match is a cited passage number ("[1, 3]" cites 1 and 3 with
`citation_pattern: '\\[[\\d, ]+\\]'`), and when the step's inputs hold a list named
`context` or `passages`, each must lie in 1..len(list).

A `python: module:function` check is called `fn(outputs, inputs)`, or `fn(value)` if
it takes one parameter, and returns a bool or `(bool, detail)`. If it raises, that is
a violation ("raised ValueError: ..."), not a crash: one broken check must not sink a
whole batch. Lists and other non-text values are measured as text (see `as_text`).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from promptc.core.imports import IMPORT_PATH, load_callable
from promptc.core.jsonschema import SchemaViolation, validate_json_schema
from promptc.core.types import as_text, count_words, strip_fences

CheckName = Literal["max_words", "max_chars", "min_words", "regex", "one_of", "json_schema",
                    "not_empty", "contains_citation"]

# Which checks each option applies to; an option set elsewhere is most likely a typo.
_OPTIONS: dict[str, frozenset[str]] = {
    "limit": frozenset({"max_words", "max_chars", "min_words"}),
    "pattern": frozenset({"regex"}),
    "ignore_case": frozenset({"regex", "one_of"}),
    "values": frozenset({"one_of"}),
    "json_schema": frozenset({"json_schema"}),
    "citation_pattern": frozenset({"contains_citation"}),
}
_REQUIRED = {"max_words": "limit", "max_chars": "limit", "min_words": "limit", "regex": "pattern",
             "one_of": "values", "json_schema": "json_schema"}
_SPELLING = {"json_schema": "schema"}  # how an option is written in YAML
PASSAGE_INPUTS = ("context", "passages")


class ConstraintConfig(BaseModel):
    """One `assert:` / `suggest:` entry: a built-in `check` or a `python` import path."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    check: CheckName | None = None
    python: str | None = None
    field: str | None = None
    message: str | None = None
    limit: int | None = Field(None, ge=0)
    pattern: str | None = None
    values: list[str] | None = None
    ignore_case: bool = False
    json_schema: dict[str, Any] | None = Field(None, alias="schema")
    citation_pattern: str = r"\[\d+\]"

    @field_validator("values", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        # YAML reads `values: [1, 2]` as ints; outputs are compared as text anyway.
        if isinstance(v, list):
            return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
                    for x in v]
        return v

    @model_validator(mode="after")
    def _check(self) -> ConstraintConfig:
        if (self.check is None) == (self.python is None):
            raise ValueError("a constraint needs exactly one of 'check' (a built-in check) or "
                             "'python' (an import path like 'mypkg.checks:no_hedging')")
        if self.python is not None:
            self.python = self.python.strip()
            if not IMPORT_PATH.fullmatch(self.python):
                raise ValueError(f"python check {self.python!r} must be spelled 'module.path:function'")
        if self.message is not None and not self.message.strip():
            raise ValueError("a constraint message cannot be empty")
        kind = self.check or "python"
        for option in sorted(self.model_fields_set & _OPTIONS.keys()):
            if kind not in _OPTIONS[option]:
                raise ValueError(f"option '{_SPELLING.get(option, option)}' does not apply to "
                                 f"check '{kind}'")
        required = _REQUIRED.get(kind)
        if required and getattr(self, required) in (None, "", []):
            raise ValueError(f"check '{kind}' needs '{_SPELLING.get(required, required)}'")
        for option in ("pattern", "citation_pattern"):
            if getattr(self, option) is not None:
                try:
                    re.compile(getattr(self, option))
                except re.error as exc:
                    raise ValueError(f"invalid regex in '{option}' {getattr(self, option)!r}: "
                                     f"{exc}") from None
        return self


class Violation(BaseModel):
    """A constraint that an output broke: which, on what field, and what was seen."""

    model_config = ConfigDict(frozen=True)

    constraint: str
    field: str
    hard: bool
    message: str
    detail: str

    def __str__(self) -> str:
        return f"{self.constraint}: {self.message} ({self.detail})"


# -- the checks: pure functions of a value; None means "fine", a string says what was seen --
def check_max_words(value: Any, limit: int) -> str | None:
    """At most `limit` words; the detail is the word count."""
    n = count_words(value)
    return f"{n} words" if n > limit else None


def check_min_words(value: Any, limit: int) -> str | None:
    """At least `limit` words."""
    n = count_words(value)
    return f"{n} word{'s' * (n != 1)}" if n < limit else None


def check_max_chars(value: Any, limit: int) -> str | None:
    """At most `limit` characters."""
    n = len(as_text(value))
    return f"{n} characters" if n > limit else None


def check_regex(value: Any, pattern: re.Pattern[str]) -> str | None:
    """`pattern` found somewhere in the text (search, not fullmatch)."""
    return None if pattern.search(as_text(value)) else f"no match in {_short(value)}"


def check_one_of(value: Any, values: Sequence[str], *, ignore_case: bool = False) -> str | None:
    """The stripped text equals one of `values`."""
    def norm(s: str) -> str:
        return s.strip().casefold() if ignore_case else s.strip()
    return None if norm(as_text(value)) in {norm(v) for v in values} else f"got {_short(value)}"


def check_json_schema(value: Any, schema: Mapping[str, Any]) -> str | None:
    """`value`, or for text the JSON it holds, matches `schema`."""
    try:
        validate_json_schema(value, dict(schema))
        return None
    except SchemaViolation as exc:
        first = str(exc)
    if not isinstance(value, str):
        return first
    try:  # a str output may hold the JSON as text
        parsed = json.loads(strip_fences(value).strip())
    except json.JSONDecodeError:
        return first
    try:
        validate_json_schema(parsed, dict(schema))
        return None
    except SchemaViolation as exc:
        return str(exc)


def check_not_empty(value: Any) -> str | None:
    """Not null, blank text, [] or {}."""
    if value is None:
        return "null"
    if isinstance(value, str) and not value.strip() or isinstance(value, (list, dict)) and not value:
        return "empty"
    return None


def check_contains_citation(value: Any, pattern: re.Pattern[str],
                            passages: int | None = None) -> str | None:
    """At least one citation; with `passages`, every cited number within 1..passages."""
    matches = [m.group(0) for m in pattern.finditer(as_text(value))]
    if not matches:
        return "no citation"
    if passages is not None:
        cited = [int(n) for m in matches for n in re.findall(r"\d+", m)]
        bad = sorted({n for n in cited if not 1 <= n <= passages})
        if bad:
            return (f"cites {', '.join(f'[{n}]' for n in bad)} but there "
                    f"{'is 1 passage' if passages == 1 else f'are {passages} passages'}")
    return None


def passage_count(inputs: Mapping[str, Any]) -> int | None:
    """The length of the first list input named `context` or `passages`, if any."""
    for name in PASSAGE_INPUTS:
        if isinstance(inputs.get(name), (list, tuple)):
            return len(inputs[name])
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = as_text(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


# Checks return None when satisfied, else the detail of the violation.
Run = Callable[[Mapping[str, Any], Mapping[str, Any]], "str | None"]  # (outputs, inputs)
ValueCheck = Callable[[Any, Mapping[str, Any]], "str | None"]  # (value, inputs)


class Constraint:
    """One hard (`assert`) or soft (`suggest`) check; build it with `from_config`."""

    def __init__(self, *, name: str, field: str, hard: bool, message: str, run: Run,
                 needs_field: bool = True):
        self.name, self.field, self.hard, self.message = name, field, hard, message
        self._run, self._needs_field = run, needs_field

    def __repr__(self) -> str:
        return f"Constraint({self.name}, {'hard' if self.hard else 'soft'})"

    @classmethod
    def from_config(cls, cfg: ConstraintConfig | Mapping[str, Any], *, default_field: str,
                    hard: bool, output_names: Collection[str] | None = None) -> Constraint:
        """Build a check; ValueError for an unknown field or a python check that won't load."""
        if not isinstance(cfg, ConstraintConfig):
            try:
                cfg = ConstraintConfig.model_validate(cfg)
            except ValidationError as exc:  # one line per problem, without pydantic's framing
                raise ValueError("; ".join(_describe(e) for e in exc.errors())) from None
        field = cfg.field or default_field
        if output_names is not None and field not in output_names:
            raise ValueError(f"constraint field {field!r} is not an output "
                             f"(outputs: {', '.join(output_names) or 'none'})")
        if cfg.python is not None:
            return _python_constraint(cfg, cfg.python, field, hard)
        name, message, fn = _builtin(cfg, field)
        return cls(name=name, field=field, hard=hard, message=cfg.message or message,
                   run=lambda outputs, inputs: fn(outputs[field], inputs))

    def check(self, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> Violation | None:
        """None if `outputs` satisfy this constraint, else the Violation."""
        if self._needs_field and self.field not in outputs:
            detail: str | None = f"no field `{self.field}`"
        else:
            detail = self._run(outputs, inputs)
        if detail is None:
            return None
        return Violation(constraint=self.name, field=self.field, hard=self.hard,
                         message=self.message, detail=detail)


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


_LENGTH = {"max_words": (check_max_words, "most", "words"),
           "min_words": (check_min_words, "least", "words"),
           "max_chars": (check_max_chars, "most", "characters")}


def _builtin(cfg: ConstraintConfig, field: str) -> tuple[str, str, ValueCheck]:
    """(readable name, default message, check of (value, inputs)) for a built-in check."""
    kind, limit, f = cfg.check, cfg.limit or 0, f"`{field}`"
    if kind in _LENGTH:
        fn, bound, unit = _LENGTH[kind]
        return (f"{kind}({field}, {limit})", f"{f} must have at {bound} {limit} {unit}.",
                lambda v, _: fn(v, limit))
    if kind == "regex":
        rx = re.compile(cfg.pattern or "", re.IGNORECASE if cfg.ignore_case else 0)
        return (f"regex({field}, {rx.pattern!r})",
                f"{f} must match the regular expression {rx.pattern!r}.",
                lambda v, _: check_regex(v, rx))
    if kind == "one_of":
        values = list(cfg.values or ())
        return (f"one_of({field}, {values})", f"{f} must be one of: {', '.join(values)}.",
                lambda v, _: check_one_of(v, values, ignore_case=cfg.ignore_case))
    if kind == "json_schema":
        schema = dict(cfg.json_schema or {})
        return (f"json_schema({field})", f"{f} must be JSON matching this schema: {json.dumps(schema)}",
                lambda v, _: check_json_schema(v, schema))
    if kind == "not_empty":
        return f"not_empty({field})", f"{f} must not be empty.", lambda v, _: check_not_empty(v)
    cite = re.compile(cfg.citation_pattern)  # contains_citation
    return (f"contains_citation({field})",
            f"{f} must cite the passages it uses by number, like [1].",
            lambda v, inputs: check_contains_citation(v, cite, passage_count(inputs)))


def _python_constraint(cfg: ConstraintConfig, path: str, field: str, hard: bool) -> Constraint:
    try:
        fn = load_callable(path)
    except ValueError as exc:  # load_callable words its errors for metrics
        raise ValueError(str(exc).replace("metric", "check", 1)) from None
    if inspect.iscoroutinefunction(fn):
        raise ValueError(f"python check {path!r} is async; constraint checks must be plain functions")
    one_arg = _takes_one_arg(fn, path)
    func_name = getattr(fn, "__name__", None) or path.rpartition(":")[2].rpartition(".")[2]

    def run(outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> str | None:
        try:
            result = fn(outputs[field]) if one_arg else fn(outputs, inputs)
        except Exception as exc:  # a broken check is a violation, never a crashed batch
            return f"raised {type(exc).__name__}: {exc}"
        return _normalize_result(result)

    return Constraint(name=f"{func_name}({field})", field=field, hard=hard,
                      message=cfg.message or f"`{field}` must pass the check {func_name}.",
                      run=run, needs_field=one_arg)


def _takes_one_arg(fn: Callable[..., Any], path: str) -> bool:
    """Decided once at build: `fn(value)` or `fn(outputs, inputs)`."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # some C callables have no signature
        return False
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not positional or len(required) > 2:
        raise ValueError(f"python check {path!r} must take (value) or (outputs, inputs)")
    return len(positional) == 1 or len(required) == 1


def _normalize_result(result: Any) -> str | None:
    if isinstance(result, tuple) and len(result) == 2:
        ok, detail = result
        return None if ok else str(detail)
    if isinstance(result, bool) or type(result).__name__ == "bool_":  # numpy booleans too
        return None if result else "check returned False"
    return f"check returned {type(result).__name__}, expected a bool or (bool, detail)"


class ConstraintSet:
    """A step's hard and soft constraints and how many self-refinement retries they get."""

    def __init__(self, hard: Sequence[Constraint] = (), soft: Sequence[Constraint] = (),
                 max_retries: int = 2):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.hard, self.soft, self.max_retries = list(hard), list(soft), max_retries

    @classmethod
    def from_configs(cls, asserts: Sequence[ConstraintConfig | Mapping[str, Any]] = (),
                     suggests: Sequence[ConstraintConfig | Mapping[str, Any]] = (), *,
                     default_field: str, max_retries: int = 2,
                     output_names: Collection[str] | None = None) -> ConstraintSet:
        """Build every constraint of a step; ValueError names the failing entry."""
        built: dict[bool, list[Constraint]] = {True: [], False: []}
        for hard, key, configs in ((True, "assert", asserts), (False, "suggest", suggests)):
            for i, cfg in enumerate(configs):
                try:
                    built[hard].append(Constraint.from_config(
                        cfg, default_field=default_field, hard=hard, output_names=output_names))
                except ValueError as exc:
                    raise ValueError(f"{key}[{i}]: {exc}") from None
        return cls(built[True], built[False], max_retries)

    @property
    def is_empty(self) -> bool:
        return not self.hard and not self.soft

    def check_all(self, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[Violation]:
        """Every violation, hard ones first, each list in declaration order."""
        found = (c.check(outputs, inputs) for c in (*self.hard, *self.soft))
        return [v for v in found if v is not None]

    def feedback(self, violations: Sequence[Violation], previous_outputs: Mapping[str, Any]) -> str:
        """The text appended to the prompt for a retry: past outputs, then what to fix."""
        lines = ["Your previous attempt did not meet these requirements.", ""]
        for name, value in previous_outputs.items():
            lines.append(f"Past {name}: {as_text(value)}")
        lines += ["", "Instructions:"]
        seen: set[str] = set()
        for v in violations:
            if v.message not in seen:  # one instruction per message, with the first detail
                seen.add(v.message)
                lines.append(f"- {v.message} (found: {v.detail})")
        lines += ["", "Write new outputs that follow every instruction above."]
        return "\n".join(lines)

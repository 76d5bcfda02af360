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

This module takes plain values (fields, limits, compiled patterns); the YAML entries
above are validated, and mapped onto these factories, by `promptc.spec.constraints`.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from promptc.core.imports import load_callable
from promptc.core.jsonschema import SchemaViolation, validate_json_schema
from promptc.core.types import as_text, count_words, strip_fences

PASSAGE_INPUTS = ("context", "passages")


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


class Constraint:
    """One hard (`assert`) or soft (`suggest`) check of a step's outputs.

    Build the built-in ones with the factories below (`max_words(...)`, `regex(...)`, ...),
    user code with `python_check`; the spec layer maps its config onto them.
    """

    def __init__(self, *, name: str, field: str, hard: bool, message: str, run: Run,
                 needs_field: bool = True):
        self.name, self.field, self.hard, self.message = name, field, hard, message
        self._run, self._needs_field = run, needs_field

    def __repr__(self) -> str:
        return f"Constraint({self.name}, {'hard' if self.hard else 'soft'})"

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


def _on_field(name: str, field: str, hard: bool, message: str,
              fn: Callable[[Any, Mapping[str, Any]], str | None]) -> Constraint:
    """A constraint reading one output field: `fn(value, inputs)`."""
    return Constraint(name=name, field=field, hard=hard, message=message,
                      run=lambda outputs, inputs: fn(outputs[field], inputs))


# -- the built-in checks as constraints; `message` replaces the default instruction --------
_LENGTH = {"max_words": (check_max_words, "most", "words"),
           "min_words": (check_min_words, "least", "words"),
           "max_chars": (check_max_chars, "most", "characters")}
LengthKind = Literal["max_words", "min_words", "max_chars"]


def length(kind: LengthKind, field: str, limit: int, *, hard: bool,
           message: str | None = None) -> Constraint:
    """max_words / min_words / max_chars of `field`."""
    fn, bound, unit = _LENGTH[kind]
    return _on_field(f"{kind}({field}, {limit})", field, hard,
                     message or f"`{field}` must have at {bound} {limit} {unit}.",
                     lambda v, _: fn(v, limit))


def regex(field: str, pattern: re.Pattern[str], *, hard: bool,
          message: str | None = None) -> Constraint:
    """`pattern` found somewhere in `field` (compile it with the flags you want)."""
    return _on_field(f"regex({field}, {pattern.pattern!r})", field, hard,
                     message or f"`{field}` must match the regular expression {pattern.pattern!r}.",
                     lambda v, _: check_regex(v, pattern))


def one_of(field: str, values: Sequence[str], *, ignore_case: bool = False, hard: bool,
           message: str | None = None) -> Constraint:
    """`field` is one of `values`."""
    allowed = list(values)
    return _on_field(f"one_of({field}, {allowed})", field, hard,
                     message or f"`{field}` must be one of: {', '.join(allowed)}.",
                     lambda v, _: check_one_of(v, allowed, ignore_case=ignore_case))


def json_schema(field: str, schema: Mapping[str, Any], *, hard: bool,
                message: str | None = None) -> Constraint:
    """`field` (or the JSON text it holds) matches `schema`."""
    frozen = dict(schema)
    return _on_field(f"json_schema({field})", field, hard,
                     message or f"`{field}` must be JSON matching this schema: {json.dumps(frozen)}",
                     lambda v, _: check_json_schema(v, frozen))


def not_empty(field: str, *, hard: bool, message: str | None = None) -> Constraint:
    """`field` is not null, blank, [] or {}."""
    return _on_field(f"not_empty({field})", field, hard, message or f"`{field}` must not be empty.",
                     lambda v, _: check_not_empty(v))


def contains_citation(field: str, pattern: re.Pattern[str], *, hard: bool,
                      message: str | None = None) -> Constraint:
    """`field` cites passages by number, each within the step's context list if it has one."""
    return _on_field(f"contains_citation({field})", field, hard,
                     message or f"`{field}` must cite the passages it uses by number, like [1].",
                     lambda v, inputs: check_contains_citation(v, pattern, passage_count(inputs)))


def python_check(path: str, field: str, *, hard: bool, message: str | None = None) -> Constraint:
    """User code by import path; ValueError if it won't load or takes the wrong arguments."""
    fn = load_callable(path, "check")
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
                      message=message or f"`{field}` must pass the check {func_name}.",
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

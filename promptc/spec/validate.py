"""Schema validation of a parsed spec, with every pydantic error turned into a located problem.

Pydantic reports errors as (loc, type, input). Here each loc is mapped back to the user's
path (dropping the branch tags pydantic adds inside unions such as `str | FieldDecl`, and
the variant tags of discriminated unions such as `('program', 0, 'step', 'best_of_n', 'k')`),
located in the file with the PositionMap, and reworded into a specific message. Errors a
discriminated union already worded (see `promptc.core.variants`) keep their text.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from promptc.core.variants import AMBIGUOUS, MISPLACED, NEEDS, REWORDED, Variants
from promptc.core.variants import did_you_mean as did_you_mean
from promptc.core.variants import model_keys as _keys_of
from promptc.errors import Location, SpecError
from promptc.spec.models import SpecDocument
from promptc.spec.source import PathTuple, PositionMap, interpolate, load_yaml

# Pydantic error types that only mean "this value has the wrong type".
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "none_required": "an empty value",
}


def _show(value: Any) -> str:
    """A value as the user would recognise it from their YAML."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _unwrap(tp: Any) -> Any:
    """Strip Optional[...] and Annotated[...]: neither adds a part to pydantic's loc."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _union_members(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) > 1:
            return args
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _child(tp: Any, part: Any) -> Any:
    """The declared type one step down `part` from `tp`, or Any when unknown."""
    if _is_model(tp):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return Any
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    return Any


def _is_tagged(members: list[Any]) -> bool:
    return all(get_origin(m) is Annotated and any(hasattr(x, "tag") for x in get_args(m)[1:])
               for m in members)


def _tagged_member(members: list[Any], part: Any) -> Any:
    """The member of a discriminated union whose Tag is `part`, or None."""
    for m in members:
        if get_origin(m) is Annotated:
            for meta in get_args(m)[1:]:
                if getattr(meta, "tag", None) == part:
                    return get_args(m)[0]
    return None


def _is_variants(tp: Any) -> bool:
    """A discriminated union of config models (`Annotated[A | B, Variants(...)]`)."""
    return get_origin(tp) is Annotated and any(isinstance(m, Variants) for m in get_args(tp)[1:])


def _match_member(members: list[Any], part: Any) -> Any:
    """The union member pydantic named `part` (e.g. 'str', 'FieldDecl', 'list[...]')."""
    for m in members:
        if _branch_name(m) == part:
            return m
    if isinstance(part, str) and part.startswith("function-wrap["):  # a Variants union
        return next((m for m in members if _is_variants(m)), Any)
    if isinstance(part, str):
        for m in members:
            origin = get_origin(m)
            if origin is not None and part.startswith(getattr(origin, "__name__", "") + "["):
                return m
    return Any


def _branch_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _describe_type(tp: Any) -> str:
    if _is_variants(tp):
        return "a mapping"
    tp = _unwrap(tp)
    if _is_model(tp):
        return f"a mapping ({', '.join(_keys_of(tp))})"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, get_args(tp)))
    simple = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if tp in simple:
        return simple[tp]
    return {dict: "a mapping", list: "a list"}.get(get_origin(tp), _branch_name(tp))


class _Err:
    """One pydantic error resolved against the schema."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.type: str = raw["type"]
        self.input = raw.get("input")
        self.ctx: dict[str, Any] = raw.get("ctx") or {}
        self.path: list[Any] = []
        self.union_at: PathTuple | None = None  # user path of the outermost union, if any
        self.branch: Any = None
        self.is_key = False
        self.owner: Any = Any  # the type holding the last path part (for unknown keys)
        tp: Any = SpecDocument
        for part in raw["loc"]:
            tp = _unwrap(tp)
            members = _union_members(tp)
            if members is not None:
                tagged = _tagged_member(members, part)
                if tagged is not None:  # a discriminated union: the tag picked the type, no ambiguity
                    tp = tagged
                    continue
                if _is_tagged(members):
                    # an error about the mapping before a variant was picked (its `module:`)
                    self.path.append(part)
                    tp = Any
                    continue
                if self.union_at is None:
                    self.union_at, self.branch = tuple(self.path), part
                tp = _match_member(members, part)
                continue
            if part == "[key]":
                self.is_key = True
                tp = get_args(tp)[0] if get_origin(tp) is dict else Any
                continue
            self.owner = tp
            self.path.append(part)
            tp = _child(tp, part)
        self.tp = _unwrap(tp)

    @property
    def deep(self) -> bool:
        """Did validation get inside the union's value (not just reject its type)?"""
        return self.union_at is not None and (len(self.path) > len(self.union_at) or self.is_key
                                              or self.type not in _EXPECTED)


def _message(err: _Err) -> str:
    kind, value, ctx = err.type, err.input, err.ctx
    if kind == "literal_error":
        allowed = list(get_args(err.tp)) if get_origin(err.tp) is Literal else [ctx.get("expected")]
        shown = ", ".join(map(str, allowed))
        msg = (f"expected {shown}" if len(allowed) == 1 else f"expected one of {shown}")
        msg += f", got {_show(value)}"
        hint = did_you_mean(value, allowed) if isinstance(value, str) else None
        return msg + (f"; did you mean {hint!r}?" if hint else "")
    if kind in _EXPECTED:
        if err.is_key:
            return f"every key here must be {_EXPECTED[kind]}, got {_show(value)}"
        msg = f"expected {_EXPECTED[kind]}, got {_show(value)}"
        if kind == "string_type" and isinstance(value, (int, float)):
            msg += f"; quote it if you mean the text: '{_show(value)}'"
        return msg
    bounds = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
              "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}
    if kind in bounds:
        key, words = bounds[kind]
        return f"must be {words} {_num(ctx.get(key))}, got {_show(value)}"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        words = "at least" if kind == "too_short" else "at most"
        noun = "item" if limit == 1 else "items"
        return f"must have {words} {limit} {noun}, got {ctx.get('actual_length')}"
    if kind in REWORDED:
        return str(err.raw.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        msg = str(err.raw.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        return msg
    msg = str(err.raw.get("msg", kind))
    return f"{msg[:1].lower()}{msg[1:]}, got {_show(value)}"


def _problem(err: _Err, positions: PositionMap, file: str) -> tuple[Location, str]:
    path = tuple(err.path)
    if err.type == "missing":
        parent = path[:-1]
        return positions.locate(parent, file=file), f"missing required key {path[-1]!r}"
    if err.type == NEEDS:  # a variant's own required option: point at the mapping lacking it
        return positions.locate(path[:-1], file=file), _message(err)
    if err.type == MISPLACED:
        return positions.locate(path, key=True, file=file), _message(err)
    if err.type == AMBIGUOUS:
        return positions.locate(path, file=file), _message(err)
    if err.type == "extra_forbidden":
        key = path[-1]
        allowed = _keys_of(err.owner) if _is_model(err.owner) else []
        hint = did_you_mean(key, allowed) if allowed else None
        if hint:
            msg = f"unknown key {key!r}; did you mean {hint!r}?"
        elif allowed:
            msg = f"unknown key {key!r} (allowed keys: {', '.join(allowed)})"
        else:
            msg = f"unknown key {key!r}"
        return positions.locate(path, key=True, file=file), msg
    return positions.locate(path, key=err.is_key, file=file), _message(err)


def _union_problem(errs: Sequence[_Err], positions: PositionMap, file: str
                   ) -> list[tuple[Location, str]]:
    """Several branch errors for one union value -> the errors the user needs to see."""
    deep = [e for e in errs if e.deep]
    if deep:
        # The value matched a branch's shape (e.g. a mapping for FieldDecl): report only the
        # problems inside it, not that it also failed to be a string.
        branches = {e.branch for e in deep}
        return [_problem(e, positions, file) for e in errs if e.branch in branches and e.deep]
    first = errs[0]
    at = first.union_at or ()
    tp: Any = SpecDocument
    for part in at:
        tp = _child(_unwrap(tp), part)
    members = _union_members(tp) or []
    wanted = " or ".join(_describe_type(m) for m in members) or "a different value"
    return [(positions.locate(at, file=file), f"expected {wanted}, got {_show(first.input)}")]


def problems_from(exc: ValidationError, positions: PositionMap, file: str
                  ) -> list[tuple[Location, str]]:
    """Every error of a pydantic ValidationError as a located, reworded problem."""
    problems: list[tuple[Location, str]] = []
    unions: dict[PathTuple, list[_Err]] = {}
    errs = [_Err(dict(raw)) for raw in exc.errors(include_url=False)]
    # A misspelt required key shows up twice (unknown 'signatre', missing 'signature');
    # the did-you-mean on the unknown key already says everything.
    typos = {(*e.path[:-1], did_you_mean(e.path[-1], _keys_of(e.owner)))
             for e in errs if e.type == "extra_forbidden" and _is_model(e.owner)}
    for err in errs:
        if err.type in ("missing", NEEDS) and tuple(err.path) in typos:
            continue
        if err.union_at is not None:
            unions.setdefault(err.union_at, []).append(err)
        else:
            problems.append(_problem(err, positions, file))
    for errs in unions.values():
        problems.extend(_union_problem(errs, positions, file))
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p[0].line or 10**9, p[0].column or 0))


def validate_document(data: Any, positions: PositionMap, file: str) -> SpecDocument:
    """Validate parsed spec data; raise one SpecError listing every problem, sorted by line."""
    try:
        return SpecDocument.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc, positions, file)) from None


def load_document(path: str | Path, env: Mapping[str, str] | None = None) -> tuple[SpecDocument, PositionMap]:
    """Load, interpolate (with `env`, default os.environ) and validate a spec file."""
    file = str(path)
    data, positions = load_yaml(path)
    data = interpolate(data, positions, os.environ if env is None else env, file)
    return validate_document(data, positions, file), positions

"""Unions of config models told apart by one key (`module:`, `type:`, `check:`), with clear errors.

A discriminated union validates only the variant its key names, so each variant declares
its own options and their defaults in one place, and an option of another variant is just
a key that variant does not have. Pydantic would call that "Extra inputs are not
permitted"; `Variants`, placed in the union's `Annotated` metadata, picks the variant and
rewords what the user needs to act on:

    option 'n' does not apply to module 'predict' (it is for best_of_n, refine)
    module 'best_of_n' needs 'reward'
    expected one of predict, chain_of_thought, ..., got 'cot'; did you mean 'chain_of_thought'?

Reworded errors keep pydantic's loc (whose first part is the variant's tag), so code that
turns locs into file positions finds them like any other error; the message is final and
says which variant and which key. Generic on purpose: it knows nothing of specs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, Discriminator, GetCoreSchemaHandler, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

# Error types whose message Variants wrote: the text is final, the loc says where.
MISPLACED = "misplaced_option"  # loc: (tag, key)
NEEDS = "missing_option"  # loc: (tag, key), like pydantic's "missing"
UNKNOWN = "unknown_variant"  # loc: (key,), the value naming no variant
AMBIGUOUS = "ambiguous_variant"  # loc: (), both or neither of `key` and `alternative`
REWORDED = frozenset({MISPLACED, NEEDS, UNKNOWN, AMBIGUOUS})


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str | None:
    """The closest candidate to `word` (typo or initials like 'cot'), or None."""
    names = [str(c) for c in candidates]
    text = str(word)
    for name in names:  # initials: 'cot' -> 'chain_of_thought'
        parts = [p for p in name.replace("-", "_").split("_") if p]
        if len(parts) > 1 and text.lower() == "".join(p[0] for p in parts).lower():
            return name
    lowered = {n.lower(): n for n in names}
    if text.lower() in lowered:
        return lowered[text.lower()]
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    return close[0] if close else None


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a user may write for `model` (aliases where set)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def tagged_members(union: Any) -> dict[str, type[BaseModel]]:
    """tag -> model of a union written `Annotated[Model, Tag("...")] | ...`, in order."""
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(union):
        if get_origin(member) is Annotated:
            model, *meta = get_args(member)
            for m in meta:
                tag = getattr(m, "tag", None)
                if isinstance(tag, str):
                    members[tag] = model
    return members


def _description(model: type[BaseModel], key: str) -> str | None:
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f.description
    return None


@cache
def _known_error_types() -> frozenset[str]:
    return frozenset(get_args(core_schema.ErrorType))


def _error(kind: str, message: str, loc: tuple[Any, ...], value: Any) -> InitErrorDetails:
    # The text goes in through ctx, never as the template, so braces in user input stay as typed.
    return InitErrorDetails(type=PydanticCustomError(kind, "{message}", {"message": message}),
                            loc=loc, input=value)


def _show(value: Any) -> str:
    """A value as the user would recognise it from their YAML."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Variants:
    """`Annotated[A | B | ..., Variants(key="module", noun="module", default="predict")]`.

    key: the key naming the variant; its value is the member's Tag. noun: how messages name
    a variant ("module 'predict'"). default: the variant when `key` is left out.
    alternative: a key that names the variant on its own (`python:` for user code), tagged
    with its own name; `exclusive` is the message when both or neither of the two are given.
    """

    key: str
    noun: str
    default: str | None = None
    alternative: str | None = None
    exclusive: str = ""

    def tag(self, members: Mapping[str, type[BaseModel]], value: Any) -> str | None:
        """The tag of a raw mapping or of an already-built variant; None when it names none."""
        if isinstance(value, BaseModel):
            named = getattr(value, self.key, None)
            if isinstance(named, str) and isinstance(value, members.get(named, ())):
                return named
            return next((t for t, m in members.items() if type(value) is m), None)
        if not isinstance(value, Mapping):
            return None
        if self.alternative is not None and self.alternative in value:
            return None if self.key in value else self.alternative
        named = value.get(self.key, self.default)
        return named if isinstance(named, str) and named in members else None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        members = tagged_members(source)
        if not members:
            raise TypeError("Variants needs a union of Annotated[Model, Tag('name')] members")
        inner = handler.generate_schema(
            Annotated[source, Discriminator(lambda v: self.tag(members, v))])

        # A wrap validator: the discriminator alone can only say "no such tag", and pydantic
        # words a foreign option as "Extra inputs are not permitted".
        def variants(value: Any, next_: Callable[[Any], Any]) -> Any:
            if isinstance(value, Mapping):
                problem = self._precheck(members, value)
                if problem is not None:
                    raise ValidationError.from_exception_data("Variants", [problem])
            elif not isinstance(value, BaseModel):
                raise ValidationError.from_exception_data(
                    "Variants", [InitErrorDetails(type="dict_type", loc=(), input=value)])
            try:
                return next_(value)
            except ValidationError as exc:
                raise self._reworded(members, exc) from None

        return core_schema.no_info_wrap_validator_function(variants, inner)

    def _precheck(self, members: Mapping[str, type[BaseModel]], value: Mapping[str, Any]
                  ) -> InitErrorDetails | None:
        """Which variant the mapping names, or the one error saying why it names none."""
        if self.alternative is not None:
            has_key, has_alternative = self.key in value, self.alternative in value
            if has_key and has_alternative or not (has_key or has_alternative or self.default):
                return _error(AMBIGUOUS, self.exclusive, (), dict(value))
            if has_alternative:
                return None
        if self.key not in value and self.default is None:
            return InitErrorDetails(type="missing", loc=(self.key,), input=dict(value))
        named = value.get(self.key, self.default)
        if isinstance(named, str) and named in members:
            return None
        tags = [t for t in members if t != self.alternative]
        hint = did_you_mean(named, tags) if isinstance(named, str) else None
        message = (f"expected one of {', '.join(tags)}, got {_show(named)}"
                   + (f"; did you mean {hint!r}?" if hint else ""))
        return _error(UNKNOWN, message, (self.key,), named)

    def _reworded(self, members: Mapping[str, type[BaseModel]], exc: ValidationError
                  ) -> ValidationError:
        keys = {tag: set(model_keys(model)) for tag, model in members.items()}
        shared = set.intersection(*keys.values())
        known = _known_error_types()
        details: list[InitErrorDetails] = []
        for e in exc.errors(include_url=False):
            loc, kind = tuple(e["loc"]), e["type"]
            tag, key = (str(loc[0]), loc[1]) if len(loc) == 2 else ("", None)
            ours = tag in members and isinstance(key, str)
            owners = [t for t, k in keys.items() if key in k] if ours else []
            if ours and kind == "extra_forbidden" and owners:
                details.append(_error(MISPLACED, f"option '{key}' does not apply to {self.noun} "
                                      f"'{tag}' (it is for {', '.join(owners)})", loc, e["input"]))
            elif ours and kind == "missing" and key not in shared:
                # Options every variant has keep pydantic's plain "missing" wording.
                about = _description(members[tag], str(key))
                details.append(_error(NEEDS, f"{self.noun} '{tag}' needs '{key}'"
                                      + (f" ({about})" if about else ""), loc, e["input"]))
            elif kind in known:
                details.append(InitErrorDetails(type=kind, loc=loc, input=e["input"],
                                                ctx=e.get("ctx") or {}))
            else:  # reworded by a nested Variants (or another custom error): keep as is
                ctx = e.get("ctx") or {"message": e["msg"]}
                template = "{message}" if "message" in ctx else e["msg"]
                details.append(InitErrorDetails(type=PydanticCustomError(kind, template, ctx),
                                                loc=loc, input=e["input"]))
        return ValidationError.from_exception_data(exc.title, details)


__all__ = ["AMBIGUOUS", "MISPLACED", "NEEDS", "REWORDED", "UNKNOWN", "Variants", "did_you_mean",
           "model_keys", "tagged_members"]

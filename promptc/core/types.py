"""Field types: parsing their spelling in specs, coercing values to them, checking flow.

Spellings: `str`, `int`, `float`, `bool`, `list[T]`, `Literal['a', 'b']`, `json`
(any JSON value, optionally constrained by a JSON schema), and in YAML mappings
`{type: enum, values: [a, b]}` or `{type: json, schema: {...}}`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, model_validator

from promptc.core.jsonschema import SchemaViolation, validate_json_schema

Kind = Literal["str", "int", "float", "bool", "list", "enum", "json"]

_SCALARS = {"str", "int", "float", "bool", "json"}
_ALIASES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "json"}


class CoercionError(ValueError):
    """A value cannot be turned into a field's type."""


class FieldType(BaseModel):
    """A field's type. Immutable; compare with ==."""

    model_config = {"frozen": True}

    kind: Kind = "str"
    item: FieldType | None = None  # for list
    values: tuple[str, ...] | None = None  # for enum
    json_schema: dict[str, Any] | None = None  # for json

    @model_validator(mode="after")
    def _check(self) -> FieldType:
        if self.kind == "list" and self.item is None:
            raise ValueError("list type needs an item type")
        if self.kind == "enum" and not self.values:
            raise ValueError("enum type needs at least one value")
        return self

    def __hash__(self) -> int:  # json_schema is a dict; hash its canonical form
        return hash((self.kind, self.item, self.values, json.dumps(self.json_schema, sort_keys=True)))

    # -- spelling ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> FieldType:
        """Parse a type's spelling (`float`, `list[str]`, `Literal['a','b']`)."""
        t = text.strip()
        low = t.lower()
        low = _ALIASES.get(low, low)
        if low in _SCALARS:
            return cls(kind=low)  # type: ignore[arg-type]
        m = re.fullmatch(r"(?:list|List)\s*\[\s*(.+)\s*\]", t)
        if m:
            return cls(kind="list", item=cls.parse(m.group(1)))
        m = re.fullmatch(r"(?:Literal|typing\.Literal)\s*\[(.*)\]", t, flags=re.S)
        if m:
            values = _parse_literal_values(m.group(1))
            return cls(kind="enum", values=tuple(values))
        raise ValueError(
            f"unknown type {text!r}; expected one of str, int, float, bool, list[T], "
            "Literal['a', 'b'], json"
        )

    def display(self) -> str:
        """The spelling used in prompts and messages."""
        if self.kind == "list":
            return f"list[{self.item.display()}]"  # type: ignore[union-attr]
        if self.kind == "enum":
            return "Literal[" + ", ".join(repr(v) for v in self.values or ()) + "]"
        return self.kind

    def to_json_schema(self) -> dict[str, Any]:
        """This type as a JSON schema (for `response_format` and exports)."""
        if self.kind == "str":
            return {"type": "string"}
        if self.kind == "int":
            return {"type": "integer"}
        if self.kind == "float":
            return {"type": "number"}
        if self.kind == "bool":
            return {"type": "boolean"}
        if self.kind == "list":
            return {"type": "array", "items": self.item.to_json_schema()}  # type: ignore[union-attr]
        if self.kind == "enum":
            return {"type": "string", "enum": list(self.values or ())}
        return dict(self.json_schema or {})

    # -- values -----------------------------------------------------------------
    def coerce(self, value: Any) -> Any:
        """Turn `value` (often LM text) into this type, or raise CoercionError."""
        return _COERCERS[self.kind](self, value)

    def check_input(self, value: Any) -> Any:
        """`value` from a data row, checked strictly, or CoercionError ("expected str, got int").

        Unlike `coerce` (for LM replies, which are text), data already has JSON types: a
        number is not a string, an object is not a list. Integral floats pass as int and an
        enum value may differ in case; `json` fields take any value their schema allows.
        """
        if self.kind == "json":
            return self.coerce(value)
        got = json_kind(value)
        if self.kind == "list":
            if not isinstance(value, list):
                raise CoercionError(f"expected {self.display()}, got {got}")
            assert self.item is not None
            out = []
            for i, v in enumerate(value):
                try:
                    out.append(self.item.check_input(v))
                except CoercionError as exc:
                    raise CoercionError(f"item {i}: {exc}") from None
            return out
        wanted = {"str": "str", "enum": "str", "int": "number", "float": "number", "bool": "bool"}[self.kind]
        if _KIND_GROUP.get(got) != wanted:
            raise CoercionError(f"expected {self.display() if self.kind != 'enum' else 'str'}, got {got}")
        if self.kind == "enum":  # exactly one of the values (any case), not a sentence naming one
            canonical = {v.casefold(): v for v in self.values or ()}.get(value.strip().casefold())
            if canonical is None:
                raise CoercionError(f"expected one of {list(self.values or ())}, got {value[:80]!r}")
            return canonical
        return self.coerce(value)

    def accepts(self, source: FieldType) -> bool:
        """Can a value of type `source` flow into a field of this type?"""
        if self == source:
            return True
        if self.kind == "str":
            return source.kind in ("str", "enum")
        if self.kind == "float":
            return source.kind in ("int", "float")
        if self.kind == "json":
            return self.json_schema is None or source.kind == "json" and source.json_schema == self.json_schema
        if self.kind == "enum" and source.kind == "enum":
            return set(source.values or ()) <= set(self.values or ())
        if self.kind == "list" and source.kind == "list":
            return self.item.accepts(source.item)  # type: ignore[union-attr,arg-type]
        return False


_KIND_GROUP = {"str": "str", "int": "number", "float": "number", "bool": "bool"}


def json_kind(value: Any) -> str:
    """A data value's type as messages name it: str, int, float, bool, null, list, object."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    for kind in (bool, int, float, str, list):  # bool first: it is an int to Python
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def _parse_literal_values(body: str) -> list[str]:
    values = re.findall(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^,\s][^,]*)""", body)
    out = [a or b or c.strip() for a, b, c in values]
    out = [v for v in out if v != ""]
    if not out:
        raise ValueError("Literal[...] needs at least one value")
    return out


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*```\s*$", re.S)
_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


def strip_fences(text: str) -> str:
    """Remove a surrounding Markdown code fence, if any."""
    m = _FENCE.match(text)
    return m.group(1) if m else text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return strip_fences(value).strip()
    return json.dumps(value, ensure_ascii=False)


def _coerce_str(t: FieldType, value: Any) -> str:
    if value is None:
        raise CoercionError("expected a string, got null")
    return value.strip() if isinstance(value, str) else _as_text(value)


def _parse_number(text: str) -> float:
    s = text.strip().strip("*_`'\"").rstrip(".")
    frac = re.fullmatch(r"\s*([-+]?\d+)\s*/\s*(\d+)\s*", s)
    if frac and int(frac.group(2)) != 0:
        return int(frac.group(1)) / int(frac.group(2))
    clean = s.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        return float(clean)
    except ValueError:
        pass
    found = _NUMBER.findall(s)
    if len(found) == 1:
        return float(found[0].replace(",", "").replace("$", ""))
    raise CoercionError(f"expected a number, got {text[:80]!r}")


def _coerce_float(t: FieldType, value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError("expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return _parse_number(strip_fences(value))
    raise CoercionError(f"expected a number, got {type(value).__name__}")


def _coerce_int(t: FieldType, value: Any) -> int:
    number = _coerce_float(t, value)
    if not float(number).is_integer():
        raise CoercionError(f"expected an integer, got {number}")
    return int(number)


_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _coerce_bool(t: FieldType, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        s = strip_fences(value).strip().strip(".*`'\"").lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise CoercionError(f"expected true or false, got {str(value)[:80]!r}")


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def _coerce_list(t: FieldType, value: Any) -> list[Any]:
    if isinstance(value, str):
        text = strip_fences(value).strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                pass
        if isinstance(value, str):
            lines = [ln for ln in text.splitlines() if ln.strip()]
            value = [_BULLET.sub("", ln).strip() for ln in lines] if lines else []
    if not isinstance(value, list):
        value = [value]
    item = t.item
    assert item is not None
    out = []
    for i, v in enumerate(value):
        try:
            out.append(item.coerce(v))
        except CoercionError as exc:
            raise CoercionError(f"item {i}: {exc}") from None
    return out


def _coerce_enum(t: FieldType, value: Any) -> str:
    values = t.values or ()
    s = _as_text(value).strip().strip(".*`'\"[]").strip()
    if s in values:
        return s
    lowered = {v.lower(): v for v in values}
    if s.lower() in lowered:
        return lowered[s.lower()]
    # A chatty answer that names exactly one allowed value ("The label is: billing.")
    hits = [v for v in values if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", s, re.I)]
    if len(hits) == 1:
        return hits[0]
    raise CoercionError(f"expected one of {list(values)}, got {s[:80]!r}")


def _coerce_json(t: FieldType, value: Any) -> Any:
    if isinstance(value, str):
        text = strip_fences(value).strip()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CoercionError(f"expected JSON: {exc.msg} at position {exc.pos}") from None
    if t.json_schema:
        try:
            validate_json_schema(value, t.json_schema)
        except SchemaViolation as exc:
            raise CoercionError(f"JSON does not match its schema: {exc}") from None
    return value


_COERCERS = {
    "str": _coerce_str,
    "int": _coerce_int,
    "float": _coerce_float,
    "bool": _coerce_bool,
    "list": _coerce_list,
    "enum": _coerce_enum,
    "json": _coerce_json,
}


def as_text(value: Any) -> str:
    """A value as text: strings as-is, None as '', booleans lower-case, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def count_words(value: Any) -> int:
    """Whitespace-separated words of a value's text (metrics and constraints count alike)."""
    return len(as_text(value).split())

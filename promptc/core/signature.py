"""Signatures: what a step takes, what it returns, and what it is told to do."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from promptc.core.types import FieldType

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FieldSpec(BaseModel):
    """A named, typed, described field of a signature."""

    model_config = {"frozen": True}

    name: str
    type: FieldType = Field(default_factory=FieldType)
    desc: str = ""


class Signature(BaseModel):
    """Inputs -> outputs, with instructions. Immutable: `with_*` return copies."""

    model_config = {"frozen": True}

    name: str = "signature"
    instructions: str = ""
    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...]

    @classmethod
    def parse(cls, text: str, *, name: str = "signature", instructions: str = "") -> Signature:
        """Parse the inline form `question, context: list[str] -> answer: float`."""
        if text.count("->") != 1:
            raise ValueError("an inline signature needs exactly one '->' between inputs and outputs")
        left, right = text.split("->")
        inputs = _parse_fields(left, "input")
        outputs = _parse_fields(right, "output")
        if not outputs:
            raise ValueError("a signature needs at least one output field")
        return cls(name=name, instructions=instructions, inputs=tuple(inputs), outputs=tuple(outputs))

    def input(self, name: str) -> FieldSpec | None:
        return next((f for f in self.inputs if f.name == name), None)

    def output(self, name: str) -> FieldSpec | None:
        return next((f for f in self.outputs if f.name == name), None)

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.outputs]

    def with_instructions(self, instructions: str) -> Signature:
        return self.model_copy(update={"instructions": instructions})

    def prepend_output(self, field: FieldSpec) -> Signature:
        """A copy with `field` as the first output (chain-of-thought's reasoning)."""
        return self.model_copy(update={"outputs": (field, *self.outputs)})

    def render(self) -> str:
        """The inline spelling, e.g. for error messages and docs."""
        def side(fields: tuple[FieldSpec, ...]) -> str:
            return ", ".join(f"{f.name}: {f.type.display()}" for f in fields)
        return f"{side(self.inputs)} -> {side(self.outputs)}"


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _parse_fields(text: str, side: str) -> list[FieldSpec]:
    fields: list[FieldSpec] = []
    for part in split_top_level(text):
        name, _, type_text = part.partition(":")
        name = name.strip()
        if not _IDENT.fullmatch(name):
            raise ValueError(f"invalid {side} field name {name!r}")
        if any(f.name == name for f in fields):
            raise ValueError(f"duplicate {side} field {name!r}")
        ftype = FieldType.parse(type_text) if type_text.strip() else FieldType()
        fields.append(FieldSpec(name=name, type=ftype))
    return fields

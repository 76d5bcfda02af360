"""References: where a value of a program comes from (`input.FIELD`, `STEP.FIELD`, ...).

Their own module because conditions, their static check and the program graph all read them.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT = "input"


@dataclass(frozen=True)
class Ref:
    """Where a value comes from: `input.FIELD`, `STEP.FIELD`, `LOOP.VAR` or `BRANCH.FIELD`."""

    source: str
    field: str

    @classmethod
    def parse(cls, text: str) -> Ref:
        source, dot, name = text.strip().partition(".")
        if not dot or not source or not name or "." in name:
            raise ValueError(f"expected 'input.FIELD' or 'STEP.FIELD', got {text!r}")
        return cls(source, name)

    def __str__(self) -> str:
        return f"{self.source}.{self.field}"

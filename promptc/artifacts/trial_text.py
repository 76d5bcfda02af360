"""How a trial is described in words, the same in the terminal and in the compile report."""

from __future__ import annotations

from collections.abc import Mapping


def footing(scored: bool, full_eval: bool, n: int) -> str:
    """What a trial's score was measured on: 'dev', 'N-row subset' or 'not scored'.
    Scores on different footings are not comparable with each other."""
    if not scored:
        return "not scored"
    return "dev" if full_eval else f"{n}-row subset"


def shorten(text: str, width: int = 80) -> str:
    """One line of at most `width` characters (whitespace collapsed, '…' where cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:max(1, width - 1)].rstrip() + "…"


def changed_instructions(original: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The predictors whose instructions differ from the original ones (whitespace aside)."""
    return {name: text for name, text in current.items()
            if name in original and text.split() != original[name].split()}

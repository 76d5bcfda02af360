"""A word-level diff of two texts as HTML: removed words in <del>, added words in <ins>.

Whitespace is kept as written (line breaks of a multi-line instruction survive), and every
piece of text is HTML-escaped: instructions are written by people and by LMs.
"""

from __future__ import annotations

import difflib
import re
from html import escape

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff_html(before: str, after: str) -> str:
    """`after` as HTML, with the words `before` had and `after` lacks struck through."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = "".join(a[i1:i2]), "".join(b[j1:j2])
        if op == "equal":
            out.append(escape(new))
            continue
        if old.strip():
            out.append(f"<del>{escape(old)}</del>")
        if new.strip():
            out.append(f"<ins>{escape(new)}</ins>")
        elif new:
            out.append(escape(new))  # only whitespace changed: keep the new spacing, unmarked
    return "".join(out)


def changed(before: str, after: str) -> bool:
    """Whether the two texts differ in more than whitespace."""
    return before.split() != after.split()

"""A word-level diff of two texts as HTML: removed words in <del>, added words in <ins>.

The new text keeps its own whitespace (line breaks of a multi-line instruction survive);
spacing alone is no change. Every piece of text is HTML-escaped: instructions are written by people and by LMs.
"""

from __future__ import annotations

import difflib
import re
from html import escape

_WORDS = re.compile(r"(\S+)(\s*)")


def word_diff_html(before: str, after: str) -> str:
    """`after` as HTML, with the words `before` had and `after` lacks struck through.
    Words are compared, not spacing: `after` keeps its own whitespace."""
    old = before.split()
    new = _WORDS.findall(after)
    out = [escape(after[:len(after) - len(after.lstrip())])]
    matcher = difflib.SequenceMatcher(None, old, [w for w, _ in new], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(' '.join(old[i1:i2]))}</del>" + (" " if op == "delete" else ""))
        chunk = new[j1:j2]
        if not chunk:
            continue
        text = escape("".join(w + ws for w, ws in chunk[:-1]) + chunk[-1][0])
        out.append((text if op == "equal" else f"<ins>{text}</ins>") + escape(chunk[-1][1]))
    return "".join(out)


def changed(before: str, after: str) -> bool:
    """Whether the two texts differ in more than whitespace."""
    return before.split() != after.split()

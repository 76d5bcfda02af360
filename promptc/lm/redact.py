"""Keys never leave in a message: a server's error text is redacted before it is relayed.

Some servers echo the key they were sent in their 401 message. That text becomes the
error's message, which the CLI prints, a failed row's `_error` keeps and reports copy:
every client passes what it relays from a server through `redact` first.
"""

from __future__ import annotations

MIN_SECRET = 6  # a shorter "key" (a local server's placeholder) would blank ordinary words
MASK = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every occurrence of each secret replaced by a mask."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET:
            text = text.replace(secret, MASK)
    return text

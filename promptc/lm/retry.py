"""Which failures of the openai client are worth retrying (the loop is promptc.retry's).

Retried: 429, 5xx, timeouts, dropped connections, unreadable bodies.
Not retried: 400/401/403/404/422 — they fail the same way every time.
"""

from __future__ import annotations


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an openai exception, if any."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_retryable(exc: BaseException) -> bool:
    """True for failures that may go away when the same request is sent again."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return status == 429 or status == 408 or status == 409 or status >= 500
    # Timeouts are APIConnectionError subclasses; a truncated or non-JSON body surfaces
    # as a response validation error or a JSON/unicode decoding error.
    return isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError,
                            ValueError, EOFError))

"""The retry loop shared by every client that talks to a service: LMs and retrievers.

tenacity is the one retry owner; this module is the one place that drives it, so a
retriever does not borrow from the LM layer (`promptc.lm` and `promptc.retrieve` are
siblings, and both import this). What counts as retryable is the caller's business:
`promptc.lm.retry.is_retryable` for the openai SDK, `promptc.retrieve.base` for HTTP
retrievers.

The default wait honours a server's `retry-after-ms` / `Retry-After` header (found on
the exception's `response`, as httpx-based SDKs attach it), capped so one bad header
can't stall a run, and otherwise backs off exponentially with jitter.

A caller may mark some failures as *free* (a 429 the LM's rate governor already waits
out for every request): they are retried at once, without charging the retry budget,
because a sustained rate limit says nothing about the request itself. The caller bounds
them (`promptc.lm.ratecontrol`'s patience).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

T = TypeVar("T")

MAX_RETRY_AFTER = 60.0
_backoff = wait_exponential(multiplier=0.5, max=20.0) + wait_random(0, 0.5)


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After`."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return min(max(float(raw) * scale, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            continue  # an HTTP-date: fall back to our own backoff
    return None


def wait_for(state: RetryCallState) -> float:
    """Tenacity wait: the server's Retry-After if given, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    hinted = retry_after_seconds(exc)
    return hinted if hinted is not None else _backoff(state)


class RetriesExhausted(Exception):
    """`with_retries` gave up: the last error and how many attempts were made."""

    def __init__(self, cause: Exception, attempts: int):
        super().__init__(str(cause))
        self.cause, self.attempts = cause, attempts


async def with_retries(call: Callable[[], Awaitable[T]], *, max_retries: int,
                       retryable: Callable[[BaseException], bool],
                       wait: Callable[[RetryCallState], float] = wait_for,
                       free: Callable[[BaseException], bool] | None = None) -> tuple[T, int]:
    """Await `call()` until it succeeds or fails for good; (result, attempts) or RetriesExhausted.

    A non-retryable error ends the loop at once; it is still wrapped, so callers turn
    every failure into their domain error in one `except RetriesExhausted`. Retryable
    failures for which `free(error)` is true are retried with no wait and do not count
    towards `max_retries` (they do count in `attempts`).
    """
    attempts = charged = 0

    def spent(state: RetryCallState) -> bool:
        return charged > max_retries

    def pause(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if free is not None and exc is not None and free(exc):
            return 0.0
        if charged == state.attempt_number:
            return wait(state)
        counted = copy.copy(state)  # back off by the charged attempts: free ones are not failures
        counted.attempt_number = charged
        return wait(counted)

    try:
        async for attempt in AsyncRetrying(retry=retry_if_exception(retryable), wait=pause, stop=spent,
                                           reraise=True):
            with attempt:
                attempts += 1
                try:
                    result = await call()
                except Exception as exc:
                    charged += 0 if free is not None and free(exc) else 1
                    raise
    except Exception as exc:
        raise RetriesExhausted(exc, attempts) from exc
    return result, attempts

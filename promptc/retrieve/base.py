"""The retriever protocol, its result type, its error, and the HTTP retry policy remote
retrievers share.

A retriever is anything with a `name` and `async search(query, k) -> list[Passage]`:
`retrieve` steps and agent tools only ever call that. Passages come best first, with
`score` higher-is-better on the retriever's own scale (scores of two retrievers are not
comparable).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel
from tenacity import RetryCallState, wait_exponential, wait_random

from promptc.errors import EXIT_LM, ServiceError, UsageError

MAX_RETRY_AFTER = 30.0
_backoff = wait_exponential(multiplier=0.25, max=10.0) + wait_random(0, 0.25)


class Passage(BaseModel):
    """One retrieved passage."""

    text: str
    score: float = 0.0
    id: str | None = None
    title: str | None = None


@runtime_checkable
class Retriever(Protocol):
    """What `retrieve` steps and agent tools call."""

    name: str

    async def search(self, query: str, k: int) -> list[Passage]:
        """The `k` best passages for `query`, best first (fewer if fewer match)."""
        ...


class RetrieverError(ServiceError):
    """A retrieval endpoint failed (after retries, or fatally): an infrastructure failure."""

    exit_code = EXIT_LM

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1):
        self.status, self.attempts = status, attempts
        super().__init__(message)


class HTTPStatusFailure(Exception):
    """A non-2xx answer inside the retry loop; mapped to RetrieverError once retries end."""

    def __init__(self, status: int, detail: str = "", retry_after: float | None = None):
        self.status, self.detail, self.retry_after = status, detail, retry_after
        super().__init__(f"HTTP {status}{': ' + detail if detail else ''}")


class BadBody(ValueError):
    """A 2xx answer whose body is not what the protocol promises (retried: often a cut-off body)."""


def retryable_status(status: int) -> bool:
    """429, 408, 409 and 5xx may pass on a retry; other 4xx fail the same way every time."""
    return status in (408, 409, 429) or status >= 500


def parse_retry_after(raw: str | None) -> float | None:
    """Seconds from a `Retry-After` header (numeric form only), capped at MAX_RETRY_AFTER."""
    if raw is None:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # an HTTP-date: use our own backoff


def wait_for(state: RetryCallState) -> float:
    """Tenacity wait: the server's Retry-After if it sent one, else exponential backoff + jitter."""
    exc = state.outcome.exception() if state.outcome else None
    hinted = exc.retry_after if isinstance(exc, HTTPStatusFailure) else None
    return hinted if hinted is not None else _backoff(state)


def short(text: str, limit: int = 200) -> str:
    """A one-line excerpt of an error body for messages."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LoopBound:
    """One client per event loop: a connection pool belongs to the loop that opened it."""

    def __init__(self) -> None:
        self._bound: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def get(self, make: Callable[[], Any], *, usable: Callable[[Any], bool] = lambda client: True) -> Any:
        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop or not usable(self._bound[1]):
            self._bound = (loop, make())
        return self._bound[1]

    async def aclose(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


def api_key(retriever: str, env_name: str | None) -> str | None:
    """The key from `env_name` (None when no variable is configured); UsageError if it is unset."""
    if not env_name:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise UsageError(f"retriever '{retriever}': the {env_name} environment variable (api_key_env) is not set")
    return key

"""LM layers: the response cache (optionally offline-only) wraps a client.

A layer is an LM that holds another LM (`inner`) and adds one behaviour, so a client
only talks to its endpoint and the stack is built in one place (`promptc.runtime`):

    BudgetedLM(CachedLM(OpenAICompatibleLM(...), cache))

Attributes a layer does not have (`price`, `max_tokens`, ...) are read from `inner`.
"""

from __future__ import annotations

from promptc.errors import OfflineCacheMiss
from promptc.lm.base import LM, LMRequest, LMResponse, Usage
from promptc.lm.cache import SQLiteCache


def _offline_miss(model: str) -> OfflineCacheMiss:
    return OfflineCacheMiss(f"cache miss for model '{model}' while running offline "
                            "(--offline): run once online to fill the cache, and commit it")


async def release(inner: object, cache: SQLiteCache) -> None:
    """Release a cached layer: the inner client's connections, then the cache's (hit counts
    flushed); both reopen on next use."""
    try:
        close = getattr(inner, "aclose", None)
        if close is not None:
            await close()
    finally:
        cache.release()


class CachedLM:
    """Answers from `cache` when it can; otherwise asks `inner` and stores the reply.

    With `offline_only`, a miss raises `OfflineCacheMiss` instead of asking: a committed
    cache then replays an evaluation in CI with no key and no network.
    """

    def __init__(self, inner: LM, cache: SQLiteCache, *, offline_only: bool = False):
        self.inner, self.cache, self.offline_only = inner, cache, offline_only
        self.model = inner.model

    @property
    def namespace(self) -> str:
        # The endpoint is part of the key: the same model name on two servers may differ.
        return str(getattr(self.inner, "cache_namespace", ""))

    async def complete(self, request: LMRequest) -> LMResponse:
        resolve = getattr(self.inner, "resolve", None)
        if resolve is not None:  # the key is of the request as sent, defaults filled in
            request = resolve(request)
        key = request.cache_key(self.namespace)
        hit = self.cache.get(key)
        if hit is not None:
            return LMResponse(text=hit.text, model=hit.model, finish_reason=hit.finish_reason,
                              cached=True, usage=Usage(calls=1, cache_hits=1))
        if self.offline_only:
            raise _offline_miss(self.model)
        response = await self.inner.complete(request)
        self.cache.set(key, request, response)
        return response

    async def aclose(self) -> None:
        await release(self.inner, self.cache)

    def __getattr__(self, name: str) -> object:  # price, max_tokens... for estimates
        if name == "inner":  # not set yet (e.g. during copy): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CachedLM({self.inner!r}, {self.cache!r})"


class OfflineOnlyLM:
    """An LM that may not be asked: every call is a miss (offline, and no cache to replay)."""

    def __init__(self, inner: LM):
        self.inner = inner
        self.model = inner.model

    async def complete(self, request: LMRequest) -> LMResponse:
        raise _offline_miss(self.model)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> object:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

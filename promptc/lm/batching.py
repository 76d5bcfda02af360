"""The LM layer of a batched run: answer from the cache, or write the call down for a batch.

A batched run (`run --batch`) runs the program over its rows in passes. In a pass every
LM is a `BatchingLM`: a call whose reply is in the cache is answered at once; any other
call is recorded in the pass's `Collector` and the row stops (`BatchPending`), marked
pending. Between passes the recorded calls go out as Batch API batches and their replies
land in the cache, so the next pass takes each pending row one LM call further. The
replies are parsed by the same adapter as live ones, because the program itself asks
for them.

Replies that came from a batch report their own usage (tokens, batch cost) instead of a
cache hit, so `_usage` reads like a live run's. A line that failed `retries` times more
is asked live, through the cached client, so every row ends.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.lm.base import LM, LMRequest, LMResponse, Price, Usage
from promptc.lm.batch_state import BatchState
from promptc.lm.cache import SQLiteCache
from promptc.lm.layers import CachedLM


class BatchPending(Exception):
    """This call waits for a batch: the row stops here for this pass."""


@dataclass
class RowMark:
    """Set by a pass before each row; a recorded call marks the row pending (even if the
    program swallowed the `BatchPending`, e.g. in a tool or a constraint check)."""

    pending: bool = False


_row: ContextVar[RowMark | None] = ContextVar("promptc_batch_row", default=None)


def start_row() -> RowMark:
    """A fresh mark for the row about to run in this task."""
    mark = RowMark()
    _row.set(mark)
    return mark


def row_mark() -> RowMark | None:
    return _row.get()


@dataclass
class Wanted:
    """A call to send in the next batch."""

    lm: str
    key: str
    request: LMRequest


@dataclass
class Collector:
    """The calls recorded in a pass, and what every pass must know about the run's batches."""

    state: BatchState
    retries: int
    wanted: dict[str, Wanted] = field(default_factory=dict)
    # Cache keys whose replies came from a batch of this run: they report their usage.
    served: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for record in self.state.batches:  # a resumed run: earlier batches served these
            self.served.update(record.custom_ids)

    def go_live(self, key: str) -> bool:
        return self.state.attempts.get(key, 0) > self.retries


class BatchingLM:
    """One named LM of a batched run (see the module docstring)."""

    def __init__(self, name: str, live: CachedLM, collector: Collector):
        self.name, self.live, self.collector = name, live, collector
        self.model = live.model

    @property
    def cache(self) -> SQLiteCache:
        return self.live.cache

    @property
    def client(self) -> Any:
        """The OpenAI-compatible client under the cache (base URL, key variable, price)."""
        return self.live.inner

    @property
    def price(self) -> Price | None:
        return getattr(self.live.inner, "price", None)

    def key_of(self, request: LMRequest) -> tuple[str, LMRequest]:
        resolve = getattr(self.live.inner, "resolve", None)
        if resolve is not None:
            request = resolve(request)
        return request.cache_key(self.live.namespace), request

    async def complete(self, request: LMRequest) -> LMResponse:
        key, request = self.key_of(request)
        hit = self.live.cache.get(key)
        if hit is not None:
            if key in self.collector.served:
                hit.cached = False  # a batch reply: its stored usage, as a live call reports it
                return hit
            return LMResponse(text=hit.text, model=hit.model, finish_reason=hit.finish_reason,
                              cached=True, usage=Usage(calls=1, cache_hits=1))
        if self.collector.go_live(key):
            return await self.live.complete(request)
        self.collector.wanted.setdefault(key, Wanted(self.name, key, request))
        mark = _row.get()
        if mark is not None:
            mark.pending = True
        raise BatchPending("this call waits for a batch")

    async def aclose(self) -> None:
        await self.live.aclose()

    def __getattr__(self, name: str) -> object:  # max_tokens... for estimates
        if name == "live":
            raise AttributeError(name)
        return getattr(self.live, name)


def batchable(lm: LM) -> CachedLM | None:
    """The cached OpenAI-compatible stack of `lm`, or None when it is not one."""
    from promptc.lm.openai_client import OpenAICompatibleLM

    if isinstance(lm, CachedLM) and isinstance(lm.inner, OpenAICompatibleLM) and not lm.offline_only:
        return lm
    return None


def wrap_lms(lms: Mapping[str, LM], collector: Collector,
             side_cache: Path) -> tuple[dict[str, LM], dict[str, BatchingLM], list[SQLiteCache]]:
    """The program's LMs for a batched pass, the batching layers in them, and the caches opened
    here (to close).

    An OpenAI-compatible LM without a cache (`--no-cache`) gets one in `side_cache`, next to
    the output: batch replies need somewhere to wait for the next pass. Other LMs (the
    offline one) are used as they are.
    """
    from promptc.lm.openai_client import OpenAICompatibleLM

    wrapped: dict[str, LM] = {}
    found: dict[str, BatchingLM] = {}
    opened: list[SQLiteCache] = []

    def batching(name: str, layer: LM) -> LM | None:
        live = batchable(layer)
        if live is None and isinstance(layer, OpenAICompatibleLM):
            if not opened:
                opened.append(SQLiteCache(side_cache))
            live = CachedLM(layer, opened[0])
        if live is None:
            return None
        found[name] = BatchingLM(name, live, collector)
        return found[name]

    for name, lm in lms.items():
        wrapped[name] = swap_layer(lm, functools.partial(batching, name)) or lm
    return wrapped, found, opened


def swap_layer(lm: LM, swap: Callable[[LM], LM | None]) -> LM | None:
    """`lm` with its outermost layer that `swap` replaces, replaced; None when `swap` takes none.

    The layers outside it (tracing, the prompt-size guard) are copied around the new one,
    so a batched call is still traced and still refused when too large.
    """
    new = swap(lm)
    if new is not None:
        return new
    inner = getattr(lm, "inner", None)
    if inner is None:
        return None
    replaced = swap_layer(inner, swap)
    if replaced is None:
        return None
    outer = copy.copy(lm)
    outer.inner = replaced  # type: ignore[attr-defined]
    return outer


def batch_response(completion: dict[str, Any], price: Price | None) -> LMResponse:
    """A batch line's chat completion as the live client would have returned it, at batch price."""
    choice = completion["choices"][0]
    reported = completion.get("usage") or {}
    usage = Usage(requests=1, calls=1, prompt_tokens=reported.get("prompt_tokens") or 0,
                  completion_tokens=reported.get("completion_tokens") or 0)
    if price is not None:
        usage.cost = price.batch_cost(usage.prompt_tokens, usage.completion_tokens)
    message = choice.get("message") or {}
    return LMResponse(text=message.get("content") or "", usage=usage, model=completion.get("model"),
                      finish_reason=choice.get("finish_reason"))

"""The runtime: the one owner of what a program uses — named LMs, caches, retrievers, embedders.

The spec loader (and `promptc.load_program`) build it; whoever built it closes it:

    loaded = promptc.spec.loader.load("specs/math.yaml")
    with loaded.runtime:                      # or `async with`, `await runtime.aclose()`
        ...

Two lifetimes, on purpose:

* `Program.aclose()` (called at the end of every job and of every sync `program(...)`
  call) *releases*: HTTP sessions of the finished event loop, the cache's SQLite
  connection (hit counts flushed), retriever connections. Each reopens on next use, so
  a program that is never closed leaves nothing open behind it.
* `Runtime.aclose()` / `close()` releases the same things and then closes the caches
  for good. Closing twice, or after the program released them, is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from promptc.errors import UsageError
from promptc.lm.base import LM
from promptc.lm.cache import SQLiteCache


class Runtime:
    """Named LMs (already layered: cache, offline-only), their caches, the retrievers and the
    text embedders (promptc.lm.embeddings; `default` is the spec's `embedder:`)."""

    def __init__(self, lms: Mapping[str, LM] | None = None, *, caches: Sequence[SQLiteCache] = (),
                 retrievers: Mapping[str, Any] | None = None, embedders: Mapping[str, Any] | None = None):
        self.lms: dict[str, LM] = dict(lms or {})
        self.caches: list[SQLiteCache] = list(caches)
        self.retrievers: dict[str, Any] = dict(retrievers or {})
        self.embedders: dict[str, Any] = dict(embedders or {})
        self.closed = False

    def __repr__(self) -> str:
        return (f"Runtime(lms={sorted(self.lms)}, caches={self.caches}, retrievers={sorted(self.retrievers)}, "
                f"embedders={sorted(self.embedders)})")

    async def aclose(self) -> None:
        """Release every LM and retriever connection, then close the caches for good."""
        self.closed = True
        try:
            for resource in [*self.lms.values(), *self.retrievers.values(), *self.embedders.values()]:
                close = getattr(resource, "aclose", None)
                if close is not None:
                    await close()
        finally:
            for cache in self.caches:
                cache.close()

    def close(self) -> None:
        """`aclose()` for synchronous callers (no event loop may be running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.aclose())
            return
        raise UsageError("Runtime.close() was called inside an event loop: use `await runtime.aclose()`")

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

"""Text embedders: the OpenAI-compatible `/v1/embeddings` client and its cache layer.

An embedder is anything with a `model` name and `async embed(texts) -> vectors`; the
runtime owns the spec's (`embedder:`), the core receives it through `CallContext.embedders`
and uses it to pick demos per input (promptc.core.demo_select). Like the LM client, the
client only talks to its endpoint (tenacity retries, the SDK's own are off) and the cache
is a layer around it, storing vectors in the same SQLite file as LM replies (one entry per
text, keyed by endpoint, model and text; `promptc cache stats` counts them under the model).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from promptc.errors import LMAuthError, LMConfigError, LMError
from promptc.lm.base import LMRequest, LMResponse, Usage
from promptc.lm.breaker import CircuitBreaker, transport_cause
from promptc.lm.cache import SQLiteCache
from promptc.lm.layers import release
from promptc.lm.redact import redact
from promptc.lm.retry import is_retryable, status_of
from promptc.retry import RetriesExhausted, with_retries

Vector = list[float]


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into vectors (one per text, in order)."""

    model: str

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        ...


class OpenAIEmbedder:
    """Embeddings over the OpenAI API (`embeddings.create`), in batches of `batch_size` texts."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, max_retries: int = 6, batch_size: int = 64):
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.api_key_env = api_key_env
        self.timeout, self.max_retries, self.batch_size = timeout, max_retries, batch_size
        self.usage = Usage()  # requests and tokens sent so far
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._breaker = self._new_breaker()

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def cache_namespace(self) -> str:
        return self.base_url or "https://api.openai.com/v1"

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        out: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            out += await self._batch(list(texts[start: start + self.batch_size]))
        return out

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()

    def _session(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import openai

            key = os.environ.get(self.api_key_env) or ("not-needed" if self.base_url else None)
            if key is None:
                raise LMAuthError(f"no API key for the embedder: set the {self.api_key_env} environment "
                                  "variable (or `embedder.api_key_env`)")
            self._client = openai.AsyncOpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout,
                                              max_retries=0)
            self._loop, self._breaker = loop, self._new_breaker()
        return self._client

    def _new_breaker(self) -> CircuitBreaker:
        return CircuitBreaker(self.cache_namespace, setting="`embedder.base_url`")

    async def _batch(self, texts: list[str]) -> list[Vector]:
        client = self._session()

        async def once() -> Any:
            self._breaker.check()
            try:
                reply = await client.embeddings.create(model=self.model, input=texts)
            except Exception as exc:
                self._breaker.failure(exc)
                raise
            self._breaker.success()
            return reply

        try:
            reply, attempts = await with_retries(once, max_retries=self.max_retries, retryable=is_retryable)
        except RetriesExhausted as exc:
            raise self._error(exc.cause, exc.attempts) from exc.cause
        self.usage.add(Usage(requests=attempts, prompt_tokens=getattr(reply.usage, "prompt_tokens", 0) or 0))
        rows = sorted(reply.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise LMError(f"{self.cache_namespace} returned {len(rows)} embedding(s) for {len(texts)} text(s)")
        return [list(map(float, row.embedding)) for row in rows]

    def _error(self, exc: Exception, attempts: int) -> LMError:
        if isinstance(exc, LMError):
            return exc
        status = status_of(exc)
        where = self.cache_namespace
        cause = transport_cause(exc)
        # The server's text may echo the key it was sent.
        detail = cause.text if cause is not None else redact(str(exc), os.environ.get(self.api_key_env))
        if status in (401, 403):
            return LMAuthError(f"{where} refused the embedder's credentials (HTTP {status}): check "
                               f"{self.api_key_env}", status=status)
        if status in (400, 404, 422):
            return LMConfigError(f"{where} rejected the embeddings request for model '{self.model}' "
                                 f"(HTTP {status}): check `embedder:` ({detail})", status=status)
        return LMError(f"{where} embeddings failed after {attempts} attempt(s): {detail}", status=status,
                       attempts=attempts, retryable=True)


class CachedEmbedder:
    """Answers from the SQLite cache per text; embeds only the misses (in one batched call)."""

    def __init__(self, inner: Any, cache: SQLiteCache, *, offline_only: bool = False):
        self.inner, self.cache, self.offline_only = inner, cache, offline_only
        self.model = inner.model

    def key(self, text: str) -> str:
        blob = json.dumps({"kind": "embedding", "namespace": str(getattr(self.inner, "cache_namespace", "")),
                           "model": self.model, "text": text}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        keys = [self.key(t) for t in texts]
        found: dict[int, Vector] = {}
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    found[i] = [float(x) for x in json.loads(hit.text)]
                except (ValueError, TypeError):
                    pass  # a bad row is a miss
        missing = sorted({i for i in range(len(texts))} - set(found))
        if missing and self.offline_only:
            from promptc.errors import OfflineCacheMiss

            raise OfflineCacheMiss(f"embedding cache miss for model '{self.model}' while running offline")
        if missing:
            vectors = await self.inner.embed([texts[i] for i in missing])
            for i, vector in zip(missing, vectors, strict=True):
                found[i] = vector
                self.cache.set(keys[i], LMRequest(model=self.model, messages=[]),
                               LMResponse(text=json.dumps(vector), model=self.model))
        return [found[i] for i in range(len(texts))]

    async def aclose(self) -> None:
        await release(self.inner, self.cache)

    def __getattr__(self, name: str) -> object:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

"""Search an Elasticsearch index through the official async client (optional dependency).

Why Elasticsearch rather than OpenSearch: it is the engine most teams already run for text
search (self-managed or Elastic Cloud), its official Python client has a maintained async
API (`AsyncElasticsearch`) on aiohttp, which promptc already ships, and a plain `match`
query gives Lucene BM25 over an analysed text field with no setup beyond the index. (The
Elasticsearch client refuses to talk to OpenSearch: it checks the `X-Elastic-Product`
header. AWS OpenSearch users can front it with a ColBERT-style HTTP endpoint instead.)

    pip install 'promptc[elasticsearch]'

The client's major version must not be newer than the server's: the 9.x client sends
`compatible-with=9` headers that an 8.x server rejects, so for an 8.x cluster install
`elasticsearch>=8,<9`.

Query: `{"match": {<text_field>: query}}` with `size=k`; a hit becomes
Passage(text=_source[text_field], id=_id, score=_score, title=_source.title). The client's
own retries are off; tenacity retries 429/5xx, timeouts and connection errors (honouring
`Retry-After`), other errors (404 unknown index, 401/403) fail at once. An API key (the
base64 `id:key` form Kibana shows) is read from `api_key_env`; credentials in the URL
(`https://user:pass@host:9200`) work too and are never printed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from promptc.errors import UsageError
from promptc.lm.redact import redact
from promptc.retrieve.base import (
    HTTPStatusFailure,
    LoopBound,
    Passage,
    RetrieverError,
    api_key,
    parse_retry_after,
    retryable_status,
    short,
    wait_for,
)
from promptc.retrieve.colbert import public_url
from promptc.retry import RetriesExhausted, with_retries

INSTALL_HINT = "pip install 'promptc[elasticsearch]'"


def _import_client() -> Any:
    try:
        import elasticsearch
    except ImportError:
        raise UsageError("the 'elasticsearch' retriever needs the Elasticsearch client: "
                         f"{INSTALL_HINT}") from None
    return elasticsearch


def _is_retryable(exc: BaseException) -> bool:
    import elastic_transport

    if isinstance(exc, HTTPStatusFailure):
        return retryable_status(exc.status)
    return isinstance(exc, (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout,
                            asyncio.TimeoutError))


class ElasticsearchRetriever:
    """BM25 (`match`) search over one Elasticsearch index (see module docstring)."""

    def __init__(self, url: str, index: str, *, name: str = "elasticsearch",
                 text_field: str = "text", api_key_env: str | None = None,
                 timeout: float = 30.0, max_retries: int = 4) -> None:
        self.url, self.index, self.name = url, index, name
        self.text_field = text_field
        self.api_key_env = api_key_env
        self.timeout, self.max_retries = timeout, max_retries
        self._client = LoopBound()

    def __repr__(self) -> str:  # never show credentials
        return (f"ElasticsearchRetriever(name={self.name!r}, url={public_url(self.url)!r}, "
                f"index={self.index!r})")

    async def search(self, query: str, k: int) -> list[Passage]:
        """The top `k` hits of a `match` query on the text field."""
        if not query.strip() or k <= 0:
            return []
        client = self._get_client()
        async def once() -> Any:
            return await self._search_once(client, query, k)

        try:
            body, _ = await with_retries(once, max_retries=self.max_retries, retryable=_is_retryable,
                                         wait=wait_for)
        except RetriesExhausted as exc:
            raise self._error(exc.cause, exc.attempts) from exc.cause
        return self._passages(body)[:k]

    async def aclose(self) -> None:
        """Close the client of the running loop."""
        await self._client.aclose()

    # -- internals ---------------------------------------------------------------------

    def _get_client(self) -> Any:
        def make() -> Any:
            es = _import_client()
            key = api_key(self.name, self.api_key_env)
            kwargs: dict[str, Any] = {"api_key": key} if key else {}
            return es.AsyncElasticsearch(hosts=[self.url], request_timeout=self.timeout,
                                         max_retries=0, retry_on_timeout=False, **kwargs)

        return self._client.get(make)

    async def _search_once(self, client: Any, query: str, k: int) -> dict[str, Any]:
        es = _import_client()
        try:
            resp = await client.search(
                index=self.index, query={"match": {self.text_field: query}}, size=k,
                source_includes=[self.text_field, "title"])
        except es.ApiError as exc:
            text = redact(str(exc.message), api_key(self.name, self.api_key_env))  # some servers echo it
            status = exc.meta.status
            if status < 400:  # e.g. UnsupportedProductError on a 200: not Elasticsearch
                raise HTTPStatusFailure(400, f"{type(exc).__name__}: {text}") from None
            headers = exc.meta.headers or {}
            raise HTTPStatusFailure(status, short(text),
                                    parse_retry_after(headers.get("retry-after"))) from None
        return dict(resp.body)

    def _passages(self, body: dict[str, Any]) -> list[Passage]:
        hits = ((body.get("hits") or {}).get("hits")) or []
        out = []
        for hit in hits:
            source = hit.get("_source") or {}
            text = source.get(self.text_field)
            if not isinstance(text, str):
                continue  # a document without the field (or a non-text value) is not a passage
            title = source.get("title")
            score = hit.get("_score")
            out.append(Passage(text=text, id=str(hit.get("_id")) if hit.get("_id") is not None else None,
                               score=float(score) if isinstance(score, (int, float)) else 0.0,
                               title=title if isinstance(title, str) else None))
        return out

    def _error(self, exc: Exception, attempts: int) -> Exception:
        if isinstance(exc, UsageError):
            return exc
        where = f"retriever '{self.name}' ({public_url(self.url)}, index '{self.index}')"
        if isinstance(exc, HTTPStatusFailure):
            if not retryable_status(exc.status):
                hint = ": does the index exist?" if exc.status == 404 else ""
                return RetrieverError(f"{where} rejected the search: {exc}{hint}",
                                      status=exc.status, attempts=attempts)
            return RetrieverError(f"{where} failed after {attempts} attempt(s): {exc}",
                                  status=exc.status, attempts=attempts)
        detail = short(str(exc)) if str(exc) else ""
        kind = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return RetrieverError(f"{where} failed after {attempts} attempt(s): {kind}",
                              attempts=attempts)

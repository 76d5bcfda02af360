"""A client for ColBERTv2-style search servers (the HTTP API DSPy's `ColBERTv2` calls).

    GET {url}?query=...&k=...   ->   {"topk": [{"text": ..., "pid": ..., "score": ...}, ...]}

A plain JSON list of passages, or `{"passages": [...]}`, is accepted too; a passage is a
string or an object with `text` (or `long_text` / `content` / `passage`), optional `pid`
(or `id`), `score` and `title`.

Transport: aiohttp (imported lazily), one session per event loop, reused across searches
(call `aclose()` when done). Retries: tenacity retries 429, 408, 409, 5xx, timeouts,
dropped connections and unreadable bodies with exponential backoff and jitter, honouring
`Retry-After`; other 4xx fail at once. After the last attempt a RetrieverError names the
URL (without credentials or query string) and the last failure. An API key, if configured,
is read from the named environment variable and sent as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from promptc.errors import UsageError
from promptc.lm.redact import redact
from promptc.retrieve.base import (
    BadBody,
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
from promptc.retry import RetriesExhausted, with_retries

_TEXT_KEYS = ("text", "long_text", "content", "passage")


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_retryable(exc: BaseException) -> bool:
    """True for failures that may pass when the same search is sent again."""
    import aiohttp

    if isinstance(exc, HTTPStatusFailure):
        return retryable_status(exc.status)
    if isinstance(exc, aiohttp.InvalidURL):
        return False
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, BadBody))


class ColBERTv2Retriever:
    """Search a ColBERTv2-style HTTP endpoint (see module docstring)."""

    def __init__(self, url: str, *, name: str = "colbert", api_key_env: str | None = None,
                 timeout: float = 30.0, max_retries: int = 4) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise UsageError(f"retriever '{name}': url must start with http:// or https://, "
                             f"got {public_url(url)!r}")
        self.url, self.name = url, name
        self.api_key_env = api_key_env
        self.timeout, self.max_retries = timeout, max_retries
        self._session = LoopBound()

    def __repr__(self) -> str:  # never show credentials
        return f"ColBERTv2Retriever(name={self.name!r}, url={public_url(self.url)!r})"

    async def search(self, query: str, k: int) -> list[Passage]:
        """The top `k` passages from the endpoint, in its order."""
        if not query.strip() or k <= 0:
            return []
        session = self._get_session()
        headers = self._headers()
        async def once() -> Any:
            return parse_passages(await self._get(session, query, k, headers))

        try:
            passages, _ = await with_retries(once, max_retries=self.max_retries, retryable=is_retryable,
                                             wait=wait_for)
        except RetriesExhausted as exc:
            raise self._error(exc.cause, exc.attempts) from exc.cause
        return passages[:k]

    async def aclose(self) -> None:
        """Close the HTTP session of the running loop."""
        await self._session.aclose()

    # -- internals ---------------------------------------------------------------------

    def _get_session(self) -> Any:
        import aiohttp

        return self._session.get(lambda: aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)),
                                 usable=lambda session: not session.closed)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        key = api_key(self.name, self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _get(self, session: Any, query: str, k: int, headers: dict[str, str]) -> Any:
        params = {"query": query, "k": str(k)}
        async with session.get(self.url, params=params, headers=headers) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                key = headers.get("Authorization", "").removeprefix("Bearer ")
                detail = redact(short(raw.decode("utf-8", "replace")), key)  # some servers echo it
                raise HTTPStatusFailure(resp.status, detail,
                                        parse_retry_after(resp.headers.get("Retry-After")))
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadBody(f"the reply is not JSON ({exc})") from None

    def _error(self, exc: Exception, attempts: int) -> Exception:
        if isinstance(exc, UsageError):
            return exc
        where = f"retriever '{self.name}' ({public_url(self.url)})"
        if isinstance(exc, HTTPStatusFailure):
            if not retryable_status(exc.status):
                return RetrieverError(f"{where} rejected the search: {exc}", status=exc.status,
                                      attempts=attempts)
            return RetrieverError(f"{where} failed after {attempts} attempt(s): {exc}",
                                  status=exc.status, attempts=attempts)
        if isinstance(exc, asyncio.TimeoutError):
            kind = f"timed out after {self.timeout:g} s"
        else:
            kind = f"{type(exc).__name__}: {short(str(exc))}" if str(exc) else type(exc).__name__
        return RetrieverError(f"{where} failed after {attempts} attempt(s): {kind}", attempts=attempts)


def parse_passages(body: Any) -> list[Passage]:
    """Passages from a ColBERTv2 `topk` reply, a `passages` reply, or a bare list."""
    items = body
    if isinstance(body, dict):
        items = body.get("topk", body.get("passages"))
    if not isinstance(items, list):
        raise BadBody("the reply has no 'topk' or 'passages' list")
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(Passage(text=item))
            continue
        if not isinstance(item, dict):
            raise BadBody(f"a passage is a {type(item).__name__}, not an object or a string")
        text = next((item[key] for key in _TEXT_KEYS if isinstance(item.get(key), str)), None)
        if text is None:
            raise BadBody("a passage has no 'text'")
        pid = item.get("pid", item.get("id"))
        score = item.get("score")
        title = item.get("title")
        out.append(Passage(
            text=text, id=None if pid is None else str(pid),
            score=float(score) if isinstance(score, (int, float)) else 0.0,
            title=title if isinstance(title, str) else None))
    return out

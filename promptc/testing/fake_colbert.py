"""A fake ColBERTv2-style search server for tests: aiohttp on its own loop in a thread.

    with FakeColBERTServer(["Paris is the capital of France.", "Berlin is in Germany."]) as srv:
        srv.fail_next(2, status=503)          # the next two searches fail, then it recovers
        retriever = ColBERTv2Retriever(srv.url)

`GET <url>?query=...&k=...` (any path; POST with a JSON body works too) answers
`{"query": ..., "topk": [{"text", "pid", "rank", "score", "prob"}, ...]}` ranked by how many
distinct query words a passage shares (ties: corpus order); passages sharing none are left
out. `reply_format` switches to a bare list (`"list"`) or `{"passages": [...]}`.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptc.testing.threaded import ThreadedServer

if TYPE_CHECKING:
    from aiohttp import web

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: hang
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class FakeColBERTServer(ThreadedServer):
    """A ColBERTv2-style server on 127.0.0.1 (random port) with fault injection."""

    thread_name = "fake-colbert"

    def __init__(self, passages: list[str], *, host: str = "127.0.0.1", port: int = 0,
                 path: str = "/api/search", api_key: str | None = None,
                 reply_format: str = "topk") -> None:
        super().__init__(host, port)
        self.passages = list(passages)
        self.path = path
        self.api_key = api_key
        self.reply_format = reply_format
        self._index = [_words(p) for p in self.passages]
        self._lock = threading.Lock()
        self._faults: deque[_Fault] = deque()
        self._count = 0
        self._requests: list[dict[str, Any]] = []

    # -- public API -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The search URL to give a ColBERTv2Retriever."""
        if not self.port:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def request_count(self) -> int:
        """How many requests arrived, faults included."""
        with self._lock:
            return self._count

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Each request's `params` and lower-cased `headers`, in arrival order."""
        with self._lock:
            return list(self._requests)

    def fail_next(self, n: int = 1, status: int = 503, *, retry_after: float | None = None,
                  body: str | None = None) -> None:
        """Answer the next `n` requests with HTTP `status` (and an optional Retry-After)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after, body=body) for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """Hold the next `n` requests for `seconds` (ended early by stop()), then answer normally."""
        with self._lock:
            self._faults.extend(_Fault(None, seconds=seconds) for _ in range(n))

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """The ranking the server answers with (also handy for expected values in tests)."""
        q = _words(query)
        scored = [(len(q & words), i) for i, words in enumerate(self._index)]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:k]
        total = sum(s for s, _ in ranked) or 1
        return [{"text": self.passages[i], "pid": i, "rank": r + 1, "score": float(s),
                 "prob": s / total} for r, (s, i) in enumerate(ranked)]

    # -- serving --------------------------------------------------------------------

    def _address(self) -> str:
        return self.url

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        params: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        with self._lock:
            self._count += 1
            self._requests.append({"params": params,
                                   "headers": {k.lower(): v for k, v in request.headers.items()}})
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.status is None:
            try:
                assert self._stopping is not None
                await asyncio.wait_for(self._stopping.wait(), timeout=fault.seconds)
            except asyncio.TimeoutError:
                pass
        elif fault is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return web.json_response({"error": fault.body or f"injected HTTP {fault.status}"},
                                     status=fault.status or 500, headers=headers)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "unauthorized"}, status=401)
        query = params.get("query")
        if not isinstance(query, str):
            return web.json_response({"error": "missing 'query'"}, status=400)
        try:
            k = int(params.get("k", 10))
        except (TypeError, ValueError):
            return web.json_response({"error": "'k' must be an integer"}, status=400)
        topk = self.search(query, k)
        if self.reply_format == "list":
            return web.json_response(topk)
        if self.reply_format == "passages":
            return web.json_response({"passages": topk})
        return web.json_response({"query": query, "topk": topk, "latency": 0.1})

"""A fake OpenAI-compatible HTTP server for tests and benchmarks.

It speaks `POST /v1/chat/completions`, `POST /v1/embeddings` (deterministic hashed
bag-of-words vectors, see `wire.hashed_embedding`) and `GET /v1/models` in the OpenAI wire format
(and `/v1/files` + `/v1/batches`, see `promptc.testing.batches`),
with programmable replies, per-request latency, scripted or random faults, optional
server-side limits (`rpm`: a requests-per-minute bucket; `max_inflight`: requests served
at once; both answer 429 with OpenAI's rate-limit headers, see `limits`) and a log of
every request received. In-process it runs aiohttp on its own event loop in a
background thread, so sync and async clients in the test can both use it:

    with FakeOpenAIServer(latency=0.01) as srv:
        srv.queue(["first", Fault.rate_limit(), "second"])
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptc.testing.batches import FakeBatchAPI
from promptc.testing.faults import (
    DEFAULT_RANDOM_KINDS,
    HANG,
    RATE_LIMIT,
    RESET,
    TRUNCATED,
    Fault,
    error_body,
)
from promptc.testing.limits import RequestBucket
from promptc.testing.threaded import ThreadedServer
from promptc.testing.wire import completion_payload, embeddings_payload, model_list, model_object

if TYPE_CHECKING:
    from aiohttp import web

Responder = Callable[[dict[str, Any]], "str | Fault"]
Reply = str | Fault

DEFAULT_HOST = "127.0.0.1"


def default_responder(body: dict[str, Any]) -> str:
    """Answer with promptc's offline LM, so specs run end to end without a model."""
    from promptc.lm.offline import complete_messages

    return complete_messages(body.get("messages") or [], body.get("response_format"))


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server received it. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    time: float
    # Decided on arrival: "ok", a fault kind, "auth", "bad_request" or "not_found".
    outcome: str = "ok"

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower(), default)


class FakeOpenAIServer(ThreadedServer):
    """An OpenAI-compatible server on 127.0.0.1 with programmable replies and faults.

    Attributes may be changed while it runs: `responder`, `latency`, `fault_rate`,
    `fault_kinds`, `hang_seconds`, `models`, `api_key`, `echo_key`, `max_inflight`.

    With `echo_key`, a 401 repeats the key the client sent in its message, as some
    servers do: what a client relays from the server must not leak it.

    `rpm` limits chat and embeddings requests per minute (a bucket holding `rpm_burst`
    seconds of it); `rate_headers=False` leaves out the x-ratelimit-* headers (a 429
    still says Retry-After). `max_inflight` answers 429 to a request arriving while that
    many are being served.
    """

    thread_name = "fake-openai-server"

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = DEFAULT_HOST,
        latency: float = 0.0,
        responder: Responder | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str | Fault] = DEFAULT_RANDOM_KINDS,
        hang_seconds: float = 5.0,
        seed: int | None = None,
        models: Iterable[str] = ("fake-model",),
        api_key: str | None = None,
        echo_key: bool = False,
        record: bool = True,
        rpm: int | None = None,
        rpm_burst: float = 1.0,
        rate_headers: bool = True,
        max_inflight: int | None = None,
    ) -> None:
        super().__init__(host, port)
        self.latency = latency
        self.responder: Responder = responder or default_responder
        self.fault_rate = fault_rate
        self.fault_kinds: list[str | Fault] = list(fault_kinds)
        self.hang_seconds = hang_seconds
        self.rng = random.Random(seed)
        self.models: list[str] = list(models)
        self.api_key = api_key
        self.echo_key = echo_key
        self.record = record
        self.bucket = RequestBucket(rpm, burst=rpm_burst, headers=rate_headers) if rpm else None
        self.max_inflight = max_inflight
        self._inflight = 0

        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._log: list[RequestRecord] = []
        self._count = 0
        self._outcomes: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self.batch_api = FakeBatchAPI(self)  # /v1/files and /v1/batches

    # -- public API ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to give an OpenAI client, e.g. http://127.0.0.1:PORT/v1."""
        if not self.port:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self.host}:{self.port}/v1"

    def queue(self, replies: Iterable[Reply]) -> None:
        """Script the next chat replies (strings or Faults), consumed in arrival order."""
        items = list(replies)
        for item in items:
            if not isinstance(item, (str, Fault)):
                raise TypeError(f"queue() takes strings and Faults, got {type(item).__name__}")
        with self._lock:
            self._script.extend(items)

    @property
    def queued(self) -> int:
        """How many scripted replies are still waiting."""
        with self._lock:
            return len(self._script)

    def clear_queue(self) -> None:
        """Drop any scripted replies not consumed yet."""
        with self._lock:
            self._script.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received since start or `reset_log()`."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests arrived (counted even when `record` is off)."""
        with self._lock:
            return self._count

    @property
    def outcomes(self) -> dict[str, int]:
        """Requests by outcome ("ok", "rpm_limit", "inflight_limit", a fault kind...), even when
        `record` is off."""
        with self._lock:
            return dict(self._outcomes)

    def reset_log(self) -> None:
        """Forget recorded requests and zero the counts."""
        with self._lock:
            self._log.clear()
            self._count = 0
            self._outcomes.clear()

    def _address(self) -> str:
        return self.base_url

    # -- request handling ---------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(("/v1/files", "/v1/batches")):
            self._log_request(request, {}, "ok")
            return await self.batch_api.handle(request)
        raw = await request.read()
        body: dict[str, Any] = {}
        bad_json = False
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                bad_json = True
            else:
                body = parsed if isinstance(parsed, dict) else {}
                bad_json = not isinstance(parsed, dict)

        path = request.path.rstrip("/")
        is_chat = request.method == "POST" and path == "/v1/chat/completions"
        is_embeddings = request.method == "POST" and path == "/v1/embeddings"
        is_models = request.method == "GET" and (
            path == "/v1/models" or path.startswith("/v1/models/")
        )
        outcome, fault, reply = "ok", None, None
        if (
            self.api_key is not None
            and request.headers.get("Authorization") != f"Bearer {self.api_key}"
        ):
            outcome = "auth"
        elif bad_json:
            outcome = "bad_request"
        elif (is_chat or is_embeddings) and (limited := self._over_limit()) is not None:
            outcome, limit_headers = limited
            self._log_request(request, body, outcome)
            return _error(429, _LIMIT_MESSAGES[outcome], {**limit_headers, **self._id_headers()})
        elif is_chat:
            fault, reply = self._next_scripted()
            if fault is None and reply is None:
                fault = self._random_fault()
            if fault is not None:
                outcome = fault.kind
        elif not is_models and not is_embeddings:
            outcome = "not_found"
        self._log_request(request, body, outcome)
        counted = (is_chat or is_embeddings) and outcome not in ("auth", "bad_request")
        self._inflight += counted
        try:
            response = await self._answer(request, body, outcome, fault, reply, is_chat, is_embeddings)
        finally:
            self._inflight -= counted
        if self.bucket is not None and counted and not response.prepared:
            response.headers.update(self.bucket.state_headers())
        return response

    def _over_limit(self) -> tuple[str, dict[str, str]] | None:
        """("inflight_limit" or "rpm_limit", headers) when this request must get a 429."""
        if self.max_inflight is not None and self._inflight >= self.max_inflight:
            return "inflight_limit", self.bucket.state_headers() if self.bucket is not None else {}
        if self.bucket is not None:
            allowed, headers = self.bucket.take()
            if not allowed:
                return "rpm_limit", headers
        return None

    async def _answer(self, request: web.Request, body: dict[str, Any], outcome: str, fault: Fault | None,
                      reply: str | None, is_chat: bool, is_embeddings: bool) -> web.StreamResponse:
        from aiohttp import web

        if self.latency > 0:
            await self._sleep(self.latency)

        if outcome == "auth":
            return _error(401, self._auth_message(request))
        if outcome == "bad_request":
            return _error(400, "We could not parse the JSON body of your request (fake server).")
        if outcome == "not_found":
            return _error(404, f"Unknown route {request.method} {request.path} (fake server).")
        if is_embeddings:
            default_model = self.models[0] if self.models else "fake-model"
            return web.json_response(embeddings_payload(body, default_model=default_model),
                                     headers=self._id_headers())
        if not is_chat:
            return self._models_response(request.path)
        if fault is not None and fault.kind != HANG:
            return await self._apply_fault(request, fault)
        if fault is not None:  # a hang answers normally once it has slept
            await self._sleep(self.hang_seconds if fault.seconds is None else fault.seconds)
        if reply is None:
            try:
                produced = self.responder(body)
            except Exception as exc:  # a broken responder is a test bug: say so in the reply
                return _error(500, f"fake server responder raised {type(exc).__name__}: {exc}")
            if isinstance(produced, Fault):
                return await self._apply_fault(request, produced)
            reply = produced if isinstance(produced, str) else json.dumps(produced)
        return web.json_response(self._completion(body, reply), headers=self._id_headers())

    def _auth_message(self, request: web.Request) -> str:
        if not self.echo_key:
            return "Incorrect API key provided (fake server)."
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return f"Incorrect API key provided: {sent}. Find your key at your dashboard (fake server)."

    def _next_scripted(self) -> tuple[Fault | None, str | None]:
        with self._lock:
            if not self._script:
                return None, None
            item = self._script.popleft()
        return (item, None) if isinstance(item, Fault) else (None, item)

    def _random_fault(self) -> Fault | None:
        # One draw per request keeps a seeded run reproducible for a given arrival order.
        if self.fault_rate <= 0 or not self.fault_kinds or self.rng.random() >= self.fault_rate:
            return None
        kind = self.rng.choice(self.fault_kinds)
        return kind if isinstance(kind, Fault) else Fault.from_kind(kind)

    def _log_request(self, request: web.Request, body: dict[str, Any], outcome: str) -> None:
        with self._lock:
            self._count += 1
            self._outcomes[outcome] += 1
            if self.record:
                headers = {k.lower(): v for k, v in request.headers.items()}
                self._log.append(
                    RequestRecord(request.method, request.path, headers, body, time.time(), outcome)
                )

    async def _sleep(self, seconds: float) -> None:
        # Wakes early on stop() so a pending hang never holds up shutdown.
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _id_headers(self) -> dict[str, str]:
        return {"x-request-id": f"req_fake_{next(self._ids)}"}

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        default_model = self.models[0] if self.models else "fake-model"
        completion_id = f"chatcmpl-fake{next(self._ids):010d}"
        return completion_payload(
            body, content, completion_id=completion_id, default_model=default_model
        )

    def _models_response(self, path: str) -> web.Response:
        from aiohttp import web

        if path.rstrip("/") == "/v1/models":
            return web.json_response(model_list(self.models), headers=self._id_headers())
        name = path[len("/v1/models/") :]
        if name not in self.models:
            return _error(404, f"The model '{name}' does not exist (fake server).")
        return web.json_response(model_object(name), headers=self._id_headers())

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        from aiohttp import web

        if fault.kind == RATE_LIMIT:
            headers = self._id_headers()
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
                headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            return _error(429, fault.message, headers)
        if fault.kind == RESET:
            _reset_connection(request)
            # aiohttp fails to write this to the dead transport and drops it quietly.
            return web.Response(status=204)
        if fault.kind == TRUNCATED:
            return await self._truncated(request, fault)
        if fault.kind == HANG:  # only reachable from a responder returning Fault.hang()
            await self._sleep(self.hang_seconds if fault.seconds is None else fault.seconds)
            return _error(504, "Gateway timeout after hang (fake server).")
        return _error(fault.http_status or 500, fault.message, self._id_headers())

    async def _truncated(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        from aiohttp import web

        body = json.dumps(self._completion({}, "this reply was cut short")).encode()
        half = body[: len(body) // 2]
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.content_length = len(body) if fault.full_length else len(half)
        await resp.prepare(request)
        await resp.write(half)
        if fault.full_length:
            # close() flushes what was written and then sends FIN, so the client gets
            # headers and half the body, then EOF short of the declared length.
            assert request.transport is not None
            request.transport.close()
        return resp


_LIMIT_MESSAGES = {
    "rpm_limit": "Rate limit reached for requests per minute (fake server).",
    "inflight_limit": "Too many requests in flight (fake server).",
}


def _error(
    status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    from aiohttp import web

    return web.json_response(error_body(status, message), status=status, headers=headers)


def _reset_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST, like a crashed proxy.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()

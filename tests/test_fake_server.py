"""The fake OpenAI server, exercised through the real `openai` client (never mocked)."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import openai
import pytest

from promptc.testing import FakeOpenAIServer, Fault, spawn_server_process

MESSAGES = [{"role": "user", "content": "What is 6 times 7?"}]
TRANSPORTS = ["httpx2", "aiohttp"]


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=lambda body: "Answer: 42") as server:
        yield server


def sync_client(srv: FakeOpenAIServer, **kw: Any) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5.0)
    return openai.OpenAI(base_url=srv.base_url, api_key=kw.pop("api_key", "sk-test"), **kw)


def run_async(
    srv: FakeOpenAIServer,
    fn: Callable[[openai.AsyncOpenAI], Awaitable[Any]],
    transport: str = "aiohttp",
    **kw: Any,
) -> Any:
    """Run `fn(client)` on a fresh AsyncOpenAI client that is closed properly afterwards."""
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5.0)

    async def main() -> Any:
        http_client = (
            openai.DefaultAioHttpClient()
            if transport == "aiohttp"
            else openai.DefaultAsyncHttpxClient()
        )
        async with openai.AsyncOpenAI(
            base_url=srv.base_url, api_key="sk-test", http_client=http_client, **kw
        ) as c:
            return await fn(c)

    return asyncio.run(main())


def ask_async(srv: FakeOpenAIServer, transport: str = "aiohttp", **kw: Any) -> Any:
    return run_async(
        srv,
        lambda c: c.chat.completions.create(model="fake-model", messages=MESSAGES),
        transport,
        **kw,
    )


def ask_sync(srv: FakeOpenAIServer, **kw: Any) -> Any:
    with sync_client(srv, **kw) as c:
        return c.chat.completions.create(model="fake-model", messages=MESSAGES)


def ask(srv: FakeOpenAIServer, transport: str, **kw: Any) -> Any:
    return ask_sync(srv, **kw) if transport == "httpx2" else ask_async(srv, "aiohttp", **kw)


# -- normal replies --------------------------------------------------------------------


def test_sync_client_gets_a_well_formed_completion(srv: FakeOpenAIServer) -> None:
    reply = ask_sync(srv)
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "fake-model"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "Answer: 42"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == len("Answer: 42") // 4 + 1
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_async_aiohttp_client_and_request_log(srv: FakeOpenAIServer) -> None:
    srv.responder = lambda body: f"echo {body['messages'][-1]['content']}"
    reply = ask_async(srv)
    assert reply.choices[0].message.content == "echo What is 6 times 7?"

    [rec] = srv.requests
    assert (rec.method, rec.path, rec.outcome) == ("POST", "/v1/chat/completions", "ok")
    assert rec.header("Authorization") == "Bearer sk-test"
    assert rec.headers["authorization"] == "Bearer sk-test"  # names are lower-cased
    assert rec.body["messages"] == MESSAGES
    assert rec.body["model"] == "fake-model"
    assert rec.time == pytest.approx(time.time(), abs=5)

    srv.reset_log()
    assert srv.requests == [] and srv.request_count == 0


def test_concurrent_requests_are_all_recorded(srv: FakeOpenAIServer) -> None:
    async def many(c: openai.AsyncOpenAI) -> list[Any]:
        calls = [
            c.chat.completions.create(model="fake-model", messages=MESSAGES) for _ in range(30)
        ]
        return await asyncio.gather(*calls)

    replies = run_async(srv, many)
    assert len(replies) == 30
    assert srv.request_count == 30 and len(srv.requests) == 30


def test_latency_is_added_per_request(srv: FakeOpenAIServer) -> None:
    srv.latency = 0.2
    start = time.perf_counter()
    ask_sync(srv)
    assert time.perf_counter() - start >= 0.2


def test_scripted_replies_come_first_in_order(srv: FakeOpenAIServer) -> None:
    srv.queue(["first", Fault.server_error(503), "second"])
    assert srv.queued == 3
    with sync_client(srv) as c:

        def content() -> str | None:
            return (
                c.chat.completions.create(model="fake-model", messages=MESSAGES)
                .choices[0]
                .message.content
            )

        assert content() == "first"
        with pytest.raises(openai.InternalServerError):
            content()
        assert content() == "second"
        assert content() == "Answer: 42"  # queue drained: back to the responder
    assert srv.queued == 0
    assert [r.outcome for r in srv.requests] == ["ok", "server_error", "ok", "ok"]


def test_responder_may_return_a_fault(srv: FakeOpenAIServer) -> None:
    srv.responder = lambda body: Fault.status(400, "bad prompt")
    with pytest.raises(openai.BadRequestError, match="bad prompt"):
        ask_sync(srv)


def test_a_raising_responder_answers_500_with_the_reason(srv: FakeOpenAIServer) -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("nope")

    srv.responder = broken
    with pytest.raises(openai.InternalServerError, match="KeyError"):
        ask_sync(srv)


# -- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rate_limit_sends_retry_after(srv: FakeOpenAIServer, transport: str) -> None:
    srv.queue([Fault.rate_limit(retry_after=0.05)])
    with pytest.raises(openai.RateLimitError) as info:
        ask(srv, transport)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0.05"
    assert info.value.response.headers["retry-after-ms"] == "50"
    assert info.value.code == "rate_limit_exceeded"


def test_client_retries_through_a_rate_limit(srv: FakeOpenAIServer) -> None:
    srv.queue([Fault.rate_limit(retry_after=0.05), "after the wait"])
    reply = ask_async(srv, max_retries=2)
    assert reply.choices[0].message.content == "after the wait"
    assert srv.request_count == 2
    first, second = srv.requests
    assert second.time - first.time >= 0.04  # the client honoured retry-after-ms


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(srv: FakeOpenAIServer, status: int) -> None:
    srv.queue([Fault.server_error(status)])
    with pytest.raises(openai.InternalServerError) as info:
        ask_sync(srv)
    assert info.value.status_code == status


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reset_is_a_connection_error(srv: FakeOpenAIServer, transport: str) -> None:
    # httpx2 raises APIConnectionError itself; the aiohttp adapter maps every
    # ClientConnectionError to ConnectTimeout, so there it is the APITimeoutError subclass.
    srv.queue([Fault.reset()])
    with pytest.raises(openai.APIConnectionError):
        ask(srv, transport)
    assert ask(srv, transport).choices[0].message.content == "Answer: 42"  # server still fine


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hang_times_the_client_out(srv: FakeOpenAIServer, transport: str) -> None:
    srv.hang_seconds = 5.0
    srv.queue([Fault.hang()])
    start = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        ask(srv, transport, timeout=0.3)
    assert time.perf_counter() - start < 2.0


def test_hang_shorter_than_the_timeout_answers(srv: FakeOpenAIServer) -> None:
    srv.queue([Fault.hang(0.05), "late"])  # the hang answers with the responder, not "late"
    assert ask_sync(srv).choices[0].message.content == "Answer: 42"
    assert srv.queued == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_truncated_body_with_full_length_is_a_connection_error(
    srv: FakeOpenAIServer, transport: str
) -> None:
    srv.queue([Fault.truncated()])
    with pytest.raises(openai.APIConnectionError) as info:
        ask(srv, transport)
    assert not isinstance(info.value, openai.APITimeoutError)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_truncated_body_with_short_length_fails_json_parsing(
    srv: FakeOpenAIServer, transport: str
) -> None:
    srv.queue([Fault.truncated(full_length=False)])
    # Not an openai.OpenAIError: the client parses the 200 body and json raises.
    with pytest.raises(json.JSONDecodeError):
        ask(srv, transport)


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
    ],
)
def test_status_faults(
    srv: FakeOpenAIServer, status: int, exc_type: type[openai.APIStatusError]
) -> None:
    srv.queue([Fault.status(status, f"scripted {status}")])
    with pytest.raises(exc_type, match=f"scripted {status}") as info:
        ask_sync(srv)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and "type" in info.value.body


def test_api_key_is_checked() -> None:
    with FakeOpenAIServer(api_key="sk-right", responder=lambda body: "hi") as srv:
        with pytest.raises(openai.AuthenticationError) as info:
            ask_sync(srv, api_key="sk-wrong")
        assert info.value.code == "invalid_api_key"
        assert ask_sync(srv, api_key="sk-right").choices[0].message.content == "hi"
        assert [r.outcome for r in srv.requests] == ["auth", "ok"]


def test_random_faults_follow_the_rate_and_the_seed() -> None:
    def outcomes(seed: int) -> list[str]:
        with FakeOpenAIServer(
            responder=lambda body: "ok",
            fault_rate=0.2,
            fault_kinds=["rate_limit", "server_error"],
            seed=seed,
        ) as srv:
            with sync_client(srv) as c:
                for _ in range(300):
                    try:
                        c.chat.completions.create(model="fake-model", messages=MESSAGES)
                    except openai.APIStatusError:
                        pass
            return [r.outcome for r in srv.requests]

    first = outcomes(seed=7)
    counts = collections.Counter(first)
    assert set(counts) == {"ok", "rate_limit", "server_error"}
    assert 0.12 <= (300 - counts["ok"]) / 300 <= 0.28
    assert outcomes(seed=7) == first


def test_fault_constructors_validate() -> None:
    with pytest.raises(ValueError):
        Fault.server_error(404)
    with pytest.raises(ValueError):
        Fault.status(200)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_kind("meteor")
    with pytest.raises(TypeError):
        FakeOpenAIServer().queue([42])  # type: ignore[list-item]


# -- other routes -----------------------------------------------------------------------


def test_models_endpoint(srv: FakeOpenAIServer) -> None:
    srv.models = ["fake-model", "fake-model-mini"]
    with sync_client(srv) as c:
        assert [m.id for m in c.models.list()] == ["fake-model", "fake-model-mini"]
        assert c.models.retrieve("fake-model-mini").id == "fake-model-mini"
        with pytest.raises(openai.NotFoundError):
            c.models.retrieve("gpt-nonexistent")


def test_unknown_route_and_bad_json_get_openai_style_errors(srv: FakeOpenAIServer) -> None:
    def post(path: str, data: bytes) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(srv.base_url + path, data=data, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.load(err)

    status, body = post("/completions/legacy", b"{}")
    assert status == 404 and body["error"]["type"] == "invalid_request_error"
    status, body = post("/chat/completions", b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]
    assert [r.outcome for r in srv.requests] == ["not_found", "bad_request"]


def test_stop_is_fast_with_a_request_still_hanging() -> None:
    srv = FakeOpenAIServer(responder=lambda body: "x", hang_seconds=30).start()
    srv.queue([Fault.hang()])
    sock = socket.create_connection(("127.0.0.1", srv.port))
    with sock:
        payload = json.dumps({"model": "m", "messages": MESSAGES}).encode()
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n"
        sock.sendall(head.encode() + payload)
        while srv.request_count == 0:
            time.sleep(0.01)
        start = time.perf_counter()
        srv.stop()
        assert time.perf_counter() - start < 2.0


# -- subprocess mode --------------------------------------------------------------------


def test_subprocess_server_starts_answers_and_stops() -> None:
    with spawn_server_process(
        latency=0.01, fault_rate=1.0, fault_kinds=["server_error"], seed=1
    ) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
            assert [m.id for m in c.models.list()] == ["fake-model"]
            with pytest.raises(openai.InternalServerError):  # every chat request faults
                c.chat.completions.create(model="fake-model", messages=MESSAGES)
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()

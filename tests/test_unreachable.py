"""A dead endpoint stops the job at once, naming the cause and the URL; keys never leak.

Closed ports are real (a port bound, then released) and unresolvable hosts use the
reserved `.invalid` top-level domain, so the real openai client meets real OS errors.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from promptc.errors import LMError, LMUnreachable
from promptc.lm.base import LMRequest, Message
from promptc.lm.breaker import CircuitBreaker, transport_cause
from promptc.lm.embeddings import OpenAIEmbedder
from promptc.lm.openai_client import OpenAICompatibleLM
from promptc.retrieve.base import RetrieverError
from promptc.retrieve.colbert import ColBERTv2Retriever
from promptc.testing import FakeColBERTServer, FakeOpenAIServer, Fault
from tests.conftest import TEST_KEY, run_cli
from tests.test_cli_run import ENV, read_rows, write_rows, write_spec

UNRESOLVABLE = "http://nonexistent.invalid/v1"
WRONG_KEY = "sk-wrong-ECHOED-9876543210zyxwvut"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(i: int = 0) -> LMRequest:
    return LMRequest(model="", messages=[Message(role="user", content=f"question {i}")], sample_index=0)


async def failure_of(url: str) -> Exception:
    """The exception the real client raises for one request to `url` (no retries)."""
    lm = OpenAICompatibleLM("m", base_url=url, api_key=TEST_KEY, max_retries=0)
    lm._loop_state().breaker.threshold = 10**6  # see the raw failure, not the breaker's
    try:
        await lm.complete(request())
    except LMError as exc:
        assert isinstance(exc.__cause__, Exception)
        return exc.__cause__
    finally:
        await lm.aclose()
    raise AssertionError("the request succeeded")


def test_the_real_cause_is_found_under_the_timeout_the_transport_reports():
    refused = asyncio.run(failure_of(f"http://127.0.0.1:{closed_port()}/v1"))
    unresolved = asyncio.run(failure_of(UNRESOLVABLE))
    assert "timed out" in str(refused).lower()  # what the SDK says
    assert transport_cause(refused) is not None and transport_cause(refused).text == "connection refused"
    cause = transport_cause(unresolved)
    assert cause is not None and cause.connect
    assert cause.text == "name not resolved: nonexistent.invalid"


def test_https_to_a_plain_http_server_is_a_tls_failure(fake_server):
    lm = OpenAICompatibleLM("m", base_url=fake_server.base_url.replace("http://", "https://"),
                            api_key=TEST_KEY, max_retries=6)

    async def go() -> None:
        try:
            await asyncio.wait_for(lm.complete(request()), timeout=60)
        finally:
            await lm.aclose()

    with pytest.raises(LMUnreachable, match="TLS handshake failed: wrong version number"):
        asyncio.run(go())


def test_a_dropped_connection_is_named_but_does_not_count_as_unreachable(fake_server):
    fake_server.queue([Fault.reset()])
    dropped = asyncio.run(failure_of(fake_server.base_url))
    cause = transport_cause(dropped)
    assert cause is not None and not cause.connect and "reset" in cause.text


def test_breaker_opens_at_once_when_nothing_ever_answered():
    refused = asyncio.run(failure_of(f"http://127.0.0.1:{closed_port()}/v1"))
    breaker = CircuitBreaker("http://x/v1", threshold=3)
    breaker.failure(refused)
    breaker.failure(refused)
    with pytest.raises(LMUnreachable, match=r"cannot reach http://x/v1: connection refused"):
        breaker.failure(refused)
    with pytest.raises(LMUnreachable):  # every later call fails before sending
        breaker.check()


def test_after_a_reply_only_a_long_outage_opens_the_breaker():
    refused = asyncio.run(failure_of(f"http://127.0.0.1:{closed_port()}/v1"))
    now = [100.0]
    breaker = CircuitBreaker("http://x/v1", threshold=3, window=20.0, clock=lambda: now[0])
    breaker.success()
    for _ in range(10):  # a burst of refusals within the window: row-level retries
        breaker.failure(refused)
        now[0] += 1.0
    breaker.check()
    breaker.success()  # one reply resets the count
    for _ in range(3):
        breaker.failure(refused)
        now[0] += 5.0
    breaker.check()
    now[0] += 10.0
    with pytest.raises(LMUnreachable, match="no reply since"):
        breaker.failure(refused)


def test_an_http_error_status_counts_as_an_answer(fake_server):
    fake_server.queue([Fault.server_error(503)])
    unavailable = asyncio.run(failure_of(fake_server.base_url))
    refused = asyncio.run(failure_of(f"http://127.0.0.1:{closed_port()}/v1"))
    breaker = CircuitBreaker("http://x/v1", threshold=2)
    breaker.failure(unavailable)
    assert breaker.answered
    breaker.failure(refused)
    breaker.failure(refused)
    breaker.check()  # the server answered before: two refusals are not an outage


def test_many_concurrent_calls_to_a_closed_port_fail_fast_with_one_cause():
    lm = OpenAICompatibleLM("m", base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key="sk-x",
                            max_retries=6, concurrency=16)

    async def go() -> list[BaseException | object]:
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(lm.complete(request(i)) for i in range(200)), return_exceptions=True),
                timeout=60)  # without the breaker: minutes of backoff
        finally:
            await lm.aclose()

    results = asyncio.run(go())
    unreachable = [r for r in results if isinstance(r, LMUnreachable)]
    assert len(unreachable) >= 190  # the first few may end as plain row errors
    assert all(isinstance(r, LMError) for r in results)
    assert "connection refused" in str(unreachable[0])


def test_embedder_stops_on_an_unresolvable_host():
    embedder = OpenAIEmbedder("e", base_url=UNRESOLVABLE, max_retries=6)

    async def go() -> None:
        try:
            await asyncio.wait_for(embedder.embed(["a"]), timeout=60)
        finally:
            await embedder.aclose()

    with pytest.raises(LMUnreachable, match="name not resolved: nonexistent.invalid"):
        asyncio.run(go())


@pytest.mark.parametrize("kind", ["closed port", "unresolvable host"])
def test_cli_run_exits_3_naming_cause_and_url_then_resumes(tmp_path, kind):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/v1" if kind == "closed port" else UNRESOLVABLE
    spec = write_spec(tmp_path, url, timeout=60, max_retries=6)
    inp, out = write_rows(tmp_path / "in.jsonl", 300), tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV, timeout=120)
    assert result.returncode == 3, result.stderr
    cause = "connection refused" if kind == "closed port" else "name not resolved: nonexistent.invalid"
    assert f"cannot reach {url}: {cause}" in " ".join(result.stderr.split())
    assert "--resume" in result.stderr and "Traceback" not in result.stderr
    if kind == "unresolvable host":
        return
    with FakeOpenAIServer(port=port, api_key=TEST_KEY):  # the server is up now
        again = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--resume", env=ENV)
    assert again.returncode == 0, again.stderr
    assert sorted(r["_row"] for r in read_rows(out)) == list(range(1, 301))


def test_a_key_echoed_by_the_server_is_never_relayed(tmp_path, fake_server, isolated_env):
    fake_server.echo_key = True
    spec = write_spec(tmp_path, fake_server.base_url, max_retries=1)
    inp, out = write_rows(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    env = {"PROMPTC_TEST_KEY": WRONG_KEY}
    refused = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=env)
    assert refused.returncode == 3 and "Incorrect API key provided: [redacted]" in refused.stderr
    assert fake_server.requests[0].header("authorization") == f"Bearer {WRONG_KEY}"  # it was sent

    # A row error relays the server's message into `_error`: the right key, echoed in a 500.
    fake_server.fault_rate, fake_server.fault_kinds = 1.0, [Fault.server_error(500, f"bad {TEST_KEY}")]
    failed = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--overwrite", "--no-cache", env=ENV)
    assert failed.returncode == 1, failed.stderr
    assert all("bad [redacted]" in row["_error"] for row in read_rows(out))
    logs = refused.stdout + refused.stderr + failed.stdout + failed.stderr
    assert WRONG_KEY not in logs and TEST_KEY not in logs
    for path in [p for p in [*tmp_path.rglob("*"), *isolated_env.rglob("*")] if p.is_file()]:
        data = path.read_bytes()
        assert WRONG_KEY.encode() not in data and TEST_KEY.encode() not in data, path


def test_a_key_echoed_by_a_retriever_server_is_never_relayed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-colbert-ECHOED-0123456789"
    monkeypatch.setenv("COLBERT_KEY", secret)

    async def go(retriever: ColBERTv2Retriever) -> None:
        try:
            await retriever.search("bananas", 2)
        finally:
            await retriever.aclose()

    with FakeColBERTServer(["bananas are yellow"], api_key=secret) as server:
        server.fail_next(1, status=403, body=f"the key {secret} has no access to this index")
        retriever = ColBERTv2Retriever(server.url, api_key_env="COLBERT_KEY", max_retries=0)
        with pytest.raises(RetrieverError, match=r"the key \[redacted\] has no access") as info:
            asyncio.run(go(retriever))
    assert secret not in str(info.value)

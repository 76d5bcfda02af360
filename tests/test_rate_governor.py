"""Runs finish against rate-limited endpoints, and every request sent is counted.

Through the real openai client against the fake server's own limits (`rpm`,
`max_inflight`), with small limits so the tests stay quick. Nothing here is timed
except by generous timeouts that prove nothing hangs.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from promptc.errors import LMError, RateLimitStalled
from promptc.lm.base import LMRequest, Message
from promptc.lm.openai_client import OpenAICompatibleLM
from promptc.lm.ratecontrol import RateHeaders, parse_duration
from promptc.retry import with_retries
from promptc.testing import FakeOpenAIServer, Fault
from tests.conftest import TEST_KEY, run_cli

REPLY = "[[ ## answer ## ]]\n1\n\n[[ ## completed ## ]]"


def request(i: int) -> LMRequest:
    return LMRequest(model="", messages=[Message(role="user", content=f"question {i}")])


def make_lm(server: FakeOpenAIServer, **kw) -> OpenAICompatibleLM:
    server.responder = lambda body: REPLY
    return OpenAICompatibleLM("fake-model", base_url=server.base_url, api_key=TEST_KEY, **kw)


async def complete_all(lm: OpenAICompatibleLM, n: int) -> list:
    try:
        return await asyncio.wait_for(asyncio.gather(*(lm.complete(request(i)) for i in range(n))), 120)
    finally:
        await lm.aclose()


@pytest.mark.parametrize("raw,seconds", [("1s", 1.0), ("6m0s", 360.0), ("120ms", 0.12), ("1.5s", 1.5),
                                         ("1h2m3s", 3723.0), ("0.25", 0.25), ("soon", None), ("1s2x", None)])
def test_reset_durations_parse_like_openai_sends_them(raw, seconds):
    assert parse_duration(raw) == pytest.approx(seconds) if seconds is not None else parse_duration(raw) is None


def test_headers_tell_a_spent_quota_from_quota_left():
    spent = RateHeaders.read({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert not spent.quota_left and spent.quota_wait == 2.0
    left = RateHeaders.read({"x-ratelimit-remaining-requests": "5", "retry-after-ms": "250"})
    assert left.quota_left and left.quota_wait == 0.25


def test_free_failures_do_not_spend_the_retry_budget():
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 6:
            raise KeyError("rate limited")
        return "done"

    result, attempts = asyncio.run(with_retries(flaky, max_retries=0, retryable=lambda e: True,
                                                free=lambda e: isinstance(e, KeyError)))
    assert (result, attempts) == ("done", 6)


def test_fake_server_rpm_bucket_answers_429_with_openai_headers():
    import openai

    with FakeOpenAIServer(rpm=60) as srv:  # one a second, a bucket of one
        client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        ok = client.chat.completions.with_raw_response.create(model="fake-model", messages=[])
        assert ok.headers["x-ratelimit-limit-requests"] == "60"
        assert ok.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="fake-model", messages=[])
        headers = info.value.response.headers
        assert 0 < int(headers["retry-after-ms"]) <= 1000 and headers["Retry-After"] == "1"
        assert srv.outcomes == {"ok": 1, "rpm_limit": 1}


def test_rate_limited_server_loses_no_row_and_usage_matches_the_server():
    # 120 RPM is 2 a second: 16 requests at once hit 429s; none may fail, even with no retries.
    with FakeOpenAIServer(rpm=120) as srv:
        lm = make_lm(srv, concurrency=16, max_retries=0)
        responses = asyncio.run(complete_all(lm, 10))
        assert all(r.text == REPLY for r in responses)
        assert srv.outcomes["rpm_limit"] > 0
        assert sum(r.usage.requests for r in responses) == srv.request_count


def test_the_pace_is_learned_from_the_announced_limit():
    with FakeOpenAIServer(rpm=120) as srv:
        lm = make_lm(srv, concurrency=16, max_retries=0)

        async def go() -> float | None:
            await asyncio.gather(*(lm.complete(request(i)) for i in range(6)))
            assert lm._state is not None
            pace = lm._state.governor.pace
            await lm.aclose()
            return pace

        pace = asyncio.run(asyncio.wait_for(go(), 120))
        assert pace is not None and 1.0 < pace <= 2.0  # requests a second, at most the 120/min announced


def test_server_max_inflight_narrows_the_concurrency_and_loses_no_row():
    with FakeOpenAIServer(max_inflight=2, latency=0.05) as srv:
        lm = make_lm(srv, concurrency=16, max_retries=0)

        async def go() -> tuple[list, int]:
            responses = await asyncio.gather(*(lm.complete(request(i)) for i in range(24)))
            assert lm._state is not None
            limit = lm._state.concurrency.limit
            await lm.aclose()
            return responses, limit

        responses, limit = asyncio.run(asyncio.wait_for(go(), 120))
        assert len(responses) == 24 and srv.outcomes["inflight_limit"] > 0
        assert limit < 16
        assert sum(r.usage.requests for r in responses) == srv.request_count


def test_an_endpoint_that_only_answers_429_stops_with_a_clear_error(fake_server):
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.rate_limit(retry_after=0.05)]
    lm = make_lm(fake_server, concurrency=4, rate_limit_patience=0.5)
    with pytest.raises(RateLimitStalled, match="only 429") as info:
        asyncio.run(complete_all(lm, 1))
    assert info.value.requests == fake_server.request_count > 7  # more than the retry budget


def test_a_row_whose_request_always_gets_429_fails_after_patience_while_others_pass(fake_server):
    # "Request too large for the tokens-per-minute limit": 429 for this row, for ever.
    def responder(body: dict) -> str | Fault:
        text = body["messages"][-1]["content"]
        return Fault.rate_limit(retry_after=0.01) if text == "question 0" else REPLY

    fake_server.responder = responder
    lm = OpenAICompatibleLM("fake-model", base_url=fake_server.base_url, api_key=TEST_KEY, max_retries=1,
                            rate_limit_patience=0.5)

    async def go() -> list:
        async def keep_succeeding() -> None:  # other rows make progress all along
            for i in range(1, 100):
                await lm.complete(request(i))
                await asyncio.sleep(0.02)

        background = asyncio.create_task(keep_succeeding())
        try:
            return await asyncio.gather(lm.complete(request(0)), return_exceptions=True)
        finally:
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)
            await lm.aclose()

    [outcome] = asyncio.run(asyncio.wait_for(go(), 60))
    assert isinstance(outcome, LMError) and not isinstance(outcome, RateLimitStalled)
    assert "429" in str(outcome) and outcome.requests > 2


SPEC = """
version: 1
name: qa
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: PROMPTC_TEST_KEY
  max_retries: 2
  concurrency: 8
  rate_limit_patience: {patience}
  cache: false
program:
  - step: answer
    signature: "question -> answer: float"
"""


def write_job(tmp_path, base_url: str, rows: int, patience: float = 300):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(base_url=base_url, patience=patience))
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "question": f"What is {i}?"}) + "\n" for i in range(rows)))
    return spec, inp, tmp_path / "out.jsonl"


def test_failed_rows_count_every_request_they_sent(tmp_path, fake_server):
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.server_error(503)]
    spec, inp, out = write_job(tmp_path, fake_server.base_url, 3)
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["_usage"]["requests"] for r in rows] == [3, 3, 3]  # one request and two retries each
    assert "9 HTTP request(s)" in result.stdout  # the run summary


def test_cli_run_against_a_rate_limited_server_fails_no_row(tmp_path):
    with FakeOpenAIServer(api_key=TEST_KEY, rpm=240) as srv:
        spec, inp, out = write_job(tmp_path, srv.base_url, 12)
        result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--concurrency", "12",
                         env={"PROMPTC_TEST_KEY": TEST_KEY})
        received = srv.request_count
        assert srv.outcomes.get("rpm_limit", 0) > 0
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and not any(r.get("_error") for r in rows)
    assert sum(r["_usage"]["requests"] for r in rows) == received


def test_cli_run_stops_with_exit_3_when_only_429s_come_back(tmp_path, fake_server):
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.rate_limit(retry_after=0.05)]
    spec, inp, out = write_job(tmp_path, fake_server.base_url, 4, patience=0.5)
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert result.returncode == 3, result.stderr
    assert "only 429" in result.stderr and "Traceback" not in result.stderr

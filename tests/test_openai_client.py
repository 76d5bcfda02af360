"""The OpenAI-compatible client against the fake server: retries, limits, cache, errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from promptc.errors import LMConfigError, LMError
from promptc.lm.base import LMRequest, Message
from promptc.lm.cache import SQLiteCache
from promptc.lm.layers import CachedLM
from promptc.lm.openai_client import OpenAICompatibleLM
from promptc.testing import Fault

REPLY = "[[ ## answer ## ]]\n1\n\n[[ ## completed ## ]]"


def request(i: int = 0) -> LMRequest:
    return LMRequest(model="", messages=[Message(role="user", content=f"question {i}")], sample_index=0)


def make_lm(server, **kw) -> OpenAICompatibleLM:
    server.responder = lambda body: REPLY
    kw.setdefault("api_key", "sk-test-SECRET-0123456789abcdefghij")
    return OpenAICompatibleLM("fake-model", base_url=server.base_url, **kw)


def run(coro):
    return asyncio.run(coro)


def test_retry_after_is_honoured(fake_server):
    lm = make_lm(fake_server)
    fake_server.queue([Fault.rate_limit(retry_after=0.4)])

    async def go():
        start = time.monotonic()
        response = await lm.complete(request())
        await lm.aclose()
        return response, time.monotonic() - start

    response, elapsed = run(go())
    assert response.text == REPLY and response.usage.requests == 2
    assert elapsed >= 0.4


def test_rate_limit_storm_backs_off_and_finishes(fake_server):
    lm = make_lm(fake_server, concurrency=32, max_retries=30)
    fake_server.fault_rate = 0.5
    fake_server.fault_kinds = [Fault.rate_limit(retry_after=0.02)]
    fake_server.rng.seed(7)

    async def go():
        responses = await asyncio.gather(*(lm.complete(request(i)) for i in range(120)))
        limit = lm._state.concurrency.limit
        await lm.aclose()
        return responses, limit

    responses, limit = run(go())
    assert len(responses) == 120 and all(r.text == REPLY for r in responses)
    assert limit < 32  # multiplicative decrease happened
    assert sum(r.usage.requests for r in responses) > 120


def test_client_errors_are_not_retried(fake_server):
    lm = make_lm(fake_server)
    fake_server.queue([Fault.status(400, "bad temperature")])

    async def go():
        try:
            await lm.complete(request())
        finally:
            await lm.aclose()

    with pytest.raises(LMConfigError, match="bad temperature"):
        run(go())
    assert fake_server.request_count == 1


def test_exhausted_retries_raise_a_retryable_lm_error(fake_server):
    lm = make_lm(fake_server, max_retries=2)
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.server_error(503)]

    async def go():
        try:
            await lm.complete(request())
        finally:
            await lm.aclose()

    with pytest.raises(LMError, match="3 attempt") as info:
        run(go())
    assert info.value.retryable and fake_server.request_count == 3


def test_requests_per_minute_limit(fake_server):
    lm = make_lm(fake_server, rpm=600)  # 10/s with a one-second burst

    async def go():
        start = time.monotonic()
        await asyncio.gather(*(lm.complete(request(i)) for i in range(20)))
        await lm.aclose()
        return time.monotonic() - start

    assert run(go()) >= 0.9


def test_cache_keys_samples_apart_and_skips_http(fake_server, tmp_path):
    cache = SQLiteCache(tmp_path / "c.sqlite")
    lm = CachedLM(make_lm(fake_server, temperature=0.7), cache)

    async def go():
        a = await lm.complete(request().model_copy(update={"sample_index": 0}))
        b = await lm.complete(request().model_copy(update={"sample_index": 1}))
        again = await lm.complete(request().model_copy(update={"sample_index": 1}))
        await lm.aclose()
        return a, b, again

    a, b, again = run(go())
    assert fake_server.request_count == 2 and len(cache) == 2
    assert again.cached and again.usage.cache_hits == 1 and again.usage.requests == 0
    body = fake_server.requests[0].body
    assert body["temperature"] == 0.7 and "sample_index" not in body
    cache.close()


def test_offline_only_turns_a_miss_into_an_error(fake_server, tmp_path):
    lm = CachedLM(make_lm(fake_server), SQLiteCache(tmp_path / "c.sqlite"), offline_only=True)
    with pytest.raises(LMError, match="cache miss"):
        run(lm.complete(request()))
    assert fake_server.request_count == 0
    lm.cache.close()

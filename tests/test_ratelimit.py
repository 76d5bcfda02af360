"""Tests for promptc.lm.ratelimit: token buckets and AIMD concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest

from promptc.lm.ratelimit import AdaptiveConcurrency, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- RateLimiter ---------------------------------------------------------------


def test_unlimited_never_waits() -> None:
    limiter = RateLimiter(None, None)
    assert limiter.unlimited

    async def main() -> float:
        start = time.perf_counter()
        for _ in range(10_000):
            await limiter.acquire(100_000)
        return time.perf_counter() - start

    assert asyncio.run(main()) < 0.5


def test_rpm_limits_rate_in_real_time() -> None:
    # 2400 rpm = 40/s with a one-second burst of 40: 60 requests take ~0.5 s.
    limiter = RateLimiter(rpm=2400)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(time.perf_counter())

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(60)))
        return start

    start = asyncio.run(main())
    elapsed = max(stamps) - start
    assert 0.4 < elapsed < 0.9
    # The burst goes at once; the rest is paced.
    stamps.sort()
    assert stamps[39] - start < 0.02
    assert stamps[40] - start >= 0.02  # 1/40 s after the burst


def test_tpm_limits_tokens_in_real_time() -> None:
    # 120k tpm = 2000 tokens/s, burst 2000: three 1000-token requests take ~0.5 s.
    limiter = RateLimiter(rpm=None, tpm=120_000)

    async def main() -> list[float]:
        start = time.perf_counter()
        out = []
        for _ in range(3):
            await limiter.acquire(1000)
            out.append(time.perf_counter() - start)
        return out

    times = asyncio.run(main())
    assert times[1] < 0.05
    assert 0.4 < times[2] < 0.8


def test_bucket_math_with_fake_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=6000, clock=clock)  # 1 req/s, 100 tokens/s
    assert limiter.reserve(10) == 0.0  # burst of one request
    assert limiter.reserve(10) == pytest.approx(1.0)  # queued behind the first
    assert limiter.reserve(10) == pytest.approx(2.0)
    clock.now += 3.0
    assert limiter.reserve(10) == 0.0


def test_oversized_request_goes_through_then_others_pay() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=6000, clock=clock)  # 100 tokens/s, bucket of 100
    # 250 tokens is more than the bucket holds: it waits only for a full bucket.
    assert limiter.reserve(250) == 0.0
    # The debt (-150) is paid back before the next request: (10 + 150) / 100 s.
    assert limiter.reserve(10) == pytest.approx(1.6)
    # Oversized on a non-full bucket waits for a full bucket, not forever.
    clock.now += 100.0
    limiter.reserve(60)
    assert limiter.reserve(10_000) == pytest.approx(0.6)


def test_cancelled_waiter_gives_reservation_back() -> None:
    limiter = RateLimiter(rpm=60)  # burst 1, then 1/s

    async def main() -> None:
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    # Without the refund the next request would wait ~2 s; with it, ~1 s.
    assert limiter.reserve() < 1.1


def test_invalid_rates() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rpm=0)
    with pytest.raises(ValueError):
        RateLimiter(tpm=-5)


# -- AdaptiveConcurrency -----------------------------------------------------------


def test_halves_once_per_burst_and_recovers() -> None:
    clock = FakeClock()
    ac = AdaptiveConcurrency(16, min_concurrency=2, clock=clock)
    assert ac.limit == 16
    for _ in range(10):  # ten 429s from requests that were all in flight together
        ac.on_rate_limited()
    assert ac.limit == 8
    clock.now += 0.5
    ac.on_rate_limited()
    assert ac.limit == 8  # still inside the cooldown
    clock.now += 0.6
    ac.on_rate_limited()
    assert ac.limit == 4
    # Additive increase: +1 after `limit` successes.
    for _ in range(3):
        ac.on_success()
    assert ac.limit == 4
    ac.on_success()
    assert ac.limit == 5
    for _ in range(5):
        ac.on_success()
    assert ac.limit == 6
    for _ in range(1000):
        ac.on_success()
    assert ac.limit == 16  # capped at max


def test_limit_never_below_min() -> None:
    clock = FakeClock()
    ac = AdaptiveConcurrency(10, min_concurrency=3, clock=clock)
    for _ in range(10):
        ac.on_rate_limited()
        clock.now += 2.0
    assert ac.limit == 3
    one = AdaptiveConcurrency(1)
    one.on_rate_limited()
    assert one.limit == 1


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError):
        AdaptiveConcurrency(0)
    with pytest.raises(ValueError):
        AdaptiveConcurrency(2, min_concurrency=3)


def test_concurrency_never_exceeds_limit() -> None:
    ac = AdaptiveConcurrency(5)
    active = 0
    peak = 0

    async def work(i: int) -> None:
        nonlocal active, peak
        async with ac:
            active += 1
            peak = max(peak, active)
            assert active <= ac.limit
            await asyncio.sleep(0.001 * (i % 3))
            active -= 1
            ac.on_success()

    async def main() -> None:
        await asyncio.gather(*(work(i) for i in range(200)))

    asyncio.run(main())
    assert peak == 5
    assert ac.in_flight == 0


def test_lowered_limit_lets_in_flight_finish_and_gates_new_ones() -> None:
    ac = AdaptiveConcurrency(8)
    gate = asyncio.Event
    active = 0
    peak_after_cut = 0
    finished_early = 0

    async def main() -> None:
        nonlocal active, peak_after_cut, finished_early
        release = gate()

        async def early() -> None:
            nonlocal finished_early
            async with ac:
                await release.wait()
                finished_early += 1

        async def late() -> None:
            nonlocal active, peak_after_cut
            async with ac:
                active += 1
                peak_after_cut = max(peak_after_cut, active)
                await asyncio.sleep(0.005)
                active -= 1

        holders = [asyncio.create_task(early()) for _ in range(8)]
        await asyncio.sleep(0.01)
        assert ac.in_flight == 8
        waiters = [asyncio.create_task(late()) for _ in range(20)]
        await asyncio.sleep(0.01)
        assert ac.waiting == 20

        ac.on_rate_limited()
        assert ac.limit == 4
        assert ac.in_flight == 8  # nobody is interrupted
        release.set()
        await asyncio.gather(*holders, *waiters)

    asyncio.run(main())
    assert finished_early == 8
    assert peak_after_cut == 4
    assert ac.in_flight == 0


def test_raised_limit_wakes_waiters() -> None:
    clock = FakeClock()
    ac = AdaptiveConcurrency(4, clock=clock)
    ac.on_rate_limited()
    ac.on_rate_limited()
    assert ac.limit == 2

    async def main() -> None:
        await ac.acquire()
        await ac.acquire()
        third = asyncio.create_task(ac.acquire())
        await asyncio.sleep(0)
        assert not third.done()
        ac.on_success()
        ac.on_success()  # limit 2 -> 3 frees a slot without any release
        await asyncio.wait_for(third, 1.0)
        assert ac.in_flight == 3
        for _ in range(3):
            ac.release()

    asyncio.run(main())
    assert ac.limit == 3


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    ac = AdaptiveConcurrency(1)

    async def main() -> None:
        await ac.acquire()
        waiter = asyncio.create_task(ac.acquire())
        await asyncio.sleep(0)
        assert ac.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert ac.waiting == 0

        # Cancelled just after being handed the slot: the slot passes on.
        waiter = asyncio.create_task(ac.acquire())
        await asyncio.sleep(0)
        ac.release()  # hands the slot to `waiter`
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert ac.in_flight == 0
        await asyncio.wait_for(ac.acquire(), 1.0)
        ac.release()

    asyncio.run(main())
    assert ac.in_flight == 0


def test_release_without_acquire() -> None:
    with pytest.raises(RuntimeError):
        AdaptiveConcurrency(2).release()

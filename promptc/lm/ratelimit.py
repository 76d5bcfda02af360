"""Client-side rate limiting and adaptive concurrency for asyncio LM clients.

`RateLimiter` keeps requests and tokens under per-minute quotas with two token
buckets. `AdaptiveConcurrency` caps requests in flight and moves the cap with AIMD:
halve on a 429, add one after a full window of successes.

Both are meant for one event loop (they are not thread-safe) and cost next to
nothing when nothing is being throttled: the fast paths never suspend.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType


class _Bucket:
    """A token bucket that may go into debt.

    Capacity is one second's worth of the per-minute rate (at least one unit). That
    absorbs the jitter of a busy event loop without front-loading a whole minute's
    quota, which providers that enforce at sub-minute granularity would reject.

    A cost larger than the capacity waits for a full bucket and then drives the level
    negative; later callers pay the debt back. So an oversized request goes through
    eventually and the long-run rate still holds.
    """

    __slots__ = ("rate", "capacity", "level", "stamp")

    def __init__(self, per_minute: int, now: float) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate limit must be positive, got {per_minute}")
        self.rate = per_minute / 60.0  # units per second
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def delay_for(self, cost: float) -> float:
        """Seconds until the level reaches what `cost` needs (capped at capacity)."""
        need = min(cost, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; None means unlimited.

    Callers reserve capacity up front and then sleep until their slot comes, so
    waiters are served in arrival order with no lock and no polling. A caller
    cancelled while waiting gives its reservation back.
    """

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        now = clock()
        self._requests = _Bucket(rpm, now) if rpm is not None else None
        self._tokens = _Bucket(tpm, now) if tpm is not None else None
        self.unlimited = self._requests is None and self._tokens is None

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one more request of `tokens` tokens fits both quotas."""
        if self.unlimited:
            return
        delay = self.reserve(tokens)
        if delay <= 0:
            return
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self._refund(tokens)
            raise

    def reserve(self, tokens: int = 0) -> float:
        """Take the capacity now and return how many seconds to wait before sending.

        For callers that want to schedule the wait themselves; `acquire` is this
        plus the sleep.
        """
        if self.unlimited:
            return 0.0
        now = self._clock()
        delay = 0.0
        req, tok = self._requests, self._tokens
        if req is not None:
            req.refill(now)
            delay = req.delay_for(1)
        if tok is not None and tokens > 0:
            tok.refill(now)
            delay = max(delay, tok.delay_for(tokens))
        # Debit now, at the current stamp: the bucket keeps refilling while we sleep,
        # so by `now + delay` it is back where the caller needed it, minus the cost.
        if req is not None:
            req.level -= 1
        if tok is not None and tokens > 0:
            tok.level -= tokens
        return delay

    def _refund(self, tokens: int) -> None:
        if self._requests is not None:
            self._requests.level = min(self._requests.capacity, self._requests.level + 1)
        if self._tokens is not None and tokens > 0:
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + tokens)

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm})"


class AdaptiveConcurrency:
    """A concurrency limiter whose limit follows AIMD.

    `on_rate_limited()` halves the limit (not below `min_concurrency`), at most once
    per `cooldown` seconds so one burst of 429s from requests already in flight
    counts as one signal. `on_success()` adds one after `limit` successes in a row
    (up to `max_concurrency`). Requests already in flight above a lowered limit
    finish normally; new ones wait. Waiters are served first come, first served.

    Use `async with limiter:` or `await acquire()` / `release()`.
    """

    def __init__(
        self,
        max_concurrency: int,
        min_concurrency: int = 1,
        *,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_concurrency < 1:
            raise ValueError(f"min_concurrency must be at least 1, got {min_concurrency}")
        if max_concurrency < min_concurrency:
            raise ValueError(
                f"max_concurrency ({max_concurrency}) is below min_concurrency ({min_concurrency})"
            )
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.cooldown = cooldown
        self._clock = clock
        self._limit = max_concurrency
        self._in_flight = 0
        self._successes = 0
        self._last_decrease: float | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        """The current cap on requests in flight."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Requests holding a slot right now (may exceed `limit` just after a cut)."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a slot. Pair every successful call with one `release()`."""
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The slot was handed to us just as we were cancelled: pass it on.
                self.release()
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise
        # The releaser counted us into in_flight when it handed the slot over, so a
        # task that arrives meanwhile cannot barge ahead of us.

    def release(self) -> None:
        """Give a slot back and wake the next waiter if the limit allows."""
        if self._in_flight <= 0:
            raise RuntimeError("release() called more times than acquire()")
        self._in_flight -= 1
        self._wake()

    def on_success(self) -> None:
        """Record a success; after `limit` of them in a row, raise the limit by one."""
        if self._limit >= self.max_concurrency:
            return
        self._successes += 1
        if self._successes >= self._limit:
            self._successes = 0
            self._limit += 1
            self._wake()

    def on_rate_limited(self) -> None:
        """Record a 429: halve the limit, unless it was already cut within `cooldown`."""
        now = self._clock()
        if self._last_decrease is not None and now - self._last_decrease < self.cooldown:
            return
        self._last_decrease = now
        self._successes = 0
        self._limit = max(self.min_concurrency, self._limit // 2)

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            fut = self._waiters.popleft()
            if fut.done():  # cancelled while queued
                continue
            self._in_flight += 1
            fut.set_result(None)

    async def __aenter__(self) -> AdaptiveConcurrency:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"AdaptiveConcurrency(limit={self._limit}, in_flight={self._in_flight}, "
            f"min={self.min_concurrency}, max={self.max_concurrency})"
        )

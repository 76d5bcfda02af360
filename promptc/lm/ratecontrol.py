"""Learning an endpoint's rate limit from its replies, for every request of one LM at once.

A provider enforcing N requests per minute answers 429 to whatever goes over, with
`Retry-After` / `retry-after-ms` and `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
headers (OpenAI's names; Azure, Groq, Together, vLLM behind LiteLLM and others send the
same). If each row retried on its own budget, 64 rows in flight would keep hammering
the limit and burn their retries in seconds. `RateGovernor` instead treats a 429 as a
signal about the *endpoint*:

- a 429 that says the quota is spent (remaining 0, or no rate headers at all) pauses
  every sender until the server's `Retry-After` (or the reset time, or a shared
  backoff), and from then on lets requests out evenly at a learned pace: seeded from
  `x-ratelimit-limit-requests` (per minute) when the server sends it, else from the
  success rate seen so far; a further 429 at that pace lowers it, successes raise it
  back slowly (never above the announced limit);
- a 429 whose headers show quota left (a concurrency limit, say) lowers the adaptive
  concurrency instead and makes only that row wait.

Rate-limited attempts are not the row's failures: the client does not charge them to
the row's retry budget. What ends a hopeless run is `patience`: after that many seconds
of nothing but 429s, the next request raises `RateLimitStalled`, which stops the batch.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from promptc.errors import RateLimitStalled
from promptc.lm.ratelimit import AdaptiveConcurrency

MAX_PAUSE = 60.0  # one bad header must not stall a run for an hour: wait, then ask again
MIN_PACE = 1 / 60  # requests per second: one a minute, the slowest a learned pace goes
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(raw: str | None) -> float | None:
    """Seconds in a reset header: "1s", "6m0s", "120ms", "1.5", or a Unix time."""
    if raw is None:
        return None
    text = raw.strip().lower()
    try:
        value = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
        return sum(float(n) * scale[u] for n, u in parts)
    if value > 1e9:  # an absolute Unix time, as some gateways send
        return max(0.0, value - time.time())
    return max(0.0, value)


def _int(raw: str | None) -> int | None:
    try:
        return int(float(raw)) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class RateHeaders:
    """What one reply says about the endpoint's limits (None: not said)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None
    retry_after: float | None = None

    @classmethod
    def read(cls, headers: Mapping[str, str] | None) -> RateHeaders:
        if not headers:
            return cls()
        get = headers.get
        retry_ms = parse_duration(get("retry-after-ms"))
        return cls(
            limit_requests=_int(get("x-ratelimit-limit-requests")),
            remaining_requests=_int(get("x-ratelimit-remaining-requests")),
            reset_requests=parse_duration(get("x-ratelimit-reset-requests")),
            remaining_tokens=_int(get("x-ratelimit-remaining-tokens")),
            reset_tokens=parse_duration(get("x-ratelimit-reset-tokens")),
            # An HTTP-date Retry-After parses to None: the shared backoff applies.
            retry_after=retry_ms / 1000 if retry_ms is not None else parse_duration(get("retry-after")),
        )

    @property
    def quota_left(self) -> bool:
        """The headers show requests and tokens left: this 429 was not the rate quota."""
        return (self.remaining_requests or 0) > 0 and (self.remaining_tokens is None or self.remaining_tokens > 0)

    @property
    def quota_wait(self) -> float | None:
        """Seconds until the spent quota comes back, as the server put it."""
        if self.retry_after is not None:
            return self.retry_after
        if self.remaining_requests == 0 and self.reset_requests is not None:
            return self.reset_requests
        if self.remaining_tokens == 0 and self.reset_tokens is not None:
            return self.reset_tokens
        return None


class RateGovernor:
    """The shared pause and pace of one LM's requests on one event loop (not thread-safe).

    `await gate()` before each request (it returns the send time to hand back), then
    `on_success(headers)` or `await on_rate_limited(headers, sent_at)`.
    """

    _HEADROOM = 0.95  # of the announced limit
    _COOLDOWN = 1.0  # seconds between two cuts of the pace

    def __init__(self, concurrency: AdaptiveConcurrency | None = None, *, patience: float = 300.0,
                 where: str = "the endpoint", clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency, self.patience, self.where = concurrency, patience, where
        self._clock = clock
        self.pace: float | None = None  # learned requests per second; None: not pacing
        self.ceiling: float | None = None  # the announced limit, per second
        self.rate_limited = 0  # 429s seen (for reports and tests)
        self._pause_until = 0.0
        self._next_slot = 0.0
        self._last_cut = -math.inf
        self._limited_since: float | None = None  # first 429 since the last success
        self._successes: deque[list[float]] = deque()  # [bin start, successes]
        self._peak = 0.0  # best success rate seen over a window
        self._started = clock()

    async def gate(self) -> float:
        """Wait out any pause and this request's place in the pace; the send time."""
        while True:
            now = self._clock()
            self._check_stalled(now)
            if now < self._pause_until:
                await asyncio.sleep(self._pause_until - now)
                continue
            if self.pace is None:
                return now
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.pace
            if slot > now:
                await asyncio.sleep(slot - now)
                if self._clock() < self._pause_until:
                    continue  # a 429 paused everyone while we slept: queue again after it
            return self._clock()

    def on_success(self, headers: Mapping[str, str] | None = None) -> None:
        """A reply came back: the endpoint is making progress; probe a little faster."""
        now = self._clock()
        self._limited_since = None
        self._record_success(now)
        limit = _int(headers.get("x-ratelimit-limit-requests")) if headers else None
        if limit:
            self.ceiling = limit / 60.0
        if self.pace is not None:
            self.pace *= 1.01
            if self.ceiling is not None:
                self.pace = min(self.pace, self.ceiling * self._HEADROOM)

    async def on_rate_limited(self, headers: Mapping[str, str] | None, sent_at: float, tries: int = 1) -> None:
        """A 429 (the `tries`-th of this call): pause everyone and slow down, or narrow the concurrency."""
        now = self._clock()
        self.rate_limited += 1
        if self._limited_since is None:
            self._limited_since = now
        seen = RateHeaders.read(headers)
        if seen.limit_requests:
            self.ceiling = seen.limit_requests / 60.0
        wait = seen.quota_wait
        if seen.quota_left or wait is None:
            # Not the rate quota (too many in flight, most likely), or the server does not
            # say: fewer at once, and only this row waits, what it was told or a backoff.
            if self.concurrency is not None:
                self.concurrency.on_rate_limited()
            if wait is None:
                wait = min(0.1 * 2 ** min(tries - 1, 7), 10.0) * random.uniform(0.5, 1.5)
            await asyncio.sleep(min(wait, MAX_PAUSE))
            return
        if seen.limit_requests is None and seen.remaining_requests is None and self.concurrency is not None:
            self.concurrency.on_rate_limited()  # no headers: could be either limit
        self._pause(now + min(wait, MAX_PAUSE))
        # Pace only on the server's word that a quota is spent: a bare 429 may be a random
        # fault, and pacing on those would spiral down (each cut lowers the success rate
        # the next cut is measured from). Retry-After pauses and the concurrency cut do.
        said_spent = seen.remaining_requests == 0 or seen.remaining_tokens == 0
        if (said_spent or self.ceiling is not None) and sent_at >= self._last_cut:
            self._slow_down(now)  # sent at the current pace: the pace is too fast

    def _pause(self, until: float) -> None:
        self._pause_until = max(self._pause_until, until)
        self._next_slot = max(self._next_slot, self._pause_until)

    def _slow_down(self, now: float) -> None:
        if now - self._last_cut < self._COOLDOWN:
            return  # one burst of 429s is one signal
        if self.ceiling is not None:
            # Just under the announced limit, so the server's bucket keeps some headroom
            # against jitter; lower if 429s go on (it is not what is enforced: tokens, or
            # a per-day quota announced as the limit).
            self.pace = self.ceiling * self._HEADROOM if self.pace is None else self.pace * 0.8
        else:
            estimate = self._estimate(now)
            if estimate is None:
                return  # too little seen to guess a rate: the pause alone will do
            self.pace = estimate if self.pace is None else max(estimate, self.pace * 0.5)
        self.pace = max(self.pace, MIN_PACE)
        self._last_cut = now

    def _estimate(self, now: float) -> float | None:
        # What got through lately, floored at half the best window seen, so 429s that are
        # not about the rate (random faults) cannot talk the pace down to nothing.
        if now - self._started < 1.0 or sum(n for _, n in self._successes) < 5:
            return None
        return max(self._recent_rate(now), self._peak / 2)

    _BIN = 0.5  # seconds: successes are counted per bin, so the rate costs nothing per reply
    _BINS = 10  # the window of the recent rate: five seconds

    def _record_success(self, now: float) -> None:
        start = now - now % self._BIN
        bins = self._successes
        if bins and bins[-1][0] == start:
            bins[-1][1] += 1
            return
        if now - self._started >= 1.0:  # a bin closed; shorter spans overstate a burst
            self._peak = max(self._peak, self._recent_rate(now))
        bins.append([start, 1])
        while len(bins) > self._BINS:
            bins.popleft()

    def _recent_rate(self, now: float) -> float:
        span = min(self._BIN * self._BINS, max(now - self._started, 1.0))
        return sum(n for start, n in self._successes if start >= now - span) / span

    def _check_stalled(self, now: float) -> None:
        if self._limited_since is not None and now - self._limited_since > self.patience:
            raise RateLimitStalled(
                f"{self.where} answered only 429 (rate limited) for {now - self._limited_since:.0f} s "
                f"with no request getting through: stopping (finished rows are kept; rerun with --resume "
                f"later, or lower --concurrency / set --rpm)")

    def __repr__(self) -> str:
        pace = f"{self.pace * 60:.0f}/min" if self.pace is not None else "free"
        return f"RateGovernor(pace={pace}, rate_limited={self.rate_limited})"

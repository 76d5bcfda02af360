"""Server-side limits for the fake server: a requests-per-minute bucket and a cap on requests in flight.

Both answer 429 the way real providers do, so a client can be tested on how it learns
a limit rather than on a scripted fault:

- `RequestBucket` is a token bucket refilled continuously at `rpm / 60` per second and
  holding `burst` seconds of it (OpenAI enforces its per-minute quotas at sub-minute
  granularity, so a minute's quota is not one burst). Every reply carries
  `x-ratelimit-limit-requests` / `-remaining-requests` / `-reset-requests` (like "1s",
  "250ms", "6m0s"); a 429 adds `retry-after-ms` and `Retry-After` (whole seconds,
  rounded up), the time until one request fits again.
- a max-in-flight cap answers 429 at once to a request that arrives while `max_inflight`
  are being served, with the bucket's headers (quota left) and no `Retry-After`, as an
  overloaded gateway does.

Both live on the server's event loop, so they need no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: "120ms", "1s", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.3g}s"


class RequestBucket:
    """Requests per minute, enforced continuously, with OpenAI-style headers."""

    def __init__(self, rpm: int, *, burst: float = 1.0, headers: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rpm <= 0:
            raise ValueError(f"rpm must be positive, got {rpm}")
        self.rpm, self.headers = rpm, headers
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate * burst)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request if it fits: (allowed, headers to send with the reply)."""
        self._refill()
        allowed = self.level >= 1.0
        if allowed:
            self.level -= 1.0
        headers = self.state_headers()
        if not allowed:
            wait = (1.0 - self.level) / self.rate
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return allowed, headers

    def state_headers(self) -> dict[str, str]:
        """The x-ratelimit-* headers for the bucket as it is now (empty with `headers=False`)."""
        if not self.headers:
            return {}
        self._refill()
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(int(self.level)),
            "x-ratelimit-reset-requests": format_duration((self.capacity - self.level) / self.rate),
        }

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

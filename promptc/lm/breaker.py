"""A dead endpoint fails the job in seconds, naming the real cause and the URL.

Without this, a closed port or an unknown host costs every row its full retry budget
(1,000 rows took 35 minutes), and each row reports "Request timed out": the aiohttp
transport of the openai SDK maps every connection error to a timeout. The real cause
is further down the exception chain (`__cause__` / `__context__`): the OS or aiohttp
error. `transport_cause` digs it out; `CircuitBreaker` counts the failures that mean
"cannot connect at all" for one client (all rows share it).

The breaker opens, and every later call of that client fails at once with one
`LMUnreachable` (fatal for the batch: exit 3, finished rows kept for `--resume`), when
`threshold` connection failures come in a row and either no call ever succeeded (a
wrong URL or a server that is not up) or the failures have gone on for `window`
seconds with no success (a server that died mid-run). While calls still succeed, a
stray connection error stays a row-level retry.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from promptc.errors import LMUnreachable

THRESHOLD = 3  # connection failures in a row
WINDOW = 20.0  # seconds of nothing but connection failures, once the endpoint has answered


@dataclass(frozen=True)
class Cause:
    """What really went wrong under a transport error, in words."""

    text: str  # e.g. "connection refused", "name not resolved: example.invalid"
    connect: bool  # no connection could be made (as opposed to one dropped or slow)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connector_error() -> tuple[type[BaseException], ...]:
    try:
        from aiohttp import ClientConnectorError
    except ImportError:  # another transport: the OS errors below still say enough
        return ()
    return (ClientConnectorError,)


def transport_cause(exc: BaseException) -> Cause | None:
    """The OS/aiohttp error under `exc`, named; None when it is not a transport failure."""
    chain = list(_chain(exc))
    host = next((h for e in chain if isinstance(h := _host(e), str)), None)
    for error in chain:
        if isinstance(error, socket.gaierror):
            return Cause(f"name not resolved: {host}" if host else "name not resolved", True)
        if isinstance(error, ConnectionRefusedError):
            return Cause("connection refused", True)
        if isinstance(error, ssl.CertificateError):
            # aiohttp's subclass lacks the attributes and holds the ssl module's error.
            inner = getattr(error, "certificate_error", error)
            return Cause(f"TLS certificate rejected: {getattr(inner, 'verify_message', None) or inner}",
                         True)
        if isinstance(error, ssl.SSLError):
            inner = getattr(error, "os_error", error)  # aiohttp's subclass holds the ssl error
            reason = getattr(inner, "reason", None)  # e.g. WRONG_VERSION_NUMBER: https to http
            return Cause(f"TLS handshake failed: {reason.lower().replace('_', ' ') if reason else inner}",
                         True)
        if isinstance(error, ConnectionResetError):
            return Cause("connection reset by the server", False)
    connector = _connector_error()
    for error in chain:
        if connector and isinstance(error, connector):  # unreachable network or host, ...
            reason = getattr(getattr(error, "os_error", None), "strerror", None) or str(error)
            return Cause(f"cannot connect: {reason}", True)
    return None


def _host(error: BaseException) -> object:
    # aiohttp's connector errors carry `host`; the openai SDK's carry the `request`.
    url = getattr(getattr(error, "request", None), "url", None)
    return getattr(error, "host", None) or getattr(url, "host", None)


class CircuitBreaker:
    """Connection failures of one client, and the `LMUnreachable` they add up to."""

    def __init__(self, url: str, *, setting: str = "--base-url, `lm.base_url`",
                 threshold: int = THRESHOLD, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        self.url, self.setting = url, setting  # `setting`: where the user sets the URL
        self.threshold, self.window, self.clock = threshold, window, clock
        self.answered = False  # has any call ever got a reply?
        self.failures = 0  # connection failures since the last reply
        self.failing_since = 0.0
        self.opened: str | None = None  # the message every call fails with once open

    def check(self) -> None:
        """Raise `LMUnreachable` if the breaker is open (before a request is sent)."""
        if self.opened is not None:
            raise LMUnreachable(self.opened, retryable=False)

    def success(self) -> None:
        """The endpoint answered (any HTTP status counts: it is reachable)."""
        self.answered, self.failures = True, 0

    def failure(self, exc: BaseException) -> None:
        """Count `exc`; raise `LMUnreachable` from it when this failure opens the breaker."""
        cause = transport_cause(exc)
        if cause is None or not cause.connect:
            if _has_status(exc):
                self.success()
            return
        now = self.clock()
        if self.failures == 0:
            self.failing_since = now
        self.failures += 1
        if self.opened is None and self.failures >= self.threshold and (
                not self.answered or now - self.failing_since >= self.window):
            self.opened = self._message(cause)
        if self.opened is not None:
            raise LMUnreachable(self.opened, retryable=False) from exc

    def _message(self, cause: Cause) -> str:
        if not self.answered:
            history = f"{self.failures} attempts in a row, no reply ever"
        else:
            history = (f"{self.failures} attempts in a row over "
                       f"{self.clock() - self.failing_since:.0f}s, no reply since")
        return (f"cannot reach {self.url}: {cause.text} ({history}); is the server up, "
                f"and is the URL ({self.setting}) right?")


def _has_status(exc: BaseException) -> bool:
    # An HTTP error status (429, 500, ...) came from a live server.
    return isinstance(getattr(exc, "status_code", None), int)

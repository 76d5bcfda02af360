"""Faults the fake server can inject, and the OpenAI-style error bodies it sends.

What the real `openai` client (3.x, httpx2 or aiohttp transport, `max_retries=0`)
raises for each fault, as checked by tests/test_fake_server.py:

    rate_limit        openai.RateLimitError (429; `Retry-After` and `retry-after-ms` headers)
    server_error      openai.InternalServerError (500, 502, 503, ...)
    reset             openai.APIConnectionError; with the aiohttp transport it is the
                      subclass openai.APITimeoutError, because the vendored adapter maps
                      every aiohttp.ClientConnectionError to httpx2.ConnectTimeout (a closed
                      port or an unknown host too; promptc.lm.breaker.transport_cause
                      finds the real cause down the exception chain)
    hang              openai.APITimeoutError once the client's timeout is shorter
    truncated         openai.APIConnectionError (full Content-Length declared, body cut);
                      with `full_length=False` it is a bare json.JSONDecodeError (a
                      ValueError, *not* an openai.OpenAIError) from parsing the reply
    status(400)       openai.BadRequestError
    status(401)       openai.AuthenticationError
    status(403)       openai.PermissionDeniedError
    status(404)       openai.NotFoundError
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RATE_LIMIT = "rate_limit"
SERVER_ERROR = "server_error"
RESET = "reset"
HANG = "hang"
TRUNCATED = "truncated"
STATUS = "status"

#: Kinds that `FakeOpenAIServer.fault_kinds` accepts by name.
FAULT_KINDS: tuple[str, ...] = (RATE_LIMIT, SERVER_ERROR, RESET, HANG, TRUNCATED)

# Transient faults a well-behaved client should retry through. `hang` is left out of
# the random default because it makes every hit cost a full client timeout.
DEFAULT_RANDOM_KINDS: tuple[str, ...] = (RATE_LIMIT, SERVER_ERROR, RESET, TRUNCATED)

# (type, code) pairs as the real API sends them, so error-mapping code sees real shapes.
_ERROR_SHAPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Invalid request (fake server).",
    401: "Incorrect API key provided (fake server).",
    403: "Permission denied (fake server).",
    404: "The model does not exist or you do not have access to it (fake server).",
    429: "Rate limit reached for requests (fake server).",
    500: "The server had an error while processing your request (fake server).",
    502: "Bad gateway (fake server).",
    503: "The engine is currently overloaded, please try again later (fake server).",
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The JSON body OpenAI sends with an error status."""
    err_type, code = _ERROR_SHAPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    text = message or _DEFAULT_MESSAGES.get(status, f"HTTP {status} (fake server).")
    return {"error": {"message": text, "type": err_type, "param": None, "code": code}}


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build it with the class methods, not the constructor."""

    kind: str
    http_status: int = 0  # not `status`: that name is the Fault.status() constructor
    message: str | None = None
    retry_after: float | None = None  # rate_limit: seconds, may be fractional
    seconds: float | None = None  # hang: None means the server's `hang_seconds`
    full_length: bool = True  # truncated: declare the full Content-Length, then cut

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0.05, message: str | None = None) -> Fault:
        """429 with `Retry-After` (seconds) and `retry-after-ms` headers; None sends neither."""
        return cls(RATE_LIMIT, http_status=429, message=message, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> Fault:
        """A 5xx error with an OpenAI-style body."""
        if not 500 <= status <= 599:
            raise ValueError(f"server_error needs a 5xx status, got {status}")
        return cls(SERVER_ERROR, http_status=status, message=message)

    @classmethod
    def reset(cls) -> Fault:
        """Drop the TCP connection (RST) without sending any response."""
        return cls(RESET)

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Sleep `seconds` (default: the server's `hang_seconds`) and then answer normally."""
        return cls(HANG, seconds=seconds)

    @classmethod
    def truncated(cls, full_length: bool = True) -> Fault:
        """A 200 whose JSON body is cut in half.

        `full_length=True` declares the full Content-Length and closes the connection
        early: the transport notices and the client raises APIConnectionError, which it
        retries like any dropped connection. `full_length=False` declares the length of
        the half body, so HTTP is well formed and the client fails parsing the JSON.
        """
        return cls(TRUNCATED, http_status=200, full_length=full_length)

    @classmethod
    def status(cls, status: int, message: str | None = None) -> Fault:
        """Any error status (400, 401, 403, 404, ...) with an OpenAI-style body."""
        if not 400 <= status <= 599:
            raise ValueError(f"status needs a 4xx or 5xx code, got {status}")
        return cls(STATUS, http_status=status, message=message)

    @classmethod
    def from_kind(cls, kind: str) -> Fault:
        """The default fault of a named kind (one of FAULT_KINDS)."""
        makers = {
            RATE_LIMIT: cls.rate_limit,
            SERVER_ERROR: cls.server_error,
            RESET: cls.reset,
            HANG: cls.hang,
            TRUNCATED: cls.truncated,
        }
        try:
            return makers[kind]()
        except KeyError:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            ) from None

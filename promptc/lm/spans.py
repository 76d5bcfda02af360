"""Spans around rows, program steps and LM calls, for whoever listens.

promptc does not depend on a tracing library: the engine, the program and the LM stack
open spans here, and they cost one context-variable lookup when nobody listens. A
listener (`promptc.telemetry` turns spans into OpenTelemetry spans) is installed for a
block of code with `listening(...)`; it is a context variable, so each job, thread and
asyncio task sees the listener that was active where it started, and rows running
concurrently nest their own spans correctly.

LM-call spans carry the OpenTelemetry GenAI semantic-convention attributes (operation,
system, request and response model, token usage, server address); prompts and
completions are handed to the listener separately, which records them only when asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol
from urllib.parse import urlparse

from promptc.lm.base import LM, LMRequest, LMResponse


class Span(Protocol):
    def set(self, attributes: Mapping[str, Any]) -> None: ...

    def content(self, prompt: str, completion: str) -> None: ...


class SpanListener(Protocol):
    def start(self, name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Span]: ...


class _NoSpan:
    def set(self, attributes: Mapping[str, Any]) -> None:
        pass

    def content(self, prompt: str, completion: str) -> None:
        pass


_NO_SPAN = _NoSpan()
_listener: ContextVar[SpanListener | None] = ContextVar("promptc_span_listener", default=None)


@contextmanager
def listening(listener: SpanListener | None) -> Iterator[None]:
    """Send the spans opened inside this block to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span named `name` if anyone listens; a no-op otherwise."""
    listener = _listener.get()
    if listener is None:
        yield _NO_SPAN
        return
    with listener.start(name, attributes or {}) as opened:
        yield opened


class TracedLM:
    """An LM layer: one `chat MODEL` span per call (cache hits too, marked `promptc.cached`)."""

    def __init__(self, inner: LM, *, server: str | None = None, system: str = "openai"):
        self.inner, self.model, self.system = inner, inner.model, system
        self.server = urlparse(server).hostname if server else None

    async def complete(self, request: LMRequest) -> LMResponse:
        if _listener.get() is None:
            return await self.inner.complete(request)
        model = request.model or self.model
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.system": self.system,
                                      "gen_ai.request.model": model}
        if self.server:
            attributes["server.address"] = self.server
        if request.temperature is not None:
            attributes["gen_ai.request.temperature"] = request.temperature
        with span(f"chat {model}", attributes) as opened:
            response = await self.inner.complete(request)
            usage = response.usage
            opened.set({"gen_ai.response.model": response.model or model,
                        "gen_ai.usage.input_tokens": usage.prompt_tokens,
                        "gen_ai.usage.output_tokens": usage.completion_tokens,
                        "gen_ai.response.finish_reasons": [response.finish_reason or "unknown"],
                        "promptc.cached": response.cached, "promptc.requests": usage.requests})
            opened.content(json.dumps([m.model_dump() for m in request.messages], ensure_ascii=False),
                           response.text)
        return response

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> object:  # price, max_tokens, cache... of the layers below
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"TracedLM({self.inner!r})"

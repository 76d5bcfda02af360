"""The OpenAI-compatible LM: the `openai` async client on the aiohttp transport.

Works against OpenAI, vLLM, Ollama, llama.cpp server, or promptc.testing's fake server.
The SDK's own retries are off (`max_retries=0`): tenacity owns retrying, so retries
never stack. 429s are the endpoint's, not the row's: a shared `RateGovernor` pauses
and paces every request of this LM from them (and narrows the adaptive concurrency),
and they do not use up a row's retries. An optional client-side limiter keeps
requests and tokens per minute under the configured budget. Every request sent,
failed or not, is counted in usage.

The client only talks to its endpoint: caching, offline-only replay and budgets are
layers around it (`promptc.lm.layers`, `promptc.lm.budget`), stacked by the runtime.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

from promptc.errors import LMAuthError, LMConfigError, LMError
from promptc.lm.base import LMRequest, LMResponse, Price, Usage
from promptc.lm.breaker import CircuitBreaker, transport_cause
from promptc.lm.ratecontrol import RateGovernor
from promptc.lm.ratelimit import AdaptiveConcurrency, RateLimiter
from promptc.lm.redact import redact
from promptc.lm.retry import is_retryable, status_of
from promptc.retry import RetriesExhausted, with_retries


@dataclass
class _LoopState:
    """Things bound to one event loop (the aiohttp session, asyncio primitives)."""

    loop: asyncio.AbstractEventLoop
    client: Any
    concurrency: AdaptiveConcurrency
    limiter: RateLimiter
    breaker: CircuitBreaker
    governor: RateGovernor


class OpenAICompatibleLM:
    """An LM reached over the OpenAI chat-completions API."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", temperature: float | None = 0.0,
                 max_tokens: int | None = None, timeout: float = 60.0, max_retries: int = 6,
                 concurrency: int = 16, rpm: int | None = None, tpm: int | None = None,
                 price: Price | None = None, rate_limit_patience: float = 300.0):
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.api_key_env = api_key_env
        self._api_key = api_key
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout, self.max_retries = timeout, max_retries
        self.max_concurrency, self.rpm, self.tpm = concurrency, rpm, tpm
        self.price = price
        self.rate_limit_patience = rate_limit_patience  # seconds of nothing but 429s before giving up
        self._state: _LoopState | None = None

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatibleLM(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def cache_namespace(self) -> str:
        return self.base_url or "https://api.openai.com/v1"

    def resolve(self, request: LMRequest) -> LMRequest:
        """Fill in this LM's sampling defaults: the request as it is sent and cached."""
        # model_construct: the fields are already validated, and this runs once per call.
        return LMRequest.model_construct(
            model=self.model, messages=request.messages,
            temperature=self.temperature if request.temperature is None else request.temperature,
            max_tokens=self.max_tokens if request.max_tokens is None else request.max_tokens,
            response_format=request.response_format, sample_index=request.sample_index,
        )

    async def complete(self, request: LMRequest) -> LMResponse:
        return await self._send(self.resolve(request))

    async def aclose(self) -> None:
        state, self._state = self._state, None
        if state is not None and state.loop is asyncio.get_running_loop():
            await state.client.close()

    # -- internals ----------------------------------------------------------------
    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            import openai

            concurrency = AdaptiveConcurrency(self.max_concurrency)
            self._state = _LoopState(
                loop=loop,
                client=openai.AsyncOpenAI(
                    api_key=self._key(), base_url=self.base_url, timeout=self.timeout,
                    max_retries=0, http_client=openai.DefaultAioHttpClient(timeout=self.timeout)),
                concurrency=concurrency,
                limiter=RateLimiter(self.rpm, self.tpm),
                breaker=CircuitBreaker(self.cache_namespace),
                governor=RateGovernor(concurrency, patience=self.rate_limit_patience,
                                      where=self.base_url or "the OpenAI API"),
            )
        return self._state

    def _key(self) -> str:
        key = self._api_key or os.environ.get(self.api_key_env)
        if key:
            return key
        if self.base_url:
            return "not-needed"  # local servers (vLLM, Ollama, llama.cpp) usually take any key
        raise LMAuthError(f"no API key: set the {self.api_key_env} environment variable "
                          "(or `lm.api_key_env` in the spec), or point `--base-url` at a local server")

    async def _send(self, request: LMRequest) -> LMResponse:
        import httpx2  # the openai SDK's transport: its Response carries the rate-limit headers

        state = self._loop_state()
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        tokens = request.approx_prompt_tokens() + (request.max_tokens or 256)

        sent = limited = 0
        started = state.loop.time()

        async def once() -> dict[str, Any]:
            nonlocal sent, limited
            await state.limiter.acquire(tokens)
            try:
                async with state.concurrency:
                    # Inside the slot: a row that queued for one before the first 429 must
                    # still wait out the pause and take its place in the learned pace.
                    sent_at = await state.governor.gate()
                    state.breaker.check()  # open: fail now, not after a full retry budget
                    sent += 1
                    try:
                        # `post` instead of `chat.completions.create`: the same client, transport,
                        # auth and error mapping, without the SDK's per-call TypedDict transform
                        # and model construction, which cost more CPU than all of promptc's own
                        # per-row work (see scripts/bench_run.py). The raw reply, for its headers.
                        reply = await state.client.post("/chat/completions", body=kwargs,
                                                        cast_to=httpx2.Response)
                    except Exception as exc:
                        state.breaker.failure(exc)
                        raise
            except Exception as exc:
                if status_of(exc) == 429:
                    limited += 1
                    headers = getattr(getattr(exc, "response", None), "headers", None)
                    await state.governor.on_rate_limited(headers, sent_at, limited)
                raise
            state.governor.on_success(reply.headers)
            state.concurrency.on_success()
            state.breaker.success()
            completion = json.loads(reply.text)
            _check_completion(completion)
            return completion

        def free(exc: BaseException) -> bool:
            # A rate limit is waited out by the governor, not charged to this row, until
            # the row itself has waited `rate_limit_patience` (a request too large for the
            # tokens-per-minute limit gets 429 for ever while other rows go through).
            return status_of(exc) == 429 and state.loop.time() - started < self.rate_limit_patience

        try:
            completion, _ = await with_retries(once, max_retries=self.max_retries, retryable=is_retryable,
                                               free=free)
        except RetriesExhausted as exc:
            error = self._error(exc.cause, sent)
            error.requests = sent
            raise error from exc.cause
        return self._response(completion, sent)

    def _response(self, completion: dict[str, Any], attempts: int) -> LMResponse:
        choice = completion["choices"][0]
        usage = Usage(requests=attempts, calls=1)
        reported = completion.get("usage") or {}
        usage.prompt_tokens = reported.get("prompt_tokens") or 0
        usage.completion_tokens = reported.get("completion_tokens") or 0
        if self.price is not None:
            usage.cost = self.price.cost(usage.prompt_tokens, usage.completion_tokens)
        message = choice.get("message") or {}
        return LMResponse(text=message.get("content") or "", usage=usage, model=completion.get("model"),
                          finish_reason=choice.get("finish_reason"))

    def _error(self, exc: Exception, attempts: int) -> LMError:
        if isinstance(exc, LMError):
            return exc
        status = status_of(exc)
        detail = redact(_detail(exc), self._api_key, os.environ.get(self.api_key_env))
        where = self.base_url or "the OpenAI API"
        if status in (401, 403):
            return LMAuthError(f"{where} refused the credentials (HTTP {status}): check the key in "
                               f"the {self.api_key_env} environment variable{detail}", status=status)
        if status == 404:
            return LMConfigError(f"{where} answered 404 for model '{self.model}': check --model and "
                                 f"--base-url (it usually ends in /v1){detail}", status=status)
        if status in (400, 422):
            return LMConfigError(f"{where} rejected the request (HTTP {status}){detail}", status=status)
        cause = transport_cause(exc)
        if cause is not None:  # the transport calls every connection error a timeout
            kind, detail = cause.text, ""
        else:
            kind = f"HTTP {status}" if status else type(exc).__name__
        return LMError(f"{where} failed after {attempts} attempt(s): {kind}{detail}", status=status,
                       attempts=attempts, retryable=True)


def _check_completion(completion: Any) -> None:
    # A 200 whose body isn't a chat completion (e.g. cut off) must be retried, not trusted.
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("the endpoint returned a body that is not a chat completion")


def _detail(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        msg = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if msg:
            return f": {str(msg)[:300]}"
    text = str(exc).strip()
    return f": {text[:300]}" if text and text != type(exc).__name__ else ""

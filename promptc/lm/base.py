"""The LM protocol: the smallest surface the core needs from a language model.

The core builds an `LMRequest` (chat messages plus sampling settings) and awaits
`LM.complete(request)`, getting an `LMResponse` with text and usage back. Anything
that implements that one coroutine is an LM: the OpenAI-compatible client, the
built-in offline LM, a cache wrapper, or a test double.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Message(BaseModel):
    """One chat message."""

    role: str
    content: str


class LMRequest(BaseModel):
    """A canonical chat-completion request.

    `sample_index` distinguishes the N samples of the same prompt at temperature > 0,
    so that each has its own cache entry. It is never sent to the endpoint.
    """

    model: str
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    sample_index: int = 0

    def cache_key(self, namespace: str = "") -> str:
        """A stable hash of everything that decides the reply (never the API key)."""
        payload = self.model_dump(mode="json")
        payload["namespace"] = namespace
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def approx_prompt_tokens(self) -> int:
        """A cheap token estimate (4 characters a token) for budgets and rate limits."""
        return sum(len(m.content) for m in self.messages) // 4 + 4 * len(self.messages)


class Usage(BaseModel):
    """Counters that add up across calls, rows and runs."""

    requests: int = 0  # HTTP requests sent, retries included
    calls: int = 0  # LM calls asked for by the program (one call may be several requests)
    cache_hits: int = 0
    parse_retries: int = 0
    constraint_retries: int = 0  # self-refinement calls after a failed assert/suggest
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, other: Usage) -> None:
        """Add `other` into this one, in place (spelled out: this runs several times a row)."""
        self.requests += other.requests
        self.calls += other.calls
        self.cache_hits += other.cache_hits
        self.parse_retries += other.parse_retries
        self.constraint_retries += other.constraint_retries
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost

    def __add__(self, other: Usage) -> Usage:
        total = self.model_copy()
        total.add(other)
        return total

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LMResponse(BaseModel):
    """A completion and what it cost."""

    text: str
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    model: str | None = None
    finish_reason: str | None = None


@runtime_checkable
class LM(Protocol):
    """Anything that can complete a chat request."""

    model: str

    async def complete(self, request: LMRequest) -> LMResponse:
        """Return the completion for `request`, or raise `promptc.errors.LMError`."""
        ...


class Price(BaseModel):
    """USD per million tokens."""

    model_config = {"extra": "forbid"}

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    # The Batch API's prices (`run --batch`); unset, half the live ones (OpenAI's discount).
    batch_input: float | None = Field(default=None, ge=0)
    batch_output: float | None = Field(default=None, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000

    def batch_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        per_input = self.input / 2 if self.batch_input is None else self.batch_input
        per_output = self.output / 2 if self.batch_output is None else self.batch_output
        return (prompt_tokens * per_input + completion_tokens * per_output) / 1_000_000

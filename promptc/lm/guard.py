"""The prompt size guard: a request over the limit is refused before it is sent or cached.

One huge data row (a 50 MB line) would otherwise go out as a multi-million-token prompt:
the endpoint rejects it after the upload, or worse, bills it. `PromptGuardLM` is the
outermost layer of every LM a spec builds (`promptc.spec.lms.build_runtime`), so the
check runs before the cache, the rate limiter and the client, with the same cheap
estimate the rate limits use (`LMRequest.approx_prompt_tokens`). The refusal is that
row's error (`PromptTooLarge`); the other rows run.
"""

from __future__ import annotations

from promptc.errors import PromptTooLarge
from promptc.lm.base import LM, LMRequest, LMResponse

DEFAULT_MAX_PROMPT_TOKENS = 100_000


class PromptGuardLM:
    """Refuses any request whose prompt is estimated above `max_prompt_tokens`."""

    def __init__(self, inner: LM, max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS):
        self.inner, self.max_prompt_tokens = inner, max_prompt_tokens
        self.model = inner.model

    async def complete(self, request: LMRequest) -> LMResponse:
        tokens = request.approx_prompt_tokens()
        if tokens > self.max_prompt_tokens:
            raise PromptTooLarge(f"the prompt is about {tokens:,} tokens, over the limit of "
                                 f"{self.max_prompt_tokens:,} (lm.max_prompt_tokens, --max-prompt-tokens); "
                                 "not sent")
        return await self.inner.complete(request)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __getattr__(self, name: str) -> object:  # price, max_tokens, cache... of the layers inside
        if name == "inner":  # not set yet (e.g. during copy): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"PromptGuardLM({self.inner!r}, max_prompt_tokens={self.max_prompt_tokens})"

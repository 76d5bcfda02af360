"""Modules: the LM-calling units of a program (`predict`, `chain_of_thought`).

A module owns a signature, its demos and its instructions (what compile tunes),
and knows how to turn one set of inputs into typed outputs through an adapter
and an LM, recording a TraceStep as it goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from promptc.core.adapter import ChatAdapter
from promptc.core.signature import FieldSpec, Signature
from promptc.core.trace import Trace, TraceStep
from promptc.errors import AssertionFailed, ParseError, UsageError
from promptc.lm.base import LM, LMRequest, Message, Usage

REASONING = FieldSpec(name="reasoning", desc="Think step by step in order to produce the outputs.")


@dataclass
class CallContext:
    """What a module needs to make a call: LMs by name, the adapter, the trace to append to."""

    lms: Mapping[str, LM]
    adapter: ChatAdapter = field(default_factory=ChatAdapter)
    trace: Trace = field(default_factory=Trace)
    sample_index: int = 0
    temperature: float | None = None  # None: the LM's own setting
    # Named non-LM resources a step may use: retrievers and tools (see promptc.core.tools).
    retrievers: Mapping[str, Any] = field(default_factory=dict)
    tools: Mapping[str, Any] = field(default_factory=dict)

    def retriever(self, name: str) -> Any:
        try:
            return self.retrievers[name]
        except KeyError:
            raise UsageError(f"no retriever named {name!r} is configured "
                             f"(have: {', '.join(self.retrievers) or 'none'})") from None

    def tool(self, name: str) -> Any:
        try:
            return self.tools[name]
        except KeyError:
            raise UsageError(f"no tool named {name!r} is configured (have: {', '.join(self.tools) or 'none'})") from None

    def lm(self, name: str | None) -> LM:
        key = name or "default"
        try:
            return self.lms[key]
        except KeyError:
            raise UsageError(f"no LM named {key!r} is configured (have: {', '.join(self.lms) or 'none'})") from None


class Predict:
    """Ask the LM for the signature's outputs given its inputs."""

    kind: ClassVar[str] = "predict"

    def __init__(self, signature: Signature | str, *, name: str | None = None,
                 demos: Sequence[Mapping[str, Any]] = (), lm: str | None = None,
                 json_mode: bool = False):
        if isinstance(signature, str):
            signature = Signature.parse(signature, name=name or "signature")
        self.signature = signature
        self.name = name or signature.name
        self.demos: list[dict[str, Any]] = [dict(d) for d in demos]
        self.lm = lm
        self.json_mode = json_mode
        self.constraints: Any = None  # a promptc.core.constraints.ConstraintSet (assert/suggest)

    async def __call__(self, **inputs: Any) -> Any:
        """Inside a `promptc.Module.forward()`: run with the current program run's LMs and trace."""
        from promptc.core.module_api import call_predictor

        return await call_predictor(self, inputs)

    @property
    def prompt_signature(self) -> Signature:
        """The signature as the LM sees it (chain-of-thought adds a reasoning output)."""
        return self.signature

    @property
    def optional_outputs(self) -> tuple[str, ...]:
        return ()

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Any]:
        """The messages this module would send for `inputs` (no LM call)."""
        adapter = adapter or ChatAdapter()
        return adapter.format(self.prompt_signature, inputs=inputs, demos=self.demos,
                              json_mode=self.json_mode)

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Run once; append a TraceStep to `ctx.trace`; return the typed outputs."""
        sig = self.prompt_signature
        lm = ctx.lm(self.lm)
        messages = self.render(inputs, ctx.adapter)
        response_format = ctx.adapter.response_format(sig) if self.json_mode else None
        record = TraceStep(step=self.name, module=self.kind, inputs=dict(inputs), messages=messages)
        ctx.trace.steps.append(record)
        request = LMRequest(model=lm.model, messages=messages, response_format=response_format,
                            sample_index=ctx.sample_index, temperature=ctx.temperature)
        try:
            response = await lm.complete(request)
            record.usage.add(response.usage)
            record.completion = response.text
            try:
                outputs = ctx.adapter.parse(sig, response.text, optional=self.optional_outputs)
            except ParseError as first:
                # One explicit, counted re-ask with the error fed back; never a hidden call.
                record.attempts = 2
                retry_messages = ctx.adapter.reask(messages, response.text, str(first), sig,
                                                   json_mode=self.json_mode)
                retry_request = request.model_copy(update={"messages": retry_messages})
                retry = await lm.complete(retry_request)
                record.usage.add(retry.usage)
                record.usage.add(Usage(parse_retries=1))
                record.completion = retry.text
                outputs = ctx.adapter.parse(sig, retry.text, optional=self.optional_outputs)
            if self.constraints is not None:
                outputs = await self._enforce(outputs, inputs, sig, lm, request, record, ctx)
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.outputs = outputs
        return outputs

    async def _enforce(self, outputs: dict[str, Any], inputs: Mapping[str, Any], sig: Signature, lm: LM,
                       request: LMRequest, record: TraceStep, ctx: CallContext) -> dict[str, Any]:
        """Assertions and suggestions: retry with the failures fed back, then fail or record."""
        rules = self.constraints
        messages = list(request.messages)
        violations = rules.check_all(outputs, inputs)
        for _ in range(rules.max_retries):
            if not violations:
                break
            note = rules.feedback(violations, outputs) + "\n\n" + ctx.adapter.output_request(
                sig, json_mode=self.json_mode)
            messages = [*messages, Message(role="assistant", content=record.completion or ""),
                        Message(role="user", content=note)]
            retry = await lm.complete(request.model_copy(update={"messages": messages}))
            record.usage.add(retry.usage)
            record.usage.add(Usage(constraint_retries=1))
            record.attempts += 1
            record.completion = retry.text
            try:
                outputs = ctx.adapter.parse(sig, retry.text, optional=self.optional_outputs)
            except ParseError:
                continue  # keep the last parseable outputs and their violations
            violations = rules.check_all(outputs, inputs)
        record.violations = [v.model_dump() for v in violations]
        hard = [v for v in violations if v.hard]
        if hard:
            raise AssertionFailed("; ".join(f"{v.message} ({v.detail})" for v in hard))
        return outputs


class ChainOfThought(Predict):
    """Predict with a `reasoning` output written before the real outputs."""

    kind: ClassVar[str] = "chain_of_thought"

    @property
    def prompt_signature(self) -> Signature:
        if self.signature.output("reasoning"):
            return self.signature
        return self.signature.prepend_output(REASONING)

    @property
    def optional_outputs(self) -> tuple[str, ...]:
        # A missing reasoning section should not sink an otherwise good answer.
        return ("reasoning",)


MODULES: dict[str, type[Predict]] = {"predict": Predict, "chain_of_thought": ChainOfThought}

"""The modules a step places in a program: `Predict`, the one tunable leaf, and
`ChainOfThought`, the smallest composite (a Predict whose signature starts with `reasoning`).

`SignatureModule` is what every step module shares: a signature (the fields the step reads
and the fields it `produces`), a name, and assert/suggest constraints handed to the
predictors that write its answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from promptc.core.adapter import ChatAdapter
from promptc.core.demo_select import DemoSelector
from promptc.core.module import CallContext, Module, assign_names, predictors_under
from promptc.core.signature import FieldSpec, Signature
from promptc.core.trace import TraceStep
from promptc.errors import AssertionFailed, LMError, ParseError
from promptc.lm.base import LM, LMRequest, Message, Usage

REASONING = FieldSpec(name="reasoning", desc="Think step by step in order to produce the outputs.")


def as_signature(signature: Signature | str, name: str | None) -> Signature:
    """A Signature from a Signature or its text form (`"question -> answer: float"`)."""
    if isinstance(signature, Signature):
        return signature
    return Signature.parse(signature, name=name or "signature")


class SignatureModule(Module):
    """A module with a fixed signature: what a step of a program graph holds."""

    kind: ClassVar[str] = "module"
    max_calls: int = 1  # LM calls of one acall at most, for estimates (parse re-asks aside)

    def __init__(self, signature: Signature | str, *, name: str | None = None, lm: str | None = None,
                 json_mode: bool = False):
        self.signature = as_signature(signature, name)
        self.name = name or self.signature.name
        self.lm = lm
        self.json_mode = json_mode
        self._constraints: Any = None

    @property
    def produces(self) -> Signature:
        """The signature with every output the step makes available (CoT adds `reasoning`)."""
        return self.signature

    @property
    def constraints(self) -> Any:
        """Assert/suggest rules (a promptc.core.constraints.ConstraintSet) on the step's answer."""
        return self._constraints

    @constraints.setter
    def constraints(self, rules: Any) -> None:
        self._constraints = rules
        for predictor in self.answer_predictors():
            if predictor is not self:
                predictor.constraints = rules

    def answer_predictors(self) -> list[Predict]:
        """The predictors whose replies are the step's answer (constraints check them)."""
        return []

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Message]:
        """The messages of this module's first LM call for `inputs` (none if it calls no LM)."""
        return []

    def shown_signature_of(self, predictor: Predict) -> Signature | None:
        """The signature one of its predictors' prompts show, when it is not the predictor's
        own (ReAct shows the tools); None otherwise."""
        return None

    def finish_init(self) -> None:
        """Name the sub-modules and predictors after this module (composites call it last)."""
        assign_names(self, self.name)


class Predict(SignatureModule):
    """Ask the LM for the signature's outputs given its inputs: one tunable prompt.

    Its prompt shows `demos` (fixed), then, when it holds a `selector`
    (promptc.core.demo_select.DemoSelector), the k pool demos nearest each call's inputs.
    """

    kind: ClassVar[str] = "predict"
    is_predictor: ClassVar[bool] = True

    def __init__(self, signature: Signature | str, *, name: str | None = None,
                 demos: Sequence[Mapping[str, Any]] = (), lm: str | None = None,
                 json_mode: bool = False, optional: Sequence[str] = (), selector: DemoSelector | None = None):
        super().__init__(signature, name=name, lm=lm, json_mode=json_mode)
        self.demos: list[dict[str, Any]] = [dict(d) for d in demos]
        self.selector = selector  # per-input demos from a pool, after the fixed ones
        self.optional_outputs = tuple(optional)  # outputs whose absence is not a parse failure

    def answer_predictors(self) -> list[Predict]:
        return [self]

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None, *,
               shown: Signature | None = None, selected: Sequence[Mapping[str, Any]] | None = None) -> list[Message]:
        """The messages this predictor sends for `inputs`; `shown` replaces the signature shown.

        `selected` are the selector's demos for this call (`acall` passes them); without
        them a selector picks lexically, with no LM or network (inspect, export, dry runs:
        see promptc.core.demo_select).
        """
        adapter = adapter or ChatAdapter()
        if selected is None and self.selector is not None:
            selected = self.selector.select(inputs)
        return adapter.format(shown or self.signature, inputs=inputs, demos=[*self.demos, *(selected or ())],
                              json_mode=self.json_mode)

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext, *, step: str | None = None,
                    module: str | None = None, shown: Signature | None = None) -> dict[str, Any]:
        """Run once; append a TraceStep to `ctx.trace`; return the typed outputs.

        A composite passes `step` and `module` to label the trace record as its own, and
        `shown` when the prompt shows a stricter signature than the one parsed (ReAct).
        """
        sig = self.signature
        lm = ctx.lm(self.lm)
        selected = await self.selector.aselect(inputs, ctx.embedders) if self.selector is not None else None
        messages = self.render(inputs, ctx.adapter, shown=shown, selected=selected)
        response_format = ctx.adapter.response_format(sig) if self.json_mode else None
        record = TraceStep(step=step or self.name, module=module or self.kind, predictor=self.name,
                           inputs=dict(inputs), messages=messages)
        ctx.trace.steps.append(record)
        request = LMRequest(model=lm.model, messages=messages, response_format=response_format,
                            sample_index=ctx.sample_index, temperature=ctx.temperature)
        try:
            outputs = await self._complete(request, record, sig, lm, ctx)
            if self.constraints is not None:
                outputs = await self._enforce(outputs, inputs, sig, lm, request, record, ctx)
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, LMError):  # the requests a failed call sent were received all the same
                record.usage.add(Usage(requests=exc.requests))
            raise
        record.outputs = outputs
        return outputs

    async def _complete(self, request: LMRequest, record: TraceStep, sig: Signature, lm: LM,
                        ctx: CallContext) -> dict[str, Any]:
        response = await lm.complete(request)
        record.usage.add(response.usage)
        record.completion = response.text
        try:
            return ctx.adapter.parse(sig, response.text, optional=self.optional_outputs)
        except ParseError as first:
            # One explicit, counted re-ask with the error fed back; never a hidden call.
            record.attempts = 2
            retry_messages = ctx.adapter.reask(request.messages, response.text, str(first), sig,
                                               json_mode=self.json_mode)
            retry = await lm.complete(request.model_copy(update={"messages": retry_messages}))
            record.usage.add(retry.usage)
            record.usage.add(Usage(parse_retries=1))
            record.completion = retry.text
            return ctx.adapter.parse(sig, retry.text, optional=self.optional_outputs)

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


def typed_predictors(found: list[tuple[str, Module]]) -> list[tuple[str, Predict]]:
    """`found` (from the module walk, which only knows `Module`) typed as the Predicts they are."""
    return [(name, p) for name, p in found if isinstance(p, Predict)]


def placed_predictors(module: Module, name: str) -> list[tuple[str, Predict]]:
    """The predictors of `module` placed in a program under `name` (see predictors_under)."""
    return typed_predictors(predictors_under(module, name))


def with_reasoning(signature: Signature) -> Signature:
    """`signature` with a `reasoning` output first (unchanged if it already has one)."""
    return signature if signature.output(REASONING.name) else signature.prepend_output(REASONING)


class ChainOfThought(SignatureModule):
    """A Predict that writes `reasoning` before the real outputs."""

    kind: ClassVar[str] = "chain_of_thought"

    def __init__(self, signature: Signature | str, *, name: str | None = None,
                 demos: Sequence[Mapping[str, Any]] = (), lm: str | None = None, json_mode: bool = False):
        super().__init__(signature, name=name, lm=lm, json_mode=json_mode)
        # A missing reasoning section should not sink an otherwise good answer.
        self.predict = Predict(with_reasoning(self.signature), name=self.name, demos=demos, lm=lm,
                               json_mode=json_mode, optional=(REASONING.name,))
        self.finish_init()

    @property
    def produces(self) -> Signature:
        return self.predict.signature

    def answer_predictors(self) -> list[Predict]:
        return [self.predict]

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Message]:
        return self.predict.render(inputs, adapter)

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        return await self.predict.acall(inputs, ctx, step=self.name, module=self.kind)


# The modules a step can be rebuilt from its signature alone (an artifact without its spec).
MODULES: dict[str, type[Predict] | type[ChainOfThought]] = {"predict": Predict, "chain_of_thought": ChainOfThought}

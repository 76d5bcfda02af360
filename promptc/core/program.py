"""Programs: a chain of steps whose outputs feed later steps, checked before any LM call.

A step's input field is bound, in order of preference, to an explicit reference
(`input.question`, `retrieve.passages`), else to the most recent earlier step that
outputs a field of that name, else to the program input of that name. The types
along every binding are checked when the program is built.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.adapter import ChatAdapter
from promptc.core.example import Prediction
from promptc.core.modules import CallContext, Predict
from promptc.core.signature import FieldSpec
from promptc.core.trace import Trace
from promptc.core.types import CoercionError
from promptc.errors import FATAL_LM_ERRORS, SpecError, StepFailed
from promptc.lm.base import LM

INPUT = "input"


@dataclass(frozen=True)
class Ref:
    """Where a step input's value comes from: `input.FIELD` or `STEP.FIELD`."""

    source: str
    field: str

    @classmethod
    def parse(cls, text: str) -> Ref:
        source, dot, name = text.strip().partition(".")
        if not dot or not source or not name:
            raise ValueError(f"expected 'input.FIELD' or 'STEP.FIELD', got {text!r}")
        return cls(source, name)

    def __str__(self) -> str:
        return f"{self.source}.{self.field}"


@dataclass
class Step:
    """A module placed in a program, with explicit bindings for some of its inputs."""

    module: Predict
    bindings: Mapping[str, Ref]

    @property
    def name(self) -> str:
        return self.module.name


class StepState(BaseModel):
    """The tunable part of one step."""

    instructions: str = ""
    demos: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class FlowProblem:
    """A field-flow error found when building a program (the spec loader locates it)."""

    step_index: int
    field: str | None
    message: str


class Program:
    """An executable chain of steps. Call it like a function: `program(question=...)`."""

    def __init__(self, steps: Sequence[Step], *, name: str = "program",
                 lms: Mapping[str, LM] | None = None, adapter: ChatAdapter | None = None):
        self.name = name
        self.steps = list(steps)
        self.lms: dict[str, LM] = dict(lms or {})
        self.adapter = adapter or ChatAdapter()
        self.resolved, self.input_fields, problems = resolve_flow(self.steps)
        if problems:
            raise SpecError("\n".join(
                f"program[{p.step_index}]" + (f".inputs.{p.field}" if p.field else "") + f": {p.message}"
                for p in problems))

    @property
    def output_fields(self) -> tuple[FieldSpec, ...]:
        return self.steps[-1].module.prompt_signature.outputs

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.input_fields]

    def predictors(self) -> list[Predict]:
        return [s.module for s in self.steps]

    def state(self) -> dict[str, StepState]:
        """What compile tunes, per step: instructions and demos."""
        return {s.name: StepState(instructions=s.module.signature.instructions,
                                  demos=[dict(d) for d in s.module.demos]) for s in self.steps}

    def with_state(self, state: Mapping[str, StepState], *, lms: Mapping[str, LM] | None = None) -> Program:
        """A copy with some steps' instructions/demos replaced (and optionally other LMs)."""
        steps = []
        for s in self.steps:
            module = copy.copy(s.module)
            new = state.get(s.name)
            if new is not None:
                module.signature = module.signature.with_instructions(new.instructions)
                module.demos = [dict(d) for d in new.demos]
            else:
                module.demos = [dict(d) for d in s.module.demos]
            steps.append(Step(module=module, bindings=s.bindings))
        return Program(steps, name=self.name, lms=self.lms if lms is None else lms, adapter=self.adapter)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def coerce_inputs(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The program inputs of a data row, typed; ValueError names the field at fault."""
        out = {}
        for f in self.input_fields:
            if f.name not in row or row[f.name] is None:
                raise ValueError(f"missing required input field '{f.name}'")
            try:
                out[f.name] = f.type.coerce(row[f.name])
            except CoercionError as exc:
                raise ValueError(f"field '{f.name}': {exc}") from None
        return out

    async def acall(self, inputs: Mapping[str, Any], *, lms: Mapping[str, LM] | None = None,
                    sample_index: int = 0, temperature: float | None = None) -> Prediction:
        """Run every step for one example. Raises StepFailed (with the partial trace).

        `sample_index` and `temperature` let optimizers draw distinct samples (each has
        its own cache entry) instead of replaying the temperature-0 answer.
        """
        ctx = CallContext(lms=lms or self.lms, adapter=self.adapter, trace=Trace(),
                          sample_index=sample_index, temperature=temperature)
        values: dict[str, dict[str, Any]] = {INPUT: self.coerce_inputs(inputs)}
        outputs: dict[str, Any] = {}
        for step, bindings in zip(self.steps, self.resolved, strict=True):
            step_inputs = {name: values[ref.source][ref.field] for name, ref in bindings.items()}
            try:
                outputs = await step.module.acall(step_inputs, ctx)
            except FATAL_LM_ERRORS:
                raise  # fatal for the whole run, not for this example
            except Exception as exc:
                raise StepFailed(step.name, exc, ctx.trace) from exc
            values[step.name] = outputs
        return Prediction(outputs, trace=ctx.trace)

    def __call__(self, **inputs: Any) -> Prediction:
        """Synchronous call for scripts without a running event loop (else use `acall`)."""
        async def once() -> Prediction:
            try:
                return await self.acall(inputs)
            finally:
                await self.aclose()

        return asyncio.run(once())

    async def aclose(self) -> None:
        """Close LM clients that hold connections; they reopen on the next call."""
        for lm in self.lms.values():
            close = getattr(lm, "aclose", None)
            if close is not None:
                await close()


def resolve_flow(steps: Sequence[Step]) -> tuple[list[dict[str, Ref]], list[FieldSpec], list[FlowProblem]]:
    """Bind every step input to its source and type-check the flow."""
    problems: list[FlowProblem] = []
    produced: dict[str, dict[str, FieldSpec]] = {}  # step name -> outputs
    program_inputs: dict[str, FieldSpec] = {}
    resolved: list[dict[str, Ref]] = []
    seen_names: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen_names:
            problems.append(FlowProblem(i, None, f"duplicate step name '{step.name}'"))
        sig = step.module.signature
        for name in step.bindings:
            if sig.input(name) is None:
                problems.append(FlowProblem(i, name, f"'{name}' is not an input of signature "
                                            f"'{sig.name}' (inputs: {', '.join(sig.input_names) or 'none'})"))
        bindings: dict[str, Ref] = {}
        for f in sig.inputs:
            ref = step.bindings.get(f.name) or _implicit_ref(f.name, produced)
            problem = _check_ref(ref, f, step.name, produced, program_inputs)
            if problem:
                problems.append(FlowProblem(i, f.name, problem))
            bindings[f.name] = ref
        resolved.append(bindings)
        produced[step.name] = {o.name: o for o in step.module.prompt_signature.outputs}
        seen_names.add(step.name)
    return resolved, list(program_inputs.values()), problems


def _implicit_ref(field: str, produced: dict[str, dict[str, FieldSpec]]) -> Ref:
    for step_name in reversed(list(produced)):
        if field in produced[step_name]:
            return Ref(step_name, field)
    return Ref(INPUT, field)


def _check_ref(ref: Ref, target: FieldSpec, step_name: str, produced: dict[str, dict[str, FieldSpec]],
               program_inputs: dict[str, FieldSpec]) -> str | None:
    if ref.source == INPUT:
        known = program_inputs.get(ref.field)
        if known is None:
            program_inputs[ref.field] = FieldSpec(name=ref.field, type=target.type, desc=target.desc)
            return None
        if not (known.type.accepts(target.type) or target.type.accepts(known.type)):
            return (f"program input '{ref.field}' is used as {target.type.display()} here but as "
                    f"{known.type.display()} by an earlier step")
        return None
    if ref.source == step_name:
        return f"'{ref}' refers to the step's own output"
    if ref.source not in produced:
        return (f"'{ref}' refers to step '{ref.source}', which does not run before this step"
                if ref.source else f"bad reference '{ref}'")
    source = produced[ref.source].get(ref.field)
    if source is None:
        return (f"step '{ref.source}' has no output '{ref.field}' "
                f"(outputs: {', '.join(produced[ref.source])})")
    if not target.type.accepts(source.type):
        return (f"type mismatch: '{ref}' is {source.type.display()} but input "
                f"'{target.name}' of step '{step_name}' is {target.type.display()}")
    return None

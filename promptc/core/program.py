"""Programs: what `run`, `eval` and `compile` execute, one example at a time.

`Program` is the base both kinds share: the LMs, retrievers and tools a run uses, the
typed inputs and outputs, and the tunable state (instructions and demos of every
predictor, by name). Two implementations decide the control flow:

* `GraphProgram` (promptc.core.graph_program): steps, loops and branches from a YAML spec;
* `ModuleProgram` (promptc.core.module_program): a Python `promptc.Module`'s `forward()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.adapter import ChatAdapter
from promptc.core.demo_select import DemoSelector
from promptc.core.example import Prediction
from promptc.core.graph import Step
from promptc.core.module import CallContext
from promptc.core.modules import Predict, placed_predictors
from promptc.core.ref import Ref
from promptc.core.signature import FieldSpec
from promptc.core.trace import Trace
from promptc.core.types import CoercionError
from promptc.errors import UsageError
from promptc.lm.base import LM


class PredictorState(BaseModel):
    """The tunable part of one predictor: instructions, fixed demos, and optionally a pool of
    demos chosen per input (`selector`, see promptc.core.demo_select)."""

    instructions: str = ""
    demos: list[dict[str, Any]] = Field(default_factory=list)
    selector: DemoSelector | None = None


class Program:
    """An executable program. Call it like a function: `program(question=...)`.

    `steps` are the modules the program places (a graph's steps; a Python program's
    top-level modules, whose inputs are matched by name): what `inspect`, `--dry-run` and
    `export` show without running anything.
    """

    name: str
    input_fields: list[FieldSpec]
    steps: list[Step]

    def __init__(self, *, name: str = "program", lms: Mapping[str, LM] | None = None,
                 adapter: ChatAdapter | None = None, retrievers: Mapping[str, Any] | None = None,
                 tools: Mapping[str, Any] | None = None, embedders: Mapping[str, Any] | None = None):
        self.name = name
        self.lms: dict[str, LM] = dict(lms or {})
        self.retrievers: dict[str, Any] = dict(retrievers or {})
        self.tools: dict[str, Any] = dict(tools or {})
        self.embedders: dict[str, Any] = dict(embedders or {})  # for demos chosen by embedding
        self.adapter = adapter or ChatAdapter()

    # -- what subclasses provide ------------------------------------------------------
    @property
    def output_fields(self) -> tuple[FieldSpec, ...]:
        raise NotImplementedError

    def named_predictors(self) -> list[tuple[str, Predict]]:
        """Every tunable LM call of the program, by name (see promptc.core.module)."""
        return [found for step in self.steps for found in placed_predictors(step.module, step.name)]

    def clone(self, *, lms: Mapping[str, LM] | None = None) -> Program:
        """A copy whose predictors can be changed without touching this one."""
        raise NotImplementedError

    async def forward(self, inputs: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Run the control flow on typed inputs; raise StepFailed with the partial trace."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.input_fields]

    def predictor(self, name: str) -> Predict:
        """The predictor called `name` (UsageError if there is none)."""
        for found, predictor in self.named_predictors():
            if found == name:
                return predictor
        known = ", ".join(n for n, _ in self.named_predictors()) or "none"
        raise UsageError(f"program '{self.name}' has no predictor named {name!r} (have: {known})")

    def step(self, name: str) -> Step:
        """The step called `name` (KeyError if there is none)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def bindings(self, step_name: str) -> dict[str, Ref]:
        """Where each input of a step comes from; inputs missing here are matched by name."""
        return {}

    def step_of(self, predictor_name: str) -> Step:
        """The step that holds the predictor called `predictor_name` (KeyError if none)."""
        for step in self.steps:
            if any(name == predictor_name for name, _ in placed_predictors(step.module, step.name)):
                return step
        raise KeyError(predictor_name)

    def input_sources(self, predictor_name: str) -> dict[str, str]:
        """For labelled demos: the data field each input of a predictor is read from, where it
        is not the field of the same name (a step input bound to `input.question`)."""
        return {name: ref.field for name, ref in self.bindings(self.step_of(predictor_name).name).items()}

    def calls_per_row(self) -> int:
        """An upper bound of LM calls for one example (a Python program's loops are unknown:
        each of its modules is counted once)."""
        return sum(step.module.max_calls for step in self.steps)

    def state(self) -> dict[str, PredictorState]:
        """What compile tunes, per predictor: instructions, demos and a demo selector."""
        return {name: PredictorState(instructions=p.signature.instructions, demos=[dict(d) for d in p.demos],
                                     selector=p.selector.model_copy(deep=True) if p.selector else None)
                for name, p in self.named_predictors()}

    def with_state(self, state: Mapping[str, PredictorState], *, lms: Mapping[str, LM] | None = None) -> Program:
        """A copy with some predictors' instructions/demos replaced (and optionally other LMs)."""
        clone = self.clone(lms=lms)
        predictors = dict(clone.named_predictors())
        unknown = sorted(set(state) - set(predictors))
        if unknown:
            raise UsageError(f"program '{self.name}' has no predictor(s) named {', '.join(unknown)} "
                             f"(have: {', '.join(predictors) or 'none'})")
        for name, new in state.items():
            predictor = predictors[name]
            predictor.signature = predictor.signature.with_instructions(new.instructions)
            predictor.demos = [dict(d) for d in new.demos]
            predictor.selector = new.selector.model_copy(deep=True) if new.selector else None
        return clone

    def coerce_inputs(self, row: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """The program inputs of a data row, typed; ValueError names the field at fault."""
        out = {}
        for f in self.input_fields:
            if f.name not in row or row[f.name] is None:
                raise ValueError(f"missing required input field '{f.name}'")
            try:
                value = row[f.name]
                out[f.name] = f.type.check_input(value) if strict else f.type.coerce(value)
            except CoercionError as exc:
                raise ValueError(f"field '{f.name}': {exc}") from None
        return out

    async def acall(self, inputs: Mapping[str, Any], *, lms: Mapping[str, LM] | None = None,
                    sample_index: int = 0, temperature: float | None = None) -> Prediction:
        """Run the program on one example. Raises StepFailed (with the partial trace).

        `sample_index` and `temperature` let optimizers draw distinct samples (each has
        its own cache entry) instead of replaying the temperature-0 answer.
        """
        ctx = CallContext(lms=lms or self.lms, adapter=self.adapter, trace=Trace(),
                          sample_index=sample_index, temperature=temperature,
                          retrievers=self.retrievers, tools=self.tools, embedders=self.embedders)
        outputs = await self.forward(self.coerce_inputs(inputs), ctx)
        return Prediction(outputs, trace=ctx.trace)

    def __call__(self, **inputs: Any) -> Prediction:
        """Synchronous call for scripts without a running event loop (else use `acall`)."""
        async def once() -> Prediction:
            try:
                return await self.acall(inputs)
            finally:
                await self.aclose()

        return asyncio.run(once())

    async def prepare(self) -> None:
        """Get retrievers ready (e.g. build a BM25 index) before rows run, so a bad corpus
        is one clear error instead of a failure on every row."""
        for retriever in self.retrievers.values():
            prepare = getattr(retriever, "prepare", None)
            if prepare is not None:
                await prepare()

    async def aclose(self) -> None:
        """Close LM and retriever clients that hold connections; they reopen on the next call."""
        for resource in [*self.lms.values(), *self.retrievers.values(), *self.embedders.values()]:
            close = getattr(resource, "aclose", None)
            if close is not None:
                await close()

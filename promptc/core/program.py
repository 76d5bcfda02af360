"""Programs: a graph of steps (chains, loops, branches), checked before any LM call.

A step's input field is bound, in order of preference, to an explicit reference
(`input.question`, `retrieve.passages`), else to the most recent earlier producer of a
field of that name, else to the program input of that name. The types along every
binding are checked when the program is built (see promptc.core.graph).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.adapter import ChatAdapter
from promptc.core.example import Prediction
from promptc.core.graph import (
    INPUT,
    Branch,
    Case,
    FlowChecker,
    FlowProblem,
    Node,
    Ref,
    Repeat,
    Step,
    last_outputs,
    walk_steps,
)
from promptc.core.modules import CallContext, Predict
from promptc.core.signature import FieldSpec
from promptc.core.trace import Trace
from promptc.core.types import CoercionError
from promptc.errors import FATAL_LM_ERRORS, SpecError, StepFailed
from promptc.lm.base import LM


class StepState(BaseModel):
    """The tunable part of one step."""

    instructions: str = ""
    demos: list[dict[str, Any]] = Field(default_factory=list)


class Program:
    """An executable chain of steps. Call it like a function: `program(question=...)`."""

    def __init__(self, nodes: Sequence[Node], *, name: str = "program",
                 lms: Mapping[str, LM] | None = None, adapter: ChatAdapter | None = None,
                 retrievers: Mapping[str, Any] | None = None, tools: Mapping[str, Any] | None = None):
        self.name = name
        self.nodes = list(nodes)
        self.steps = walk_steps(self.nodes)
        self.lms: dict[str, LM] = dict(lms or {})
        self.retrievers: dict[str, Any] = dict(retrievers or {})
        self.tools: dict[str, Any] = dict(tools or {})
        self.adapter = adapter or ChatAdapter()
        checker = FlowChecker()
        checker.run(self.nodes)
        self.resolved = [checker.bindings.get(s.name, {}) for s in self.steps]
        self._index = {s.name: i for i, s in enumerate(self.steps)}
        self.input_fields = list(checker.env.inputs.values())
        self._outputs = last_outputs(self.nodes)
        problems = [f"{_path_text(p.path)}" + (f".{p.field}" if p.field else "") + f": {p.message}"
                    for p in checker.problems]
        if not problems and not self._outputs:
            problems.append("the program's last node must produce its outputs unconditionally "
                            "(end with a step, or a branch with an else case)")
        if problems:
            raise SpecError("\n".join(problems))

    @property
    def output_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(self._outputs.values())

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.input_fields]

    def step(self, name: str) -> Step:
        """The step called `name` (KeyError if there is none)."""
        return self.steps[self._index[name]]

    def predictors(self) -> list[Predict]:
        return [s.module for s in self.steps]

    def state(self) -> dict[str, StepState]:
        """What compile tunes, per step: instructions and demos."""
        return {s.name: StepState(instructions=s.module.signature.instructions,
                                  demos=[dict(d) for d in s.module.demos]) for s in self.steps}

    def with_state(self, state: Mapping[str, StepState], *, lms: Mapping[str, LM] | None = None) -> Program:
        """A copy with some steps' instructions/demos replaced (and optionally other LMs)."""
        copies: dict[str, Predict] = {}
        for s in self.steps:
            module = copy.copy(s.module)
            new = state.get(s.name)
            if new is not None:
                module.signature = module.signature.with_instructions(new.instructions)
                module.demos = [dict(d) for d in new.demos]
            else:
                module.demos = [dict(d) for d in s.module.demos]
            copies[s.name] = module
        return Program(_copy_nodes(self.nodes, copies), name=self.name,
                       lms=self.lms if lms is None else lms, adapter=self.adapter,
                       retrievers=self.retrievers, tools=self.tools)

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
                          sample_index=sample_index, temperature=temperature,
                          retrievers=self.retrievers, tools=self.tools)
        values: dict[str, dict[str, Any]] = {INPUT: self.coerce_inputs(inputs)}
        outputs = await self._run(self.nodes, values, ctx, None, None)
        return Prediction(outputs or {}, trace=ctx.trace)

    async def _run(self, nodes: Sequence[Node], values: dict[str, dict[str, Any]], ctx: CallContext,
                   iteration: int | None, branch: str | None) -> dict[str, Any] | None:
        def lookup(ref: Ref) -> Any:
            return values.get(ref.source, {}).get(ref.field)

        last: dict[str, Any] | None = None
        for node in nodes:
            if node.when is not None and not node.when.evaluate(lookup):
                continue
            if isinstance(node, Step):
                step_inputs = {name: lookup(ref) for name, ref in self.resolved[self._index[node.name]].items()}
                first = len(ctx.trace.steps)
                try:
                    outputs = await node.module.acall(step_inputs, ctx)
                except FATAL_LM_ERRORS:
                    raise  # fatal for the whole run, not for this example
                except Exception as exc:
                    raise StepFailed(node.name, exc, ctx.trace) from exc
                for record in ctx.trace.steps[first:]:
                    record.iteration = iteration if record.iteration is None else record.iteration
                    record.branch = branch if record.branch is None else record.branch
                values[node.name] = outputs
                last = outputs
            elif isinstance(node, Repeat):
                values[node.name] = {v.name: copy.deepcopy(v.init) if v.init is not None else
                                     ([] if v.type.kind == "list" else None) for v in node.state}
                for i in range(node.times):
                    out = await self._run(node.body, values, ctx, i, branch)
                    last = out if out is not None else last
                    for var in node.state:
                        ref = var.append or var.set
                        if ref is not None and ref.source in values and ref.field in values[ref.source]:
                            current = values[node.name][var.name]
                            values[node.name][var.name] = var.update(current, values[ref.source][ref.field])
            else:
                for j, case in enumerate(node.cases):
                    if case.when is None or case.when.evaluate(lookup):
                        out = await self._run(case.body, values, ctx, iteration, f"{node.name}[{j}]")
                        values[node.name] = out or {}
                        last = out if out is not None else last
                        break
        return last

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
        for resource in [*self.lms.values(), *self.retrievers.values()]:
            close = getattr(resource, "aclose", None)
            if close is not None:
                await close()


def resolve_flow(nodes: Sequence[Node]) -> tuple[list[dict[str, Ref]], list[FieldSpec], list[FlowProblem]]:
    """Bind every step input and type-check the flow (see promptc.core.graph)."""
    checker = FlowChecker()
    checker.run(nodes)
    steps = walk_steps(nodes)
    return [checker.bindings.get(s.name, {}) for s in steps], list(checker.env.inputs.values()), checker.problems


def _copy_nodes(nodes: Sequence[Node], modules: Mapping[str, Predict]) -> list[Node]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, Step):
            out.append(Step(module=modules[node.name], bindings=node.bindings, when=node.when))
        elif isinstance(node, Repeat):
            out.append(Repeat(node.name, node.times, _copy_nodes(node.body, modules), node.state, node.when))
        else:
            out.append(Branch(node.name, [Case(c.when, _copy_nodes(c.body, modules)) for c in node.cases],
                              node.when))
    return out


def _path_text(path: tuple[Any, ...]) -> str:
    text = "program"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text

"""GraphProgram: a program whose control flow is a graph of steps, loops and branches.

A step's input field is bound, in order of preference, to an explicit reference
(`input.question`, `retrieve.passages`), else to the most recent earlier producer of a
field of that name, else to the program input of that name. The types along every
binding are checked once, when the program is built (see promptc.core.graph).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from promptc.core.adapter import ChatAdapter
from promptc.core.graph import Flow, Node, Repeat, Step, check_flow, walk_steps
from promptc.core.module import CallContext, assign_names
from promptc.core.program import Program
from promptc.core.ref import INPUT, Ref
from promptc.core.signature import FieldSpec
from promptc.errors import FATAL_LM_ERRORS, SpecError, StepFailed
from promptc.lm.base import LM
from promptc.lm.spans import span

Values = dict[str, dict[str, Any]]


class GraphProgram(Program):
    """An executable graph of steps (what a YAML spec's `program:` list builds).

    `flow` is the graph's checked flow when the caller already has it (the spec loader
    checks first, to report problems with file positions); otherwise it is checked here.
    """

    def __init__(self, nodes: Sequence[Node], *, name: str = "program", lms: Mapping[str, LM] | None = None,
                 adapter: ChatAdapter | None = None, retrievers: Mapping[str, Any] | None = None,
                 tools: Mapping[str, Any] | None = None, embedders: Mapping[str, Any] | None = None,
                 flow: Flow | None = None):
        super().__init__(name=name, lms=lms, adapter=adapter, retrievers=retrievers, tools=tools,
                         embedders=embedders)
        self.nodes = list(nodes)
        self.steps = walk_steps(self.nodes)
        self.flow = flow or check_flow(self.nodes)
        problems = [f"{_path_text(p.path)}" + (f".{p.field}" if p.field else "") + f": {p.message}"
                    for p in self.flow.problems]
        if not problems and not self.flow.outputs:
            problems.append("the program's last node must produce its outputs unconditionally "
                            "(end with a step, or a branch with an else case)")
        if problems:
            raise SpecError("\n".join(problems))
        self.input_fields = list(self.flow.inputs)
        self._index = {s.name: i for i, s in enumerate(self.steps)}
        for step in self.steps:
            assign_names(step.module, step.name)

    @property
    def output_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(self.flow.outputs.values())

    def step(self, name: str) -> Step:
        return self.steps[self._index[name]]

    def bindings(self, step_name: str) -> dict[str, Ref]:
        return self.flow.bindings.get(step_name, {})

    def calls_per_row(self) -> int:
        """Loops multiply, branches take their dearest case, retrieval is free."""
        return _calls(self.nodes)

    def clone(self, *, lms: Mapping[str, LM] | None = None) -> GraphProgram:
        return GraphProgram(copy.deepcopy(self.nodes), name=self.name, lms=self.lms if lms is None else lms,
                            adapter=self.adapter, retrievers=self.retrievers, tools=self.tools,
                            embedders=self.embedders, flow=self.flow)

    async def forward(self, inputs: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        values: Values = {INPUT: inputs}
        return await self._run(self.nodes, values, ctx, None, None) or {}

    async def _run(self, nodes: Sequence[Node], values: Values, ctx: CallContext,
                   iteration: int | None, branch: str | None) -> dict[str, Any] | None:
        def lookup(ref: Ref) -> Any:
            return values.get(ref.source, {}).get(ref.field)

        last: dict[str, Any] | None = None
        for node in nodes:
            if node.when is not None and not node.when.evaluate(lookup):
                continue
            out: dict[str, Any] | None
            if isinstance(node, Step):
                out = await self._step(node, values, ctx, iteration, branch)
            elif isinstance(node, Repeat):
                out = await self._repeat(node, values, ctx, branch)
            else:
                out = None
                for j, case in enumerate(node.cases):
                    if case.when is None or case.when.evaluate(lookup):
                        out = await self._run(case.body, values, ctx, iteration, f"{node.name}[{j}]")
                        values[node.name] = out or {}
                        break
            last = out if out is not None else last
        return last

    async def _step(self, node: Step, values: Values, ctx: CallContext, iteration: int | None,
                    branch: str | None) -> dict[str, Any]:
        step_inputs = {name: values.get(ref.source, {}).get(ref.field)
                       for name, ref in self.bindings(node.name).items()}
        first = len(ctx.trace.steps)
        try:
            with span("promptc.step", {"promptc.step": node.name, "promptc.module": node.module.kind}):
                outputs = await node.module.acall(step_inputs, ctx)
        except FATAL_LM_ERRORS:
            raise  # fatal for the whole run, not for this example
        except Exception as exc:
            raise StepFailed(node.name, exc, ctx.trace) from exc
        for record in ctx.trace.steps[first:]:
            record.iteration = iteration if record.iteration is None else record.iteration
            record.branch = branch if record.branch is None else record.branch
        values[node.name] = outputs
        return outputs

    async def _repeat(self, node: Repeat, values: Values, ctx: CallContext,
                      branch: str | None) -> dict[str, Any] | None:
        values[node.name] = {v.name: copy.deepcopy(v.init) if v.init is not None else
                             ([] if v.type.kind == "list" else None) for v in node.state}
        last = None
        for i in range(node.times):
            out = await self._run(node.body, values, ctx, i, branch)
            last = out if out is not None else last
            for var in node.state:
                ref = var.append or var.set
                if ref is not None and ref.source in values and ref.field in values[ref.source]:
                    current = values[node.name][var.name]
                    values[node.name][var.name] = var.update(current, values[ref.source][ref.field])
        return last


def _calls(nodes: Sequence[Node]) -> int:
    total = 0
    for node in nodes:
        if isinstance(node, Step):
            total += node.module.max_calls
        elif isinstance(node, Repeat):
            total += node.times * _calls(node.body)
        else:
            total += max((_calls(case.body) for case in node.cases), default=0)
    return total


def _path_text(path: tuple[Any, ...]) -> str:
    text = "program"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text

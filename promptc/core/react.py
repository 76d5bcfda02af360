"""ReAct: a tool-using agent loop (thought -> tool call -> observation), after DSPy's ReAct.

Each turn is one LM call through the normal adapter path, with an internal signature:
the step's inputs plus `trajectory` (the turns so far) -> `next_thought`,
`next_tool_name` (one of the tools, or `finish`) and `next_tool_args` (a JSON object).
The named tool is called and the turn appended to the trajectory, until the LM picks
`finish`, `max_iters` turns have run, or a turn's reply can't be read even after the
adapter's re-ask (then the loop ends, as in DSPy). A final chain-of-thought call over
the inputs and the trajectory extracts the step's outputs.

A react step named NAME holds two predictors, each tuned on its own:

* `NAME.react`, the loop call: its instructions open each turn's prompt (the agent and
  tool description follow; the tools are only known when the program runs). It starts
  with the step's instructions and no demos.
* `NAME.extract`, the extraction call (chain of thought): it starts with the step's
  instructions and demos (full input/output examples of the step).

Assert/suggest `constraints` set on the module apply to the extraction call.

Mistakes are observations: a tool name that isn't one of the tools, args that aren't a
JSON object or don't fit the tool, and a tool that raises all become an "error: ..."
observation, and the loop goes on (see `promptc.core.tools`).

Trace, per call of a step named NAME (`iteration` = the 0-based turn):
`NAME.react` for each turn's LM call; `NAME.<tool>` (module "tool", inputs = the args,
outputs = `{"observation": ...}`, `error` set if the call failed) for each tool call;
`NAME.extract` for the extraction; then `NAME` (module "react") with the step's inputs
and outputs, which bootstrapping turns into a demo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from promptc.core.adapter import ChatAdapter
from promptc.core.module import CallContext
from promptc.core.modules import REASONING, Predict, SignatureModule, with_reasoning
from promptc.core.sampling import defuse, record, traced_acall
from promptc.core.signature import FieldSpec, Signature
from promptc.core.tools import ERROR_PREFIX, Tool, as_tool
from promptc.core.types import CoercionError, FieldType
from promptc.errors import ParseError, UsageError
from promptc.lm.base import Message

FINISH = "finish"
TRAJECTORY = FieldSpec(name="trajectory", desc="Your thoughts, tool calls and their observations so far.")
NEXT_THOUGHT = FieldSpec(name="next_thought",
                         desc="Reason about the current situation and plan the next steps.")
_ARGS_DESC = "The arguments of the tool call, as a JSON object."
_OBJECT = FieldType(kind="json", json_schema={"type": "object"})
_LOOP_OUTPUTS = ("next_thought", "next_tool_name", "next_tool_args")
_NO_TURNS = "(empty: no tool has been called yet)"


@dataclass(frozen=True)
class Turn:
    """One turn of the loop as the agent sees it in its trajectory."""

    thought: str
    tool: str
    args: Any
    observation: str


def format_trajectory(turns: Sequence[Turn]) -> str:
    """The turns as the `trajectory` input text."""
    if not turns:
        return _NO_TURNS
    blocks = []
    for i, t in enumerate(turns, 1):
        args = t.args if isinstance(t.args, str) else json.dumps(t.args, ensure_ascii=False)
        blocks.append(f"Step {i}\nthought: {defuse(t.thought)}\ntool: {defuse(t.tool)}\n"
                      f"args: {defuse(args)}\nobservation: {defuse(t.observation)}")
    return "\n\n".join(blocks)


def parse_tool_args(value: Any) -> dict[str, Any]:
    """The LM's `next_tool_args` as a dict; ValueError says why it isn't one."""
    if value is None or isinstance(value, str) and not value.strip():
        return {}  # models often leave it out, e.g. when finishing
    try:
        parsed = _OBJECT.coerce(value)
    except CoercionError as exc:
        raise ValueError(f"next_tool_args must be a JSON object of the tool's arguments ({exc})") from None
    return dict(parsed)


class ReAct(SignatureModule):
    """A tool-using agent loop, then an extraction of the step's outputs.

    `tools` are names looked up in `ctx.tools` at call time (None: every configured
    tool); a configured value may be a `Tool`, a retriever or a python function.
    """

    kind: ClassVar[str] = "react"

    def __init__(self, signature: Signature | str, *, tools: Sequence[str] | None = None, max_iters: int = 5,
                 name: str | None = None, demos: Sequence[Mapping[str, Any]] = (),
                 lm: str | None = None, json_mode: bool = False):
        super().__init__(signature, name=name, lm=lm, json_mode=json_mode)
        signature = self.signature
        if max_iters < 1:
            raise ValueError(f"react step '{self.name}' needs max_iters >= 1, got {max_iters}")
        clash = [n for n in (TRAJECTORY.name, *_LOOP_OUTPUTS) if signature.input(n)]
        if clash:
            raise ValueError(f"react step '{self.name}': input name(s) {', '.join(clash)} are used "
                             "by the agent loop; rename them")
        if tools is not None and FINISH in tools:
            raise ValueError(f"react step '{self.name}': '{FINISH}' is reserved and can't name a tool")
        self.tools: tuple[str, ...] | None = None if tools is None else tuple(tools)
        self.max_iters = max_iters
        self.max_calls = max_iters + 1
        # The loop's reply is read leniently (any tool name, args as text): a bad turn becomes
        # an observation the agent can correct instead of a failed step.
        self.react = Predict(self.loop_signature(), lm=lm, json_mode=json_mode,
                             optional=("next_thought", "next_tool_args"))
        self.extract = Predict(with_reasoning(self.extract_signature()), demos=demos, lm=lm,
                               json_mode=json_mode, optional=(REASONING.name,))
        self.finish_init()

    def answer_predictors(self) -> list[Predict]:
        return [self.extract]

    # -- signatures -------------------------------------------------------------------
    def loop_instructions(self, tools: Mapping[str, Tool | None]) -> str:
        """The loop's instructions: the tuned `react` predictor's own, then the agent and its tools."""
        sig = self.signature
        own = self.react.signature.instructions.strip()
        ins = ", ".join(f"`{n}`" for n in sig.input_names) or "nothing"
        outs = ", ".join(f"`{n}`" for n in sig.output_names)
        lines = [own + "\n"] if own else []
        lines += [
            f"You are an agent. In each turn you are given the fields {ins} as input, and your "
            "trajectory so far.",
            f"Your goal is to use one or more of the supplied tools to collect any information "
            f"needed to produce {outs}.\n",
            "To do this, write next_thought, next_tool_name and next_tool_args in each turn, "
            "also when finishing the task.",
            "After each tool call you receive its result as an observation, which is appended "
            "to your trajectory.\n",
            "When writing next_thought, reason about the current situation and plan the next steps.",
            "next_tool_name must be one of the following tools, and next_tool_args a JSON object "
            "with its arguments:\n",
        ]
        for i, (name, tool) in enumerate(tools.items(), 1):
            desc = tool.description if tool else "(described when the program runs)"
            args = json.dumps(tool.args if tool else {}, ensure_ascii=False)
            lines.append(f"({i}) {name}: {desc} Arguments: {args}")
        lines.append(f"({len(tools) + 1}) {FINISH}: Marks the task as complete: signals that all the "
                     f"information needed to produce {outs} is now available. Arguments: {{}}")
        return "\n".join(lines)

    def loop_signature(self) -> Signature:
        """What one turn's reply is parsed as: any tool name; args as text (or JSON in JSON mode)."""
        args = FieldType(kind="json") if self.json_mode else FieldType()
        return Signature(
            name=f"{self.signature.name}_react", instructions=self.signature.instructions,
            inputs=(*self.signature.inputs, TRAJECTORY),
            outputs=(NEXT_THOUGHT, FieldSpec(name="next_tool_name"),
                     FieldSpec(name="next_tool_args", type=args, desc=_ARGS_DESC)))

    def shown_signature(self, tools: Mapping[str, Tool | None]) -> Signature:
        """What one turn's prompt shows: the tools by name, args as a JSON object."""
        names = FieldType(kind="enum", values=(*tools, FINISH))
        loop = self.react.signature
        return loop.model_copy(update={"instructions": self.loop_instructions(tools), "outputs": (
            NEXT_THOUGHT, FieldSpec(name="next_tool_name", type=names),
            FieldSpec(name="next_tool_args", type=_OBJECT, desc=_ARGS_DESC))})

    def extract_signature(self) -> Signature:
        """Inputs + trajectory -> the step's outputs, with the step's instructions."""
        return self.signature.model_copy(update={"name": f"{self.signature.name}_extract",
                                                 "inputs": (*self.signature.inputs, TRAJECTORY)})

    def shown_signature_of(self, predictor: Predict) -> Signature | None:
        return self.shown_signature(dict.fromkeys(self.tools or ())) if predictor is self.react else None

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Message]:
        """The first turn's prompt (tools by name only: they are resolved at run time)."""
        shown = self.shown_signature(dict.fromkeys(self.tools or ()))
        return self.react.render({**inputs, TRAJECTORY.name: _NO_TURNS}, adapter, shown=shown)

    def resolve_tools(self, ctx: CallContext) -> dict[str, Tool]:
        """This step's tools, by the names it uses, from `ctx.tools`."""
        names = self.tools if self.tools is not None else tuple(ctx.tools)
        if FINISH in names:
            raise UsageError(f"react step '{self.name}': '{FINISH}' is reserved and can't name a tool")
        return {n: as_tool(ctx.tool(n), n) for n in names}

    # -- running ----------------------------------------------------------------------
    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Run the loop, then extract the outputs; see the module docstring for the trace."""
        tools = self.resolve_tools(ctx)
        shown = self.shown_signature(tools)
        tool_names = shown.output("next_tool_name").type  # type: ignore[union-attr]
        turns: list[Turn] = []
        for i in range(self.max_iters):
            try:
                reply = await traced_acall(self.react, {**inputs, TRAJECTORY.name: format_trajectory(turns)},
                                           ctx, iteration=i, step=f"{self.name}.react", shown=shown)
            except ParseError:
                break  # as DSPy: a turn that can't be read ends the loop; extract from what we have
            thought = str(reply.get("next_thought") or "")
            raw_name, raw_args = str(reply.get("next_tool_name", "")), reply.get("next_tool_args")
            try:
                name = tool_names.coerce(raw_name)
            except CoercionError:
                allowed = ", ".join((*tools, FINISH))
                turns.append(Turn(thought, raw_name, raw_args or {}, f"{ERROR_PREFIX}there is no tool "
                                  f"named {raw_name!r}; next_tool_name must be one of: {allowed}"))
                continue
            try:
                args = parse_tool_args(raw_args)
            except ValueError as exc:
                turns.append(Turn(thought, name, raw_args, ERROR_PREFIX + str(exc)))
                continue
            if name == FINISH:
                turns.append(Turn(thought, FINISH, args, "Completed."))
                break
            result = await tools[name].invoke(args)
            record(ctx, f"{self.name}.{name}", "tool", args, {"observation": result.observation},
                   iteration=i, error=result.error)
            turns.append(Turn(thought, name, args, result.observation))
        extracted = await self.extract.acall({**inputs, TRAJECTORY.name: format_trajectory(turns)}, ctx,
                                             step=f"{self.name}.extract", module="chain_of_thought")
        outputs = {k: extracted[k] for k in self.signature.output_names}
        record(ctx, self.name, self.kind, inputs, outputs)
        return outputs

"""Rollouts with traces and feedback, and the reflection LM call that GEPA mutates with.

GEPA (Agrawal et al. 2025, "GEPA: Reflective Prompt Evolution Can Outperform Reinforcement
Learning") learns from a few *rollouts*: the program runs on a minibatch of training
examples, every LM call is traced, and the metric says in words what was wrong with each
final answer. For one predictor, the records of that predictor at work — its inputs, what
it produced (or why its reply did not parse), the final score and the metric's feedback —
go to a *reflection LM* with the predictor's current instruction, and it writes a better
instruction. The prompt follows GEPA's (`gepa-ai/gepa`, `InstructionProposalSignature`):
infer the task and input format from the records, keep what works, and write down the
task-specific facts and strategies the feedback reveals. It is generic: nothing in it
names a task, a domain or a dataset.

The reflection call goes through the core (a one-step `Program`), so it is traced, cached,
budgeted and parsed like any other call; `sample_index` makes each iteration its own
cache entry, so a --resume replays it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promptc.core.adapter import default_instructions
from promptc.core.example import Example
from promptc.core.program import Program
from promptc.core.signature import FieldSpec, Signature
from promptc.core.trace import Trace
from promptc.lm.base import LM
from promptc.metrics.config import NamedMetric
from promptc.optimize.proposer import (
    clean_proposals,
    describe_program,
    describe_step,
    one_step_program,
)
from promptc.runner.batch import RowResult, WorkItem, execute

REFLECTION_SIGNATURE = Signature(
    name="reflect_instruction",
    instructions=(
        "You improve the instruction of one step of a language-model program. You are given the "
        "step's current instruction and records of the step at work on several inputs: what it "
        "received, what it produced, the score the program's final answer got and feedback on "
        "that answer. Read the inputs to infer the task and the input format. Read the outputs "
        "and the feedback to find what went wrong and what went right: the task-specific facts, "
        "rules, pitfalls and strategies that decide whether an answer is correct. Write a new, "
        "self-contained instruction for the step that keeps what works in the current one and "
        "states this knowledge concretely, so the step gets inputs like these right in future. "
        "Do not mention the particular records. Reply with the new instruction only."),
    inputs=(
        FieldSpec(name="program_description", desc="the program's steps and their signatures"),
        FieldSpec(name="step_description", desc="the step whose instruction is to be improved"),
        FieldSpec(name="current_instruction", desc="the step's instruction today"),
        FieldSpec(name="records", desc="the step's inputs and outputs, with the final score and feedback"),
    ),
    outputs=(FieldSpec(name="new_instruction", desc="the improved instruction"),),
)

_MAX_VALUE_CHARS = 1200


@dataclass
class Rollout:
    """One training example run by a candidate: its score, the metric's feedback, the trace."""

    row: int  # index into the train set
    score: float | None  # None: an error row (the endpoint or the metric failed)
    feedback: str = ""
    trace: Trace = field(default_factory=Trace)
    error: str | None = None


async def rollouts(program: Program, trainset: Sequence[Example], rows: Sequence[int], metric: NamedMetric, *,
                   concurrency: int = 16) -> list[Rollout]:
    """Run `program` on the train rows `rows`, scored like `eval`, keeping traces and feedback."""
    from promptc.evaluation.scoring import score_row

    out: dict[int, Rollout] = {}

    def keep(result: RowResult) -> None:
        scored = result.extra
        score = scored.scores.get(metric.name) if scored is not None else None
        out[result.item.row] = Rollout(row=rows[result.item.row], score=score,
                                       feedback=scored.feedback.get(metric.name, "") if scored is not None else "",
                                       trace=result.trace, error=result.error)

    items = [WorkItem(row=i, inputs=trainset[r].inputs(), record=dict(trainset[r])) for i, r in enumerate(rows)]
    await execute(program, items, keep, concurrency=concurrency, post=lambda r: score_row(r, [metric]))
    return [out[i] for i in range(len(rows)) if i in out]


def reflection_lm(program: Program) -> LM:
    """The LM that reflects: the spec's `reflection` LM, else `teacher`, else `default`."""
    lms = program.lms
    return lms.get("reflection") or lms.get("teacher") or lms["default"]


def records_for(predictor: str, runs: Sequence[Rollout], *, threshold: float) -> str:
    """The reflective dataset of one predictor: each of its calls in `runs`, with the outcome."""
    blocks = []
    for number, run in enumerate(runs, 1):
        calls = [s for s in run.trace.steps if s.predictor == predictor and not s.rejected]
        if not calls:
            continue
        outcome = "error" if run.score is None else f"{run.score:g} ({'pass' if run.score >= threshold else 'fail'})"
        lines = [f"### Record {number}", f"Final score: {outcome}"]
        for i, call in enumerate(calls, 1):
            prefix = f"Call {i}: " if len(calls) > 1 else ""
            lines.append(f"{prefix}Inputs:\n{_fields(call.inputs)}")
            if call.error is not None:
                lines.append(f"{prefix}Output could not be used: {_cut(call.error)}"
                             + (f"\nRaw reply: {_cut(call.completion)}" if call.completion else ""))
            else:
                lines.append(f"{prefix}Outputs:\n{_fields(call.outputs)}")
        if run.error is not None and not any(c.error for c in calls):
            lines.append(f"The program failed: {_cut(run.error)}")
        lines.append(f"Feedback: {run.feedback or ('correct' if (run.score or 0) >= threshold else 'incorrect')}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "(no records)"


async def reflect(program: Program, predictor: str, runs: Sequence[Rollout], *, lm: LM, threshold: float,
                  sample_index: int, temperature: float) -> str | None:
    """A new instruction for `predictor` from its records in `runs`; None if the LM gave nothing new."""
    signature = program.predictor(predictor).signature
    current = signature.instructions
    reflector = one_step_program(REFLECTION_SIGNATURE, lm)
    inputs = {"program_description": describe_program(program),
              "step_description": describe_step(program, predictor),
              "current_instruction": current or default_instructions(signature),
              "records": records_for(predictor, runs, threshold=threshold)}
    prediction = await reflector.acall(inputs, sample_index=sample_index, temperature=temperature)
    cleaned = clean_proposals(current, [str(prediction["new_instruction"])])
    return cleaned[1] if len(cleaned) > 1 else None


def _fields(values: dict[str, Any]) -> str:
    return "\n".join(f"- {key}: {_cut(value)}" for key, value in values.items())


def _cut(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.strip()
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS].rsplit(" ", 1)[0] + " ..."
    return text

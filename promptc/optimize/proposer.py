"""Grounded instruction proposals for MIPRO (Opsahl-Ong et al. 2024, "grounded proposer").

A proposer LM writes candidate instructions for one step at a time. As in the paper it
is grounded in what it could otherwise only guess:

* a summary of the training data, written by an LM call over a sample of examples;
* the program's structure: every step's name, module kind and signature;
* a few bootstrapped demos of the step (each candidate sees a different demo set);
* a randomly drawn "tip" (be concise, mind edge cases, use a persona...) for variety;
* the step's current instruction.

Both LM calls go through the core (a one-step `Program`), so they are traced, cached,
budgeted and parsed like any other call. Candidate 0 is always the original
instruction; candidate i is drawn with `sample_index=i` at the initial temperature so
each is its own cache entry, and a --resume replays them from the cache.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from promptc.core.adapter import default_instructions
from promptc.core.example import Example
from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.modules import Predict
from promptc.core.program import Program
from promptc.core.signature import FieldSpec, Signature
from promptc.errors import FATAL_LM_ERRORS, StepFailed
from promptc.lm.base import LM

# Tips vary the proposals, as in the paper; "none" lets the LM write without a nudge.
TIPS: dict[str, str] = {
    "none": "",
    "concise": "Make the instruction clear and concise.",
    "edge_cases": "Think about edge cases and ambiguous inputs, and say how to handle them.",
    "persona": "Start the instruction by giving the model a persona suited to the task.",
    "creative": "Don't be afraid to be creative when writing the instruction.",
    "descriptive": "Make the instruction detailed: say what each output must contain.",
    "rules": "State explicit rules for choosing each output value.",
}

SUMMARY_SIGNATURE = Signature(
    name="dataset_summary",
    instructions=("Given several examples from a dataset, write a short summary of it: what the "
                  "inputs are like, what the outputs are, and any patterns that would help someone "
                  "write instructions for the task."),
    inputs=(FieldSpec(name="examples", desc="examples from the training set"),),
    outputs=(FieldSpec(name="summary", desc="a few sentences describing the dataset"),),
)

PROPOSER_SIGNATURE = Signature(
    name="propose_instruction",
    instructions=("Write a new instruction for one step of a language-model program. The instruction "
                  "will be the step's system prompt objective; it should help the model produce "
                  "correct outputs for inputs like the examples. Reply with the instruction only."),
    inputs=(
        FieldSpec(name="dataset_summary", desc="a summary of the task's training data"),
        FieldSpec(name="program_description", desc="the program's steps and their signatures"),
        FieldSpec(name="step_description", desc="the step the instruction is for"),
        FieldSpec(name="examples", desc="example inputs and correct outputs of this step"),
        FieldSpec(name="current_instruction", desc="the step's instruction today"),
        FieldSpec(name="tip", desc="a suggestion for how to write the instruction"),
    ),
    outputs=(FieldSpec(name="proposed_instruction", desc="the new instruction"),),
)

_MAX_VALUE_CHARS = 400
_LABEL = re.compile(r"^(?:proposed[ _])?instruction\s*:\s*", re.I)


def one_step_program(signature: Signature, lm: LM) -> Program:
    """A program of a single Predict step on `lm`, for the optimizer's own LM calls."""
    return GraphProgram([Step(module=Predict(signature, name=signature.name), bindings={})],
                        name=signature.name, lms={"default": lm})


def format_examples(rows: Sequence[Mapping[str, Any]], *, limit: int | None = None) -> str:
    """Rows as numbered `field: value` blocks (long values cut) for a prompt."""
    blocks = []
    for i, row in enumerate(rows[:limit] if limit is not None else rows, 1):
        lines = [f"Example {i}:"]
        for key, value in row.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            text = " ".join(text.split())
            if len(text) > _MAX_VALUE_CHARS:
                text = text[:_MAX_VALUE_CHARS].rsplit(" ", 1)[0] + "..."
            lines.append(f"{key}: {text}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "(none)"


def describe_step(program: Program, predictor_name: str) -> str:
    """One LM call's name, signature and field descriptions."""
    sig = program.predictor(predictor_name).signature
    lines = [f"step '{predictor_name}': {sig.render()}"]
    lines += [f"  input {f.name}: {f.desc}" for f in sig.inputs if f.desc]
    lines += [f"  output {f.name}: {f.desc}" for f in sig.outputs if f.desc]
    return "\n".join(lines)


def describe_program(program: Program) -> str:
    """The program's structure: its LM calls in order, with what each reads and writes."""
    named = program.named_predictors()
    lines = [f"program '{program.name}' makes {len(named)} kind(s) of LM call, in this order:"]
    for i, (name, predictor) in enumerate(named, 1):
        lines.append(f"{i}. {name}: {predictor.signature.render()}")
    return "\n".join(lines)


async def summarize_dataset(lm: LM, trainset: Sequence[Example], *, seed: int, sample_size: int = 20) -> str:
    """A short LM-written summary of a seeded sample of the training set ("" if it fails)."""
    if not trainset:
        return ""
    rng = random.Random(f"mipro-summary-{seed}")
    sample = rng.sample(list(trainset), min(sample_size, len(trainset)))
    program = one_step_program(SUMMARY_SIGNATURE, lm)
    try:
        prediction = await program.acall({"examples": format_examples(sample)})
    except StepFailed:
        return ""  # grounding is a help, not a requirement
    return " ".join(str(prediction["summary"]).split())


async def propose_instructions(program: Program, step_name: str, *, lm: LM, n: int, seed: int,
                               dataset_summary: str = "",
                               demo_sets: Sequence[Sequence[Mapping[str, Any]]] = (),
                               temperature: float = 0.7, max_demos: int = 3,
                               concurrency: int = 16) -> list[str]:
    """Up to `n` distinct instructions for a step; the first is always the original."""
    original = program.predictor(step_name).signature.instructions
    if n <= 1:
        return [original]
    rng = random.Random(f"mipro-tips-{seed}-{step_name}")
    tips = [rng.choice(sorted(TIPS)) for _ in range(1, n)]  # drawn up front: order-independent
    shown = [d for d in demo_sets if d] or [[]]
    proposer = one_step_program(PROPOSER_SIGNATURE, lm)
    common = {"dataset_summary": dataset_summary or "(no summary)",
              "program_description": describe_program(program),
              "step_description": describe_step(program, step_name),
              # What the model sees when there is none: never a placeholder a proposal could copy.
              "current_instruction": original or default_instructions(program.predictor(step_name).signature)}
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        demos = shown[(i - 1) % len(shown)][:max_demos]
        inputs = {**common, "examples": format_examples(demos), "tip": TIPS[tips[i - 1]] or "(no tip)"}
        async with sem:
            prediction = await proposer.acall(inputs, sample_index=i, temperature=temperature)
        return str(prediction["proposed_instruction"])

    results = await asyncio.gather(*(one(i) for i in range(1, n)), return_exceptions=True)
    proposals: list[str] = []
    for result in results:
        if isinstance(result, FATAL_LM_ERRORS):
            raise result
        if isinstance(result, BaseException) and not isinstance(result, (StepFailed, ValueError)):
            raise result
        proposals.append(result if isinstance(result, str) else "")
    return clean_proposals(original, proposals)


def clean_proposals(original: str, proposals: Sequence[str]) -> list[str]:
    """`original` first, then the proposals stripped, without empty ones and duplicates."""
    out = [original]
    seen = {_norm(original)}
    for text in proposals:
        text = _strip(text)
        key = _norm(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def _strip(text: str) -> str:
    # LMs like to label or quote their answer; neither belongs in the instruction.
    previous = None
    while text != previous:
        previous = text
        text = _LABEL.sub("", text.strip()).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
            text = text[1:-1]
    return text


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()

"""Few-shot demos: labelled examples, and demos bootstrapped from the program's own traces.

Bootstrapping (after DSPy's BootstrapFewShot): a teacher — the program itself, or the same
program on the spec's `teacher` LM — runs on training examples; every run whose *final*
output passes the metric yields a demo for *every* predictor that ran, intermediate ones
and those inside composite modules (a ReAct loop, a refine revision) included, so LM calls
without labels of their own still get demonstrations. Chain-of-thought demos keep the
generated reasoning; samples a best_of_n/refine step did not keep are not demos.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from promptc.core.example import Example
from promptc.core.program import PredictorState, Program
from promptc.core.trace import Trace
from promptc.errors import FATAL_LM_ERRORS, BudgetExhausted, StepFailed
from promptc.lm.base import LM
from promptc.metrics.config import NamedMetric


class BootstrapSettings(BaseModel):
    """Knobs shared by bootstrap_few_shot, random_search and mipro."""

    model_config = {"extra": "forbid"}

    max_bootstrapped_demos: int = 4
    max_labeled_demos: int = 16
    max_rounds: int = 1
    teacher_demos: int = 4  # labelled demos the teacher sees while bootstrapping (DSPy: max_labeled_demos)
    metric_threshold: float | None = None  # default: the metric's own pass threshold


@dataclass
class Bootstrapped:
    """Demos per predictor from successful runs, and which training examples they used."""

    demos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by predictor name
    used: set[int] = field(default_factory=set)
    traces: list[Trace] = field(default_factory=list)
    attempted: int = 0


def labeled_demo(program: Program, predictor_name: str, example: Mapping[str, Any]) -> dict[str, Any] | None:
    """A demo for one predictor from a labelled example, if it holds the predictor's fields."""
    sig = program.predictor(predictor_name).signature
    sources = program.input_sources(predictor_name)
    demo: dict[str, Any] = {}
    for f in sig.inputs:
        source = sources.get(f.name, f.name)
        if source not in example and f.name not in example:
            return None
        demo[f.name] = example.get(f.name, example.get(source))
    outputs = {f.name: example[f.name] for f in sig.outputs if f.name in example}
    if not outputs:
        return None
    for f in sig.outputs:  # a label it can't produce (e.g. another branch's class) is no demo for it
        if f.name in outputs:
            try:
                f.type.coerce(outputs[f.name])
            except ValueError:
                return None
    return {**demo, **outputs}


def labeled_state(program: Program, examples: Sequence[Example], k: int) -> dict[str, PredictorState]:
    """Every predictor gets up to k labelled demos (from the examples that fit it)."""
    state = program.state()
    for name in state:
        demos = [d for ex in examples if (d := labeled_demo(program, name, ex)) is not None]
        state[name] = PredictorState(instructions=state[name].instructions, demos=demos[:k])
    return state


async def bootstrap(teacher: Program, trainset: Sequence[Example], metric: NamedMetric, *,
                    max_demos: int, max_rounds: int = 1, threshold: float | None = None,
                    concurrency: int = 16, lms: Mapping[str, LM] | None = None,
                    teacher_demos: int = 0, rng: random.Random | None = None) -> Bootstrapped:
    """Run the teacher over `trainset` (in order) until `max_demos` runs pass the metric.

    With `teacher_demos`, the teacher is shown that many labelled training examples (a seeded
    sample, never the row it is running on), as DSPy's BootstrapFewShot does: a few-shot
    teacher gets more rows right and in the expected format, so more of its runs become demos.
    """
    out = Bootstrapped()
    if max_demos <= 0:
        return out
    passing = metric.threshold if threshold is None else threshold
    sem = asyncio.Semaphore(concurrency)
    shown = (rng or random.Random(0)).sample(list(trainset), min(teacher_demos + 1, len(trainset))) \
        if teacher_demos > 0 else []

    def teacher_for(example: Example) -> Program:
        if not shown:
            return teacher
        others = [ex for ex in shown if ex is not example][:teacher_demos]
        return teacher.with_state(labeled_state(teacher, others, teacher_demos))

    async def attempt(index: int, example: Example, round_: int) -> tuple[int, Trace | None]:
        async with sem:
            # Round 0 replays the LM's own setting; later rounds sample afresh, as DSPy does.
            kwargs: dict[str, Any] = {} if round_ == 0 else {"sample_index": round_,
                                                           "temperature": 0.7 + 0.001 * round_}
            try:
                prediction = await teacher_for(example).acall(example.inputs(), lms=lms, **kwargs)
                result = await metric.acall(example, dict(prediction), prediction.trace)
            except FATAL_LM_ERRORS:
                raise
            except (StepFailed, ValueError, KeyError, TypeError):
                return index, None
            return index, prediction.trace if result.score >= passing else None

    for round_ in range(max_rounds):
        pending = [i for i in range(len(trainset)) if i not in out.used]
        cursor = 0
        while cursor < len(pending) and len(out.used) < max_demos:
            need = max_demos - len(out.used)
            chunk = pending[cursor: cursor + _chunk_size(need, len(out.used), out.attempted, concurrency)]
            cursor += len(chunk)
            try:
                results = await asyncio.gather(*(attempt(i, trainset[i], round_) for i in chunk))
            except BudgetExhausted:
                if out.used:
                    return out  # keep what we have: the caller scores it and stops
                raise
            out.attempted += len(chunk)
            for index, trace in sorted(results, key=lambda r: r[0]):
                if trace is not None and len(out.used) < max_demos:
                    out.used.add(index)
                    out.traces.append(trace)
                    for record in trace.steps:
                        if record.predictor and record.error is None and not record.rejected:
                            out.demos.setdefault(record.predictor, []).append({**record.inputs, **record.outputs})
        if len(out.used) >= max_demos:
            break
    return out


def _chunk_size(need: int, passed: int, attempted: int, concurrency: int) -> int:
    """How many rows to run at once for `need` more passes: enough at the pass rate seen so far
    (a guess of 2 in 3 before any) plus one, so few calls are spent past the last demo needed."""
    rate = max(passed / attempted, 0.1) if attempted else 2 / 3
    return max(1, min(concurrency, math.ceil(need / rate) + 1))


def combine(program: Program, boot: Bootstrapped, trainset: Sequence[Example], *,
            max_bootstrapped: int, max_labeled: int, rng: random.Random | None = None) -> dict[str, PredictorState]:
    """Per predictor: bootstrapped demos first, then labelled ones from unused examples, up to the caps.

    A predictor whose bootstrapped demos carry outputs labels lack (chain-of-thought
    `reasoning`) gets no labelled demos beside them: demos that show their reasoning next
    to demos that skip it teach the model that skipping is fine.
    """
    state = program.state()
    unused = [ex for i, ex in enumerate(trainset) if i not in boot.used]
    if rng is not None:
        unused = rng.sample(unused, len(unused))
    for name in state:
        demos = boot.demos.get(name, [])[:max_bootstrapped]
        room = max(0, max_labeled - len(demos))
        if demos and _fuller_than_labels(program, name, demos):
            room = 0
        if room:
            extra = [d for ex in unused if (d := labeled_demo(program, name, ex)) is not None]
            demos = demos + extra[:room]
        state[name] = PredictorState(instructions=state[name].instructions, demos=demos)
    return state




def _fuller_than_labels(program: Program, name: str, demos: Sequence[Mapping[str, Any]]) -> bool:
    """Whether bootstrapped `demos` show outputs a labelled example would not (e.g. reasoning)."""
    optional = set(program.predictor(name).optional_outputs)
    return any(k in optional for d in demos for k in d)

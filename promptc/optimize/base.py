"""The compile contract shared by every optimizer.

An optimizer gets a `CompileContext` — the student program, train and dev examples, the
metric, a seed and a trial log — and returns the best program it found. Every candidate
it scores is a `Trial`, appended to `trials.jsonl` as soon as it is scored: that file is
the optimization trajectory *and* the checkpoint (`--resume` skips finished trials, and
the LM cache replays the calls that built them).

Scores that decide are always on the dev set, never on the examples that became demos.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from promptc.core.example import Example
from promptc.core.program import PredictorState, Program
from promptc.core.trace import Trace
from promptc.errors import UsageError, output_errors
from promptc.lm.base import LM, Usage
from promptc.lm.budget import Budget
from promptc.metrics.config import NamedMetric
from promptc.runner.batch import RowResult, WorkItem, execute
from promptc.runner.jsonl import JsonlAppender, repair_tail


class Trial(BaseModel):
    """One scored candidate program."""

    index: int
    kind: str = Field(description="e.g. zero_shot, labeled, bootstrapped, mipro")
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    score: float | None = Field(default=None, description="mean primary metric on the eval set")
    n: int = 0
    full_eval: bool = True
    instance_scores: list[float | None] = Field(
        default_factory=list, description="per example, in order (None: an error row); only when asked for")
    state: dict[str, PredictorState] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0
    # Optional, so trial files written before they existed still resume:
    overhead: Usage = Field(default_factory=Usage, description="spent since the previous trial, outside any "
                            "trial (proposals, reflections, rollouts)")
    finished_at: str | None = Field(default=None, description="UTC time it was logged (ISO 8601)")


@dataclass
class RunningTrial:
    """The candidate being built or scored now (for a live view); `state` once it is built."""

    index: int
    kind: str
    description: str
    started: float
    state: dict[str, PredictorState] | None = None


class TrialLog:
    """Appends trials to a JSONL file and remembers finished ones for --resume."""

    def __init__(self, path: Path | None, *, resume: bool = False,
                 on_trial: Callable[[Trial], None] | None = None):
        self.path = path
        self.on_trial = on_trial
        self.trials: dict[int, Trial] = {}
        self.planned: int | None = None  # trials the optimizer means to log (None: not known)
        self.running: RunningTrial | None = None
        self.mark = Usage()  # the compile's spend when the last trial was logged (this session)
        if path is not None and path.exists():
            if resume:
                repair_tail(path)
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    if line.strip():
                        try:
                            trial = Trial.model_validate_json(line)
                        except ValueError:
                            raise UsageError(f"{path}:{number}: not a trial record; cannot resume") from None
                        self.trials[trial.index] = trial
            else:
                with output_errors(path, "remove"):
                    path.unlink()

    @property
    def resumed(self) -> int:
        return len(self.trials)

    def get(self, index: int) -> Trial | None:
        return self.trials.get(index)

    def record(self, trial: Trial) -> None:
        self.trials[trial.index] = trial
        self.running = None
        if self.path is not None:  # a failed write leaves whole lines only (OutputError)
            with JsonlAppender(self.path) as fh:
                fh.write_line(trial.model_dump_json())
        if self.on_trial is not None:
            self.on_trial(trial)

    def best(self, *, full_only: bool = True) -> Trial | None:
        """The highest-scoring trial; ties go to the earliest (simplest) one. When no trial was
        scored, the latest unscored one (an optimizer that does not score, e.g. knn_few_shot)."""
        scored = [t for t in self.trials.values() if t.score is not None and (t.full_eval or not full_only)]
        if not scored:
            unscored = [t for t in self.trials.values() if t.score is None and t.n == 0]
            return max(unscored, key=lambda t: t.index, default=None)
        return max(sorted(scored, key=lambda t: t.index), key=lambda t: t.score or 0.0, default=None)

    def stopped_pick(self) -> Trial | None:
        """What an optimizer chose to write when a budget stopped it: the latest trial, if its
        params say `stopped_early` (e.g. a race's leader so far); None otherwise."""
        latest = max(self.trials.values(), key=lambda t: t.index, default=None)
        return latest if latest is not None and latest.params.get("stopped_early") else None


@dataclass
class CompileContext:
    """Everything an optimizer may use."""

    program: Program
    trainset: list[Example]
    devset: list[Example]
    metric: NamedMetric
    seed: int = 0
    concurrency: int = 16
    teacher_lms: Mapping[str, LM] | None = None
    log: TrialLog = field(default_factory=lambda: TrialLog(None))
    settings: dict[str, Any] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)  # its `spent` is what every LM call cost
    traces: list[Trace] = field(default_factory=list)  # successful teacher runs (for finetune export)

    def plan_trials(self, n: int | None) -> None:
        """Announce how many trials this compile will log (progress bars, ETA); None: not known."""
        self.log.planned = n

    async def score(self, program: Program, examples: Sequence[Example] | None = None) -> tuple[float, list[float]]:
        """Mean primary-metric score of `program` on `examples` (default: the dev set)."""
        return await score_program(program, self.devset if examples is None else examples, self.metric,
                                   concurrency=self.concurrency)

    async def trial(self, index: int, kind: str, build: Callable[[], Awaitable[Program]], *,
                    description: str = "", params: dict[str, Any] | None = None,
                    examples: Sequence[Example] | None = None, per_example: bool = False,
                    scored: bool = True) -> Trial:
        """Build, score and log candidate `index`, or return it from the log if it is done.

        `per_example` keeps every example's score in the trial (GEPA's Pareto front needs
        them). With `scored=False` the candidate is logged unscored (`score` None): a product
        that needs no scoring to be used. A trial whose params say `stopped_early` (a budget
        cut it short) is not finished: resume builds it again (its calls replay from the cache).
        """
        done = self.log.get(index)
        if done is not None and not done.params.get("stopped_early"):
            return done
        start = time.monotonic()
        before = self.budget.spent.model_copy()
        self.log.running = RunningTrial(index, kind, description, start)
        program = await build()
        self.log.running.state = program.state()
        each = (await score_each(program, self.devset if examples is None else examples, self.metric,
                                 concurrency=self.concurrency)) if scored else []
        scores = [x for x in each if x is not None]
        mean = _mean(scores) if scored else None
        spent = self.budget.spent
        trial = Trial(index=index, kind=kind, description=description, params=params or {},
                      score=mean, n=len(scores), full_eval=scored and examples is None,
                      instance_scores=each if per_example else [], state=program.state(),
                      usage=_minus(spent, before), seconds=time.monotonic() - start,
                      overhead=_minus(before, self.log.mark),
                      finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.log.mark = spent.model_copy()
        self.log.record(trial)
        return trial


class Optimizer(Protocol):
    """What `promptc compile` drives."""

    name: str

    def planned_calls(self, ctx: CompileContext) -> int:
        """An upper estimate of LM calls, for --dry-run."""
        ...

    async def compile(self, ctx: CompileContext) -> Program:
        """The best program found (stops early, keeping the best, on BudgetExhausted)."""
        ...


async def score_program(program: Program, examples: Sequence[Example], metric: NamedMetric, *,
                        concurrency: int = 16) -> tuple[float, list[float]]:
    """Mean metric score over `examples` and the scores it is made of, scored like `eval`
    (`promptc.evaluation.scoring`): a failed answer scores 0, an error row counts in neither.
    Budget exhaustion propagates."""
    each = await score_each(program, examples, metric, concurrency=concurrency)
    ordered = [x for x in each if x is not None]
    return _mean(ordered), ordered


def _minus(a: Usage, b: Usage) -> Usage:
    return Usage(**{name: max(0, getattr(a, name) - getattr(b, name)) for name in Usage.model_fields})


def _mean(scores: Sequence[float]) -> float:
    return sum(scores) / len(scores) if scores else 0.0


async def score_each(program: Program, examples: Sequence[Example], metric: NamedMetric, *,
                     concurrency: int = 16) -> list[float | None]:
    """Every example's score, in order; None for an error row."""
    from promptc.evaluation.scoring import score_row

    scores: dict[int, float] = {}

    def keep(result: RowResult) -> None:
        score = result.extra.scores.get(metric.name) if result.extra is not None else None
        if score is not None:
            scores[result.item.row] = score

    items = [WorkItem(row=i, inputs=ex.inputs(), record=dict(ex)) for i, ex in enumerate(examples)]
    await execute(program, items, keep, concurrency=concurrency, post=lambda r: score_row(r, [metric]))
    return [scores.get(i) for i in range(len(items))]


def ready(program: Program) -> Callable[[], Awaitable[Program]]:
    """A `build` for `CompileContext.trial` when the candidate is already built."""
    async def build() -> Program:
        return program
    return build


def examples_from_rows(rows: Sequence[Mapping[str, Any]], input_keys: Sequence[str]) -> list[Example]:
    """Data rows as Examples whose inputs are the program's input fields."""
    return [Example(row, input_keys=input_keys) for row in rows]


def dumps_state(state: Mapping[str, PredictorState]) -> str:
    return json.dumps({k: v.model_dump() for k, v in state.items()}, sort_keys=True)

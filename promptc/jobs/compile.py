"""`promptc.compile`: optimize a program's instructions and demos against a metric.

    result = promptc.compile("specs/intent.yaml", out="build/intent")
    result.score_before, result.score_after, result.path

The program is a spec path (loaded here, and its runtime closed here), a `LoadedProgram`
or a `Program`. Train and dev data are JSONL paths or rows; without them the spec's
`data:` entries are used, and without a dev set a seeded 30% of train scores candidates.
Budgets stop the compile cleanly and keep the best candidate so far; with `out`, every
trial is checkpointed to `out/trials.jsonl` and `resume=True` continues from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from promptc.core.example import Example
from promptc.errors import BudgetExhausted, UsageError
from promptc.jobs.data import DataLike, as_source, load_examples, split
from promptc.jobs.metrics import MetricLike
from promptc.jobs.program import LoadedProgram, ProgramLike, as_loaded
from promptc.lm.base import Usage
from promptc.lm.budget import Budget, budgeted
from promptc.runner.source import RowSource

# Without an `optimizer:` block: the best held-out accuracy per compile call measured on the
# benchmark LM (README, "Choosing an optimizer").
DEFAULT_OPTIMIZER = "reflective_bootstrap"

if TYPE_CHECKING:
    from promptc.artifacts.program_file import ProgramArtifact
    from promptc.core.trace import Trace
    from promptc.optimize.base import CompileContext, Optimizer, Trial


class CompileEvents:
    """What a compile reports while it runs; the CLI overrides these to print them."""

    def split(self, n_dev: int, n_total: int) -> None:
        """No dev set was given: `n_dev` of `n_total` training rows were split off."""

    def search(self, ctx: CompileContext) -> None:
        """The search is set up: `ctx.program` is the original, `ctx.log` will hold the trials
        (its `planned` and `running` say how far the search is)."""

    def resumed(self, trials: list[Trial], log: Path, budget: Budget) -> None:
        """Finished trials read back from `log` (resume)."""

    def started(self, name: str, optimizer: str, n_train: int, n_dev: int, seed: int) -> None:
        """The search starts."""

    def trial(self, trial: Trial, budget: Budget) -> None:
        """A candidate was scored (and checkpointed)."""

    async def live(self, ctx: CompileContext) -> None:
        """Runs as a task during the search (e.g. a live status line); cancelled at the end."""


class CompilePlan(BaseModel):
    """What a compile would do (`--dry-run`): nothing is sent to an LM."""

    optimizer: str
    settings: dict[str, Any]
    train: int
    dev: int
    steps: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None


@dataclass
class CompileResult:
    """The compiled program (on the same runtime), its artifact, and the search."""

    program: LoadedProgram
    artifact: ProgramArtifact
    path: Path | None  # program.json, when `out` was given
    trials: list[Trial]
    best: Trial | None
    metric: str
    usage: Usage
    stopped: str | None = None  # why a budget stopped the search early
    traces: list[Trace] = field(default_factory=list)

    @property
    def score_before(self) -> float | None:
        return self.artifact.provenance.get("dev_score_before")

    @property
    def score_after(self) -> float | None:
        return self.artifact.provenance.get("dev_score_after")

    def save(self, out: str | Path) -> Path:
        """Write the compile folder (program.json, prompts/, traces.jsonl); program.json's path."""
        from promptc.artifacts.compiled import write_compiled

        return write_compiled(Path(out), self.artifact, traces=self.traces,
                              trials=[t.model_dump(mode="json") for t in self.trials])


@dataclass
class _Setup:
    source: LoadedProgram
    ctx: CompileContext
    optimizer: Optimizer
    name: str
    train: RowSource
    dev: RowSource | None
    fingerprint: dict[str, Any]
    metrics: Sequence[MetricLike] | None


def compile(program: ProgramLike, trainset: DataLike | None = None, devset: DataLike | None = None, *,
            optimizer: str | None = None, settings: Mapping[str, Any] | None = None,
            metric: Sequence[MetricLike] | None = None, out: str | Path | None = None, seed: int = 0,
            max_calls: int | None = None, max_cost: float | None = None, resume: bool = False,
            concurrency: int | None = None, events: CompileEvents | None = None) -> CompileResult:
    """Optimize `program` and return the best program found (written to `out` if given)."""
    events = events or CompileEvents()
    source, opened = as_loaded(program)
    try:
        setup = _setup(source, trainset, devset, optimizer=optimizer, settings=settings, metric=metric,
                       seed=seed, budget=Budget(max_calls=max_calls, max_cost=max_cost),
                       concurrency=concurrency, events=events)
        return _run(setup, Path(out) if out is not None else None, resume, events)
    finally:
        if opened:
            source.close()


def plan_compile(program: ProgramLike, trainset: DataLike | None = None, devset: DataLike | None = None, *,
                 optimizer: str | None = None, settings: Mapping[str, Any] | None = None,
                 metric: Sequence[MetricLike] | None = None, seed: int = 0,
                 concurrency: int | None = None, events: CompileEvents | None = None) -> CompilePlan:
    """Planned calls, tokens and cost of `compile` with the same arguments; calls nothing."""
    from promptc.jobs.compile_setup import estimate_tokens

    source, opened = as_loaded(program)
    try:
        setup = _setup(source, trainset, devset, optimizer=optimizer, settings=settings, metric=metric,
                       seed=seed, budget=Budget(), concurrency=concurrency, events=events or CompileEvents())
    finally:
        if opened:
            source.close()
    ctx, base = setup.ctx, source.program
    calls = setup.optimizer.planned_calls(ctx)
    demos = int(ctx.settings.get("max_labeled_demos", ctx.settings.get("k", 16)))
    prompt, completion = estimate_tokens(base, ctx.trainset, calls, demos)
    price = getattr(base.lms.get("default"), "price", None)
    return CompilePlan(optimizer=setup.name, settings=ctx.settings, train=len(ctx.trainset),
                       dev=len(ctx.devset), steps=len(base.steps), calls=calls, prompt_tokens=prompt,
                       completion_tokens=completion,
                       cost=price.cost(prompt, completion) if price is not None else None)


def _setup(source: LoadedProgram, trainset: DataLike | None, devset: DataLike | None, *,
           optimizer: str | None, settings: Mapping[str, Any] | None, metric: Sequence[MetricLike] | None,
           seed: int, budget: Budget, concurrency: int | None, events: CompileEvents) -> _Setup:
    from promptc.jobs.compile_setup import fingerprint
    from promptc.jobs.metrics import resolve_metrics
    from promptc.optimize.base import CompileContext
    from promptc.optimize.registry import make_optimizer

    program = source.program
    train = as_source(trainset) if trainset is not None else source.data_path("train")
    if train is None:
        raise UsageError("no training data: pass --train FILE or set `data.train` in the spec")
    dev = as_source(devset) if devset is not None else (source.data_path("dev") if trainset is None else None)
    name, opt = _optimizer(source, optimizer, settings, make_optimizer)  # a typo'd flag before the data
    train_examples, dev_examples = _examples(train, dev, program, seed, events)
    resolved = opt.settings.model_dump()  # type: ignore[attr-defined]
    spec_path = source.spec.path if source.spec is not None else None
    lms = budgeted(program.lms, budget)
    student = program.with_state(program.state(), lms=lms)
    teacher = {**lms, "default": lms["teacher"]} if "teacher" in lms else None
    primary = next(m for m in resolve_metrics(source, metric, program=student) if m.primary)  # judge on the budget
    ctx = CompileContext(program=student, trainset=train_examples, devset=dev_examples, metric=primary,
                         seed=seed, concurrency=concurrency or source.concurrency, teacher_lms=teacher,
                         settings=resolved, budget=budget)
    return _Setup(source, ctx, opt, name, train, dev, fingerprint(spec_path, train, dev, name, resolved, seed),
                  metric)


def _examples(train: RowSource, dev: RowSource | None, program: Any, seed: int,
              events: CompileEvents) -> tuple[list[Example], list[Example]]:
    train_examples = load_examples(train, program)
    if dev is not None:
        return train_examples, load_examples(dev, program)
    train_examples, dev_examples = split(train_examples, seed)
    events.split(len(dev_examples), len(train_examples) + len(dev_examples))
    return train_examples, dev_examples


def _optimizer(source: LoadedProgram, name: str | None, settings: Mapping[str, Any] | None,
               make: Any) -> tuple[str, Optimizer]:
    decl = source.spec.document.optimizer if source.spec is not None else None
    chosen = name or (decl.name if decl else DEFAULT_OPTIMIZER)
    if settings is None:
        settings = decl.settings if decl and decl.name == chosen else {}
    try:
        return chosen, make(chosen, dict(settings))
    except ValueError as exc:
        raise UsageError(f"{source.label}: {exc}") from None


def _run(setup: _Setup, out: Path | None, resume: bool, events: CompileEvents) -> CompileResult:
    from promptc.jobs.compile_setup import check_resume
    from promptc.optimize.base import TrialLog

    ctx, source = setup.ctx, setup.source
    if resume and out is None:
        raise UsageError("--resume needs --out (the folder of the compile to continue)")
    if out is not None:
        check_resume(out, setup.fingerprint, resume)
    ctx.log = TrialLog(out / "trials.jsonl" if out is not None else None, resume=resume,
                       on_trial=lambda t: events.trial(t, ctx.budget))
    resumed = set(ctx.log.trials)
    events.search(ctx)
    if ctx.log.resumed and out is not None:
        events.resumed(sorted(ctx.log.trials.values(), key=lambda t: t.index), out / "trials.jsonl", ctx.budget)
    events.started(source.program.name, setup.name, len(ctx.trainset), len(ctx.devset), ctx.seed)
    stopped = None
    try:
        best_program = asyncio.run(_search(setup.optimizer, ctx, events))
        best = ctx.log.best()
    except BudgetExhausted as exc:
        # The optimizer's own pick if it logged one, else the best scored trial so far.
        best = ctx.log.stopped_pick() or ctx.log.best()
        if best is None:
            raise BudgetExhausted(f"{exc} before any candidate was scored; nothing to write") from None
        stopped = str(exc)
        best_program = ctx.program.with_state(best.state)
    return _result(setup, best_program, best, out, resumed, stopped)


async def _search(opt: Optimizer, ctx: CompileContext, events: CompileEvents) -> Any:
    ticker = asyncio.create_task(events.live(ctx))
    try:
        return await opt.compile(ctx)
    finally:
        ticker.cancel()
        await ctx.program.aclose()  # this loop's connections; the runtime stays open


def _result(setup: _Setup, best_program: Any, best: Trial | None, out: Path | None, resumed: set[int],
            stopped: str | None) -> CompileResult:
    from promptc.artifacts.program_file import ProgramArtifact
    from promptc.jobs.compile_setup import overhead, provenance
    from promptc.jobs.metrics import metric_configs

    ctx, source = setup.ctx, setup.source
    trials = sorted(ctx.log.trials.values(), key=lambda t: t.index)
    spec = source.spec
    artifact = ProgramArtifact.from_program(
        best_program, lm_configs=source.lm_configs, prices=spec.document.prices if spec else {},
        metric=metric_configs(source, setup.metrics),
        spec=spec.document.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False)
        if spec else None,
        base_dir=str(spec.path.resolve().parent) if spec and spec.path else None, embedder=source.embedder,
        provenance=provenance(setup.fingerprint, spec=str(spec.path) if spec and spec.path else None,
                              train=setup.train, dev=setup.dev, trials=trials, best=best, stopped=stopped,
                              extra=overhead(ctx.budget.spent, trials, resumed),
                              models={k: c.model for k, c in source.lm_configs.items()},
                              original={k: p.instructions for k, p in ctx.program.state().items()}))
    # The compiled program runs on the caller's LMs, not on the compile's budget.
    compiled = LoadedProgram(source.program.with_state(best_program.state()), source.runtime,
                             source.lm_configs, source.spec, list(artifact.metric) or None, source.label,
                             embedder=source.embedder)
    result = CompileResult(program=compiled, artifact=artifact, path=None, trials=trials, best=best,
                           metric=ctx.metric.name, usage=ctx.budget.spent, stopped=stopped,
                           traces=list(ctx.traces))
    if out is not None:
        result.path = result.save(out)
    return result

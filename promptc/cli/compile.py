"""`promptc compile`: optimize every step's instructions and demos, and write an artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promptc.cli.common import (
    BaseUrlOpt,
    CacheDirOpt,
    ModelOpt,
    NoCacheOpt,
    SpecArg,
    handle_errors,
    stderr,
    stdout,
    usage_line,
)

if TYPE_CHECKING:  # imported for real inside the command: `promptc --help` must stay fast
    from promptc.jobs.compile import CompilePlan
    from promptc.lm.budget import Budget
    from promptc.optimize.base import CompileContext, Trial

COMPILE_HELP = """Optimize the prompts of every step against the spec's metric and write a compiled artifact.

Optimizers (`optimizer:` block in the spec, or --optimizer): labeled_few_shot, bootstrap_few_shot (demos for every step from the program's own successful runs), random_search (zero-shot, labelled and bootstrapped candidates, best on dev), mipro (proposed instructions + demo sets, chosen by a Bayesian search; presets light/medium/heavy via `auto:`).

Scores that decide are always on the dev set (--dev, or a seeded 30% split of --train), never on examples that became demos.

Output folder (--out, default build/NAME/): program.json (the whole program, usable by `run`/`eval`/`export --program` without the spec), trials.jsonl (every candidate and its score), prompts/STEP.md (each final prompt), traces.jsonl.

Budgets and resume: --dry-run prints the planned calls, tokens and cost and spends nothing. --max-calls / --max-cost stop the compile cleanly and write the best program found so far. Every trial is checkpointed; after a crash or Ctrl-C, --resume continues without redoing finished trials.

Exit status: 0 compiled; 2 bad spec, data or flags; 3 LM failure (or the budget ran out before any candidate was scored).

Examples:

  promptc compile specs/intent.yaml --train datasets/intent/train.jsonl --dev datasets/intent/dev.jsonl

  promptc compile specs/math.yaml --train train.jsonl --optimizer mipro --max-cost 2.50 --out build/math

  promptc compile specs/intent.yaml --train datasets/intent/train.jsonl --dry-run
"""


@handle_errors
def compile_command(
    spec: SpecArg,
    train: Annotated[Path | None, typer.Option("--train", help="Labelled JSONL (default: the spec's data.train).")] = None,
    dev: Annotated[Path | None, typer.Option("--dev", help="Labelled JSONL that scores candidates.")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="Overrides the spec's optimizer.name.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default build/NAME/).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for splits, shuffles and searches.")] = 0,
    max_calls: Annotated[int | None, typer.Option("--max-calls", min=1, help="Stop after this many LM calls.")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", min=0, help="Stop after this many USD.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted compile in --out.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and estimate; call nothing.")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, max=4096)] = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    from promptc.jobs.compile import compile, plan_compile
    from promptc.jobs.program import lm_options, load_source

    options = lm_options(model=model, base_url=base_url, concurrency=concurrency, cache=not no_cache,
                         cache_dir=cache_dir)
    with load_source(spec, None, options) as source:
        assert source.spec is not None
        if dry_run:
            _print_plan(plan_compile(source, train, dev, optimizer=optimizer, seed=seed, events=_View()))
            return
        result = compile(source, train, dev, optimizer=optimizer, out=out or Path("build") / source.spec.document.name,
                         seed=seed, max_calls=max_calls, max_cost=max_cost, resume=resume, events=_View())
    if result.stopped:
        stderr.print(f"[yellow]stopped early[/]: {result.stopped}; wrote the best of {len(result.trials)} trial(s)")
    best = result.best
    stdout.print(f"dev {result.metric}: {_fmt(result.score_before)} -> {_fmt(result.score_after)} "
                 f"(best trial {best.index if best else '-'} of {len(result.trials)}) -> {result.path}")
    stdout.print(usage_line(result.usage))


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


class _View:
    """Prints what the compile job reports: one line per scored trial, and a live status."""

    def __init__(self) -> None:
        self.best: float | None = None

    def split(self, n_dev: int, n_total: int) -> None:
        stderr.print(f"no dev set: scoring on a seeded split ({n_dev} of {n_total} rows)")

    def resumed(self, trials: list[Trial], log: Path, budget: Budget) -> None:
        stderr.print(f"resuming: {len(trials)} finished trial(s) in {log}")
        for t in trials:
            self.trial(t, budget)

    def started(self, name: str, optimizer: str, n_train: int, n_dev: int, seed: int) -> None:
        stderr.print(f"compiling {name} with {optimizer}: {n_train} train, {n_dev} dev, seed {seed}")

    def trial(self, trial: Trial, budget: Budget) -> None:
        if trial.full_eval and trial.score is not None and (self.best is None or trial.score > self.best):
            self.best = trial.score
        scope = "dev" if trial.full_eval else f"minibatch of {trial.n}"
        cost = f", ${budget.spent.cost:.4f}" if budget.spent.cost else ""
        stderr.print(f"trial {trial.index:>3} {trial.kind:<16} {_fmt(trial.score)} ({scope})  "
                     f"best {_fmt(self.best)}  calls {budget.calls}{cost}  {trial.description}", soft_wrap=True)

    async def live(self, ctx: CompileContext) -> None:
        """A live line under the trial log: the running trial, calls and cost so far."""
        from promptc.cli.common import interactive

        if not interactive():
            return
        with stderr.status("") as status:
            while True:
                spent = ctx.budget.spent
                cost = f" · ${spent.cost:.4f}" if spent.cost else ""
                status.update(f"trial {len(ctx.log.trials)} running · {ctx.budget.calls} calls{cost}")
                await asyncio.sleep(0.25)


def _print_plan(plan: CompilePlan) -> None:
    stdout.print(f"optimizer {plan.optimizer} with {plan.settings}")
    stdout.print(f"{plan.train} train, {plan.dev} dev examples, {plan.steps} step(s)")
    stdout.print(f"planned: up to ~{plan.calls:,} LM call(s), ~{plan.prompt_tokens:,} prompt + "
                 f"~{plan.completion_tokens:,} completion tokens")
    if plan.cost is not None:
        stdout.print(f"estimated cost: up to ~${plan.cost:.2f}")
    stdout.print("nothing was sent (--dry-run); cache hits will make the real run cheaper")

"""`promptc compile`: optimize every step's instructions and demos, and write an artifact."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from promptc.cli.common import (
    BaseUrlOpt,
    CacheDirOpt,
    ModelOpt,
    NoCacheOpt,
    SpecArg,
    cache_path,
    handle_errors,
    stderr,
    stdout,
    usage_line,
)

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
    from promptc.artifacts.compiled import write_compiled
    from promptc.artifacts.program_file import ProgramArtifact
    from promptc.cli import compile_setup as setup
    from promptc.cli.eval_setup import metric_configs, resolve_metrics
    from promptc.cli.source import Source
    from promptc.errors import BudgetExhausted, UsageError
    from promptc.optimize.base import CompileContext, TrialLog
    from promptc.optimize.budget import Budget, budgeted
    from promptc.optimize.registry import make_optimizer
    from promptc.spec.lms import LMOptions
    from promptc.spec.loader import load

    options = LMOptions(model=model, base_url=base_url, concurrency=concurrency, cache=not no_cache,
                        cache_path=cache_path(cache_dir))
    loaded = load(spec, options=options)
    program = loaded.program
    train_path = train or loaded.data_path("train")
    if train_path is None:
        raise UsageError("no training data: pass --train FILE or set `data.train` in the spec")
    dev_path = dev or (loaded.data_path("dev") if train is None else None)
    trainset = setup.load_examples(train_path, program)
    if dev_path is not None:
        devset = setup.load_examples(dev_path, program)
    else:
        trainset, devset = setup.split(trainset, seed)
        stderr.print(f"no dev set: scoring on a seeded split ({len(devset)} of {len(trainset) + len(devset)} rows)")
    decl = loaded.document.optimizer
    name = optimizer or (decl.name if decl else "bootstrap_few_shot")
    settings = decl.settings if decl and decl.name == name else {}
    try:
        opt = make_optimizer(name, settings)
    except ValueError as exc:
        raise UsageError(f"{spec}: {exc}") from None
    out_dir = out or Path("build") / loaded.document.name
    resolved = opt.settings.model_dump()  # type: ignore[attr-defined]
    fp = setup.fingerprint(spec, train_path, dev_path, name, resolved, seed)

    budget = Budget(max_calls=max_calls, max_cost=max_cost)
    lms = budgeted(program.lms, budget)
    student = program.with_state(program.state(), lms=lms)
    teacher = {**lms, "default": lms["teacher"]} if "teacher" in lms else None
    source = Source(student, loaded.lm_configs, loaded, None, str(spec))
    primary = next(m for m in resolve_metrics(source, student, None) if m.primary)  # judge on the budget too
    ctx = CompileContext(program=student, trainset=trainset, devset=devset, metric=primary, seed=seed,
                         concurrency=loaded.lm_configs["default"].concurrency, teacher_lms=teacher,
                         settings=resolved, budget=budget)
    if dry_run:
        _print_plan(ctx, opt, name, resolved, program)
        return
    setup.check_resume(out_dir, fp, resume)
    view = _TrialView(budget)
    ctx.log = TrialLog(out_dir / "trials.jsonl", resume=resume, on_trial=view.show)
    resumed = set(ctx.log.trials)
    if ctx.log.resumed:
        stderr.print(f"resuming: {ctx.log.resumed} finished trial(s) in {out_dir / 'trials.jsonl'}")
        for t in sorted(ctx.log.trials.values(), key=lambda t: t.index):
            view.show(t)
    stderr.print(f"compiling {loaded.document.name} with {name}: {len(trainset)} train, {len(devset)} dev, "
                 f"seed {seed}")
    stopped = None
    try:
        best_program = asyncio.run(_compile(opt, ctx))
    except BudgetExhausted as exc:
        if ctx.log.best() is None:
            raise BudgetExhausted(f"{exc} before any candidate was scored; nothing to write") from None
        stopped = str(exc)
        best_program = student.with_state(ctx.log.best().state)  # type: ignore[union-attr]
    best = ctx.log.best()
    trials = sorted(ctx.log.trials.values(), key=lambda t: t.index)
    artifact = ProgramArtifact.from_program(
        best_program, lm_configs=loaded.lm_configs, prices=loaded.document.prices,
        metric=metric_configs(source, program, None),
        spec=loaded.document.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False),
        base_dir=str(spec.resolve().parent),
        provenance=setup.provenance(fp, spec=spec, train=train_path, dev=dev_path, trials=trials,
                                    best=best, stopped=stopped,
                                    extra=setup.overhead(budget.spent, trials, resumed)))
    path = write_compiled(out_dir, artifact, traces=ctx.traces)
    if stopped:
        stderr.print(f"[yellow]stopped early[/]: {stopped}; wrote the best of {len(trials)} trial(s)")
    before, after = artifact.provenance["dev_score_before"], artifact.provenance["dev_score_after"]
    stdout.print(f"dev {primary.name}: {_fmt(before)} -> {_fmt(after)} (best trial {best.index if best else '-'} "
                 f"of {len(trials)}) -> {path}")
    stdout.print(usage_line(budget.spent))


async def _compile(opt: Any, ctx: Any) -> Any:
    from promptc.cli.common import interactive

    ticker = asyncio.create_task(_live_status(ctx)) if interactive() else None
    try:
        return await opt.compile(ctx)
    finally:
        if ticker is not None:
            ticker.cancel()
        await ctx.program.aclose()


async def _live_status(ctx: Any) -> None:
    """A live line under the trial log: the running trial, calls and cost so far."""
    with stderr.status("") as status:
        while True:
            spent = ctx.budget.spent
            cost = f" · ${spent.cost:.4f}" if spent.cost else ""
            status.update(f"trial {len(ctx.log.trials)} running · {ctx.budget.calls} calls{cost}")
            await asyncio.sleep(0.25)


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


class _TrialView:
    """One line per scored trial: its score, the best so far, calls and cost."""

    def __init__(self, budget: Any):
        self.budget = budget
        self.best: float | None = None

    def show(self, trial: Any) -> None:
        if trial.full_eval and trial.score is not None and (self.best is None or trial.score > self.best):
            self.best = trial.score
        scope = "dev" if trial.full_eval else f"minibatch of {trial.n}"
        cost = f", ${self.budget.spent.cost:.4f}" if self.budget.spent.cost else ""
        stderr.print(f"trial {trial.index:>3} {trial.kind:<16} {_fmt(trial.score)} ({scope})  "
                     f"best {_fmt(self.best)}  calls {self.budget.calls}{cost}  {trial.description}",
                     soft_wrap=True)


def _print_plan(ctx: Any, opt: Any, name: str, settings: dict[str, Any], program: Any) -> None:
    from promptc.cli.compile_setup import estimate_tokens

    calls = opt.planned_calls(ctx)
    demos = int(settings.get("max_labeled_demos", settings.get("k", 16)))
    prompt, completion = estimate_tokens(program, ctx.trainset, calls, demos)
    stdout.print(f"optimizer {name} with {settings}")
    stdout.print(f"{len(ctx.trainset)} train, {len(ctx.devset)} dev examples, {len(program.steps)} step(s)")
    stdout.print(f"planned: up to ~{calls:,} LM call(s), ~{prompt:,} prompt + ~{completion:,} completion tokens")
    price = getattr(program.lms.get("default"), "price", None)
    if price is not None:
        stdout.print(f"estimated cost: up to ~${price.cost(prompt, completion):.2f}")
    stdout.print("nothing was sent (--dry-run); cache hits will make the real run cheaper")

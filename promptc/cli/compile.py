"""`promptc compile`: optimize every step's instructions and demos, and write an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from promptc.cli.common import (
    BaseUrlOpt,
    CacheDirOpt,
    ColumnOpt,
    ModelOpt,
    NoCacheOpt,
    SpecArg,
    data_file,
    handle_errors,
    one_model,
    stderr,
    stdout,
    usage_line,
)

if TYPE_CHECKING:  # imported for real inside the command: `promptc --help` must stay fast
    from promptc.jobs.compile import CompilePlan

COMPILE_HELP = """Optimize the prompts of every step against the spec's metric and write a compiled artifact.

Optimizers (`optimizer:` block in the spec, or --optimizer): labeled_few_shot, bootstrap_few_shot (demos for every step from the program's own successful runs), random_search (zero-shot, labelled and bootstrapped candidates raced on paired dev rows, finalists scored on all of dev), mipro (proposed instructions + demo sets, chosen by a Bayesian search on paired dev rows, finalists scored on `val_size` validation rows; presets light/medium/heavy via `auto:`), gepa (reflective evolution: the seed gets raced bootstrapped demos, a reflection LM rewrites one step's instruction from traces and metric feedback of training rows, children kept only if they beat their parent on the same rows, parents drawn from a per-example Pareto front on a dev subset, complementary lines merged, finalists confirmed on more dev rows; budget `max_metric_calls` or `auto: light|medium|heavy`), knn_few_shot (a pool of bootstrapped demos per step; each call shows the `k` pool demos nearest its inputs, by BM25 over words or, with a spec-level `embedder: {model: ...}`, by embedding cosine; settings k, pool_size, similarity, diversity, score_dev; the pool and its vectors are saved in program.json), reflective_bootstrap (the default without an `optimizer:` block: the program runs once on a sample of training rows; the passing runs are raced as demos (each the only demo on the same few dev rows, the better half kept per round), and a reflection LM writes instruction candidates from the passes and failures with the metric's feedback, chosen on one paired dev subset and confirmed on more rows, the original instruction kept only if it wins significantly; ~315 calls on one-step programs).

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
    train: Annotated[Path | None, typer.Option("--train", help="Labelled .jsonl, .csv or .parquet (default: the spec's data.train).")] = None,
    dev: Annotated[Path | None, typer.Option("--dev", help="Labelled data that scores candidates.")] = None,
    column: ColumnOpt = None,
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
    from promptc.cli.compile_view import TrialView, fmt
    from promptc.jobs.compile import compile, plan_compile
    from promptc.jobs.program import lm_options, load_source
    from promptc.jobs.provenance import price_warnings, provenance

    options = lm_options(model=one_model(model, "compile"), base_url=base_url, concurrency=concurrency, cache=not no_cache,
                         cache_dir=cache_dir)
    with load_source(spec, None, options) as source:
        assert source.spec is not None
        warnings = price_warnings(provenance(source))  # --max-cost cannot stop what costs "$0"
        if dry_run:
            _print_plan(plan_compile(source, data_file(train, column), data_file(dev, column), optimizer=optimizer, seed=seed, events=TrialView()))
            return
        result = compile(source, data_file(train, column), data_file(dev, column), optimizer=optimizer, out=out or Path("build") / source.spec.document.name,
                         seed=seed, max_calls=max_calls, max_cost=max_cost, resume=resume, events=TrialView())
    if result.stopped:
        stderr.print(f"[yellow]stopped early[/]: {result.stopped}; wrote the best of {len(result.trials)} trial(s)")
    best = result.best
    if best is None or best.score is None and not result.stopped:
        stdout.print(f"compiled without scoring on dev -> {result.path}\n"
                     f"to score it: promptc eval --program {result.path.parent if result.path else 'OUT'} "
                     "--data DEV.jsonl")
    else:
        stdout.print(f"dev {result.metric}: {fmt(result.score_before)} -> {fmt(result.score_after)} "
                     f"(best trial {best.index if best else '-'} of {len(result.trials)}) -> {result.path}")
    stdout.print(usage_line(result.usage))
    for line in warnings:
        stderr.print(f"[yellow]warning:[/] {escape(line)}")


def _print_plan(plan: CompilePlan) -> None:
    stdout.print(f"optimizer {plan.optimizer} with {plan.settings}")
    stdout.print(f"{plan.train} train, {plan.dev} dev examples, {plan.steps} step(s)")
    stdout.print(f"planned: up to ~{plan.calls:,} LM call(s), ~{plan.prompt_tokens:,} prompt + "
                 f"~{plan.completion_tokens:,} completion tokens")
    if plan.cost is not None:
        stdout.print(f"estimated cost: up to ~${plan.cost:.2f}")
    stdout.print("nothing was sent (--dry-run); cache hits will make the real run cheaper")

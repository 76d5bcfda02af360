"""`promptc compare`: several programs and/or models on the same rows, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptc.cli.common import BaseUrlOpt, CacheDirOpt, NoCacheOpt, handle_errors, stderr

COMPARE_HELP = """Evaluate several programs and/or models on the same labelled rows and compare them.

Each PROGRAM is a spec (YAML) or a compiled artifact (program.json or its folder). Every --model makes one variant per program (program x model); without --model each program runs on its own LM. Variants share the response cache, so a request two of them send is answered once. Metrics are the first program's (or --metric); data is --data, or the first spec's data.dev.

Prints a matrix (variants x metrics with 95% intervals, the difference from the first variant with its paired p-value: exact McNemar for pass/fail scores, a paired permutation test otherwise; tokens, cost, latency) and the rows that flipped (passed in one variant, not in another) with both outputs.

Exit status: 0 done; 2 spec, usage or input error; 3 LM/infrastructure failure.

Examples:

  promptc compare specs/intent.yaml build/intent -d datasets/intent/dev.jsonl --report compare.html

  promptc compare specs/math.yaml --model gpt-4o-mini --model gpt-4o --report compare.json
"""


@handle_errors
def compare_command(
    programs: Annotated[list[Path], typer.Argument(
        help="Specs (YAML) or compiled artifacts to compare; the first is the reference.",
        show_default=False, metavar="PROGRAM...")],
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Labelled JSONL (default: the first spec's data.dev).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="A model to run every program with (repeatable: one variant per model).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Metric type or python:MODULE:FUNC (repeatable); replaces the first program's.")] = None,
    report: Annotated[list[Path] | None, typer.Option("--report", help="Report file: .json or .html (repeatable).")] = None,
    show_flipped: Annotated[int, typer.Option("--show-flipped", min=0, help="Print up to N flipped rows.")] = 5,
    alpha: Annotated[float, typer.Option("--alpha", min=0, max=1, help="Significance level of the paired tests.")] = 0.05,
    offline: Annotated[bool, typer.Option("--offline", help="Never send a request: a cache miss is exit 3.")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, max=4096)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N rows.")] = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    from promptc.cli.compare_output import VariantProgress, print_comparison
    from promptc.jobs.compare import compare

    with VariantProgress() as progress:
        result = compare(programs, data, models=model or (), metrics=metric, limit=limit,
                         concurrency=concurrency, alpha=alpha, base_url=base_url, cache=not no_cache,
                         cache_dir=cache_dir, offline=offline, reports=report or [],
                         on_variant=progress.variant, on_start=progress.start, on_update=progress.update)
    for line in result.warnings:
        stderr.print(f"[yellow]warning:[/] {line}")
    for path in result.reports:
        stderr.print(f"report: {path}")
    print_comparison(result.report, show_flipped=show_flipped)
    if result.exit_code:
        stderr.print(f"[red]compare failed[/] (exit {result.exit_code})")
        raise typer.Exit(result.exit_code)

"""`promptc eval`: score a spec or a compiled artifact on a labelled set, and gate CI on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from promptc.cli.batch_cmds import BatchOpt, BatchPollOpt, MaxWavesOpt, batch_options, print_event
from promptc.cli.common import (
    BaseUrlOpt,
    CacheDirOpt,
    ColumnOpt,
    MaxPromptTokensOpt,
    ModelOpt,
    NoCacheOpt,
    OtelContentOpt,
    OtelEndpointOpt,
    ProgramOpt,
    data_file,
    handle_errors,
    one_model,
    stderr,
)
from promptc.cli.run import OnError
from promptc.cli.source import OptionalSpecArg

if TYPE_CHECKING:  # imported for real inside the command: `promptc --help` must stay fast
    from promptc.jobs.evaluate import EvalResult

EVAL_HELP = """Score a spec (or a compiled artifact) on a labelled JSONL set.

Each data row holds the program's inputs and the gold fields the metrics read. Metrics come from the spec's `metric:` block, or --metric (e.g. `exact_match`, `numeric_match`, `python:mypkg.metrics:score`). The first metric, or the one marked `primary`, gates CI.

Runs with the same concurrency, retries, cache and resume machinery as `run` (--batch too: the program's LM calls go through the OpenAI Batch API; metrics and judges stay live). Prints n, errors, the mean with a 95% confidence interval, each metric, tokens, cost, latency p50/p95 and the worst examples.

Exit status: 0 pass; 1 quality gate failed (--threshold, or a significant regression against --baseline); 2 spec, usage or input error (a data row without a valid gold value included: nothing is spent); 3 LM/infrastructure failure (more than --max-error-rate of rows failed at the endpoint, a bad key, or a cache miss under --offline).

Examples:

  promptc eval specs/intent.yaml --data datasets/intent/dev.jsonl --threshold 0.6

  promptc eval specs/math.yaml --program build/math --baseline last.jsonl --output now.jsonl

  promptc eval specs/intent.yaml --report report.html --junit junit.xml --offline
"""


@handle_errors
def eval_command(
    spec: OptionalSpecArg = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Labelled .jsonl, .csv or .parquet ('-': JSONL on stdin; default: the spec's data.dev).")] = None,
    program: ProgramOpt = None,
    column: ColumnOpt = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Metric type or python:MODULE:FUNC (repeatable); replaces the spec's metrics.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Per-example results JSONL.")] = None,
    report: Annotated[list[Path] | None, typer.Option(
        "--report", help="Report file: .json, .csv, .md or .html (repeatable).")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="JUnit XML: one testcase per example.")] = None,
    show_failures: Annotated[int, typer.Option("--show-failures", min=0, help="Print the N worst examples.")] = 3,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0, max=1,
                                                    help="Fail (exit 1) when the primary mean is below this.")] = None,
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", help="Earlier --output results JSONL, or an artifact to evaluate for comparison.")] = None,
    max_regression: Annotated[float, typer.Option(
        "--max-regression", min=0, help="Allowed drop against --baseline before it can fail.")] = 0.0,
    alpha: Annotated[float, typer.Option("--alpha", min=0, max=1, help="Significance level of the paired test.")] = 0.05,
    max_error_rate: Annotated[float, typer.Option(
        "--max-error-rate", min=0, max=1, help="Exit 3 when more rows than this fail at the endpoint.")] = 0.05,
    offline: Annotated[bool, typer.Option("--offline", help="Never send a request: a cache miss is exit 3.")] = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, max=4096)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N rows.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Complete an existing --output file.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output file.")] = False,
    on_error: Annotated[OnError, typer.Option("--on-error", help="What to do with bad data lines.")] = OnError.fail,
    max_prompt_tokens: MaxPromptTokensOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    otel_endpoint: OtelEndpointOpt = None,
    otel_content: OtelContentOpt = False,
    batch: BatchOpt = False,
    batch_poll: BatchPollOpt = 10.0,
    max_waves: MaxWavesOpt = 10,
) -> None:
    from promptc.cli.progress import BatchProgress
    from promptc.jobs.evaluate import evaluate
    from promptc.jobs.program import lm_options, load_source
    from promptc.telemetry import endpoint_from, exporting

    options = lm_options(model=one_model(model, "eval"), base_url=base_url, concurrency=concurrency,
                         cache=not no_cache, cache_dir=cache_dir, offline=offline, max_prompt_tokens=max_prompt_tokens)
    with (load_source(spec, program, options) as source, BatchProgress("eval") as progress,
          exporting(endpoint_from(otel_endpoint), content=otel_content)):
        result = evaluate(source, data_file(data, column), metrics=metric, output=output, resume=resume,
                          overwrite=overwrite, limit=limit, on_error=on_error.value, threshold=threshold, baseline=baseline,
                          max_regression=max_regression, alpha=alpha, max_error_rate=max_error_rate,
                          reports=report or [], junit=junit, on_start=progress.start, on_update=progress.update,
                          batch=batch_options(batch, poll=batch_poll, max_waves=max_waves), on_batch=print_event)
    _report(result, show_failures)


def _report(result: EvalResult, show_failures: int) -> None:
    from promptc.cli.eval_output import print_files, print_summary

    print_files(result)
    for line in result.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(line)}")
    print_summary(result.summary, result.records, show_failures=show_failures)
    if result.summary.exit_code:
        stderr.print(f"[red]eval failed[/] (exit {result.summary.exit_code})")
        raise typer.Exit(result.summary.exit_code)

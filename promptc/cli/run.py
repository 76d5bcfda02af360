"""`promptc run`: batch inference over a JSONL file."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from promptc.cli.batch_cmds import (
    MAX_BYTES,
    MAX_REQUESTS,
    BatchBytesOpt,
    BatchOpt,
    BatchPollOpt,
    BatchRequestsOpt,
    MaxWavesOpt,
    batch_options,
    print_event,
    print_totals,
)
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
    stdout,
    usage_line,
)
from promptc.cli.source import OptionalSpecArg
from promptc.errors import EXIT_OK, EXIT_ROWS_FAILED

if TYPE_CHECKING:  # imported for real inside the command: `promptc --help` must stay fast
    from promptc.cli.progress import BatchProgress
    from promptc.jobs.program import LoadedProgram
    from promptc.jobs.run import RunPlan, RunResult
    from promptc.lm.batch_round import BatchOptions
    from promptc.runner.source import DataFile
    from promptc.spec.lms import LMOptions

RUN_HELP = """Run a spec's program over every row of a JSONL, CSV or Parquet file.

Each input line is a JSON object holding the program's input fields (CSV and Parquet: a row whose columns are named like the fields; --column FIELD=COLUMN maps others; `-i -` reads JSONL from stdin). Each output line holds `_row` (the input line number), the input's fields, the outputs, `_usage` and `_error` (null unless the row failed). An input field with the same name as an output is kept under `_input`.

Output: JSONL, or Parquet when OUTPUT ends in .parquet (rows go to OUTPUT.jsonl as they finish, and become the Parquet file when the run ends).

Order: rows are written in input order. After --resume, rows finished in this run follow the rows already in the file; sort by `_row` for input order.

Crash safety: every finished row is appended and flushed at once. After a crash or Ctrl-C, rerun with --resume: a half-written last line is cut, failed rows are retried, and every input row ends up in the output exactly once.

Bad input: the whole file is validated before any LM call. By default a bad line (not JSON, not UTF-8, a missing or mistyped input field) stops the run with the line numbers; --on-error skip writes bad lines to a rejects file and runs the rest.

Engines: --engine ray runs the rows on Ray workers (a local instance, or --address auto / ray://HOST:10001), each with its own LM client and the same cache; the driver validates the input, filters out rows already done (--resume) and writes the output in input order. Needs: pip install 'promptc[ray]'.

Batch API: with --batch, every LM call goes through the OpenAI Batch API (half price, results within 24h); the output rows are the same as a live run's. Batch ids are recorded in OUTPUT.batches.json as soon as created: after a kill, --resume re-attaches to them instead of paying twice. `promptc batch status|cancel OUTPUT` shows or cancels them.

Exit status: 0 every row succeeded; 1 some rows failed (see `_error`); 2 bad spec, input or flags (nothing was sent); 3 the LM endpoint failed for good (bad key, unknown model, unreachable), or the output could not be written (disk full, read-only: the rows already written stay; --resume goes on); 130 interrupted.

Examples:

  promptc run specs/math.yaml -i questions.jsonl -o answers.jsonl

  promptc run specs/math.yaml -i big.jsonl -o out.jsonl --concurrency 64 --resume

  promptc run specs/math.yaml -i q.jsonl -o a.jsonl --model gpt-4o-mini --dry-run

  promptc run specs/math.yaml --program build/math/ -i q.jsonl -o a.jsonl

  promptc run specs/math.yaml -i big.jsonl -o out.jsonl --engine ray --workers 8 --address auto

  promptc run specs/math.yaml -i big.jsonl -o out.jsonl --batch
"""


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@handle_errors
def run_command(
    spec: OptionalSpecArg = None,
    input: Annotated[Path, typer.Option("--input", "-i", help="Input file: .jsonl, .csv or .parquet ('-': JSONL on stdin).",
                                        show_default=False)] = ...,  # type: ignore[assignment]
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .jsonl (appended) or .parquet file ('-': JSONL on stdout).",
                                         show_default=False)] = ...,  # type: ignore[assignment]
    program: ProgramOpt = None,
    column: ColumnOpt = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1, max=4096,
                                                    help="Rows in flight (default: the spec's lm.concurrency).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Complete an existing output file.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Empty an existing output file first (a regular file only).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N input rows.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the first row's prompt and estimate "
                                          "requests and tokens; call nothing.")] = False,
    on_error: Annotated[OnError, typer.Option("--on-error", help="What to do with bad input lines.")] = OnError.fail,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Where --on-error skip writes bad lines "
                                                  "(default: OUTPUT.rejects.jsonl).")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Client-side limit, requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Client-side limit, tokens per minute.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.01, help="Seconds per request.")] = None,
    max_prompt_tokens: MaxPromptTokensOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    otel_endpoint: OtelEndpointOpt = None,
    otel_content: OtelContentOpt = False,
    engine: Annotated[Engine, typer.Option("--engine", help="Where rows run: this process, or a Ray cluster "
                                           "(needs: pip install 'promptc[ray]').")] = Engine.local,
    address: Annotated[str | None, typer.Option("--address", help="With --engine ray: the cluster "
                                                "(auto, ray://HOST:10001; default: start a local one).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="With --engine ray: worker actors, "
                                                "each with its own LM client (default 2).")] = None,
    batch: BatchOpt = False,
    batch_max_requests: BatchRequestsOpt = MAX_REQUESTS,
    batch_max_bytes: BatchBytesOpt = MAX_BYTES,
    batch_poll: BatchPollOpt = 10.0,
    max_waves: MaxWavesOpt = 10,
) -> None:
    from promptc.cli.progress import BatchProgress
    from promptc.jobs.program import lm_options, load_source
    from promptc.telemetry import endpoint_from, exporting

    options = lm_options(model=one_model(model, "run"), base_url=base_url, concurrency=concurrency, rpm=rpm, tpm=tpm,
                         timeout=timeout, cache=not no_cache, cache_dir=cache_dir,
                         max_prompt_tokens=max_prompt_tokens)
    batching = batch_options(batch, max_requests=batch_max_requests, max_bytes=batch_max_bytes, poll=batch_poll,
                             max_waves=max_waves)
    run_job = _engine(engine, options, address, workers, batching)
    data = data_file(input, column)
    with load_source(spec, program, options) as source:
        if dry_run:
            _dry_run(source, data, output, limit, resume, overwrite, batching)
        with BatchProgress("run") as progress, exporting(endpoint_from(otel_endpoint), content=otel_content):
            result = run_job(
                source, data, output, resume=resume, overwrite=overwrite, limit=limit, on_error=on_error.value,
                rejects=rejects, on_start=lambda plan: _started(plan, progress), on_update=progress.update)
    _report(result, progress)


def _dry_run(source: LoadedProgram, input: Path | DataFile | None, output: Path, limit: int | None, resume: bool,
             overwrite: bool, batch: BatchOptions | None) -> None:
    from promptc.cli.dry_run import print_dry_run
    from promptc.errors import UsageError
    from promptc.jobs.data import as_source
    from promptc.runner.job import RunJob

    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pick one")
    assert input is not None
    print_dry_run(RunJob(program=source.program, input=as_source(input), output=output, limit=limit), batch)
    raise typer.Exit(EXIT_OK)


def _engine(engine: Engine, options: LMOptions, address: str | None, workers: int | None,
            batch: BatchOptions | None) -> Callable[..., RunResult]:
    """The job function for --engine: `promptc.run` (live or --batch), or `run_ray` bound to its cluster."""
    from promptc.errors import UsageError

    if engine is Engine.local:
        if address is not None or workers is not None:
            raise UsageError("--address and --workers are for --engine ray")
        from promptc.jobs.run import run

        return functools.partial(run, batch=batch, on_batch=print_event)
    if batch is not None:
        raise UsageError("--batch sends the calls to the provider's Batch API; it does not combine with --engine ray")
    from promptc.distributed.ray_run import RayEngine, require_ray, run_ray

    require_ray()  # before any work: say how to install the extra (exit 2)
    return functools.partial(run_ray, options=options, engine=RayEngine(address, workers or 2))


def _started(plan: RunPlan, progress: BatchProgress) -> None:
    for note in plan.notes:
        stderr.print(f"[yellow]note[/]: {escape(note)}")
    if plan.invalid:
        stderr.print(f"[yellow]{plan.invalid} bad input line(s)[/] go to {plan.rejects}")
    if plan.done:
        stderr.print(f"resuming: {plan.done} row(s) already done, {plan.todo} to go")
    progress.start(plan.todo)


def _report(result: RunResult, progress: BatchProgress) -> None:
    if not progress.interactive_display:
        progress.plain_line(progress.stats)
    out = stderr if str(result.output) == "/dev/stdout" else stdout  # `-o -`: stdout holds the rows
    out.print(f"{result.rows} row(s) in {result.seconds:.1f}s ({result.rate:.1f} rows/s): "
                 f"{result.ok} ok, {result.failed} failed"
                 + (f", {result.rejected} rejected" if result.rejected else "") + f" -> {result.output}")
    out.print(usage_line(result.usage))
    for line in result.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(line)}")
    if result.batch is not None:
        print_totals(result.batch)
    if result.failed:
        stderr.print(f"[red]{result.failed} row(s) failed[/]; their errors are in `_error`. "
                     "Rerun with --resume to retry them.")
        raise typer.Exit(EXIT_ROWS_FAILED)

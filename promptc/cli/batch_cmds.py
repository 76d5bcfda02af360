"""`--batch` flags of `run` and `eval`, and `promptc batch status|cancel OUTPUT`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promptc.cli.common import handle_errors, stderr, stdout

if TYPE_CHECKING:  # imported for real inside the functions: `promptc --help` must stay fast
    from promptc.jobs.batching import BatchView
    from promptc.lm.batch_round import BatchOptions, BatchTotals

BATCH_HELP = """Send every LM call through the OpenAI Batch API (half price, results within 24h) instead of live requests. One round of batches per LM call in sequence (a 2-step chain: 2 rounds). Batch ids are kept in OUTPUT.batches.json: after a kill, --resume re-attaches to them. See `promptc batch status|cancel OUTPUT`."""

# The Batch API's limits per input file (promptc.lm.batch_round has the same defaults).
MAX_REQUESTS, MAX_BYTES = 50_000, 200_000_000

BatchOpt = Annotated[bool, typer.Option("--batch", help=BATCH_HELP)]
BatchRequestsOpt = Annotated[int, typer.Option("--batch-max-requests", min=1,
                                               help="Requests per batch file (the provider's limit).")]
BatchBytesOpt = Annotated[int, typer.Option("--batch-max-bytes", min=1024,
                                            help="Bytes per batch file (the provider's limit: 200 MB).")]
BatchPollOpt = Annotated[float, typer.Option("--batch-poll", min=0.001,
                                             help="Seconds before the first status poll; grows 1.5x to 30x this.")]
MaxWavesOpt = Annotated[int, typer.Option("--max-waves", min=1, help="Refuse --batch for programs that may "
                                          "need more rounds of batches (loops, agents).")]

batch_app = typer.Typer(help="Show or cancel the Batch API batches of a `--batch` run.", no_args_is_help=True)
OutputArg = Annotated[Path, typer.Argument(help="The OUTPUT file of the `run --batch` (or `eval --batch`).",
                                           show_default=False)]


def batch_options(batch: bool, *, max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES,
                  poll: float = 10.0, max_waves: int = 10) -> BatchOptions | None:
    """The options of a --batch run, or None without --batch."""
    from promptc.lm.batch_round import BatchOptions

    if not batch:
        return None
    return BatchOptions(max_requests=max_requests, max_bytes=max_bytes, poll=poll, max_waves=max_waves)


def print_event(message: str) -> None:
    stderr.print(message, highlight=False, markup=False)


def print_totals(totals: BatchTotals) -> None:
    """The summary line of a batched run: batches, lines, and what batch pricing saved."""
    line = (f"batch: {totals.batches} batch(es), {totals.requests} request line(s) in {totals.waves} round(s)"
            + (f", {totals.reattached} re-attached" if totals.reattached else "")
            + (f", {totals.failed_lines} failed line(s) retried" if totals.failed_lines else ""))
    if totals.live_cost:
        line += f"; ${totals.cost:.4f} at batch price, ${totals.saved:.4f} saved against live"
    stdout.print(line, highlight=False)


@batch_app.command("status")
@handle_errors
def status_command(output: OutputArg) -> None:
    """Every batch of the run writing OUTPUT, with its status now."""
    from promptc.jobs.batching import batch_status

    _table(batch_status(output))


@batch_app.command("cancel")
@handle_errors
def cancel_command(output: OutputArg) -> None:
    """Cancel the unfinished batches of the run writing OUTPUT (rerun it with --resume to send them again)."""
    from promptc.jobs.batching import batch_cancel

    _table(batch_cancel(output))


def _table(views: list[BatchView]) -> None:
    for v in views:
        kept = "collected" if v.collected else "not collected"
        stdout.print(f"{v.id}  {v.status:<11} round {v.wave}  {v.lm} ({v.model})  {v.requests} request(s), "
                     f"{v.completed} done, {v.failed} failed, {kept}", highlight=False)
    stdout.print(f"{len(views)} batch(es)")

"""`promptc.run`: a program over every row of a JSONL file (or rows), results appended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from promptc.jobs.data import DataLike, as_source
from promptc.jobs.program import ProgramLike, as_loaded
from promptc.jobs.provenance import price_warnings
from promptc.jobs.run_record import run_record, write_run_record
from promptc.lm.base import Usage
from promptc.lm.batch_round import BatchOptions, BatchTotals
from promptc.runner.batch import BatchStats
from promptc.runner.job import RunJob
from promptc.runner.output_paths import REGULAR, ensure_parent, kind

STDOUT = "-"


def output_path(output: str | Path) -> Path:
    """`-` is standard output, written into like any device (never resumed, never emptied)."""
    return Path("/dev/stdout") if str(output) == STDOUT else Path(output)


class RunPlan(BaseModel):
    """What a run will do, known after validating the input and before any LM call."""

    valid: int = Field(description="rows that can run")
    invalid: int = Field(description="bad rows (written to `rejects` with on_error='skip')")
    done: int = Field(description="rows already in the output (resume)")
    todo: int
    rejects: Path | None = None
    notes: list[str] = Field(default_factory=list, description="what resuming repaired in the output")


class RunResult(BaseModel):
    """What a run did and where it went."""

    output: Path
    rows: int = Field(description="rows run now")
    ok: int
    failed: int = Field(description="rows whose `_error` is set (rerun with resume to retry)")
    rejected: int = 0
    rejects: Path | None = None
    usage: Usage = Field(default_factory=Usage)
    warnings: list[str] = Field(default_factory=list, description="e.g. a model with no price")
    seconds: float = 0.0
    rate: float = 0.0
    batch: BatchTotals | None = Field(default=None, description="what the Batch API did (`batch=`)")


def run(program: ProgramLike, data: DataLike, output: str | Path, *, resume: bool = False,
        overwrite: bool = False, limit: int | None = None, on_error: Literal["fail", "skip"] = "fail",
        rejects: str | Path | None = None, concurrency: int | None = None,
        on_start: Callable[[RunPlan], None] | None = None,
        on_update: Callable[[BatchStats], None] | None = None, batch: BatchOptions | None = None,
        on_batch: Callable[[str], None] | None = None) -> RunResult:
    """Run `program` on every row of `data`, appending one output row per input row.

    Crash-safe and resumable like `promptc run` (see `promptc.runner.job`). `on_start`
    gets the plan once the input is validated; `on_update` gets progress. With `batch`,
    LM calls go through the OpenAI Batch API (promptc.runner.waves); `on_batch` gets its news.
    """
    from promptc.errors import UsageError
    from promptc.jobs.batching import batch_engine

    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pick one")
    engine = (batch_engine(Path(output), batch, resume=resume, overwrite=overwrite, on_event=on_batch)
              if batch is not None else None)
    source, opened = as_loaded(program)
    try:
        job = RunJob(program=source.program, input=as_source(data), output=output_path(output), resume=resume,
                     overwrite=overwrite, limit=limit, on_error=on_error,
                     rejects=Path(rejects) if rejects is not None else None,
                     concurrency=concurrency or source.concurrency)
        if engine is not None:
            job.engine = engine
        scan, done = job.prepare()
        record = run_record(source)
        if kind(job.output) in (None, REGULAR):  # beside a file, never in /dev beside a device
            ensure_parent(job.output)  # a failure names the output, not its record
            write_run_record(job.output, record)
        plan = RunPlan(valid=scan.valid, invalid=scan.invalid, done=len(done),
                       todo=max(0, scan.valid - len(done)),
                       rejects=job.rejects_path if scan.invalid else None, notes=job.notes)
        if on_start is not None:
            on_start(plan)
        stats = asyncio.run(job.run(done, total=plan.todo, on_update=on_update))
    finally:
        if opened:
            source.close()
    return RunResult(output=job.output, rows=stats.done, ok=stats.done - stats.failed, failed=stats.failed,
                     rejected=scan.invalid, rejects=plan.rejects, usage=stats.usage,
                     warnings=price_warnings(record.provenance),
                     seconds=stats.elapsed, rate=stats.rate, batch=engine.totals if engine is not None else None)

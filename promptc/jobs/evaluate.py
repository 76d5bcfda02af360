"""`promptc.evaluate`: score a program on labelled data, with the CI gate and report files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from promptc.evaluation.records import EvalRecord, EvalSummary
from promptc.jobs.data import DataLike, as_source
from promptc.jobs.metrics import MetricLike
from promptc.jobs.program import LoadedProgram, ProgramLike, as_loaded
from promptc.lm.batch_round import BatchOptions
from promptc.runner.batch import BatchStats
from promptc.runner.source import source_label
from promptc.runner.waves import BatchEngine


class EvalResult(BaseModel):
    """The summary (means, intervals, gate, exit code), every record, and files written."""

    summary: EvalSummary
    records: list[EvalRecord]
    reports: list[Path] = Field(default_factory=list, description="report files written")
    junit: Path | None = None
    github_summary: bool = Field(default=False, description="appended to $GITHUB_STEP_SUMMARY")
    notes: list[str] = Field(default_factory=list, description="what resuming repaired in the output")
    baseline: list[EvalRecord] | None = Field(default=None, description="the --baseline's records, if given")
    warnings: list[str] = Field(default_factory=list, description="e.g. a model with no price")

    @property
    def score(self) -> float:
        """The primary metric's mean over scored rows."""
        return self.summary.mean

    @property
    def passed(self) -> bool:
        return self.summary.exit_code == 0


def evaluate(program: ProgramLike, data: DataLike | None = None, *,
             metrics: Sequence[MetricLike] | None = None, output: str | Path | None = None,
             resume: bool = False, overwrite: bool = False, limit: int | None = None,
             on_error: str = "fail", concurrency: int | None = None, threshold: float | None = None,
             baseline: str | Path | None = None, max_regression: float = 0.0, alpha: float = 0.05,
             max_error_rate: float = 0.05, reports: Sequence[str | Path] = (),
             junit: str | Path | None = None, on_start: Callable[[int], None] | None = None,
             on_update: Callable[[BatchStats], None] | None = None, batch: BatchOptions | None = None,
             on_batch: Callable[[str], None] | None = None) -> EvalResult:
    """Score `program` on `data` (default: the spec's `data.dev`).

    Metrics: `metrics`, else the spec's (or artifact's) `metric:`, else a default by output
    type. Rows are scored by `promptc.evaluation.scoring`. `on_start` gets the number of rows
    to run once the data is validated. With `batch`, the program's LM calls go through the
    OpenAI Batch API like `run`'s (metrics and judges stay live).
    """
    from promptc.jobs.batching import batch_engine

    engine = (batch_engine(Path(output) if output is not None else None, batch, resume=resume,
                           overwrite=overwrite, on_event=on_batch) if batch is not None else None)
    source, opened = as_loaded(program)
    try:
        return _evaluate(source, data, metrics=metrics, output=output, resume=resume, overwrite=overwrite,
                         limit=limit, on_error=on_error, concurrency=concurrency, threshold=threshold,
                         baseline=baseline, max_regression=max_regression, alpha=alpha,
                         max_error_rate=max_error_rate, reports=reports, junit=junit,
                         on_start=on_start, on_update=on_update, engine=engine)
    finally:
        if opened:
            source.close()


def _evaluate(source: LoadedProgram, data: DataLike | None, *, metrics: Sequence[MetricLike] | None,
              output: str | Path | None, resume: bool, overwrite: bool, limit: int | None, on_error: str,
              concurrency: int | None, threshold: float | None, baseline: str | Path | None,
              max_regression: float, alpha: float, max_error_rate: float, reports: Sequence[str | Path],
              junit: str | Path | None, on_start: Callable[[int], None] | None,
              on_update: Callable[[BatchStats], None] | None, engine: BatchEngine | None = None) -> EvalResult:
    from promptc.errors import UsageError
    from promptc.evaluation.evaluator import EvalJob, Gate, summarize
    from promptc.jobs.metrics import load_baseline, resolve_metrics
    from promptc.jobs.provenance import price_warnings, provenance
    from promptc.metrics.judge import JudgeRunner

    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pick one")
    if resume and output is None:
        raise UsageError("--resume needs --output (the file to complete)")
    rows = as_source(data) if data is not None else source.data_path("dev")
    if rows is None:
        raise UsageError("no data: pass --data FILE or set `data.dev` in the spec")
    judge = JudgeRunner(source.program.lms)  # its usage (LM-graded metrics) joins the totals
    built = resolve_metrics(source, metrics, judge)
    job = EvalJob(program=source.program, metrics=built, data=rows, limit=limit, on_error=on_error,
                  output=Path(output) if output is not None else None, resume=resume, overwrite=overwrite,
                  concurrency=concurrency or source.concurrency)
    if engine is not None:
        job.engine = engine
    todo = job.prepare()
    _probe_files(reports, junit)  # an unwritable report must not cost the whole evaluation
    old = load_baseline(Path(baseline), source, built, rows, limit) if baseline is not None else None
    if on_start is not None:
        on_start(todo)
    started = time.monotonic()
    records = asyncio.run(job.run(total=todo, on_update=on_update))
    gate = Gate(threshold=threshold, max_regression=max_regression, alpha=alpha, max_error_rate=max_error_rate)
    summary = summarize(records, built, spec=source.label,
                        program=str(source.artifact) if source.artifact is not None else None,
                        data=source_label(rows), gate=gate, wall_seconds=time.monotonic() - started,
                        baseline=old, baseline_name=str(baseline) if baseline is not None else "")
    summary.usage.add(judge.usage)
    summary.provenance = provenance(source)
    result = EvalResult(summary=summary, records=records, notes=job.notes, baseline=old,
                        warnings=price_warnings(summary.provenance))
    return _write_files(result, reports, junit)


def _probe_files(reports: Sequence[str | Path], junit: str | Path | None) -> None:
    from promptc.evaluation.reports import check_report_suffix
    from promptc.runner.output_paths import probe_writable

    for path in reports:
        check_report_suffix(Path(path))
        probe_writable(Path(path), "--report")
    if junit is not None:
        probe_writable(Path(junit), "--junit")


def _write_files(result: EvalResult, reports: Sequence[str | Path], junit: str | Path | None) -> EvalResult:
    from promptc.evaluation.junit import write_junit
    from promptc.evaluation.reports import append_github_summary, write_report

    for path in reports:
        write_report(Path(path), result.summary, result.records, baseline=result.baseline)
        result.reports.append(Path(path))
    if junit is not None:
        write_junit(Path(junit), result.summary, result.records)
        result.junit = Path(junit)
    result.github_summary = append_github_summary(result.summary, result.records)
    return result

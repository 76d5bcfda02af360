"""`promptc run --engine ray`: the rows of a run mapped over a Ray cluster, one output file.

The driver (this process) does what only it can do well: it validates the input with the
same rules and messages as a single-process run, drops rows already in the output
(--resume: finished rows are filtered out before the map, failed rows are retried), and
appends results to the output in input order as they stream back, each flushed at once.
The workers (`PromptcPredictor` actors) do the LM calls.

Rows reach the cluster with `ray.data.from_items`, not `read_json`, because:
- a row must keep its input line number (`_row`), which resume and the output rely on,
  and a Ray dataset read from files has no line numbers;
- Arrow's JSON reader needs one type per field across the file, where a JSONL row may
  hold anything the program's coercion accepts;
- a local path is not readable by the workers of a remote cluster; items travel with the job.
The cost is that the rows to run are held in the driver's memory once. For inputs bigger
than that, put `PromptcPredictor` in your own pipeline (`ray.data.read_json("s3://...")`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from promptc.errors import OutputError, PromptcError, ServiceError, UsageError
from promptc.jobs.data import DataLike, as_source
from promptc.jobs.program import LoadedProgram
from promptc.jobs.run import RunPlan, RunResult
from promptc.lm.base import Usage
from promptc.runner.batch import BatchStats
from promptc.runner.job import RunJob
from promptc.runner.jsonl import JsonlAppender
from promptc.spec.lms import LMOptions

INSTALL_HINT = "pip install 'promptc[ray]'"


@dataclass
class RayEngine:
    """Where and how wide: `address` None starts a local Ray instance (or uses the one this
    process already started); "auto" joins a running local cluster; "ray://host:10001" a remote one."""

    address: str | None = None
    workers: int = 2
    batch_size: int | None = None  # default: 4 x concurrency, capped so every worker gets rows
    num_cpus: float = 0.5  # per worker: LM calls mostly wait on the network


def require_ray() -> ModuleType:
    """The `ray` module, or a UsageError (exit 2) saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the `data` extra: pandas, pyarrow)
    except ImportError as exc:
        raise UsageError(f"--engine ray needs the `ray` extra ({exc}); install it with: {INSTALL_HINT}") from None
    return ray


def run_ray(source: LoadedProgram, data: DataLike, output: str | Path, *, options: LMOptions,
            engine: RayEngine, resume: bool = False, overwrite: bool = False, limit: int | None = None,
            on_error: Literal["fail", "skip"] = "fail", rejects: str | Path | None = None,
            on_start: Callable[[RunPlan], None] | None = None,
            on_update: Callable[[BatchStats], None] | None = None) -> RunResult:
    """`promptc.run` on a Ray cluster: the same output rows, resume rules and result."""
    ray = require_ray()
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pick one")
    worker = _worker_kwargs(source, options, engine.workers)
    job = RunJob(program=source.program, input=as_source(data), output=Path(output), resume=resume,
                 overwrite=overwrite, limit=limit, on_error=on_error,
                 rejects=Path(rejects) if rejects is not None else None)
    scan, done = job.prepare()
    plan = RunPlan(valid=scan.valid, invalid=scan.invalid, done=len(done), todo=max(0, scan.valid - len(done)),
                   rejects=job.rejects_path if scan.invalid else None)
    if on_start is not None:
        on_start(plan)
    items = _todo(job, done)
    stats = BatchStats(total=len(items))
    if items:
        started_here = not ray.is_initialized()
        try:
            if started_here:
                ray.init(address=engine.address, include_dashboard=False, log_to_driver=False)
            stats.started = time.monotonic()  # rows/s of the map, not of starting Ray
            concurrency = options.concurrency or source.concurrency
            _stream(ray, items, worker, engine, concurrency, job.output, stats, on_update)
        except PromptcError:
            raise
        except Exception as exc:  # Ray's own (no cluster at --address, a worker that cannot start)
            raise _ray_failure(exc, engine) from exc
        finally:
            if started_here and ray.is_initialized():
                ray.shutdown()
    return RunResult(output=job.output, rows=stats.done, ok=stats.done - stats.failed, failed=stats.failed,
                     rejected=scan.invalid, rejects=plan.rejects, usage=stats.usage,
                     seconds=stats.elapsed, rate=stats.rate)


def _worker_kwargs(source: LoadedProgram, options: LMOptions, workers: int) -> dict[str, Any]:
    """What each worker loads: the same files, absolute, and its share of the rate limits."""
    spec = source.spec.path if source.spec is not None else None
    if spec is None and source.artifact is None:
        raise UsageError("--engine ray loads the program on every worker: give a spec file or --program")
    program = source.artifact if source.artifact is not None else spec
    assert program is not None
    share = dataclasses.replace(
        options, rpm=max(1, options.rpm // workers) if options.rpm else None,
        tpm=max(1, options.tpm // workers) if options.tpm else None)
    return {"program": str(Path(program).resolve()), "wire": True, "options": share,
            "spec": str(spec.resolve()) if spec is not None and source.artifact is not None else None}


def _todo(job: RunJob, done: set[int]) -> list[dict[str, Any]]:
    """The rows to run, in wire form; bad lines go to the rejects file as in a local run."""
    if job.on_error != "skip":
        return [_wire(item.row, item.record) for item in job.items(done, None)]
    job.rejects_path.unlink(missing_ok=True)  # bad lines are never "done": rewrite the whole file
    with JsonlAppender(job.rejects_path) as rejects:
        return [_wire(item.row, item.record) for item in job.items(done, rejects)]


def _wire(row: int, record: dict[str, Any]) -> dict[str, Any]:
    return {"_row": row, "_json": json.dumps(record, ensure_ascii=False, default=str)}


def _stream(ray: ModuleType, items: list[dict[str, Any]], worker: dict[str, Any], engine: RayEngine,
            concurrency: int, output: Path, stats: BatchStats,
            on_update: Callable[[BatchStats], None] | None) -> None:
    """Map the rows over the workers; append results in input order as they come back."""
    from ray.data import DataContext

    from promptc.distributed.predictor import PromptcPredictor

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # the output is written in input order
    context.enable_progress_bars = False  # promptc draws its own
    per_worker = -(-len(items) // engine.workers)
    batch_size = engine.batch_size or max(1, min(4 * concurrency, per_worker))
    # One block is one batch is one task (batch_size=None): a `batch_size` that does not
    # divide the blocks makes Ray bundle blocks, and results came back only at the very end.
    dataset = ray.data.from_items(items, override_num_blocks=-(-len(items) // batch_size))
    mapped = dataset.map_batches(PromptcPredictor, fn_constructor_kwargs=worker, batch_format="pyarrow",
                                 batch_size=None, concurrency=engine.workers, num_cpus=engine.num_cpus)
    with JsonlAppender(output) as out:
        for row in mapped.iter_rows():
            if row["_fatal"]:
                raise _fatal_error(row["_fatal"])
            record = json.loads(row["_json"])
            try:
                out.write(record)
            except OSError as exc:
                raise OutputError(f"could not write the result of row {row['_row']}: {exc}",
                                  row=row["_row"]) from exc
            stats.done += 1
            stats.failed += 0 if record.get("_error") is None else 1
            stats.usage.add(Usage.model_validate(record.get("_usage") or {}))
            if on_update is not None:
                on_update(stats)


def _ray_failure(exc: Exception, engine: RayEngine) -> ServiceError:
    """A Ray failure as one readable line (exit 3); Ray's text ends with the root cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    where = engine.address or "a local Ray instance"
    return ServiceError(f"the Ray job on {where} failed: {lines[-1] if lines else type(exc).__name__}"
                        " (rows already written stay; rerun with --resume)")


def _fatal_error(text: str) -> Exception:
    """The worker's fatal LM error (bad key, unknown model...), as the same class here."""
    from promptc import errors

    fatal = json.loads(text)
    cls = getattr(errors, fatal["type"], errors.LMError)
    if not (isinstance(cls, type) and issubclass(cls, errors.LMError)):
        cls = errors.LMError
    return cls(f"on a Ray worker: {fatal['message']}")

"""Running a program over many rows: bounded concurrency, input order, per-row errors.

This is the one execution engine behind `run`, `eval` and `compile`: rows go in lazily,
at most `window` are in memory at once, results come out in input order to a sink, and
a failed row is a result, not a crash. Every row ends in exactly one of two ways:

- **a result** passed to the sink: the program's prediction, or an error row when the
  program failed for that row (`StepFailed`, or a bug: `internal error: ...`), or when
  `post` raised (`metric failed: ...`). A raising metric is a problem of that example,
  like a reply that could not be parsed, so the batch goes on;
- **a fatal error** that stops the whole batch: an LM error that dooms every row
  (`FATAL_LM_ERRORS`: bad credentials, unknown model, an unreachable endpoint, budget
  spent, offline cache miss), raised by the program or by `post`; an `OutputError` from
  the program (the LM cache cannot be written); or a failing sink, raised as
  `OutputError`. A sink that cannot write (disk full, permissions) would fail for every
  later row too, and results that cannot be kept are not worth paying for.

On a fatal error nothing more reaches the sink: the rows it already received stay (they
are a prefix of the input, in order), every task still running is cancelled and awaited,
and the first fatal error is raised.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from promptc.core.example import Prediction
from promptc.core.program import Program
from promptc.core.trace import Trace
from promptc.errors import FATAL_LM_ERRORS, OutputError, PromptcError, ServiceError, StepFailed
from promptc.lm.base import Usage
from promptc.lm.spans import span


@dataclass
class WorkItem:
    """One row to run: its id (input line number), typed inputs and the original record."""

    row: int
    inputs: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class RowResult:
    """What happened to one row."""

    item: WorkItem
    prediction: Prediction | None
    error: str | None
    trace: Trace
    seconds: float
    infra: bool = False  # the error was the endpoint's (retries exhausted), not the model's
    extra: Any = None  # whatever the batch's `post` hook returned (e.g. metric scores)

    @property
    def ok(self) -> bool:
        return self.error is None

    @functools.cached_property
    def usage(self) -> Usage:
        return self.trace.usage


@dataclass
class BatchStats:
    """Running totals, updated as rows finish (read by progress displays)."""

    total: int | None = None
    done: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


Sink = Callable[[RowResult], None]
PostHook = Callable[[RowResult], Awaitable[Any]]
# `execute`, or anything called like it (promptc.runner.waves.BatchEngine).
Engine = Callable[..., Awaitable["BatchStats"]]


class _Fatal(Exception):
    """Internal: the row's work hit an error that stops the batch (carried in `error`)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


async def run_row(program: Program, item: WorkItem, post: PostHook | None) -> RowResult:
    """One row's result; raises `_Fatal` only for errors that doom the whole batch."""
    with span("promptc.row", {"promptc.row": item.row, "promptc.program": getattr(program, "name", "")}) as opened:
        result = await _run_row(program, item, post)
        if result.error is not None:
            opened.set({"error.type": "row_failed", "promptc.error": result.error[:500]})
    return result


async def _run_row(program: Program, item: WorkItem, post: PostHook | None) -> RowResult:
    start = time.monotonic()
    try:
        prediction = await program.acall(item.inputs)
        result = RowResult(item, prediction, None, prediction.trace, time.monotonic() - start)
    except FATAL_LM_ERRORS as exc:
        raise _Fatal(exc) from exc
    except StepFailed as exc:
        if isinstance(exc.cause, OutputError):  # e.g. the LM cache's disk is full: so is every row's
            raise _Fatal(exc.cause) from exc
        trace = exc.trace if isinstance(exc.trace, Trace) else Trace()
        result = RowResult(item, None, str(exc), trace, time.monotonic() - start,
                           infra=isinstance(exc.cause, ServiceError))
    except Exception as exc:  # a bug must not cost the rows already done
        result = RowResult(item, None, f"internal error: {type(exc).__name__}: {exc}",
                           Trace(), time.monotonic() - start)
    if post is not None:
        try:
            result.extra = await post(result)
        except FATAL_LM_ERRORS as exc:  # e.g. a judge LM out of budget
            raise _Fatal(exc) from exc
        except Exception as exc:  # a metric's bug or bad input: this row's problem, not the batch's
            result.error = result.error or f"metric failed: {type(exc).__name__}: {exc}"
    return result


def sink_error(exc: Exception, row: int) -> PromptcError:
    """What a raising sink stops the batch with: its own PromptcError, else an OutputError."""
    if isinstance(exc, PromptcError):
        return exc
    error = OutputError(f"could not write the result of row {row}: {type(exc).__name__}: {exc}",
                        row=row)
    error.__cause__ = exc  # raised later, from `execute`: keep the original traceback
    return error


class _Batch:
    """The state of one `execute` call: finished rows waiting for their turn, and the stop flag."""

    def __init__(self, sink: Sink, stats: BatchStats, window: int,
                 on_update: Callable[[BatchStats], None] | None):
        self.sink, self.stats, self.on_update = sink, stats, on_update
        self.window_slots = asyncio.Semaphore(window)
        self.waiting: dict[int, RowResult] = {}
        self.next_seq = 0
        self.fatal: BaseException | None = None

    def stop(self, error: BaseException) -> None:
        """Record the first fatal error; nothing reaches the sink after it."""
        if self.fatal is None:
            self.fatal = error
            self.waiting.clear()
            self.window_slots.release()  # wake the producer if it waits for a slot

    def finish(self, seq: int, result: RowResult) -> None:
        """Park `result` and hand every row that is now next in input order to the sink."""
        if self.fatal is not None:
            return
        self.waiting[seq] = result
        while self.next_seq in self.waiting:
            result = self.waiting.pop(self.next_seq)
            try:
                self.sink(result)
            except Exception as exc:
                self.stop(sink_error(exc, result.item.row))
                return
            self.next_seq += 1
            self.stats.done += 1
            self.stats.failed += 0 if result.ok else 1
            self.stats.usage.add(result.usage)
            self.window_slots.release()
        if self.on_update is not None:
            self.on_update(self.stats)

    def task_done(self, task: asyncio.Task[None]) -> None:
        """Done callback: a task that died of an unexpected error (a raising `on_update`)
        stops the batch; retrieving the exception here keeps asyncio from logging it as lost."""
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self.stop(error)


async def execute(program: Program, items: Iterable[WorkItem], sink: Sink, *, concurrency: int = 16,
                  stats: BatchStats | None = None, on_update: Callable[[BatchStats], None] | None = None,
                  window: int | None = None, post: PostHook | None = None) -> BatchStats:
    """Run `program` on every item; call `sink` once per item, in input order.

    `post`, if given, runs right after each row inside the same concurrency slot (so a
    metric that calls an LM judge is limited and overlapped like the program itself);
    its return value lands in `RowResult.extra`. A `post` that raises makes that row an
    error row (`metric failed: ...`), except for `FATAL_LM_ERRORS`, which stop the batch.

    A `sink` that raises stops the batch: a `PromptcError` is raised as it is, anything
    else (an `OSError` on a full disk) as `OutputError`. The rows the sink accepted stay
    accepted; no later row is passed to it.
    """
    batch = _Batch(sink, stats or BatchStats(), window or max(concurrency * 4, 64), on_update)
    run_slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def work(seq: int, item: WorkItem) -> None:
        async with run_slots:
            try:
                result = await run_row(program, item, post)
            except _Fatal as exc:
                batch.stop(exc.error)
                return
        batch.finish(seq, result)

    await program.prepare()
    submitted = 0
    try:
        for seq, item in enumerate(items):
            await batch.window_slots.acquire()
            if batch.fatal is not None:
                break
            task = asyncio.create_task(work(seq, item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(batch.task_done)
            submitted += 1
        while tasks and batch.fatal is None:
            await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Whatever ended the loop (a fatal error, an exception from `items`, cancellation),
        # no task outlives this call.
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if batch.fatal is not None:
        raise batch.fatal
    if batch.next_seq != submitted:  # cannot happen: every row ends as a result or a fatal error
        raise RuntimeError(f"batch ended with {submitted - batch.next_seq} row(s) unaccounted for")
    return batch.stats

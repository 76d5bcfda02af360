"""Running a program over many rows: bounded concurrency, input order, per-row errors.

This is the one execution engine behind `run` (and later `eval` and `compile`):
rows go in lazily, at most `window` are in memory at once, results come out in
input order to a sink, and a failed row is a result, not a crash. Only errors that
doom every row (bad credentials, unknown model) stop the batch.
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
from promptc.errors import FATAL_LM_ERRORS, ServiceError, StepFailed
from promptc.lm.base import Usage


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


async def execute(program: Program, items: Iterable[WorkItem], sink: Sink, *, concurrency: int = 16,
                  stats: BatchStats | None = None, on_update: Callable[[BatchStats], None] | None = None,
                  window: int | None = None, post: PostHook | None = None) -> BatchStats:
    """Run `program` on every item; call `sink` once per item, in input order.

    `post`, if given, runs right after each row inside the same concurrency slot (so a
    metric that calls an LM judge is limited and overlapped like the program itself);
    its return value lands in `RowResult.extra`.
    """
    stats = stats or BatchStats()
    window_slots = asyncio.Semaphore(window or max(concurrency * 4, 64))
    run_slots = asyncio.Semaphore(concurrency)
    results: dict[int, RowResult] = {}
    next_seq = 0
    tasks: set[asyncio.Task[None]] = set()
    fatal: list[BaseException] = []

    def emit_ready() -> None:
        nonlocal next_seq
        while next_seq in results:
            result = results.pop(next_seq)
            next_seq += 1
            stats.done += 1
            stats.failed += 0 if result.ok else 1
            stats.usage.add(result.usage)
            sink(result)
            window_slots.release()
        if on_update is not None:
            on_update(stats)

    async def work(seq: int, item: WorkItem) -> None:
        async with run_slots:
            start = time.monotonic()
            try:
                prediction = await program.acall(item.inputs)
                result = RowResult(item, prediction, None, prediction.trace, time.monotonic() - start)
            except FATAL_LM_ERRORS as exc:
                fatal.append(exc)
                window_slots.release()  # wake the producer so it sees the failure
                return
            except StepFailed as exc:
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
                    fatal.append(exc)
                    window_slots.release()
                    return
        results[seq] = result
        emit_ready()

    await program.prepare()
    try:
        for seq, item in enumerate(items):
            await window_slots.acquire()
            if fatal:
                break
            task = asyncio.create_task(work(seq, item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks and not fatal:
            await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if fatal or tasks:
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    if fatal:
        raise fatal[0]
    return stats

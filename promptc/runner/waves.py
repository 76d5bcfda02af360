"""The batched engine behind `run --batch` and `eval --batch`: passes and Batch API rounds.

`BatchEngine` is called like `promptc.runner.batch.execute` and ends the same way: every
row reaches the sink once, in input order, as the live engine would have written it. It
gets there in passes. A pass runs the program over every row not written yet with
`BatchingLM`s (promptc.lm.batching): rows whose calls are all in the cache finish, rows
that need a reply stop, pending. Finished rows are written as long as every row before
them is written too (input order); a round of batches (promptc.lm.batch_round) then
answers the recorded calls, and the next pass starts. A chain of N steps takes N rounds,
one per step; a loop or an agent one per iteration, so programs that may need more than
`max_waves` rounds are refused before anything is sent.

Rows finished behind a pending row are run again in the next pass, from the cache: a
pass is CPU only, and keeping them would cost memory on large inputs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from promptc.core.example import Prediction
from promptc.core.program import Program
from promptc.errors import UsageError
from promptc.lm.base import LM
from promptc.lm.batch_round import BatchOptions, BatchRound, BatchTotals, Event
from promptc.lm.batch_state import BatchState
from promptc.lm.batching import Collector, row_mark, start_row, wrap_lms
from promptc.runner.batch import BatchStats, PostHook, RowResult, Sink, WorkItem, execute

PENDING = object()  # `RowResult.extra` of a row that waits for a batch


def waves_needed(program: Program) -> int | None:
    """Rounds of batches a row may need (one per LM call in sequence); None when unknown
    (a Python program's loops cannot be read without running it)."""
    from promptc.core.graph_program import GraphProgram

    return program.calls_per_row() if isinstance(program, GraphProgram) else None


def check_waves(program: Program, options: BatchOptions) -> None:
    """Refuse, before anything is sent, a program that may need more rounds than allowed."""
    waves = waves_needed(program)
    if waves is not None and waves > options.max_waves:
        raise UsageError(f"a row of this program may make up to {waves} LM calls one after another (loops or "
                         f"agent steps); --batch sends one round of batches per call, each up to 24h, and "
                         f"--max-waves is {options.max_waves}. Raise --max-waves, or run without --batch")


class _Pass:
    """The program as one pass runs it: batching LMs, and a fresh pending mark per row."""

    def __init__(self, program: Program, lms: Mapping[str, LM]):
        self.program, self.lms = program, lms

    async def prepare(self) -> None:
        await self.program.prepare()

    async def acall(self, inputs: Mapping[str, Any]) -> Prediction:
        start_row()  # in this row's task: `post` reads it after the program returns
        return await self.program.acall(inputs, lms=self.lms)


@dataclass
class BatchEngine:
    """`execute`, through the Batch API (see the module docstring). `state` is the state
    file (None: nothing survives the process); `resume` re-attaches to its batches."""

    options: BatchOptions = field(default_factory=BatchOptions)
    state: Path | None = None
    resume: bool = False
    on_event: Event | None = None
    totals: BatchTotals = field(default_factory=BatchTotals)

    def prepare(self, overwrite: bool = False) -> None:
        """Before the run: refuse to forget batches still running (unless told to)."""
        if self.state is None or not self.state.exists() or self.resume:
            return
        if overwrite:
            self.state.unlink()
            return
        if BatchState.load(self.state).active():
            raise UsageError(f"{self.state} lists batches of an earlier --batch run that are not collected: "
                             "pass --resume to re-attach to them (no line is paid twice), or --overwrite "
                             "to start again")
        self.state.unlink()

    async def __call__(self, program: Program, items: Iterable[WorkItem], sink: Sink, *, concurrency: int = 16,
                       stats: BatchStats | None = None, on_update: Callable[[BatchStats], None] | None = None,
                       window: int | None = None, post: PostHook | None = None) -> BatchStats:
        check_waves(program, self.options)
        stats = stats or BatchStats()
        state = BatchState.load(self.state) if self.state is not None and self.resume else BatchState()
        if self.state is not None:
            state.save(self.state)  # there from the start: `promptc batch status` and resume find it
        collector = Collector(state, self.options.retries)
        side = (self.state.with_suffix(".cache.sqlite") if self.state is not None
                else Path(tempfile.mkdtemp(prefix="promptc-batch-")) / "cache.sqlite")
        lms, batching, opened = wrap_lms(program.lms, collector, side)
        if not batching:
            raise UsageError("--batch sends calls through the OpenAI Batch API, and this program has no "
                             "OpenAI-compatible LM (an offline or --offline LM answers live anyway)")
        rounds = BatchRound(batching, state, self.state,
                            self.options, self.totals, self.on_event)
        todo = list(items)
        try:
            while todo:
                collector.wanted.clear()
                todo = await self._pass(_Pass(program, lms), todo, sink, stats, on_update, post, concurrency)
                if todo and not collector.wanted:  # cannot happen: a pending row recorded a call
                    raise RuntimeError(f"{len(todo)} row(s) wait for a batch, but no call was recorded")
                if todo:
                    await rounds.run(collector.wanted)
        finally:
            await rounds.aclose()
            for cache in opened:
                cache.close()
        return stats

    async def _pass(self, program: _Pass, items: list[WorkItem], sink: Sink, stats: BatchStats,
                    on_update: Callable[[BatchStats], None] | None, post: PostHook | None,
                    concurrency: int) -> list[WorkItem]:
        """Run `items` once; write the finished prefix; return the rows left for the next pass."""
        left: list[WorkItem] = []

        async def mark_pending(result: RowResult) -> Any:
            mark = row_mark()
            if mark is not None and mark.pending:
                return PENDING
            return await post(result) if post is not None else None

        def keep(result: RowResult) -> None:
            if left or result.extra is PENDING:
                left.append(result.item)
                return
            sink(result)
            stats.done += 1
            stats.failed += 0 if result.ok else 1
            stats.usage.add(result.usage)
            if on_update is not None:
                on_update(stats)

        await execute(cast(Program, program), items, keep, concurrency=concurrency, post=mark_pending)
        return left

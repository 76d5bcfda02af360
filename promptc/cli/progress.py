"""Progress for batch jobs: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from promptc.cli.common import interactive, stderr
from promptc.runner.batch import BatchStats


class BatchProgress:
    """Context manager; pass `.start` as a job's `on_start` (or give `total` up front) and
    `.update` as its `on_update` callback."""

    def __init__(self, label: str, total: int | None = None, *, every: float = 2.0):
        self.label, self.total, self.every = label, total, every
        self._last = time.monotonic()  # the first plain line comes after `every` seconds, not at once
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.stats = BatchStats(total=total)  # the latest totals (the job updates them in place)

    def __enter__(self) -> BatchProgress:
        return self

    def start(self, total: int | None) -> None:
        """The job knows how many rows it will run: draw the bar from now on."""
        self.total = total
        self.stats = BatchStats(total=total)
        self._last = time.monotonic()
        if interactive():
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} rows/s"), TimeRemainingColumn(),
                TextColumn("[red]{task.fields[failed]} failed[/]"), TextColumn("{task.fields[cost]}"),
                console=stderr, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, rate=0.0, failed=0, cost="")

    @property
    def interactive_display(self) -> bool:
        return self._progress is not None

    def update(self, stats: BatchStats) -> None:
        self.stats = stats
        cost = f"${stats.usage.cost:.4f}" if stats.usage.cost else ""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=stats.done, rate=stats.rate,
                                  failed=stats.failed, cost=cost)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.plain_line(stats)

    def plain_line(self, stats: BatchStats) -> None:
        total = f"/{stats.total}" if stats.total is not None else ""
        eta = ""
        if stats.total and stats.rate > 0:
            eta = f", ETA {max(0.0, (stats.total - stats.done) / stats.rate):.0f}s"
        cost = f", ${stats.usage.cost:.4f}" if stats.usage.cost else ""
        stderr.print(f"{self.label}: {stats.done}{total} rows, {stats.failed} failed, "
                     f"{stats.rate:.1f} rows/s{eta}{cost}", soft_wrap=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

"""What `promptc compile` shows while it runs: a line per scored trial (its score, what it
was scored on, the best so far on each footing, progress and ETA, the instruction tried
when it is not the original), and on a terminal a live progress bar under them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from promptc.artifacts.trial_text import changed_instructions, footing, shorten
from promptc.cli.common import interactive, stderr
from promptc.jobs.compile import CompileEvents
from promptc.lm.budget import Budget
from promptc.optimize.base import CompileContext, Trial, TrialLog


def fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


class TrialView(CompileEvents):
    """Prints what the compile job reports: one line per scored trial, and a live status."""

    def __init__(self) -> None:
        self.best: dict[str, float] = {}  # by footing: scores on different rows are not comparable
        self.original: dict[str, str] = {}
        self.log: TrialLog | None = None
        self.t0 = time.monotonic()
        self.fresh = 0  # trials scored in this session (the ETA's rate)

    def split(self, n_dev: int, n_total: int) -> None:
        stderr.print(f"no dev set: scoring on a seeded split ({n_dev} of {n_total} rows)")

    def search(self, ctx: CompileContext) -> None:
        self.original = {name: s.instructions for name, s in ctx.program.state().items()}
        self.log, self.t0 = ctx.log, time.monotonic()

    def resumed(self, trials: list[Trial], log: Path, budget: Budget) -> None:
        stderr.print(f"resuming: {len(trials)} finished trial(s) in {log}")
        for t in trials:
            self.show(t, budget)

    def started(self, name: str, optimizer: str, n_train: int, n_dev: int, seed: int) -> None:
        stderr.print(f"compiling {name} with {optimizer}: {n_train} train, {n_dev} dev, seed {seed}")

    def trial(self, trial: Trial, budget: Budget) -> None:
        self.fresh += 1
        self.show(trial, budget, progress=True)

    def show(self, trial: Trial, budget: Budget, *, progress: bool = False) -> None:
        where = footing(trial.score is not None, trial.full_eval, trial.n)
        if trial.score is not None and trial.score > self.best.get(where, float("-inf")):
            self.best[where] = trial.score
        cost = f", ${budget.spent.cost:.4f}" if budget.spent.cost else ""
        stderr.print(f"trial {trial.index:>3} {trial.kind:<16} {fmt(trial.score)} on {where:<14} "
                     f"best {self.bests(where)}  [{self.progress() if progress else 'resumed'}]  "
                     f"calls {budget.calls}{cost}  {trial.description}", soft_wrap=True, highlight=False)
        current = {name: s.instructions for name, s in trial.state.items()}
        for name, text in changed_instructions(self.original, current).items():
            stderr.print(f"          {name}: \"{shorten(text, 100)}\"", soft_wrap=True, highlight=False)

    def bests(self, where: str) -> str:
        """The best score so far on this trial's footing first, then on dev: 'which is which'."""
        order = [where] + [k for k in ("dev",) if k != where and k in self.best]
        shown = [f"{self.best[k]:.3f} on {k}" for k in order if k in self.best]
        return ", ".join(shown) or "-"

    def progress(self) -> str:
        """'4/9 · 0:05 elapsed · ETA 0:07' (no ETA while the number of trials is not known)."""
        done = len(self.log.trials) if self.log is not None else self.fresh
        planned = self.log.planned if self.log is not None else None
        elapsed = time.monotonic() - self.t0
        text = f"{done}/{planned if planned is not None else '?'} · {clock(elapsed)} elapsed"
        if planned is not None and self.fresh:
            text += f" · ETA {clock(max(0, planned - done) * elapsed / self.fresh)}"
        return text

    async def live(self, ctx: CompileContext) -> None:
        """A progress bar under the trial lines: planned trials (a pulsing bar when not known),
        elapsed time and ETA, and the trial running now with its instruction."""
        if not interactive():
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (SpinnerColumn(), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"))
        with Progress(*columns, console=stderr, transient=True) as bar:
            task = bar.add_task("", total=ctx.log.planned, completed=len(ctx.log.trials))
            while True:
                bar.update(task, total=ctx.log.planned, completed=len(ctx.log.trials),
                           description=self.running(ctx))
                await asyncio.sleep(0.25)

    def running(self, ctx: CompileContext) -> str:
        spent = ctx.budget.spent
        cost = f" · ${spent.cost:.4f}" if spent.cost else ""
        now = ctx.log.running
        if now is None:
            return f"{ctx.budget.calls} calls{cost}"
        text = f"trial {now.index} {now.kind} · {ctx.budget.calls} calls{cost}"
        if now.state is not None:
            current = {name: s.instructions for name, s in now.state.items()}
            for name, new in changed_instructions(self.original, current).items():
                return f"{text} · {name}: \"{shorten(new, 60)}\""
        return text

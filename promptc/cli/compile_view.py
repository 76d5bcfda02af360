"""What `promptc compile` shows while it runs: a line per scored trial, and a live status."""

from __future__ import annotations

import asyncio
from pathlib import Path

from promptc.cli.common import interactive, stderr
from promptc.jobs.compile import CompileEvents
from promptc.lm.budget import Budget
from promptc.optimize.base import CompileContext, Trial


def fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


class TrialView(CompileEvents):
    """Prints what the compile job reports: one line per scored trial, and a live status."""

    def __init__(self) -> None:
        self.best: float | None = None

    def split(self, n_dev: int, n_total: int) -> None:
        stderr.print(f"no dev set: scoring on a seeded split ({n_dev} of {n_total} rows)")

    def resumed(self, trials: list[Trial], log: Path, budget: Budget) -> None:
        stderr.print(f"resuming: {len(trials)} finished trial(s) in {log}")
        for t in trials:
            self.trial(t, budget)

    def started(self, name: str, optimizer: str, n_train: int, n_dev: int, seed: int) -> None:
        stderr.print(f"compiling {name} with {optimizer}: {n_train} train, {n_dev} dev, seed {seed}")

    def trial(self, trial: Trial, budget: Budget) -> None:
        if trial.full_eval and trial.score is not None and (self.best is None or trial.score > self.best):
            self.best = trial.score
        scope = "dev" if trial.full_eval else f"minibatch of {trial.n}" if trial.n else "not scored"
        cost = f", ${budget.spent.cost:.4f}" if budget.spent.cost else ""
        stderr.print(f"trial {trial.index:>3} {trial.kind:<16} {fmt(trial.score)} ({scope})  "
                     f"best {fmt(self.best)}  calls {budget.calls}{cost}  {trial.description}", soft_wrap=True)

    async def live(self, ctx: CompileContext) -> None:
        """A live line under the trial log: the running trial, calls and cost so far."""
        if not interactive():
            return
        with stderr.status("") as status:
            while True:
                spent = ctx.budget.spent
                cost = f" · ${spent.cost:.4f}" if spent.cost else ""
                status.update(f"trial {len(ctx.log.trials)} running · {ctx.budget.calls} calls{cost}")
                await asyncio.sleep(0.25)

"""Measured demos: which successful runs make good demonstrations, found by racing them.

Examples differ a great deal in how much they help as demonstrations, and little of it
shows in their text: Chang & Jia 2023 ("Data Curation Alone Can Stabilize In-context
Learning") score each training example by the accuracy of prompts that contain it and
keep the best, which beats random choice by a wide margin and steadies the result. Here a
*unit* is what one successful training run gives the program: one demo for every
predictor that ran (so a multi-step program is measured as a whole). Each unit is tried
as the program's only demonstration on the *same* dev rows as the others (paired:
outcomes are correlated across prompts, so the differences are far less noisy than the
scores), and successive halving (Karnin et al. 2013; Jamieson & Talwalkar 2016) keeps the
better half after every batch of rows, so rows go to the contenders rather than to units
already clearly worse. The survivors, best first, are the demos.

Each (unit, batch) is a trial of kind `demo_race` scored on its batch only, so a resumed
compile replays the race from its log and a budget stop keeps what was measured. `halve`
is the same successive halving over any candidate program states (random_search races
its candidates with it, batches doubling each round).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.example import Example
from promptc.core.program import PredictorState, Program
from promptc.core.trace import Trace
from promptc.errors import BudgetExhausted
from promptc.optimize.base import CompileContext, ready
from promptc.optimize.reflection import Rollout

Unit = dict[str, dict[str, Any]]  # predictor name -> the demo one run gives it


class RaceSettings(BaseModel):
    """The race's knobs, shared by the optimizers that race demos."""

    race_units: int = Field(16, ge=0, description="successful runs raced as demos")
    race_rows: int = Field(6, ge=0, description="dev rows per race round (0: no race, the first runs win)")


def unit_from_trace(program: Program, trace: Trace) -> Unit:
    """One demo per predictor that ran: its last accepted call (a refine's kept revision)."""
    unit: Unit = {}
    for name, _ in program.named_predictors():
        calls = [r for r in trace.steps if r.predictor == name and r.error is None and not r.rejected]
        if calls:
            unit[name] = {**calls[-1].inputs, **calls[-1].outputs}
    return unit


def passing_units(program: Program, runs: Sequence[Rollout], threshold: float, limit: int) -> list[Unit]:
    """The units of the first `limit` runs that passed the metric (in run order)."""
    units = [unit_from_trace(program, r.trace) for r in runs
             if r.score is not None and r.score >= threshold and r.error is None]
    return [u for u in units if u][:limit]


def state_with_units(program: Program, units: Sequence[Unit],
                     instructions: Mapping[str, str] | None = None) -> dict[str, PredictorState]:
    """`program`'s state with every predictor's demos taken from `units`, in order (and
    `instructions` where given); a predictor no unit covers keeps its own demos."""
    state = program.state()
    for name, current in state.items():
        demos = [dict(u[name]) for u in units if name in u]
        state[name] = PredictorState(instructions=(instructions or {}).get(name, current.instructions),
                                     demos=demos if demos else current.demos, selector=current.selector)
    return state


def race_plan(units: int, keep: int, rows_per_round: int, rows: int, *, grow: bool = False) -> tuple[int, int]:
    """(trials, program runs) `race`/`halve` make at most: for progress bars, --dry-run and budgets."""
    trials, runs, alive, used, size = 0, 0, units, 0, rows_per_round
    while alive > keep and used + size <= rows:
        trials += alive
        runs += alive * size
        used += size
        alive = max(keep, math.ceil(alive / 2))
        size = size * 2 if grow else size
    return trials, runs


@dataclass
class RaceResult:
    ranking: list[int]  # unit indices, best first (survivors by mean, then the eliminated, latest first)
    next_index: int  # the first trial index after the race
    means: dict[int, float]
    stopped: str | None = None  # the budget ran out mid-race: the ranking is what was measured


async def race(ctx: CompileContext, program: Program, units: Sequence[Unit], rows: Sequence[Example], *,
               keep: int, rows_per_round: int, first_index: int,
               instructions: Mapping[str, str] | None = None) -> RaceResult:
    """Successive halving over `units`, each run as the only demos on the same batches of `rows`."""
    states = [state_with_units(program, [u], instructions) for u in units]
    return await halve(ctx, program, states, rows, keep=keep, rows_per_round=rows_per_round,
                       first_index=first_index, kind="demo_race", key="unit",
                       label=lambda u: f"run {u} as the only demo")


async def halve(ctx: CompileContext, program: Program, states: Sequence[Mapping[str, PredictorState]],
                rows: Sequence[Example], *, keep: int, rows_per_round: int, first_index: int, kind: str,
                key: str, label: Callable[[int], str], grow: bool = False) -> RaceResult:
    """Successive halving over candidate `states` of `program`: every survivor is scored on the
    same next batch of `rows` (paired), then the better half by mean over all its rows goes
    on, until `keep` remain or the rows run out. With `grow` each batch is twice the last
    (each round then costs about the same, and the last decisions rest on the most rows).

    A budget stop ends the race where it is (`stopped`): the ranking is what was measured."""
    alive = list(range(len(states)))
    total: dict[int, float] = {u: 0.0 for u in alive}
    seen: dict[int, int] = {u: 0 for u in alive}
    dropped: list[int] = []
    index, cursor, round_, size, stopped = first_index, 0, 0, rows_per_round, None
    while stopped is None and len(alive) > keep and cursor + size <= len(rows):
        batch = list(rows[cursor: cursor + size])
        before = dict(total), dict(seen)  # a stop mid-round ranks on the rows every survivor saw
        for u in alive:
            try:
                trial = await ctx.trial(index, kind, ready(program.with_state(states[u])), examples=batch,
                                        params={key: u, "round": round_},
                                        description=f"{label(u)}, round {round_} "
                                        f"(dev rows {cursor + 1}-{cursor + len(batch)} of the race)")
            except BudgetExhausted as exc:
                stopped = str(exc)
                if round_:  # rank on the rows every survivor saw; in round 0, on what was measured
                    total, seen = before
                break
            total[u] += (trial.score or 0.0) * trial.n
            seen[u] += trial.n
            index += 1
        if stopped is not None:
            break
        cursor, round_, size = cursor + size, round_ + 1, size * 2 if grow else size
        alive.sort(key=lambda u: (-_mean(total[u], seen[u]), u))
        survivors = max(keep, math.ceil(len(alive) / 2))
        dropped = alive[survivors:] + dropped  # later rounds' losers rank higher
        alive = alive[:survivors]
    alive.sort(key=lambda u: (seen[u] == 0, -_mean(total[u], seen[u]), u))  # the unmeasured last
    return RaceResult(ranking=alive + dropped, next_index=index,
                      means={u: _mean(total[u], seen[u]) for u in total}, stopped=stopped)


def _mean(total: float, n: int) -> float:
    return total / n if n else 0.0

"""Demo optimizers: labeled_few_shot, bootstrap_few_shot, random_search.

labeled_few_shot and bootstrap_few_shot build one program and, like DSPy's, spend nothing
on scoring it unless `score_dev: true`: the demos are the product, and `promptc eval`
scores the result when wanted (the compile says how).

random_search follows DSPy's BootstrapFewShotWithRandomSearch: candidate 0 is zero-shot,
1 uses labelled demos only, 2 is bootstrapped from the train set in order, and the rest
are bootstrapped from seeded shuffles with a random number of demos. They are raced on
dev (successive halving), the finalists and the spec as written scored on all of dev; the
best is kept (ties go to the earlier, simpler candidate).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.program import PredictorState, Program
from promptc.errors import BudgetExhausted
from promptc.optimize.base import CompileContext, ready
from promptc.optimize.bootstrap import (
    Bootstrapped,
    BootstrapSettings,
    bootstrap,
    combine,
    labeled_state,
)
from promptc.optimize.demo_race import RaceResult, halve, race, race_plan, unit_from_trace


class LabeledFewShot:
    """k labelled training examples as demos for every predictor they fit."""

    name = "labeled_few_shot"

    class Settings(BaseModel):
        model_config = {"extra": "forbid"}
        k: int = 16
        score_dev: bool = False  # also score the spec as written and the result on dev

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def planned_calls(self, ctx: CompileContext) -> int:
        scoring = 2 * len(ctx.devset) if self.settings.score_dev else 0
        return scoring * len(ctx.program.named_predictors())

    async def compile(self, ctx: CompileContext) -> Program:
        rng = random.Random(ctx.seed)
        sample = rng.sample(ctx.trainset, min(self.settings.k, len(ctx.trainset)))
        state = labeled_state(ctx.program, sample, self.settings.k)
        return await _one_candidate(ctx, self.settings.score_dev, "labeled", ready(ctx.program.with_state(state)),
                                    description=f"{self.settings.k} labelled demos", params={"k": self.settings.k})


class BootstrapFewShot:
    """Demos for every predictor from the teacher's successful runs, topped up with labelled ones.

    With `race_rows` (and a dev set), `candidates` runs are bootstrapped and raced
    (`promptc.optimize.demo_race`): each is tried as the only demo on the same few dev rows,
    the better half kept until `max_bootstrapped_demos` remain. That spends a few dozen
    calls where DSPy's spends none, because which examples become demos decides most of
    the result and only measuring tells them apart. `race_rows: 0` is DSPy's behaviour.
    """

    name = "bootstrap_few_shot"

    class Settings(BootstrapSettings):
        candidates: int = Field(8, ge=1, description="successful runs bootstrapped for the race")
        race_rows: int = Field(0, ge=0, description="dev rows per race round (0: no race, the first runs win)")
        score_dev: bool = False  # also score the spec as written and the result on dev

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def _race_plan(self, ctx: CompileContext) -> tuple[int, int]:
        s = self.settings
        if not s.race_rows or not ctx.devset or s.candidates <= s.max_bootstrapped_demos:
            return 0, 0
        return race_plan(s.candidates, s.max_bootstrapped_demos, s.race_rows, len(ctx.devset))

    def planned_calls(self, ctx: CompileContext) -> int:
        s, steps = self.settings, ctx.program.calls_per_row()
        wanted = max(s.max_bootstrapped_demos, s.candidates if self._race_plan(ctx)[0] else 0)
        boot = min(len(ctx.trainset), wanted * 3) * s.max_rounds * steps
        return boot + self._race_plan(ctx)[1] * steps + (2 * len(ctx.devset) * steps if s.score_dev else 0)

    async def compile(self, ctx: CompileContext) -> Program:
        s = self.settings
        race_trials, _ = self._race_plan(ctx)
        ctx.plan_trials(race_trials + (2 if s.score_dev else 1))
        boot = await bootstrap(ctx.program, ctx.trainset, ctx.metric,
                               max_demos=s.candidates if race_trials else s.max_bootstrapped_demos,
                               max_rounds=s.max_rounds, threshold=s.metric_threshold,
                               concurrency=ctx.concurrency, lms=ctx.teacher_lms,
                               teacher_demos=s.teacher_demos, rng=random.Random(ctx.seed))
        index, runs, stopped = 0, len(boot.traces), None
        if race_trials and runs > s.max_bootstrapped_demos:
            boot, index, stopped = await _raced(ctx, boot, s.max_bootstrapped_demos, s.race_rows)
        raced = f" (raced from {runs} runs)" if index else ""
        if s.score_dev and not stopped:  # after the race, so a tight budget goes to the race first
            await ctx.trial(index, "zero_shot", ready(ctx.program), description="the spec as written")
            index += 1
        ctx.traces.extend(boot.traces)
        state = combine(ctx.program, boot, ctx.trainset, max_bootstrapped=s.max_bootstrapped_demos,
                        max_labeled=s.max_labeled_demos)
        params = {**s.model_dump(), **({"stopped_early": stopped} if stopped else {})}
        built = await ctx.trial(index, "bootstrapped", ready(ctx.program.with_state(state)), params=params,
                                scored=s.score_dev and not stopped,
                                description=f"up to {s.max_bootstrapped_demos} bootstrapped{raced} + "
                                f"{s.max_labeled_demos} labelled demos")
        if stopped:
            raise BudgetExhausted(stopped)  # the job keeps the trial just logged and reports the stop
        return _best(ctx) if s.score_dev else ctx.program.with_state(built.state)


async def _raced(ctx: CompileContext, boot: Bootstrapped, keep: int,
                 rows_per_round: int) -> tuple[Bootstrapped, int, str | None]:
    """`boot` cut to its `keep` best runs by a demo race on seeded dev rows; the next trial
    index; why the race stopped early (a budget), if it did."""
    units = [unit_from_trace(ctx.program, t) for t in boot.traces]
    rows = random.Random(f"demo-race-{ctx.seed}").sample(ctx.devset, len(ctx.devset))
    result = await race(ctx, ctx.program, units, rows, keep=keep, rows_per_round=rows_per_round, first_index=0)
    chosen = result.ranking[:keep]
    kept = Bootstrapped(used=set(boot.used), attempted=boot.attempted)
    kept.traces = [boot.traces[u] for u in chosen]
    for u in chosen:
        for name, demo in units[u].items():
            kept.demos.setdefault(name, []).append(demo)
    return kept, result.next_index, result.stopped


class RandomSearch:
    """Zero-shot, labelled-only and bootstrapped candidates with different seeds; the best on dev.

    Candidates are raced rather than each scored on all of dev (`demo_race.halve`):
    every survivor is scored on the same next rows, `race_rows` at first and twice as
    many each round, and the better half goes on; the last `finalists` are scored on all
    of dev (their earlier rows replay from the LM cache) and the best is kept. On the
    benchmark LM this makes the same picks as scoring all 16 candidates (DSPy's default) on
    all of dev, for 2,500 calls instead of 5,800. `race_rows: 0` scores every candidate on
    all of dev, as DSPy does.
    """

    name = "random_search"

    class Settings(BootstrapSettings):
        num_candidates: int = Field(16, ge=0, description="bootstrapped candidates (beside zero-shot and labelled)")
        race_rows: int = Field(40, ge=0, description="dev rows of the first race round (0: every candidate on all of dev)")
        finalists: int = Field(3, ge=1, description="race survivors scored on all of dev")

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def _plan(self, ctx: CompileContext) -> tuple[int, int, int]:
        """(race trials, race runs, finalists) per row of calls."""
        s, n = self.settings, self.settings.num_candidates + 3
        if not s.race_rows:
            return 0, 0, n
        keep = min(s.finalists, n)
        return (*race_plan(n, keep, s.race_rows, len(ctx.devset), grow=True), keep)

    def planned_calls(self, ctx: CompileContext) -> int:
        s, per_row = self.settings, ctx.program.calls_per_row()
        per_candidate = min(len(ctx.trainset), s.max_bootstrapped_demos * 3) * s.max_rounds * per_row
        _, runs, finalists = self._plan(ctx)
        return (runs + (finalists + 1) * len(ctx.devset)) * per_row + (s.num_candidates + 1) * per_candidate

    async def compile(self, ctx: CompileContext) -> Program:
        trials, _, finalists = self._plan(ctx)
        ctx.plan_trials(trials + finalists + 1)
        candidates = await self._candidates(ctx)
        result = await self._race(ctx, candidates, finalists) if trials else \
            RaceResult(ranking=list(range(len(candidates))), next_index=0, means={})
        order, index = result.ranking, result.next_index
        if result.stopped:
            kind, description, state = candidates[order[0]]
            await ctx.trial(index, kind, ready(ctx.program.with_state(state)), scored=False,
                            params={"candidate": order[0], "stopped_early": result.stopped},
                            description=f"{description}: the race's leader so far (budget stop)")
            raise BudgetExhausted(result.stopped)
        # BudgetExhausted propagates from here: `compile` keeps the best trial logged so far.
        # The spec as written is scored on all of dev first, finalist or not: it is the
        # "before" of the compile's before -> after (its race rows replay from the cache).
        finals = [0] + [c for c in order[:finalists] if c != 0]
        for j, c in enumerate(finals):
            kind, description, state = candidates[c]
            await ctx.trial(index + j, kind, ready(ctx.program.with_state(state)), params={"candidate": c},
                            description=f"candidate {c}: {description}"
                            + ("" if c in order[:finalists] else " (the baseline, not a finalist)"))
        return _best(ctx)

    async def _race(self, ctx: CompileContext, candidates: list[tuple[str, str, dict[str, PredictorState]]],
                    finalists: int) -> RaceResult:
        """Successive halving of the candidates on seeded dev rows, batches doubling each round."""
        rows = random.Random(f"random-search-{ctx.seed}").sample(ctx.devset, len(ctx.devset))
        return await halve(ctx, ctx.program, [state for _, _, state in candidates], rows, keep=finalists,
                           rows_per_round=self.settings.race_rows, first_index=0, kind="race", key="candidate",
                           grow=True, label=lambda i: f"candidate {i}: {candidates[i][1]}")

    async def _candidates(self, ctx: CompileContext) -> list[tuple[str, str, dict[str, PredictorState]]]:
        """(kind, description, state): zero-shot, labelled demos, bootstrapped in train order,
        then bootstrapped from seeded shuffles with a random number of demos (DSPy's layout)."""
        s = self.settings
        labeled = labeled_state(ctx.program, random.Random(ctx.seed).sample(ctx.trainset, len(ctx.trainset)),
                                s.max_labeled_demos)
        out = [("zero_shot", "the spec as written", ctx.program.state()),
               ("labeled", f"{s.max_labeled_demos} labelled demos", labeled)]
        for index in range(2, s.num_candidates + 3):
            seed = ctx.seed * 1000 + index  # disjoint per compile seed: seeds 0 and 1 share no candidate
            rng = random.Random(seed)
            order = list(ctx.trainset) if index == 2 else rng.sample(ctx.trainset, len(ctx.trainset))
            size = s.max_bootstrapped_demos if index == 2 else rng.randint(1, max(1, s.max_bootstrapped_demos))
            boot = await bootstrap(ctx.program, order, ctx.metric, max_demos=size, max_rounds=s.max_rounds,
                                   threshold=s.metric_threshold, concurrency=ctx.concurrency,
                                   lms=ctx.teacher_lms, teacher_demos=s.teacher_demos, rng=rng)
            ctx.traces.extend(boot.traces)
            state = combine(ctx.program, boot, order, max_bootstrapped=size, max_labeled=s.max_labeled_demos, rng=rng)
            out.append(("bootstrapped", f"{size} bootstrapped demos, "
                        + ("train order" if index == 2 else f"shuffle seed {seed}"), state))
        return out


async def _one_candidate(ctx: CompileContext, score_dev: bool, kind: str,
                         build: Callable[[], Awaitable[Program]], *, description: str,
                         params: dict[str, Any]) -> Program:
    """Trial 0 the spec as written and trial 1 the candidate, both scored on dev when
    `score_dev`; else the candidate alone, built and logged unscored."""
    ctx.plan_trials(2 if score_dev else 1)
    if not score_dev:
        built = await ctx.trial(1, kind, build, description=description, params=params, scored=False)
        return ctx.program.with_state(built.state)
    await ctx.trial(0, "zero_shot", ready(ctx.program), description="the spec as written")
    await ctx.trial(1, kind, build, description=description, params=params)
    return _best(ctx)



def _best(ctx: CompileContext) -> Program:
    best = ctx.log.best()
    if best is None:
        return ctx.program
    return ctx.program.with_state(best.state)

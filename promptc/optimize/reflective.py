"""reflective_bootstrap: one pass over training rows, raced demos, reflected instructions.

Five ideas, combined to spend few calls:

1. *Bootstrap* (DSPy's BootstrapFewShot): the program runs once on `rollouts` training
   rows (a seeded sample). Every run whose final output passes the metric gives each
   predictor a demo, chain-of-thought reasoning included; those runs are the candidates.
2. *Race the demos* (`promptc.optimize.demo_race`; Chang & Jia 2023): examples differ
   a lot in how much they help as demos, invisibly in their text. Up to `race_units`
   candidate runs are each tried as the only demo on the same dev rows, halving the field
   every `race_rows` rows until `max_demos` remain: those are the demos.
3. *Reflect* (GEPA, Agrawal et al. 2025): the same runs, passes and failures with the
   metric's feedback, are shown to a reflection LM (`reflection`, else `teacher`, else
   `default`), which writes a new instruction per predictor. Each of the `instructions`
   proposals reads a different slice of the runs, so they address different mistakes.
4. *Choose on paired rows, then confirm*: the original instruction and every proposal,
   each with the raced demos, are scored on the *same* `eval_rows` dev rows (outcomes are
   correlated across prompts, so pairing removes most of the noise); the two best proposals
   are scored on `confirm_rows` more, and the better mean over all their rows wins: among
   close candidates on few rows, the top one is often luck (the winner's curse). For a
   multi-step program, candidate i is every predictor's i-th proposal.
5. *The original has to prove itself*: a proposal is written to fix failures the program
   was seen making, so a tie or a small lead on a few dozen rows is no reason to keep the
   original (on the benchmark LM every proposal of 12 seeds beat it held out, yet it won the
   old rule's 40-row choice in 5-10% of seeds). It is kept only when it beats the chosen proposal on the
   paired rows by a significant margin (McNemar's exact test, or the paired bootstrap for
   graded metrics, at `original_alpha`; an error row counts as a miss), which still
   catches a reflection LM that makes things worse.

Trials: 0 is the pool (the original instructions with the first `max_demos` runs as demos,
unscored: what a budget stop before the race's end writes), then the race and `raced` (its
pick, unscored: what a later budget stop writes), the instruction candidates (scored
on the dev subset, full_eval False), the confirmation runs, and last the chosen program
(unscored on all of dev: `promptc eval --program` scores it). Resume replays the rollouts
and reflections from the LM cache and skips finished trials.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptc.core.example import Example
from promptc.core.program import Program
from promptc.errors import BudgetExhausted
from promptc.evaluation.stats import compare
from promptc.optimize.base import CompileContext, Trial, ready
from promptc.optimize.demo_race import (
    RaceSettings,
    Unit,
    passing_units,
    race,
    race_plan,
    state_with_units,
)
from promptc.optimize.reflection import Rollout, reflect, reflection_lm, rollouts


class ReflectiveBootstrap:
    """Raced bootstrapped demos and reflected instructions, chosen on paired dev rows."""

    name = "reflective_bootstrap"

    class Settings(RaceSettings):
        model_config = {"extra": "forbid"}
        rollouts: int = Field(48, ge=1, description="training rows the program runs on once")
        max_demos: int = Field(4, ge=0, description="demos per predictor: the race's survivors")
        instructions: int = Field(3, ge=0, description="reflected instruction candidates per predictor")
        eval_rows: int = Field(20, ge=1, description="dev rows every instruction candidate is scored on (paired)")
        confirm_rows: int = Field(20, ge=0, description="more dev rows for the two best instructions")
        records: int = Field(24, ge=1, description="runs each reflection call reads")
        reflection_temperature: float = Field(1.0, ge=0)
        original_alpha: float = Field(0.1, gt=0, le=1, description="the original instruction is kept only if it "
                                      "beats the chosen proposal on the paired dev rows at this significance")
        metric_threshold: float | None = None  # default: the metric's own pass threshold

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def _race_plan(self, ctx: CompileContext) -> tuple[int, int]:
        s = self.settings
        if not s.race_rows or not ctx.devset:
            return 0, 0
        return race_plan(min(s.race_units, s.rollouts, len(ctx.trainset)), s.max_demos, s.race_rows, len(ctx.devset))

    def planned_calls(self, ctx: CompileContext) -> int:
        s, per_row = self.settings, ctx.program.calls_per_row()
        confirm = self._confirmed() * min(s.confirm_rows, len(ctx.devset))
        runs = min(s.rollouts, len(ctx.trainset)) + self._race_plan(ctx)[1] \
            + (s.instructions + 1) * min(s.eval_rows, len(ctx.devset)) + confirm
        return runs * per_row + s.instructions * len(ctx.program.named_predictors())

    async def compile(self, ctx: CompileContext) -> Program:
        s, program = self.settings, ctx.program
        confirm = self._confirmed()
        race_trials = self._race_plan(ctx)[0]
        ctx.plan_trials(2 + race_trials + (1 if race_trials else 0) + s.instructions + 1 + confirm)
        rng = random.Random(f"reflective-{ctx.seed}")
        rows = rng.sample(range(len(ctx.trainset)), min(s.rollouts, len(ctx.trainset)))
        runs = await rollouts(program, ctx.trainset, rows, ctx.metric, concurrency=ctx.concurrency)
        threshold = ctx.metric.threshold if s.metric_threshold is None else s.metric_threshold
        units = passing_units(program, runs, threshold, s.race_units)
        await ctx.trial(0, "pool", ready(program.with_state(state_with_units(program, units[:s.max_demos]))),
                        scored=False, description=f"the first {s.max_demos} of {len(units)} passing runs "
                        f"(of {len(runs)}) as demos; original instructions")
        demos, index = await self._race(ctx, units)
        if index > 1:  # what a budget stop from here on writes: the raced demos, not the pool
            await ctx.trial(index, "raced", ready(program.with_state(state_with_units(program, demos))),
                            scored=False, description=f"the race's {len(demos)} best runs as demos; "
                            "original instructions")
            index += 1
        instructions = await self._instructions(ctx, runs, threshold)
        subset = random.Random(f"reflective-dev-{ctx.seed}").sample(ctx.devset, min(s.eval_rows, len(ctx.devset)))
        trials: dict[int, Trial] = {}
        for i in [0, *sorted(instructions)]:  # a reflection that wrote nothing new is not scored again
            state = state_with_units(program, demos, instructions.get(i, {}))
            trials[i] = await ctx.trial(index, "instruction", ready(program.with_state(state)), examples=subset,
                                        params={"instruction": i}, per_example=True,
                                        description="the original instruction" if i == 0 else f"reflected instruction {i}")
            index += 1
        scores = {i: trials[i].score or 0.0 for i in instructions}
        best = max(scores, key=lambda i: (scores[i], -i), default=0)
        if len(scores) > 1 and self._confirmed():
            best, index = await self._confirm(ctx, scores, instructions, demos, subset, index)
        if best and original_wins(trials[0].instance_scores, trials[best].instance_scores, s.original_alpha):
            best = 0
        chosen = program.with_state(state_with_units(program, demos, instructions.get(best, {})))
        await ctx.trial(index, "chosen", ready(chosen), scored=False, params={"instruction": best},
                        description=f"instruction {best} with the {len(demos)} raced demos: the best proposal by "
                        "its mean over the dev subset, unless the original beat it significantly there "
                        "(not scored on all of dev)")
        return chosen

    def _confirmed(self) -> int:
        """How many proposals the confirmation rows score: the best two, when there are two."""
        s = self.settings
        return 2 if s.confirm_rows and s.instructions >= 2 else 0

    async def _race(self, ctx: CompileContext, units: list[Unit]) -> tuple[list[Unit], int]:
        """The `max_demos` best units by a demo race (the first ones without one); the next trial index.
        A budget stop logs the race's pick so far as the chosen program, then ends the compile."""
        s = self.settings
        if not self._race_plan(ctx)[0] or len(units) <= s.max_demos:
            return units[:s.max_demos], 1
        rows = random.Random(f"reflective-race-{ctx.seed}").sample(ctx.devset, len(ctx.devset))
        result = await race(ctx, ctx.program, units, rows, keep=s.max_demos, rows_per_round=s.race_rows,
                            first_index=1)
        demos = [units[u] for u in result.ranking[:s.max_demos]]
        if result.stopped:
            state = state_with_units(ctx.program, demos)
            await ctx.trial(result.next_index, "chosen", ready(ctx.program.with_state(state)), scored=False,
                            params={"stopped_early": result.stopped},
                            description="the race's best demos so far, original instructions (budget stop)")
            raise BudgetExhausted(result.stopped)
        return demos, result.next_index

    async def _confirm(self, ctx: CompileContext, scores: dict[int, float], instructions: dict[int, dict[str, str]],
                       demos: list[Unit], subset: Sequence[Example], index: int) -> tuple[int, int]:
        """Score the two best proposals on `confirm_rows` more dev rows and keep the one with
        the better mean over all its rows: the winner of a close race on few rows is often luck."""
        s = self.settings
        top = sorted(scores, key=lambda i: (-scores[i], i))[:2]
        rest = [ex for ex in ctx.devset if not any(ex is e for e in subset)]
        extra = random.Random(f"reflective-confirm-{ctx.seed}").sample(rest, min(s.confirm_rows, len(rest)))
        if not extra:
            return top[0], index
        total: dict[int, float] = {}
        for i in top:
            state = state_with_units(ctx.program, demos, instructions.get(i, {}))
            trial = await ctx.trial(index, "confirm", ready(ctx.program.with_state(state)), examples=extra,
                                    params={"instruction": i},
                                    description=f"instruction {i} on {len(extra)} more dev rows")
            index += 1
            total[i] = (scores[i] * len(subset) + (trial.score or 0.0) * len(extra)) / (len(subset) + len(extra))
        return max(top, key=lambda i: (total[i], -i)), index

    async def _instructions(self, ctx: CompileContext, runs: Sequence[Rollout],
                            threshold: float) -> dict[int, dict[str, str]]:
        """Candidate i (1..n) per predictor: a reflection on its own slice of the runs."""
        s, program = self.settings, ctx.program
        out: dict[int, dict[str, str]] = {}
        for i in range(1, s.instructions + 1):
            part = [runs[(k + (i - 1) * len(runs) // max(1, s.instructions)) % len(runs)]
                    for k in range(min(s.records, len(runs)))] if runs else []
            for name, _ in program.named_predictors():
                new = await reflect(program, name, part, lm=reflection_lm(program), threshold=threshold,
                                    sample_index=i, temperature=s.reflection_temperature)
                if new is not None:
                    out.setdefault(i, {})[name] = new
        return out


def original_wins(original: Sequence[float | None], proposal: Sequence[float | None], alpha: float) -> bool:
    """True when the original instruction's per-row scores beat the proposal's on the same rows
    at significance `alpha` (two-sided; McNemar for 0/1 scores, else the paired bootstrap).
    An error row (None) counts as 0: a proposal that breaks the output format loses rows."""
    if not original or len(original) != len(proposal):
        return False
    result = compare([p or 0.0 for p in proposal], [o or 0.0 for o in original])
    return result.diff > 0 and result.p_value < alpha

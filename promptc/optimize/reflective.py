"""reflective_bootstrap: one pass over training rows, reflected instructions, a factorial choice.

Three ideas with a record on real models, combined to spend few calls:

1. *Bootstrap* (DSPy's BootstrapFewShot): the program runs once on `rollouts` training
   rows (a seeded sample). Every run whose final output passes the metric gives each
   predictor a demo, chain-of-thought reasoning included; that is the demo pool.
2. *Reflect* (GEPA, Agrawal et al. 2025): the same runs, passes and failures with the
   metric's feedback, are shown to a reflection LM (`reflection`, else `teacher`, else
   `default`), which writes a new instruction per predictor. Each of the `instructions`
   proposals reads a different slice of the runs, so they address different mistakes.
3. *Choose by main effects on paired rows*: every combination of instruction candidate
   (the original and the proposals) and demo-set candidate (`demo_sets` seeded samples
   of the pool) is scored on the *same* `eval_rows` dev rows. Outcomes are correlated
   across prompts, so rows are paired; and the instruction is chosen by its mean over all
   demo sets, the demo set by its mean over all instructions (a full factorial design), so
   each choice rests on many more rows than any single cell. For a multi-step program,
   candidate i is every predictor's i-th instruction (its own proposal), likewise demo sets.

4. *Confirm*: the two instructions with the best main effects are scored on
   `confirm_rows` more dev rows (with the chosen demo set), and the better mean over all
   their rows wins: among several close candidates on few rows, the top one is often luck.

Trials: 0 is the pool (the original instructions with the first demo set, unscored: what
a budget stop writes), 1.. the factorial cells (scored on the dev subset, full_eval False),
then the two confirmation runs, last the chosen program (unscored on all of dev: `promptc eval --program` scores it). Resume
replays the rollouts and reflections from the LM cache and skips finished cells.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.example import Example
from promptc.core.program import PredictorState, Program
from promptc.optimize.base import CompileContext, ready
from promptc.optimize.reflection import Rollout, reflect, reflection_lm, rollouts

Grid = dict[tuple[int, int], float]


class ReflectiveBootstrap:
    """Bootstrapped demos and reflected instructions, chosen by a factorial on paired dev rows."""

    name = "reflective_bootstrap"

    class Settings(BaseModel):
        model_config = {"extra": "forbid"}
        rollouts: int = Field(48, ge=1, description="training rows the program runs on once")
        instructions: int = Field(4, ge=0, description="reflected instruction candidates per predictor")
        demo_sets: int = Field(2, ge=1, description="demo-set candidates sampled from the pool")
        max_demos: int = Field(8, ge=0, description="demos per predictor")
        eval_rows: int = Field(24, ge=1, description="dev rows every candidate is scored on (paired)")
        confirm_rows: int = Field(24, ge=0, description="more dev rows for the two best instructions")
        records: int = Field(24, ge=1, description="runs each reflection call reads")
        reflection_temperature: float = Field(1.0, ge=0)
        metric_threshold: float | None = None  # default: the metric's own pass threshold

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def planned_calls(self, ctx: CompileContext) -> int:
        s, per_row = self.settings, ctx.program.calls_per_row()
        cells = (s.instructions + 1) * s.demo_sets
        predictors = len(ctx.program.named_predictors())
        return (min(s.rollouts, len(ctx.trainset)) + cells * min(s.eval_rows, len(ctx.devset))) * per_row \
            + s.instructions * predictors

    async def compile(self, ctx: CompileContext) -> Program:
        s, program = self.settings, ctx.program
        confirm = min(2, s.instructions + 1) if s.confirm_rows and s.instructions else 0
        ctx.plan_trials(2 + (s.instructions + 1) * s.demo_sets + confirm)  # pool, grid, confirm, chosen
        rng = random.Random(f"reflective-{ctx.seed}")
        rows = rng.sample(range(len(ctx.trainset)), min(s.rollouts, len(ctx.trainset)))
        runs = await rollouts(program, ctx.trainset, rows, ctx.metric, concurrency=ctx.concurrency)
        threshold = ctx.metric.threshold if s.metric_threshold is None else s.metric_threshold
        demo_sets = _demo_sets(program, runs, threshold, s.demo_sets, s.max_demos, rng)
        await ctx.trial(0, "pool", ready(program.with_state(_state(program, {}, demo_sets, 0))), scored=False,
                        description=f"demo pool from {len(runs)} training runs; original instructions")
        instructions = await self._instructions(ctx, runs, threshold)
        subset = random.Random(f"reflective-dev-{ctx.seed}").sample(ctx.devset, min(s.eval_rows, len(ctx.devset)))
        grid: Grid = {}
        for i in range(s.instructions + 1):
            for j in range(s.demo_sets):
                state = _state(program, instructions.get(i, {}), demo_sets, j)
                trial = await ctx.trial(1 + i * s.demo_sets + j, "factorial", ready(program.with_state(state)),
                                        examples=subset, params={"instruction": i, "demo_set": j},
                                        description=f"instruction {i}, demo set {j}")
                grid[i, j] = trial.score or 0.0
        best_i, best_j = main_effects(grid)
        last = 1 + (s.instructions + 1) * s.demo_sets
        if s.confirm_rows and s.instructions:
            best_i, last = await self._confirm(ctx, grid, instructions, demo_sets, best_j, subset, last)
        chosen = program.with_state(_state(program, instructions.get(best_i, {}), demo_sets, best_j))
        await ctx.trial(last, "chosen", ready(chosen), scored=False, params={"instruction": best_i, "demo_set": best_j},
                        description=f"instruction {best_i} and demo set {best_j}: the best means over the "
                        f"{len(subset)}-row dev subset (not scored on all of dev)")
        return chosen

    async def _confirm(self, ctx: CompileContext, grid: Grid, instructions: dict[int, dict[str, str]],
                       demo_sets: dict[str, list[list[dict[str, Any]]]], j: int, subset: Sequence[Example],
                       index: int) -> tuple[int, int]:
        """Score the two instructions with the best main effects on `confirm_rows` more dev rows
        (with demo set `j`) and keep the one with the better mean over all its rows: the
        winner of a close race on few rows is often luck (the winner's curse)."""
        s = self.settings
        cols = sorted({c for _, c in grid})
        effect = {i: sum(grid[i, c] for c in cols) / len(cols) for i, _ in grid}
        top = sorted(effect, key=lambda i: (-effect[i], i))[:2]
        rest = [ex for ex in ctx.devset if not any(ex is e for e in subset)]
        extra = random.Random(f"reflective-confirm-{ctx.seed}").sample(rest, min(s.confirm_rows, len(rest)))
        if not extra:
            return top[0], index
        total: dict[int, float] = {}
        for i in top:
            state = _state(ctx.program, instructions.get(i, {}), demo_sets, j)
            trial = await ctx.trial(index, "confirm", ready(ctx.program.with_state(state)), examples=extra,
                                    params={"instruction": i, "demo_set": j},
                                    description=f"instruction {i} on {len(extra)} more dev rows")
            index += 1
            seen = len(subset) * len(cols)
            total[i] = (effect[i] * seen + (trial.score or 0.0) * len(extra)) / (seen + len(extra))
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


def main_effects(grid: Grid) -> tuple[int, int]:
    """(instruction, demo set) with the best mean over the other factor; ties: the lower index."""
    rows = sorted({i for i, _ in grid})
    cols = sorted({j for _, j in grid})

    def mean_i(i: int) -> float:
        return sum(grid[i, j] for j in cols) / len(cols)

    def mean_j(j: int) -> float:
        return sum(grid[i, j] for i in rows) / len(rows)

    return max(rows, key=lambda i: (mean_i(i), -i)), max(cols, key=lambda j: (mean_j(j), -j))


def _demo_sets(program: Program, runs: Sequence[Rollout], threshold: float, n: int, k: int,
               rng: random.Random) -> dict[str, list[list[dict[str, Any]]]]:
    """Per predictor, `n` seeded samples of up to `k` demos from the passing runs."""
    pool: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run.score is None or run.score < threshold:
            continue
        for name, _ in program.named_predictors():
            calls = [r for r in run.trace.steps if r.predictor == name and r.error is None and not r.rejected]
            if calls:
                pool.setdefault(name, []).append({**calls[-1].inputs, **calls[-1].outputs})
    return {name: [rng.sample(demos, min(k, len(demos))) for _ in range(n)] for name, demos in pool.items()}


def _state(program: Program, instructions: dict[str, str], demo_sets: dict[str, list[list[dict[str, Any]]]],
           j: int) -> dict[str, PredictorState]:
    state = program.state()
    for name, current in state.items():
        sets = demo_sets.get(name)
        state[name] = PredictorState(instructions=instructions.get(name, current.instructions),
                                     demos=[dict(d) for d in sets[j]] if sets else current.demos)
    return state





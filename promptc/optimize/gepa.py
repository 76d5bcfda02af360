"""GEPA: reflective prompt evolution (Agrawal et al. 2025), evolving demos alongside instructions.

A candidate is a full program state: every predictor's instruction *and* demos. The search
keeps a pool of accepted candidates, each scored on the same validation rows (a seeded
subsample of dev, fixed for the whole compile).

Warm-up (beyond DSPy's GEPA, which tunes instructions only): the program runs on
`2 * race_units` training rows; the runs that pass are demo candidates (DSPy-style
bootstrapped demos, reasoning included), raced on dev rows outside the validation subset
(`demo_race`: each tried as the only demo on the same rows, the better half kept each
round). The seed candidate is the spec as written with the `max_demos` best of them:
which examples are demos decides much of the result, and measuring finds the good ones.
With `race_rows: 0` the seed is the spec as written and demos evolve by mutation instead.

Each iteration:

1. picks a parent from the per-instance Pareto front of the pool (`pareto`), drawn by how
   many validation rows it is best on, and the next (predictor, mutation) of its round robin;
2. runs the parent on a minibatch of training rows (an epoch-shuffled stream), keeping the
   traces and the metric's feedback (`reflection.rollouts`); a minibatch it already gets
   all right teaches nothing and is skipped, as in GEPA;
3. mutates one predictor:
   - `reflect` (GEPA): a reflection LM (the spec's `reflection` LM, else `teacher`, else
     `default`) reads the predictor's inputs and outputs in the minibatch's traces (then
     the warm-up's, up to `records` runs: more failures to learn from), the scores and the
     feedback, and rewrites its instruction;
   - `demos` (only without a race): the child gets one more demo from earlier successful
     rollouts, or one swapped in when its slots are full;
4. keeps the child only if it beats the parent on the *same* minibatch (a paired
   comparison; demos never come from the rows they are judged on), then scores it on the
   validation rows and adds it to the pool.

After each accepted child a merge is due (GEPA's system-aware merge): two front candidates
with a common ancestor that changed different parts are combined; the merge is checked on a
few validation rows where its parents differ and kept if it is not worse than either.

The result: the `finalists` best candidates on the validation rows are scored on
`final_rows` more dev rows, and the best mean over all their rows wins (the winner of many
on a few dozen rows is often luck). The budget is `max_metric_calls` program runs
(rollouts, race, minibatch, validation and finalist scoring; reflection calls come on top,
one per iteration), from the `auto` preset unless set; it stops the search between
iterations, keeping room for the finalists.

Resume: every random choice derives from `ctx.seed` and the iteration number, trial indices
are handed out in loop order, and a finished trial is read back with the candidate it
scored, so a rerun takes the same decisions without redoing trials; the parent rollouts are
rerun and replayed by the LM cache, and the reflection is skipped when its trial is logged.
"""


from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from promptc.core.example import Example
from promptc.core.program import PredictorState, Program
from promptc.errors import BudgetExhausted
from promptc.optimize.base import CompileContext, Trial, ready
from promptc.optimize.demo_race import (
    RaceSettings,
    passing_units,
    race,
    race_plan,
    state_with_units,
)
from promptc.optimize.pareto import Candidate, merge_options, merged_state, select_parent
from promptc.optimize.reflection import Rollout, reflect, reflection_lm, rollouts


@dataclass(frozen=True)
class Plan:
    max_metric_calls: int
    val_size: int
    minibatch_size: int


PRESETS: dict[str, Plan] = {
    "light": Plan(max_metric_calls=600, val_size=40, minibatch_size=4),
    "medium": Plan(max_metric_calls=1200, val_size=80, minibatch_size=4),
    "heavy": Plan(max_metric_calls=2400, val_size=150, minibatch_size=5),
}

MERGE_ROWS = 5  # validation rows a merge is checked on before its full validation (GEPA's default)


@dataclass
class _Search:
    """The state of one GEPA run (rebuilt identically on resume)."""

    ctx: CompileContext  # its devset is the validation rows
    plan: Plan
    pool: list[Candidate] = field(default_factory=list)
    demo_pool: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # predictor -> train row -> demo
    index: int = 0  # the next trial index
    spent: int = 0  # metric calls so far (planned sizes, so a cached replay counts the same)
    merges_due: int = 0
    merges_done: int = 0
    tried_merges: set[tuple[int, int, int]] = field(default_factory=set)
    batches: list[int] = field(default_factory=list)  # the train-row stream, consumed from the front
    epochs: int = 0
    raced: bool = False  # the seed's demos were raced: mutations then rewrite instructions only
    warm_runs: list[Rollout] = field(default_factory=list)  # the warm-up's runs: more evidence to reflect on

    def left(self) -> int:
        return self.plan.max_metric_calls - self.spent


class GEPA:
    """Reflective evolution of instructions and demos on a per-instance Pareto front."""

    name = "gepa"

    class Settings(RaceSettings):
        model_config = {"extra": "forbid"}

        auto: Literal["light", "medium", "heavy"] = "light"
        max_metric_calls: int | None = Field(None, ge=1, description="program runs scored, reflection calls aside")
        val_size: int | None = Field(None, ge=1, description="dev rows of the Pareto/validation subset")
        minibatch_size: int | None = Field(None, ge=1, description="training rows per rollout")
        evolve_demos: bool = Field(True, description="mutate demos as well as instructions")
        max_demos: int = Field(4, ge=0, description="demos per predictor (the demo mutation adds or swaps one)")
        records: int = Field(24, ge=1, description="runs a reflection reads: the minibatch's, then the warm-up's")
        finalists: int = Field(3, ge=0, description="best candidates on the validation rows scored on more dev rows")
        final_rows: int = Field(60, ge=0, description="dev rows outside the validation subset each finalist is scored on")
        merge: bool = True
        max_merges: int = Field(5, ge=0)
        reflection_temperature: float = Field(1.0, ge=0)
        metric_threshold: float | None = None  # a pass for demos and skipped minibatches; default the metric's

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def plan(self, ctx: CompileContext) -> Plan:
        s, preset = self.settings, PRESETS[self.settings.auto]
        return Plan(max_metric_calls=s.max_metric_calls if s.max_metric_calls is not None else preset.max_metric_calls,
                    val_size=max(1, min(s.val_size or preset.val_size, len(ctx.devset))),
                    minibatch_size=max(1, min(s.minibatch_size or preset.minibatch_size, len(ctx.trainset))))

    def planned_calls(self, ctx: CompileContext) -> int:
        """An upper estimate: every metric call's LM calls, plus one reflection per iteration."""
        plan = self.plan(ctx)
        iterations = max(0, plan.max_metric_calls - plan.val_size) // (2 * plan.minibatch_size)
        return plan.max_metric_calls * ctx.program.calls_per_row() + iterations

    async def compile(self, ctx: CompileContext) -> Program:
        """The best candidate on the validation rows. BudgetExhausted propagates: the compile
        job keeps the best validation trial logged so far and reports the stop."""
        plan = self.plan(ctx)
        ctx.plan_trials(None)  # how many children are kept is not known in advance
        rows = sorted(random.Random(f"gepa-val-{ctx.seed}").sample(range(len(ctx.devset)), plan.val_size))
        search = _Search(ctx=dataclasses.replace(ctx, devset=[ctx.devset[i] for i in rows]), plan=plan)
        start = ctx.program
        if self.settings.evolve_demos and self.settings.max_demos:
            start = await self._warm_up(search, ctx)
        seed = await search.ctx.trial(search.index, "gepa_seed", ready(start), per_example=True,
                                      params={"val_rows": rows},
                                      description=f"the seed candidate ({_seed_what(start, ctx.program)}), on "
                                      f"{plan.val_size} of {len(ctx.devset)} dev rows; the result is the best mean "
                                      "on these rows, no extra full-dev evaluation")
        search.pool.append(Candidate(id=0, state=seed.state, val_scores=_zeros(seed), trial=seed.index))
        search.index += 1
        search.spent += plan.val_size
        final_rows = self._final_rows(ctx, search)
        reserve = min(self.settings.finalists * len(final_rows), plan.max_metric_calls // 4)
        iteration = 0
        while search.left() - reserve >= 2 * plan.minibatch_size + plan.val_size:
            iteration += 1
            if self.settings.merge and search.merges_due and search.merges_done < self.settings.max_merges:
                if await self._merge(search, iteration):
                    continue
            await self._mutate(search, iteration)
        return await self._final(search, final_rows)

    def _final_rows(self, ctx: CompileContext, search: _Search) -> list[Example]:
        """Dev rows outside the validation subset for the finalists (seeded, fixed per compile)."""
        val = {id(ex) for ex in search.ctx.devset}
        rest = [ex for ex in ctx.devset if id(ex) not in val]
        rows = random.Random(f"gepa-final-{ctx.seed}").sample(rest, min(self.settings.final_rows, len(rest)))
        return rows if self.settings.finalists > 1 else []

    async def _final(self, search: _Search, rows: list[Example]) -> Program:
        """The `finalists` best candidates on the validation rows, scored on `rows` more (paired);
        the best mean over all their rows wins. Among candidates picked as the best of many on
        a few dozen rows, the top one is often luck (the winner's curse), as in MIPRO's finalists."""
        ctx = search.ctx
        ranked = sorted(search.pool, key=lambda c: (-sum(c.val_scores), c.id))[:self.settings.finalists]
        rows = rows[:max(0, search.left()) // max(1, len(ranked))]  # what the budget left room for
        if len(ranked) < 2 or len(rows) < MERGE_ROWS:
            best = ctx.log.best()
            return ctx.program if best is None else ctx.program.with_state(best.state)
        total: dict[int, float] = {}
        for cand in ranked:
            trial = await ctx.trial(search.index, "gepa_final", ready(ctx.program.with_state(cand.state)),
                                    examples=rows, params={"candidate": cand.id},
                                    description=f"finalist: candidate {cand.id} on {len(rows)} more dev rows")
            search.index += 1
            search.spent += len(rows)
            n_val = len(cand.val_scores)
            total[cand.id] = (sum(cand.val_scores) + (trial.score or 0.0) * trial.n) / (n_val + trial.n)
        chosen = max(ranked, key=lambda c: (total[c.id], -c.id))
        return ctx.program.with_state(chosen.state)

    async def _mutate(self, search: _Search, iteration: int) -> None:
        ctx, plan, program = search.ctx, search.plan, search.ctx.program
        rng = random.Random(f"gepa-{ctx.seed}-iteration-{iteration}")
        parent = select_parent(search.pool, rng)
        moves = _moves(program, self.settings.evolve_demos and not search.raced)
        move = parent.next_move
        parent.next_move += 1
        predictor, op = moves[move % len(moves)]
        batch = _next_batch(search, ctx.seed, plan.minibatch_size, len(ctx.trainset))
        threshold = self._threshold(ctx)
        runs = await rollouts(program.with_state(parent.state), ctx.trainset, batch, ctx.metric,
                              concurrency=ctx.concurrency)
        search.spent += len(batch)
        self._collect_demos(search, runs, threshold)
        parent_scores = _by_row(runs, batch)
        if all(s >= threshold for s in parent_scores):
            return  # nothing to learn from a minibatch it gets all right (GEPA's skip_perfect_score)
        logged = ctx.log.get(search.index)
        if logged is not None:
            child, op = logged.state, str(logged.params.get("op", op))
        else:
            made = None
            if op == "demos":
                made = _demo_child(parent.state, predictor, search.demo_pool.get(predictor, {}), set(batch),
                                   rng, self.settings.max_demos)
            if made is None:
                op = "reflect"
                evidence = list(runs) + [r for r in search.warm_runs if r.row not in set(batch)]
                text = await reflect(program.with_state(parent.state), predictor, evidence[:self.settings.records],
                                     lm=reflection_lm(program), threshold=threshold, sample_index=iteration,
                                     temperature=self.settings.reflection_temperature)
                if text is None:
                    return
                made = {**parent.state, predictor: PredictorState(instructions=text,
                                                                  demos=parent.state[predictor].demos)}
            child = made
        examples = [ctx.trainset[r] for r in batch]
        trial = await ctx.trial(
            search.index, f"gepa_{op}", ready(program.with_state(child)), examples=examples, per_example=True,
            params={"iteration": iteration, "op": op, "parent": parent.id, "predictor": predictor,
                    "train_rows": batch, "parent_scores": parent_scores},
            description=f"iteration {iteration}: {_what(op, predictor)} of candidate {parent.id}, on "
            f"{len(batch)} train rows (parent {sum(parent_scores):g})")
        search.index += 1
        search.spent += len(batch)
        if sum(_zeros(trial)) <= sum(parent_scores):
            return
        await self._add(search, trial.state, (parent.id,), move + 1,
                        f"iteration {iteration}: candidate {len(search.pool)} = {_what(op, predictor)} of "
                        f"candidate {parent.id} ({sum(_zeros(trial)):g} vs {sum(parent_scores):g} on its minibatch)")

    async def _warm_up(self, search: _Search, ctx: CompileContext) -> Program:
        """Bootstrap the demo pool (DSPy's BootstrapFewShot): the program runs on the next
        `2 * race_units` training rows of the stream. With `race_rows`, the passing runs are
        raced (`demo_race`) on dev rows outside the validation subset and the seed candidate
        starts with the `max_demos` best: which examples are demos decides much of the
        result, and a few paired rows per run find good ones far more reliably than the
        minibatch test of a random demo mutation. The seed program (the spec's, with them)."""
        s, plan = self.settings, search.plan
        size = min(max(s.max_demos, 2 * s.race_units), len(ctx.trainset))
        race_runs = race_plan(min(s.race_units, size), s.max_demos, s.race_rows, len(ctx.devset))[1]
        affordable = size + race_runs + plan.val_size + 2 * plan.minibatch_size <= plan.max_metric_calls
        if not (s.race_rows and affordable):
            size = min(s.max_demos, len(ctx.trainset))  # no race: demos evolve by mutation
        batch = _next_batch(search, ctx.seed, size, len(ctx.trainset))
        runs = await rollouts(ctx.program, ctx.trainset, batch, ctx.metric, concurrency=ctx.concurrency)
        search.spent += len(batch)
        search.warm_runs = list(runs)
        threshold = self._threshold(ctx)
        self._collect_demos(search, runs, threshold)
        units = passing_units(ctx.program, runs, threshold, s.race_units)
        val = {id(ex) for ex in search.ctx.devset}
        rest = [ex for ex in random.Random(f"gepa-race-{ctx.seed}").sample(ctx.devset, len(ctx.devset))
                if id(ex) not in val] or list(ctx.devset)
        if not (s.race_rows and affordable) or len(units) <= s.max_demos or len(rest) < s.race_rows:
            return ctx.program
        result = await race(search.ctx, ctx.program, units, rest, keep=s.max_demos, rows_per_round=s.race_rows,
                            first_index=search.index)
        search.spent += race_plan(len(units), s.max_demos, s.race_rows, len(rest))[1]
        search.index, search.raced = result.next_index, True
        if result.stopped:
            raise BudgetExhausted(result.stopped)
        return ctx.program.with_state(state_with_units(ctx.program, [units[u] for u in result.ranking[:s.max_demos]]))

    async def _merge(self, search: _Search, iteration: int) -> bool:
        """Try one merge (True if an eligible pair existed, whatever came of it)."""
        ctx, pool = search.ctx, search.pool
        options = merge_options(pool, search.tried_merges)
        if not options:
            return False
        rng = random.Random(f"gepa-{ctx.seed}-merge-{iteration}")
        i, j, a = rng.choice(options)
        search.tried_merges.add((i, j, a))
        search.merges_due -= 1
        ci, cj, ca = pool[i], pool[j], pool[a]
        rows = _merge_rows(ci.val_scores, cj.val_scores, rng)
        check = await ctx.trial(search.index, "gepa_merge_check", ready(ctx.program.with_state(
            merged_state(ci, cj, ca))), examples=[ctx.devset[r] for r in rows], per_example=True,
            params={"iteration": iteration, "parents": [i, j], "ancestor": a, "val_rows": rows},
            description=f"iteration {iteration}: merge of candidates {i} and {j} (common ancestor {a}), "
            f"checked on {len(rows)} validation rows")
        search.index += 1
        search.spent += len(rows)
        got = sum(_zeros(check))
        if got >= max(sum(ci.val_scores[r] for r in rows), sum(cj.val_scores[r] for r in rows)):
            search.merges_done += 1
            await self._add(search, check.state, (i, j), max(ci.next_move, cj.next_move),
                            f"iteration {iteration}: candidate {len(pool)} = merge of candidates {i} and {j}")
        return True

    async def _add(self, search: _Search, state: dict[str, PredictorState], parents: tuple[int, ...],
                   next_move: int, description: str) -> None:
        """Score an accepted child on the validation rows and put it in the pool."""
        ctx = search.ctx
        trial = await ctx.trial(search.index, "gepa_candidate", ready(ctx.program.with_state(state)),
                                per_example=True, params={"candidate": len(search.pool), "parents": list(parents)},
                                description=description)
        search.index += 1
        search.spent += search.plan.val_size
        search.pool.append(Candidate(id=len(search.pool), state=trial.state, val_scores=_zeros(trial),
                                     parents=parents, trial=trial.index, next_move=next_move))
        search.merges_due += 1

    def _threshold(self, ctx: CompileContext) -> float:
        return ctx.metric.threshold if self.settings.metric_threshold is None else self.settings.metric_threshold

    def _collect_demos(self, search: _Search, runs: Sequence[Rollout], threshold: float) -> None:
        """Successful rollouts become demo candidates for every predictor that ran (as bootstrapping does)."""
        for run in runs:
            if run.score is None or run.score < threshold or run.error is not None:
                continue
            added = False
            for step in run.trace.steps:
                if step.predictor and step.error is None and not step.rejected:
                    per_row = search.demo_pool.setdefault(step.predictor, {})
                    if run.row not in per_row:
                        per_row[run.row] = {**step.inputs, **step.outputs}
                        added = True
            if added:
                search.ctx.traces.append(run.trace)


def _moves(program: Program, evolve_demos: bool) -> list[tuple[str, str]]:
    names = [name for name, _ in program.named_predictors()]
    ops = ["demos", "reflect"] if evolve_demos else ["reflect"]
    return [(name, op) for op in ops for name in names]


def _next_batch(search: _Search, seed: int, size: int, n_train: int) -> list[int]:
    """The next `size` train rows of a stream of seeded epoch shuffles (no row twice in an epoch)."""
    while len(search.batches) < size:
        order = list(range(n_train))
        random.Random(f"gepa-epoch-{seed}-{search.epochs}").shuffle(order)
        search.batches.extend(order)
        search.epochs += 1
    batch, search.batches = search.batches[:size], search.batches[size:]
    return batch


def _demo_child(state: dict[str, PredictorState], predictor: str, pool: dict[int, dict[str, Any]],
                exclude: set[int], rng: random.Random, max_demos: int) -> dict[str, PredictorState] | None:
    """Add one demo from successful rollouts to the predictor, or swap one in if it is full."""
    current = list(state[predictor].demos)
    fresh = [pool[r] for r in sorted(pool) if r not in exclude and pool[r] not in current]
    if not fresh or max_demos == 0:
        return None
    rng.shuffle(fresh)
    if len(current) < max_demos:  # one at a time: the minibatch test then judges that one demo
        demos = current + fresh[:1]
    else:
        drop = rng.randrange(len(current))
        demos = current[:drop] + current[drop + 1:max_demos] + fresh[:1]
    return {**state, predictor: PredictorState(instructions=state[predictor].instructions, demos=demos)}


def _seed_what(start: Program, program: Program) -> str:
    raced = sum(len(st.demos) for st in start.state().values()) - sum(len(st.demos) for st in program.state().values())
    return f"the spec as written with {raced} raced demos" if raced > 0 else "the spec as written"


def _merge_rows(a: list[float], b: list[float], rng: random.Random) -> list[int]:
    """Up to MERGE_ROWS validation rows, balanced among where a wins, b wins and they tie."""
    buckets = [[k for k in range(len(a)) if a[k] > b[k]], [k for k in range(len(a)) if b[k] > a[k]],
               [k for k in range(len(a)) if a[k] == b[k]]]
    for bucket in buckets:
        rng.shuffle(bucket)
    rows: list[int] = []
    while len(rows) < min(MERGE_ROWS, len(a)):
        for bucket in buckets:
            if bucket and len(rows) < MERGE_ROWS:
                rows.append(bucket.pop())
    return sorted(rows)


def _by_row(runs: Sequence[Rollout], rows: Sequence[int]) -> list[float]:
    scores = {r.row: (r.score or 0.0) for r in runs}
    return [scores.get(row, 0.0) for row in rows]


def _zeros(trial: Trial) -> list[float]:
    return [s or 0.0 for s in trial.instance_scores]


def _what(op: str, predictor: str) -> str:
    return {"reflect": f"reflected instruction for '{predictor}'",
            "demos": f"new demos for '{predictor}'"}.get(op, f"{op} '{predictor}'")



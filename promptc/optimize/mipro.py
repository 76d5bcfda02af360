"""MIPRO: joint optimization of instructions and demos (Opsahl-Ong et al. 2024).

1. Demo candidates per predictor: no demos, labelled demos only, and `num_candidates` sets
   bootstrapped from seeded shuffles of the train set (as random_search builds them).
2. Instruction candidates per predictor: the original plus proposals from a grounded proposer
   LM (see `proposer`): the spec's `proposer` LM, else `teacher`, else `default`.
3. A Bayesian search (a categorical TPE, see `tpe`) over (instruction, demo set) per
   predictor. Every trial scores one configuration on the *same* seeded subset of dev
   (`mipro_minibatch`, full_eval=False): outcomes are strongly correlated across
   prompts (an example hard under one prompt is hard under another), so scores on the
   same rows are paired and their differences are real, where fresh random minibatches
   per trial would make the TPE steer on which rows it drew. A configuration is never
   scored twice: when the TPE suggests one already scored, the next unscored one (in a
   seeded order) is tried instead.
4. The `finalists` best configurations on that subset are scored on all the validation
   rows (`mipro_full`). The result is the best full evaluation, the program as written
   (trial 0) included, so MIPRO never returns worse on them than what it started from.
   When the subset is all of them, trials are full evaluations and no extra ones are needed.

The validation rows are dev, or a seeded sample of `val_size` of its rows when dev is
larger, so a large dev does not multiply the cost of the full evaluations. DSPy's MIPROv2
samples 100 rows for light; on the benchmark LM that halved light's requests (724 vs 1,339
on a 300-row dev) but cost 2.4 points held out and widened the seed spread (0.763, standard
deviation 4.9 points, vs 0.787 and 3.8 over seeds 0-11): the finalists are then told apart
on too few rows. So the presets keep more: 300 light, 500 medium, 1000 heavy.

Resume: every random choice derives from `ctx.seed`, and trial indices follow a fixed
schedule, so a rerun asks for the same trials in the same order; `ctx.trial` returns
finished ones from the log and their scores are fed back into the TPE in order, which
brings it to exactly the state it had before the crash. The setup (summary, proposals,
bootstrapping) is redone, which costs nothing when the LM cache replays it, and trial
numbering does not depend on it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from promptc.core.program import PredictorState, Program
from promptc.optimize.base import CompileContext, Trial, ready
from promptc.optimize.bootstrap import BootstrapSettings, bootstrap, combine, labeled_state
from promptc.optimize.proposer import propose_instructions, summarize_dataset
from promptc.optimize.tpe import CategoricalTPE

Config = tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """The effective search sizes: a preset, explicit settings on top, fitted to dev."""

    num_candidates: int
    num_trials: int
    minibatch_size: int
    finalists: int
    val_size: int


# 40 paired rows tell apart configurations ~10 points apart most of the time; the
# finalists' full evaluations then decide between close ones.
PRESETS: dict[str, Plan] = {
    "light": Plan(num_candidates=6, num_trials=12, minibatch_size=40, finalists=2, val_size=300),
    "medium": Plan(num_candidates=12, num_trials=25, minibatch_size=60, finalists=3, val_size=500),
    "heavy": Plan(num_candidates=18, num_trials=50, minibatch_size=100, finalists=3, val_size=1000),
}


@dataclass
class SearchSpace:
    """Per predictor: instruction candidates and demo-set candidates (index 0 = the original/none)."""

    instructions: dict[str, list[str]]
    demo_sets: dict[str, list[list[dict[str, Any]]]]

    def dimensions(self) -> dict[str, int]:
        """TPE parameters: `STEP.instruction` and `STEP.demos` -> number of choices."""
        dims: dict[str, int] = {}
        for step in self.instructions:
            dims[f"{step}.instruction"] = len(self.instructions[step])
            dims[f"{step}.demos"] = len(self.demo_sets[step])
        return dims

    def state(self, params: dict[str, int]) -> dict[str, PredictorState]:
        """The predictor states a configuration stands for."""
        return {step: PredictorState(instructions=self.instructions[step][params[f"{step}.instruction"]],
                                demos=self.demo_sets[step][params[f"{step}.demos"]])
                for step in self.instructions}

    def describe(self, params: dict[str, int]) -> str:
        """A configuration in words, for the trial log."""
        return "; ".join(f"{step}: instruction {params[f'{step}.instruction']}, "
                         f"demo set {params[f'{step}.demos']} "
                         f"({len(self.demo_sets[step][params[f'{step}.demos']])} demos)"
                         for step in self.instructions)


class MIPRO:
    """Instructions and demos per predictor, searched jointly with a TPE on dev minibatches."""

    name = "mipro"

    class Settings(BootstrapSettings):
        auto: Literal["light", "medium", "heavy"] = "light"
        num_candidates: int | None = Field(None, ge=1, description="instructions and bootstrapped demo sets per predictor")
        num_trials: int | None = Field(None, ge=0, description="minibatch trials of the search")
        minibatch_size: int | None = Field(None, ge=1, description="dev examples every trial is scored on")
        finalists: int | None = Field(None, ge=1, description="best configurations scored on all validation rows")
        val_size: int | None = Field(None, ge=1, description="validation rows: a seeded sample of dev when it is larger")
        init_temperature: float = Field(0.7, ge=0, description="the proposer's sampling temperature")

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def plan(self, ctx: CompileContext) -> Plan:
        """The preset, with explicit settings overriding it, the validation rows capped at
        len(dev) and the minibatch at the validation rows."""
        s, preset = self.settings, PRESETS[self.settings.auto]
        minibatch = s.minibatch_size if s.minibatch_size is not None else preset.minibatch_size
        val_size = max(1, min(s.val_size if s.val_size is not None else preset.val_size, len(ctx.devset)))
        return Plan(
            num_candidates=s.num_candidates if s.num_candidates is not None else preset.num_candidates,
            num_trials=s.num_trials if s.num_trials is not None else preset.num_trials,
            minibatch_size=max(1, min(minibatch, val_size)),
            finalists=s.finalists if s.finalists is not None else preset.finalists,
            val_size=val_size,
        )

    def planned_calls(self, ctx: CompileContext) -> int:
        """An upper estimate: bootstraps, summary and proposals, minibatch trials, full evals."""
        s, plan, steps = self.settings, self.plan(ctx), len(ctx.program.named_predictors())
        # A weak teacher may try every training example before enough runs pass.
        per_bootstrap = len(ctx.trainset) * s.max_rounds * steps
        proposals = 1 + (plan.num_candidates - 1) * steps
        full_evals = 1 + plan.finalists
        return (plan.num_candidates * per_bootstrap + proposals
                + plan.num_trials * plan.minibatch_size * steps + full_evals * plan.val_size * steps)

    async def compile(self, ctx: CompileContext) -> Program:
        """The best fully evaluated program. BudgetExhausted propagates: the compile job keeps
        the best trial so far and reports the stop."""
        plan = self.plan(ctx)
        ctx = _on_validation_rows(ctx, plan.val_size)
        finalists = min(plan.finalists, plan.num_trials) if plan.minibatch_size < len(ctx.devset) else 0
        ctx.plan_trials(1 + plan.num_trials + finalists)
        await ctx.trial(0, "zero_shot", ready(ctx.program), description="the spec as written")
        if plan.num_trials > 0:
            space = await self.search_space(ctx, plan)
            await self._search(ctx, plan, space)
        best = ctx.log.best()
        return ctx.program if best is None else ctx.program.with_state(best.state)

    async def search_space(self, ctx: CompileContext, plan: Plan) -> SearchSpace:
        """Demo-set candidates, then instruction proposals grounded in them."""
        demo_sets = await self._demo_sets(ctx, plan)
        lms = ctx.program.lms
        proposer_lm = lms.get("proposer") or lms.get("teacher") or lms["default"]
        summary = await summarize_dataset(proposer_lm, ctx.trainset, seed=ctx.seed) \
            if plan.num_candidates > 1 else ""
        instructions = {}
        for name, _ in ctx.program.named_predictors():
            instructions[name] = await propose_instructions(
                ctx.program, name, lm=proposer_lm, n=plan.num_candidates, seed=ctx.seed,
                dataset_summary=summary, demo_sets=demo_sets[name][2:],
                temperature=self.settings.init_temperature, concurrency=ctx.concurrency)
        return SearchSpace(instructions=instructions, demo_sets=demo_sets)

    async def _demo_sets(self, ctx: CompileContext, plan: Plan) -> dict[str, list[list[dict[str, Any]]]]:
        # DSPy's layout: no demos, labelled only, bootstrapped in train order, then seeded
        # shuffles with a random number of bootstrapped demos.
        s, program = self.settings, ctx.program
        names = [name for name, _ in program.named_predictors()]
        states = [{name: PredictorState() for name in names},
                  labeled_state(program, random.Random(ctx.seed).sample(ctx.trainset, len(ctx.trainset)),
                                s.max_labeled_demos)]
        for j in range(2, plan.num_candidates + 2):
            rng = random.Random(ctx.seed + j)
            order = list(ctx.trainset) if j == 2 else rng.sample(ctx.trainset, len(ctx.trainset))
            size = s.max_bootstrapped_demos if j == 2 else rng.randint(1, max(1, s.max_bootstrapped_demos))
            boot = await bootstrap(program, order, ctx.metric, max_demos=size, max_rounds=s.max_rounds,
                                   threshold=s.metric_threshold, concurrency=ctx.concurrency,
                                   lms=ctx.teacher_lms, teacher_demos=s.teacher_demos, rng=rng)
            states.append(combine(program, boot, order, max_bootstrapped=size,
                                  max_labeled=s.max_labeled_demos, rng=rng))
        return {name: [list(state[name].demos) for state in states] for name in names}

    async def _search(self, ctx: CompileContext, plan: Plan, space: SearchSpace) -> None:
        dims = space.dimensions()
        tpe = CategoricalTPE(dims, seed=f"mipro-tpe-{ctx.seed}",
                             n_startup=min(10, max(3, plan.num_trials // 4)))
        subset = _subset(ctx, plan.minibatch_size)
        scores: dict[Config, float] = {}
        configs: dict[Config, dict[str, int]] = {}
        original = tuple(0 for _ in dims)
        if not any(p.demos for _, p in ctx.program.named_predictors()):
            first = ctx.log.get(0)  # trial 0 is the original configuration: never score it again
            scores[original] = first.score if first is not None and first.score is not None else 0.0
        index = 1
        for t in range(plan.num_trials):
            suggested = _unscored(tpe, dims, scores, seed=f"mipro-next-{ctx.seed}-{t}")
            if suggested is None:
                break  # every configuration has been scored
            trial = await ctx.trial(index, "mipro_minibatch", self._build(ctx, space, suggested),
                                    examples=subset, params=suggested,
                                    description=f"trial {t + 1}/{plan.num_trials}: {space.describe(suggested)}")
            index += 1
            params = _logged_params(trial, dims) or suggested
            key = tuple(params[k] for k in dims)
            configs[key], scores[key] = params, trial.score or 0.0
            tpe.tell(params, scores[key])
        if subset is None:
            return  # the trials were full evaluations already
        # sorted() is stable: among equal scores the earliest-tried configuration comes first.
        for key in sorted(configs, key=lambda k: -scores[k])[:plan.finalists]:
            await ctx.trial(index, "mipro_full", self._build(ctx, space, configs[key]), params=configs[key],
                            description=f"on all {len(ctx.devset)} validation rows (subset score {scores[key]:.3f}): "
                            f"{space.describe(configs[key])}")
            index += 1

    @staticmethod
    def _build(ctx: CompileContext, space: SearchSpace, params: dict[str, int]):  # type: ignore[no-untyped-def]
        async def build() -> Program:
            return ctx.program.with_state(space.state(params))
        return build


def _logged_params(trial: Trial, dims: dict[str, int]) -> dict[str, int] | None:
    # What was actually scored: on resume, the logged trial's params, if they fit this space.
    params = trial.params
    if all(isinstance(params.get(k), int) and 0 <= params[k] < n for k, n in dims.items()):
        return {k: int(params[k]) for k in dims}
    return None


def _on_validation_rows(ctx: CompileContext, size: int) -> CompileContext:
    """`ctx` with dev cut to a seeded sample of `size` rows (the same context when dev is not
    larger): its trials' full evaluations are then on those rows. Log and budget are shared."""
    if size >= len(ctx.devset):
        return ctx
    return dataclasses.replace(ctx, devset=random.Random(f"mipro-val-{ctx.seed}").sample(ctx.devset, size))


def _subset(ctx: CompileContext, size: int) -> list[Any] | None:
    """The dev rows every trial is scored on (None: all of dev), the same for every trial."""
    if size >= len(ctx.devset):
        return None
    return random.Random(f"mipro-subset-{ctx.seed}").sample(ctx.devset, size)


def _unscored(tpe: CategoricalTPE, dims: dict[str, int], scores: dict[Config, float], *,
              seed: str) -> dict[str, int] | None:
    """The TPE's suggestion, or, if that configuration was scored already, a seeded draw
    among the unscored ones (None when none is left)."""
    suggested = tpe.suggest()
    if tuple(suggested[k] for k in dims) not in scores:
        return suggested
    total = math.prod(dims.values())
    if len(scores) >= total:
        return None
    rng = random.Random(seed)
    while True:
        params = {k: rng.randrange(n) for k, n in dims.items()}
        if tuple(params[k] for k in dims) not in scores:
            return params


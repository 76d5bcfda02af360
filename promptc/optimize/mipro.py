"""MIPRO: joint optimization of instructions and demos (Opsahl-Ong et al. 2024).

1. Demo candidates per predictor: no demos, labelled demos only, and `num_candidates` sets
   bootstrapped from seeded shuffles of the train set (as random_search builds them).
2. Instruction candidates per predictor: the original plus proposals from a grounded proposer
   LM (see `proposer`): the spec's `proposer` LM, else `teacher`, else `default`.
3. A Bayesian search (a categorical TPE, see `tpe`) over (instruction, demo set) per
   step. Each trial scores one configuration on a seeded random minibatch of dev
   (`mipro_minibatch`, full_eval=False); every `full_eval_every` trials, and at the end,
   the configuration with the best mean minibatch score so far (averaged over all its
   minibatches) is scored on all of dev (`mipro_full`), unless it already was. The
   result is the best full evaluation, the spec as written (trial 0) included, so MIPRO
   never returns worse on dev than what it started from. When the minibatch would be
   all of dev, trials are full evaluations and no extra ones are needed.

Resume: every random choice derives from `ctx.seed`, and trial indices follow a fixed
schedule, so a rerun asks for the same trials in the same order; `ctx.trial` returns
finished ones from the log and their scores are fed back into the TPE in order, which
brings it to exactly the state it had before the crash. The setup (summary, proposals,
bootstrapping) is redone, which costs nothing when the LM cache replays it, and trial
numbering does not depend on it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from promptc.core.program import PredictorState, Program
from promptc.errors import BudgetExhausted
from promptc.optimize.base import CompileContext, Trial
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
    full_eval_every: int


PRESETS: dict[str, Plan] = {
    "light": Plan(num_candidates=6, num_trials=10, minibatch_size=25, full_eval_every=5),
    "medium": Plan(num_candidates=12, num_trials=25, minibatch_size=35, full_eval_every=8),
    "heavy": Plan(num_candidates=18, num_trials=50, minibatch_size=50, full_eval_every=10),
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
        minibatch_size: int | None = Field(None, ge=1, description="dev examples per trial")
        full_eval_every: int | None = Field(None, ge=1, description="trials between full dev evaluations")
        init_temperature: float = Field(0.7, ge=0, description="the proposer's sampling temperature")

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def plan(self, ctx: CompileContext) -> Plan:
        """The preset, with explicit settings overriding it and the minibatch capped at len(dev)."""
        s, preset = self.settings, PRESETS[self.settings.auto]
        minibatch = s.minibatch_size if s.minibatch_size is not None else preset.minibatch_size
        return Plan(
            num_candidates=s.num_candidates if s.num_candidates is not None else preset.num_candidates,
            num_trials=s.num_trials if s.num_trials is not None else preset.num_trials,
            minibatch_size=max(1, min(minibatch, len(ctx.devset))),
            full_eval_every=s.full_eval_every if s.full_eval_every is not None else preset.full_eval_every,
        )

    def planned_calls(self, ctx: CompileContext) -> int:
        """An upper estimate: bootstraps, summary and proposals, minibatch trials, full evals."""
        s, plan, steps = self.settings, self.plan(ctx), len(ctx.program.named_predictors())
        # A weak teacher may try every training example before enough runs pass.
        per_bootstrap = len(ctx.trainset) * s.max_rounds * steps
        proposals = 1 + (plan.num_candidates - 1) * steps
        full_evals = 1 + math.ceil(plan.num_trials / plan.full_eval_every)
        return (plan.num_candidates * per_bootstrap + proposals
                + plan.num_trials * plan.minibatch_size * steps + full_evals * len(ctx.devset) * steps)

    async def compile(self, ctx: CompileContext) -> Program:
        """The best fully evaluated program; stops early, keeping the best, on BudgetExhausted."""
        plan = self.plan(ctx)
        try:
            await ctx.trial(0, "zero_shot", _same(ctx.program), description="the spec as written")
            if plan.num_trials > 0:
                space = await self.search_space(ctx, plan)
                await self._search(ctx, plan, space)
        except BudgetExhausted:
            if ctx.log.best() is None:
                raise
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
                                   lms=ctx.teacher_lms)
            states.append(combine(program, boot, order, max_bootstrapped=size,
                                  max_labeled=s.max_labeled_demos, rng=rng))
        return {name: [list(state[name].demos) for state in states] for name in names}

    async def _search(self, ctx: CompileContext, plan: Plan, space: SearchSpace) -> None:
        dims = space.dimensions()
        tpe = CategoricalTPE(dims, seed=f"mipro-tpe-{ctx.seed}",
                             n_startup=min(10, max(3, plan.num_trials // 4)))
        minibatch_scores: dict[Config, list[float]] = {}
        configs: dict[Config, dict[str, int]] = {}
        fully_evaluated: set[Config] = set()
        if not any(p.demos for _, p in ctx.program.named_predictors()):
            fully_evaluated.add(tuple(0 for _ in dims))  # trial 0 already is (original, no demos)
        index = 1
        for t in range(plan.num_trials):
            suggested = tpe.suggest()
            batch_rng = random.Random(f"mipro-minibatch-{ctx.seed}-{t}")
            whole_dev = plan.minibatch_size >= len(ctx.devset)
            batch = None if whole_dev else batch_rng.sample(ctx.devset, plan.minibatch_size)
            trial = await ctx.trial(index, "mipro_minibatch", self._build(ctx, space, suggested),
                                    examples=batch, params=suggested,
                                    description=f"trial {t + 1}/{plan.num_trials}: {space.describe(suggested)}")
            index += 1
            params = _logged_params(trial, dims) or suggested
            key = tuple(params[k] for k in dims)
            configs.setdefault(key, params)
            minibatch_scores.setdefault(key, []).append(trial.score or 0.0)
            tpe.tell(params, trial.score or 0.0)
            if trial.full_eval:
                fully_evaluated.add(key)  # the "minibatch" was all of dev
            if (t + 1) % plan.full_eval_every == 0 or t + 1 == plan.num_trials:
                # max() keeps the first of equal means: the earliest-tried configuration.
                best = max(minibatch_scores, key=lambda k: _mean(minibatch_scores[k]))
                if best in fully_evaluated:
                    continue  # the leader has its full score already; spend nothing
                scores = minibatch_scores[best]
                await ctx.trial(index, "mipro_full", self._build(ctx, space, configs[best]),
                                params=configs[best],
                                description=f"full dev evaluation (minibatch mean {_mean(scores):.3f} over "
                                f"{len(scores)} trial(s)): {space.describe(configs[best])}")
                index += 1
                fully_evaluated.add(best)

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


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores)


def _same(program: Program):  # type: ignore[no-untyped-def]
    async def build() -> Program:
        return program
    return build

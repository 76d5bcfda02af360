"""Demo races: units from traces, states with units, the plan's counts, successive halving, budget stops."""

from __future__ import annotations

import asyncio

import pytest

from promptc.core.program import PredictorState
from promptc.core.trace import Trace, TraceStep
from promptc.lm.budget import Budget, budgeted
from promptc.metrics.config import build_metrics, parse_metric
from promptc.optimize.base import CompileContext, TrialLog, examples_from_rows
from promptc.optimize.demo_race import (
    RaceResult,
    race,
    race_plan,
    state_with_units,
    unit_from_trace,
)
from promptc.spec.loader import load_text
from tests.conftest import ROOT

SPEC = """
version: 1
name: fruit
signatures:
  route:
    instructions: Route the support ticket to the team that handles it.
    inputs:
      ticket: {type: str, desc: a customer's support ticket}
    outputs:
      team:
        type: enum
        values: [billing, shipping, returns]
program:
  - step: route
    module: predict
    signature: route
metric:
  type: label_accuracy
  field: team
"""

# Every dev row is one word and belongs to `returns`; zero-shot the offline LM says `billing`.
# A unit's single demo answers `returns` for exactly the rows whose word it contains.
WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"]
UNITS = [{"route": {"ticket": text, "team": "returns"}}
         for text in ("walnut", "apple banana", " ".join(WORDS), "apple banana cherry")]
# Round 0 (rows 1-4): 0.0, 0.5, 1.0, 0.75. Round 1 (rows 5-8) for units 2 and 3: 1.0, 0.0.


def fruit_ctx(budget: Budget | None = None) -> CompileContext:
    program = load_text(SPEC).program
    if budget is not None:
        program = program.with_state({}, lms=budgeted(program.lms, budget))
    rows = examples_from_rows([{"ticket": w, "team": "returns"} for w in WORDS], ["ticket"])
    metric = build_metrics([parse_metric(type="label_accuracy", field="team")], default_field="team")[0]
    return CompileContext(program=program, trainset=[], devset=rows, metric=metric, log=TrialLog(None))


def run_race(ctx: CompileContext, **kwargs: object) -> RaceResult:
    options = {"keep": 1, "rows_per_round": 4, "first_index": 0, **kwargs}
    return asyncio.run(race(ctx, ctx.program, UNITS, ctx.devset, **options))  # type: ignore[arg-type]


def test_race_plan_counts_trials_and_runs():
    assert race_plan(16, 4, 6, 64) == (16 + 8, 16 * 6 + 8 * 6)
    assert race_plan(6, 2, 2, 64) == (6 + 3, 18)
    assert race_plan(5, 1, 1, 10) == (5 + 3 + 2, 10)
    assert race_plan(16, 2, 6, 10) == (16, 96)  # dev has rows for one round only
    assert race_plan(8, 2, 6, 5) == (0, 0)
    assert race_plan(2, 2, 2, 10) == (0, 0)
    assert race_plan(4, 1, 4, 8) == (6, 24)


def test_survivors_have_the_best_means_on_the_same_rows():
    ctx = fruit_ctx()
    result = run_race(ctx)
    trials = sorted(ctx.log.trials.values(), key=lambda t: t.index)
    assert [(t.params["unit"], t.params["round"], t.score) for t in trials] == [
        (0, 0, 0.0), (1, 0, 0.5), (2, 0, 1.0), (3, 0, 0.75), (2, 1, 1.0), (3, 1, 0.0)]
    assert all(t.kind == "demo_race" and t.n == 4 and not t.full_eval for t in trials)
    assert (len(trials), sum(t.n for t in trials)) == race_plan(4, 1, 4, 8)
    assert result.means == {0: 0.0, 1: 0.5, 2: 1.0, 3: 0.375}
    assert result.next_index == 6 and result.stopped is None
    assert [t.state["route"].demos for t in trials[:4]] == [[u["route"]] for u in UNITS]


def test_later_losers_rank_above_earlier_ones():
    result = run_race(fruit_ctx())
    assert result.means[3] < result.means[1]
    assert result.ranking == [2, 3, 1, 0]


def test_the_race_ends_when_the_rows_run_out_and_keeps_the_instructions():
    ctx = fruit_ctx()
    result = run_race(ctx, rows_per_round=5, first_index=5, instructions={"route": "Pick one."})
    assert sorted(ctx.log.trials) == [5, 6, 7, 8] and result.next_index == 9
    assert (4, 20) == race_plan(4, 1, 5, 8)
    assert result.ranking == [2, 3, 1, 0] and result.stopped is None
    assert {t.state["route"].instructions for t in ctx.log.trials.values()} == {"Pick one."}


@pytest.mark.parametrize(("max_calls", "logged", "ranking"), [
    (14, 3, [2, 1, 0, 3]),  # stopped in round 0: unit 3 unmeasured, last
    (18, 4, [2, 3, 1, 0]),  # stopped in round 1: the round-0 survivors first
])
def test_a_budget_stop_returns_the_ranking_so_far(max_calls, logged, ranking):
    ctx = fruit_ctx(Budget(max_calls=max_calls))
    result = run_race(ctx)
    assert result.stopped and "budget" in result.stopped
    assert len(ctx.log.trials) == logged and result.next_index == logged
    assert result.ranking == ranking


def test_state_with_units_sets_demos_in_order_and_keeps_the_rest():
    program = load_text((ROOT / "specs/support_reply.yaml").read_text()).program
    own = {"message": "old", "intent": "card_lost"}
    program = program.with_state({"classify": PredictorState(instructions="Classify.", demos=[own])})
    units = [{"reply": {"message": "a", "reply": "A"}},
             {"reply": {"message": "b", "reply": "B"}, "classify": {"message": "b", "intent": "card_lost"}}]
    state = state_with_units(program, units, {"reply": "Be brief."})
    assert [d["message"] for d in state["reply"].demos] == ["a", "b"]
    assert state["classify"].demos == [units[1]["classify"]] and state["classify"].instructions == "Classify."
    assert state["reply"].instructions == "Be brief."
    state["reply"].demos[0]["reply"] = "changed"
    assert units[0]["reply"]["reply"] == "A"
    assert state_with_units(program, units[:1])["classify"].demos == [own]


def test_unit_from_a_branching_run_covers_the_predictors_that_ran():
    program = load_text((ROOT / "specs/triage.yaml").read_text()).program
    prediction = asyncio.run(program.acall({"message": "I was charged twice, please refund me"}))
    unit = unit_from_trace(program, prediction.trace)
    assert set(unit) == {"classify", "billing_reply"}
    assert unit["classify"]["message"] == "I was charged twice, please refund me"
    assert unit["billing_reply"]["queue"] == "billing" and "reply" in unit["billing_reply"]
    assert set(unit["classify"]) == {"message", "queue", "urgent"}


def test_unit_takes_the_last_accepted_call_per_predictor():
    program = load_text((ROOT / "specs/support_reply.yaml").read_text()).program

    def step(predictor: str, n: int, **extra: object) -> TraceStep:
        return TraceStep(step=predictor, module="predict", predictor=predictor, inputs={"message": f"m{n}"},
                         outputs={"intent": f"i{n}"}, **extra)  # type: ignore[arg-type]

    trace = Trace(steps=[step("classify", 1), step("classify", 2), step("classify", 3, rejected=True),
                         step("reply", 4, error="parse failed"),
                         TraceStep(step="tool", module="tool", inputs={"x": 1})])
    assert unit_from_trace(program, trace) == {"classify": {"message": "m2", "intent": "i2"}}
    assert unit_from_trace(program, Trace()) == {}

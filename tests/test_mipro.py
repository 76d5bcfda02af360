"""MIPRO: grounded proposals, the categorical TPE, minibatch/full trials, presets, resume."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from promptc.core.example import Example
from promptc.core.program import Program
from promptc.errors import BudgetExhausted
from promptc.lm.base import LMRequest, LMResponse, Usage
from promptc.lm.budget import Budget, budgeted
from promptc.metrics.config import build_metrics, parse_metric
from promptc.optimize.base import CompileContext, TrialLog, dumps_state, examples_from_rows
from promptc.optimize.mipro import MIPRO, PRESETS
from promptc.optimize.proposer import clean_proposals, propose_instructions, summarize_dataset
from promptc.optimize.tpe import CategoricalTPE
from promptc.spec.loader import load_text

SPEC = """
version: 1
name: tickets
signatures:
  route:
    instructions: Route the support ticket to the team that handles it.
    inputs:
      ticket: {type: str, desc: a customer's support ticket}
    outputs:
      team:
        type: enum
        values: [billing, shipping, account_access, returns, product_info, cancellation]
program:
  - step: route
    module: predict
    signature: route
metric:
  type: label_accuracy
  field: team
"""

# Label names rarely appear in the tickets, so zero-shot (label-name overlap) is weak and
# which demos are in the prompt decides the score.
TEMPLATES: dict[str, list[str]] = {
    "billing": ["I was charged twice for my {item}", "Why is there an extra fee on my invoice {when}?",
                "The payment for the {item} went through two times",
                "My card statement shows the wrong amount for the {item}"],
    "shipping": ["Where is my {item}? It still has not arrived", "The courier never delivered my {item}",
                 "Tracking for my {item} has not moved since {when}", "My parcel is late, it was due {when}"],
    "account_access": ["I can't log in since {when}", "I forgot my password and I'm locked out",
                       "The app says my login code is invalid", "My profile got locked after too many attempts"],
    "returns": ["The {item} is broken, can I send it back?", "I want to swap the {item} for another size",
                "How do I get my money back for the {item}?", "The {item} arrived damaged, I want a refund"],
    "product_info": ["Is the {item} waterproof?", "What colours does the {item} come in?",
                     "Does the {item} come with a warranty?", "How big is the {item} exactly?"],
    "cancellation": ["Please stop my monthly plan", "I no longer want the membership, end it {when}",
                     "Stop renewing my plan {when}", "Terminate my plan before the next renewal"],
}
FILL = {"item": ["jacket", "lamp", "headphones", "kettle", "backpack", "phone case"],
        "when": ["yesterday", "last week", "on Monday", "this morning"]}


def rows(rng: random.Random, n: int) -> list[dict]:
    labels = sorted(TEMPLATES)
    out = []
    for i in range(n):
        label = labels[i % len(labels)]
        text = rng.choice(TEMPLATES[label])
        for key, options in FILL.items():
            text = text.replace("{" + key + "}", rng.choice(options))
        out.append({"ticket": text, "team": label})
    rng.shuffle(out)
    return out


def splits() -> tuple[list[Example], list[Example], list[Example]]:
    rng = random.Random(11)
    return tuple(examples_from_rows(rows(rng, n), ["ticket"]) for n in (36, 30, 36))  # type: ignore[return-value]


def make_ctx(log: TrialLog | None = None, budget: Budget | None = None, seed: int = 0) -> CompileContext:
    program = load_text(SPEC).program
    if budget is not None:
        program = program.with_state({}, lms=budgeted(program.lms, budget))
    train, dev, _ = splits()
    metric = build_metrics([parse_metric(type="label_accuracy", field="team")], default_field="team")[0]
    return CompileContext(program=program, trainset=train, devset=dev, metric=metric, seed=seed,
                          log=log or TrialLog(None))


SMALL = {"num_candidates": 3, "num_trials": 8, "minibatch_size": 10, "finalists": 2,
         "max_bootstrapped_demos": 3, "max_labeled_demos": 16}


def test_mipro_beats_zero_shot_on_held_out_and_logs_both_kinds_of_trial(tmp_path: Path) -> None:
    log = TrialLog(tmp_path / "trials.jsonl")
    ctx = make_ctx(log)
    compiled = asyncio.run(MIPRO(**SMALL).compile(ctx))
    test = splits()[2]
    zero, _ = asyncio.run(ctx.score(ctx.program, test))
    tuned, _ = asyncio.run(ctx.score(compiled, test))
    assert tuned > zero + 0.3, (zero, tuned)

    lines = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    kinds = [t["kind"] for t in lines]
    assert kinds[0] == "zero_shot" and kinds.count("mipro_minibatch") == 8
    assert kinds.count("mipro_full") == 2 and kinds[-2:] == ["mipro_full", "mipro_full"]
    searched = [json.dumps(t["params"], sort_keys=True) for t in lines if t["kind"] == "mipro_minibatch"]
    assert len(set(searched)) == len(searched)  # no configuration scored twice
    finalists = [t for t in lines if t["kind"] == "mipro_full"]
    minibatch = {json.dumps(t["params"], sort_keys=True): t["score"] for t in lines if t["kind"] == "mipro_minibatch"}
    ranked = sorted(minibatch.values(), reverse=True)
    assert [minibatch[json.dumps(t["params"], sort_keys=True)] for t in finalists] == ranked[:2]
    assert [t["index"] for t in lines] == list(range(len(lines)))
    for t in lines:
        assert t["full_eval"] == (t["kind"] != "mipro_minibatch")
        assert t["n"] == (10 if t["kind"] == "mipro_minibatch" else 30)
        if t["kind"] != "zero_shot":
            assert set(t["params"]) == {"route.instruction", "route.demos"}
    best = log.best()
    assert best is not None and best.full_eval and compiled.state() == ctx.program.with_state(best.state).state()


def test_minibatch_is_whole_dev_when_dev_is_small() -> None:
    ctx = make_ctx()
    ctx.devset = ctx.devset[:6]
    asyncio.run(MIPRO(**{**SMALL, "num_trials": 3}).compile(ctx))
    trials = sorted(ctx.log.trials.values(), key=lambda t: t.index)
    assert all(t.full_eval and t.n == 6 for t in trials)
    assert [t.kind for t in trials] == ["zero_shot"] + ["mipro_minibatch"] * 3  # no extra full evals


# -- proposals ---------------------------------------------------------------------------
class ScriptedLM:
    """Answers the summary prompt with a fixed text and proposal i with `replies[i]`."""

    model = "scripted"

    def __init__(self, replies: dict[int, str]):
        self.replies = replies
        self.requests: list[LMRequest] = []

    async def complete(self, request: LMRequest) -> LMResponse:
        self.requests.append(request)
        if "`proposed_instruction`" in request.messages[0].content:
            text = f"[[ ## proposed_instruction ## ]]\n{self.replies[request.sample_index]}"
        else:
            text = "[[ ## summary ## ]]\nShort support tickets, each routed to one of six teams."
        return LMResponse(text=text + "\n\n[[ ## completed ## ]]", usage=Usage(calls=1))


def test_proposals_are_grounded_cleaned_and_deduplicated() -> None:
    program = load_text(SPEC).program
    original = program.step("route").module.signature.instructions
    lm = ScriptedLM({1: "  Be precise about the team.  ", 2: "   ", 3: "be precise  about the team.",
                     4: original, 5: '"Instruction: Pick exactly one team."'})
    train = splits()[0]
    summary = asyncio.run(summarize_dataset(lm, train, seed=0))
    demos = [[dict(train[0])], [dict(train[1])]]
    out = asyncio.run(propose_instructions(program, "route", lm=lm, n=6, seed=0, dataset_summary=summary,
                                           demo_sets=demos, temperature=0.7))
    assert out == [original, "Be precise about the team.", "Pick exactly one team."]
    proposals = [r for r in lm.requests if r.sample_index]
    assert sorted(r.sample_index for r in proposals) == [1, 2, 3, 4, 5]
    assert all(r.temperature == 0.7 for r in proposals)
    prompt = proposals[0].messages[-1].content
    for grounding in (summary, "route: ticket: str -> team:", original, str(train[0]["ticket"])):
        assert grounding in prompt
    assert clean_proposals("", ["", " x ", "X"]) == ["", "x"]


def test_offline_proposals_are_clean_and_distinct() -> None:
    program = load_text(SPEC).program
    original = program.step("route").module.signature.instructions
    train = splits()[0]
    demo_sets = [[dict(ex) for ex in train[i:i + 3]] for i in range(0, 12, 3)]
    out = asyncio.run(propose_instructions(program, "route", lm=program.lms["default"], n=5, seed=0,
                                           dataset_summary="tickets", demo_sets=demo_sets))
    assert out[0] == original and 1 <= len(out) <= 5
    assert all(p and p == p.strip() for p in out)
    assert len({" ".join(p.split()).casefold() for p in out}) == len(out)


# -- TPE -----------------------------------------------------------------------------
def toy_objective(seed: int):  # type: ignore[no-untyped-def]
    """3 categorical parameters with 6 choices; one best choice each, so one best config."""
    rng = random.Random(seed)
    values = {}
    for name in ("a", "b", "c"):
        vals = [rng.uniform(0.0, 0.6) for _ in range(6)]
        vals[rng.randrange(6)] = 1.0
        values[name] = vals
    return values, (lambda p: sum(values[k][p[k]] for k in values)), 3.0


def run_search(seed: int, n_startup: int, budget: int = 30) -> float:
    values, objective, _ = toy_objective(seed)
    tpe = CategoricalTPE({k: 6 for k in values}, seed=seed, n_startup=n_startup)
    best = 0.0
    for _ in range(budget):
        params = tpe.suggest()
        score = objective(params)
        tpe.tell(params, score)
        best = max(best, score)
    return best


def test_tpe_finds_the_best_more_often_than_random_search() -> None:
    seeds = range(30)
    tpe = [run_search(s, n_startup=5) for s in seeds]
    rand = [run_search(s, n_startup=10**6) for s in seeds]  # never leaves the random phase
    tpe_hits = sum(b == pytest.approx(3.0) for b in tpe)
    rand_hits = sum(b == pytest.approx(3.0) for b in rand)
    assert tpe_hits >= 2 * rand_hits > 0  # measured: 16 vs 5 of 30
    assert sum(tpe) / len(tpe) > sum(rand) / len(rand)


def test_tpe_is_deterministic_and_replayable() -> None:
    space = {"x": 4, "y": 3}

    def trajectory(n: int) -> list[dict[str, int]]:
        tpe, out = CategoricalTPE(space, seed="s", n_startup=3), []
        for _ in range(n):
            params = tpe.suggest()
            tpe.tell(params, params["x"] + 0.1 * params["y"])
            out.append(params)
        return out

    assert trajectory(12) == trajectory(12)
    with pytest.raises(ValueError):
        CategoricalTPE({"x": 0})


# -- presets -------------------------------------------------------------------------
def test_presets_set_sizes_and_explicit_settings_override() -> None:
    ctx = make_ctx()  # 30 dev examples
    light = MIPRO().plan(ctx)
    assert (light.num_candidates, light.num_trials, light.minibatch_size) == (6, 12, 30)  # capped at len(dev)
    assert light.val_size == 30 and PRESETS["light"].val_size == 300  # capped at len(dev) too
    assert MIPRO(val_size=12).plan(ctx).minibatch_size == 12  # the minibatch never exceeds the validation rows
    heavy = MIPRO(auto="heavy").plan(ctx)
    assert (heavy.num_candidates, heavy.num_trials) == (PRESETS["heavy"].num_candidates, 50)
    assert heavy.minibatch_size == 30  # capped at len(dev)
    mixed = MIPRO(auto="medium", num_trials=3, minibatch_size=7).plan(ctx)
    assert (mixed.num_candidates, mixed.num_trials, mixed.minibatch_size) == (12, 3, 7)
    assert MIPRO(auto="heavy").planned_calls(ctx) > MIPRO(auto="light").planned_calls(ctx) > 0
    with pytest.raises(ValueError):
        MIPRO(auto="extreme")
    with pytest.raises(ValueError):
        MIPRO(num_trails=3)


# -- resume --------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.3, 0.66, 0.9])  # in the setup, mid-search, near the end
def test_resume_skips_finished_trials_and_matches_an_uninterrupted_run(tmp_path: Path, fraction: float) -> None:
    full_budget = Budget()
    full_ctx = make_ctx(TrialLog(tmp_path / "full.jsonl"), full_budget, seed=3)
    full = asyncio.run(MIPRO(**SMALL).compile(full_ctx))
    total_calls = full_budget.calls

    path = tmp_path / "trials.jsonl"
    cut = Budget(max_calls=int(total_calls * fraction))
    with pytest.raises(BudgetExhausted):  # the compile job keeps the best trial and reports the stop
        asyncio.run(MIPRO(**SMALL).compile(make_ctx(TrialLog(path), cut, seed=3)))
    first = TrialLog(path, resume=True).trials
    assert 1 <= len(first) < len(full_ctx.log.trials)
    if fraction == 0.66:
        assert 0 < sum(t.kind == "mipro_minibatch" for t in first.values()) < 8

    again = Budget()
    resumed_ctx = make_ctx(TrialLog(path, resume=True), again, seed=3)
    resumed = asyncio.run(MIPRO(**SMALL).compile(resumed_ctx))
    # One offline call per example scored: finished trials were not run again.
    assert again.calls == total_calls - sum(t.n for t in first.values())
    assert dumps_state(resumed.state()) == dumps_state(full.state())

    def summary(log: TrialLog) -> list[tuple]:
        return [(t.index, t.kind, t.params, t.score, t.n) for t in sorted(log.trials.values(), key=lambda t: t.index)]

    assert summary(resumed_ctx.log) == summary(full_ctx.log)
    assert isinstance(resumed, Program)


def test_val_size_puts_every_trial_on_one_seeded_sample_of_dev(tmp_path: Path) -> None:
    log = TrialLog(tmp_path / "trials.jsonl")
    ctx = make_ctx(log)  # 30 dev examples
    asyncio.run(MIPRO(**{**SMALL, "val_size": 16}).compile(ctx))
    assert len(ctx.devset) == 30  # the caller's context is left alone
    trials = sorted(log.trials.values(), key=lambda t: t.index)
    full = [t for t in trials if t.full_eval]
    assert [t.kind for t in full] == ["zero_shot", "mipro_full", "mipro_full"]
    assert all(t.n == 16 for t in full) and all(t.n == 10 for t in trials if not t.full_eval)
    assert "on all 16 validation rows" in full[-1].description
    rows = random.Random("mipro-val-0").sample(ctx.devset, 16)
    for trial in full:  # each full evaluation is the program's score on exactly those rows
        assert trial.score == asyncio.run(ctx.score(ctx.program.with_state(trial.state), rows))[0]
    assert MIPRO(**{**SMALL, "val_size": 16}).planned_calls(ctx) < MIPRO(**SMALL).planned_calls(ctx)


def test_trials_are_scored_on_the_same_dev_rows() -> None:
    """Paired: every minibatch trial sees the same examples, so score differences are real."""
    from promptc.optimize.mipro import _subset

    ctx = make_ctx()
    first, again = _subset(ctx, 10), _subset(ctx, 10)
    assert first is not None and [dict(e) for e in first] == [dict(e) for e in (again or [])]
    assert _subset(ctx, len(ctx.devset)) is None


def test_proposer_never_sees_a_placeholder_instruction() -> None:
    program = load_text(SPEC.replace("    instructions: Route the support ticket to the team that handles it.\n", "")).program
    lm = ScriptedLM({1: "Pick the team."})
    out = asyncio.run(propose_instructions(program, "route", lm=lm, n=2, seed=0))
    prompt = next(r for r in lm.requests if r.sample_index).messages[-1].content
    assert "(none: the default" not in prompt and "Given the fields `ticket`, produce the fields `team`." in prompt
    assert out == ["", "Pick the team."]

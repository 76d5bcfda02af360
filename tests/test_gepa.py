"""GEPA: the Pareto front, merges, demo mutations, every pipeline spec, resume and budgets."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from promptc.core.program import PredictorState
from promptc.core.trace import Trace, TraceStep
from promptc.optimize.gepa import GEPA, PRESETS, _demo_child, _merge_rows
from promptc.optimize.pareto import (
    Candidate,
    merge_options,
    merged_state,
    pareto_ids,
    select_parent,
)
from promptc.optimize.reflection import REFLECTION_SIGNATURE, Rollout, records_for
from tests.conftest import ROOT, run_cli

INTENT_TRAIN, INTENT_DEV = (str(ROOT / f"datasets/intent/{s}.jsonl") for s in ("train", "dev"))


def cand(cid: int, scores: list[float], parents: tuple[int, ...] = (), instr: str = "", demos: int = 0) -> Candidate:
    state = {"p": PredictorState(instructions=instr, demos=[{"q": str(i)} for i in range(demos)])}
    return Candidate(id=cid, state=state, val_scores=scores, parents=parents)


def test_pareto_front_keeps_candidates_best_somewhere_and_drops_covered_ones():
    pool = [cand(0, [0, 0, 1, 0]), cand(1, [1, 1, 0, 0]), cand(2, [1, 0, 1, 0]), cand(3, [0, 0, 0, 1])]
    # 0 is best only on row 2, where 2 is best too, and 2 is also best elsewhere: 0 is covered.
    assert pareto_ids(pool) == [1, 2, 3]
    counts: dict[int, int] = {}
    for i in range(400):
        chosen = select_parent(pool, random.Random(i)).id
        counts[chosen] = counts.get(chosen, 0) + 1
    assert 0 not in counts and counts[1] > counts[3] and counts[2] > counts[3]  # drawn by rows won
    assert pareto_ids([cand(0, [0, 0]), cand(1, [0, 0])]) in ([0], [1])  # all tied: one survives


def test_merge_combines_the_parts_each_line_changed():
    base = cand(0, [0, 0, 0])
    instr = cand(1, [1, 0, 0], parents=(0,), instr="better instruction")
    demos = cand(2, [0, 1, 0], parents=(0,), demos=2)
    pool = [base, instr, demos]
    assert merge_options(pool, set()) == [(1, 2, 0)]
    merged = merged_state(instr, demos, base)["p"]
    assert merged.instructions == "better instruction" and len(merged.demos) == 2
    assert merge_options(pool, {(1, 2, 0)}) == []  # tried once
    # A descendant of the other side, or an ancestor better than a side, is no merge.
    child = cand(3, [1, 1, 1], parents=(1,), demos=1)
    assert (1, 3, 0) not in merge_options([base, instr, demos, child], set())
    rows = _merge_rows([1, 0, 0, 1, 1, 0], [0, 1, 0, 1, 0, 1], random.Random(0))
    assert len(rows) == 5 and len(set(rows)) == 5


def test_demo_mutation_adds_one_demo_then_swaps_and_never_uses_judged_rows():
    state = {"p": PredictorState(instructions="x", demos=[])}
    pool = {i: {"q": f"row {i}", "a": i} for i in range(6)}
    child = state
    for size in (1, 2, 3):
        made = _demo_child(child, "p", pool, exclude={0, 1}, rng=random.Random(size), max_demos=3)
        assert made is not None and made["p"].instructions == "x" and len(made["p"].demos) == size
        assert made["p"].demos[:-1] == child["p"].demos  # one added, the others kept
        child = made
    demos = child["p"].demos
    assert all(d["a"] not in (0, 1) for d in demos) and len({d["a"] for d in demos}) == 3
    swapped = _demo_child(child, "p", pool, exclude={0, 1}, rng=random.Random(1), max_demos=3)
    assert swapped is not None and len(swapped["p"].demos) == 3
    assert sum(d in demos for d in swapped["p"].demos) == 2  # one demo swapped
    assert _demo_child(state, "p", {0: pool[0]}, exclude={0}, rng=random.Random(0), max_demos=3) is None


def test_reflection_records_show_the_predictor_at_work_with_feedback():
    trace = Trace(steps=[TraceStep(step="solve", module="chain_of_thought", predictor="solve",
                                   inputs={"question": "2+2?"}, outputs={"reasoning": "2+2=5", "answer": 5})])
    bad = Rollout(row=3, score=0.0, feedback="expected 4, got 5", trace=trace)
    text = records_for("solve", [bad], threshold=1.0)
    assert "2+2?" in text and "2+2=5" in text and "expected 4, got 5" in text and "fail" in text
    assert records_for("other", [bad], threshold=1.0) == "(no records)"
    prompt = REFLECTION_SIGNATURE.instructions.lower()
    assert not any(word in prompt for word in ("math", "arithmetic", "benchmark", "number"))


def test_presets_and_settings():
    assert PRESETS["light"].max_metric_calls < PRESETS["medium"].max_metric_calls < PRESETS["heavy"].max_metric_calls
    with pytest.raises(ValueError):
        GEPA(minibatch_size=0)
    with pytest.raises(ValueError):
        GEPA(unknown=1)


SPECS = {
    "support_reply": ["--train", INTENT_TRAIN, "--dev", INTENT_DEV],
    "triage": [],
    "multihop_rag": [],
    "agent": [],
    "multihop_module": [],
}


def spec_copy(tmp_path: Path, name: str, optimizer: str) -> Path:
    """specs/NAME.yaml (and its Python helpers) in tmp_path, with data paths made absolute
    and `optimizer` as its optimizer block."""
    for helper in ("agent_tools.py", "multihop_module.py"):
        (tmp_path / helper).write_text((ROOT / "specs" / helper).read_text())
    text = (ROOT / "specs" / f"{name}.yaml").read_text().replace("../datasets", str(ROOT / "datasets"))
    text = text.split("\noptimizer:")[0].rstrip("\n") + f"\noptimizer: {optimizer}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_pipeline_compiles_with_gepa_and_exports(tmp_path, name):
    out = tmp_path / "build"
    spec = spec_copy(tmp_path, name, "{name: gepa, max_metric_calls: 40, val_size: 8}")
    result = run_cli("compile", str(spec), *SPECS[name], "--model", "offline", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    program = json.loads((out / "program.json").read_text())
    assert program["predictors"] and program["provenance"]["optimizer"] == "gepa"
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert trials[0]["kind"] == "gepa_seed" and 0 < len(trials[0]["instance_scores"]) <= 8  # dev may be smaller
    assert len(trials) > 1 and all(t["kind"].startswith("gepa_") for t in trials)
    exported = run_cli("export", str(out), "--format", "markdown", "--out", str(tmp_path / "md"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "md" / "manifest.json").exists()


def compile_intent(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    spec = spec_copy(out.parent, "intent", "{name: gepa, max_metric_calls: 160, val_size: 20}")
    return run_cli("compile", str(spec), "--model", "offline", "--out", str(out), "--seed", "2", *extra,
                   timeout=300)


def test_stop_and_resume_without_redoing_finished_trials(tmp_path):
    out = tmp_path / "build"
    stopped = compile_intent(out, "--max-calls", "70")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped early" in stopped.stderr
    prov = json.loads((out / "program.json").read_text())["provenance"]
    assert "70" in prov["stopped_early"]
    first = (out / "trials.jsonl").read_text().splitlines()
    assert len(first) >= 2

    resumed = compile_intent(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(first)} finished trial(s)" in resumed.stderr
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert lines[:len(first)] == first and len(lines) > len(first)  # finished trials kept, not redone
    indices = [json.loads(x)["index"] for x in lines]
    assert sorted(indices) == list(range(len(indices)))  # each trial exactly once

    # The same compile from scratch takes the same path: the same trials, the same program.
    fresh = tmp_path / "fresh"
    assert compile_intent(fresh).returncode == 0
    scratch = [json.loads(x) for x in (fresh / "trials.jsonl").read_text().splitlines()]
    assert [(t["index"], t["kind"], t["score"], t["state"]) for t in scratch] == \
        [(t["index"], t["kind"], t["score"], t["state"]) for t in map(json.loads, lines)]
    a = json.loads((out / "program.json").read_text())
    b = json.loads((fresh / "program.json").read_text())
    assert a["predictors"] == b["predictors"]

    # A finished compile resumed again: no new trial, the same program.
    again = compile_intent(out, "--resume")
    assert again.returncode == 0 and (out / "trials.jsonl").read_text().splitlines() == lines
    assert json.loads((out / "program.json").read_text())["predictors"] == a["predictors"]


def test_the_metric_call_budget_bounds_the_search_and_dry_run_plans_it(tmp_path):
    out = tmp_path / "build"
    assert compile_intent(out).returncode == 0
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert sum(t["n"] for t in trials) <= 160  # metric calls of scored trials; rollouts come on top
    planned = run_cli("compile", str(spec_copy(tmp_path, "intent", "{name: gepa, max_metric_calls: 160}")),
                      "--model", "offline", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "planned: up to" in planned.stdout

"""reflective_bootstrap: the factorial choice, every pipeline spec, stop and resume, the default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from promptc.optimize.reflective import main_effects
from tests.conftest import run_cli
from tests.test_gepa import SPECS, spec_copy

SMALL = ("{name: reflective_bootstrap, rollouts: 12, instructions: 2, demo_sets: 2, eval_rows: 6, max_demos: 4, "
         "confirm_rows: 6}")


def test_main_effects_choose_by_means_over_the_other_factor():
    # Cell (0, 1) is the single best, but instruction 1 is better on average over demo sets,
    # and demo set 0 over instructions: each choice rests on more rows than one cell.
    grid = {(0, 0): 0.5, (0, 1): 0.95, (1, 0): 0.9, (1, 1): 0.6, (2, 0): 0.7, (2, 1): 0.3}
    assert main_effects(grid) == (1, 0)
    assert main_effects({(0, 0): 0.5, (1, 0): 0.5}) == (0, 0)  # ties go to the original


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_pipeline_compiles_and_exports(tmp_path, name):
    out = tmp_path / "build"
    spec = spec_copy(tmp_path, name, SMALL)
    result = run_cli("compile", str(spec), *SPECS[name], "--model", "offline", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "compiled without scoring on dev" in result.stdout
    program = json.loads((out / "program.json").read_text())
    assert program["predictors"] and program["provenance"]["optimizer"] == "reflective_bootstrap"
    kinds = [json.loads(x)["kind"] for x in (out / "trials.jsonl").read_text().splitlines()]
    assert kinds[:7] == ["pool"] + ["factorial"] * 6 and kinds[-1] == "chosen"
    assert kinds[7:-1] in ([], ["confirm"], ["confirm", "confirm"])  # none when dev has no rows left
    exported = run_cli("export", str(out), "--format", "openai-messages", "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr


def compile_intent(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    spec = spec_copy(out.parent, "intent", SMALL)
    return run_cli("compile", str(spec), "--model", "offline", "--out", str(out), "--seed", "1", *extra)


def test_stop_and_resume_without_redoing_finished_trials(tmp_path):
    out = tmp_path / "build"
    stopped = compile_intent(out, "--max-calls", "30")  # 12 rollouts + 6 rows per cell: cut mid-grid
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped early" in stopped.stderr
    first = (out / "trials.jsonl").read_text().splitlines()
    assert json.loads(first[0])["kind"] == "pool" and 2 <= len(first) < 8
    assert json.loads((out / "program.json").read_text())["provenance"]["stopped_early"]

    resumed = compile_intent(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    lines = (out / "trials.jsonl").read_text().splitlines()
    assert lines[:len(first)] == first and len(lines) == 10  # finished trials kept, not redone
    fresh = tmp_path / "fresh"
    assert compile_intent(fresh).returncode == 0
    scratch = [json.loads(x) for x in (fresh / "trials.jsonl").read_text().splitlines()]
    assert [(t["index"], t["kind"], t["score"], t["state"]) for t in scratch] == \
        [(t["index"], t["kind"], t["score"], t["state"]) for t in map(json.loads, lines)]


def test_it_is_the_default_optimizer(tmp_path):
    spec = spec_copy(tmp_path, "intent", "{name: reflective_bootstrap}").read_text().split("\noptimizer:")[0]
    (tmp_path / "plain.yaml").write_text(spec + "\n")
    plan = run_cli("compile", str(tmp_path / "plain.yaml"), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "reflective_bootstrap" in plan.stdout

"""End-to-end `promptc compile`: better held-out scores, budgets, checkpoints and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, TEST_KEY, run_cli

INTENT = (ROOT / "specs/intent.yaml").read_text().split("\noptimizer:")[0].replace("../datasets", str(ROOT / "datasets")) + "\n"
TRAIN, DEV, TEST = (str(ROOT / f"datasets/intent/{s}.jsonl") for s in ("train", "dev", "test"))


def spec_with(tmp_path: Path, optimizer: str, lm: str = "") -> Path:
    path = tmp_path / "intent.yaml"
    path.write_text(INTENT.replace("version: 1\n", "version: 1\n" + lm) + f"optimizer: {optimizer}\n")
    return path


def held_out(spec: Path, build: Path | None) -> float:
    args = ["eval", str(spec), "--data", TEST, "--report", str(spec.parent / "r.json")]
    if build is not None:
        args += ["--program", str(build)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads((spec.parent / "r.json").read_text())["summary"]["mean"]


def test_bootstrap_and_random_search_beat_zero_shot_on_held_out_rows(tmp_path):
    for optimizer in ("{name: bootstrap_few_shot, max_bootstrapped_demos: 8, max_labeled_demos: 24, score_dev: true}",
                      "{name: random_search, num_candidates: 3, max_bootstrapped_demos: 8}"):
        spec = spec_with(tmp_path, optimizer)
        out = tmp_path / "build"
        result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "->" in result.stdout
        zero, tuned = held_out(spec, None), held_out(spec, out)
        assert tuned > zero + 0.05, (optimizer, zero, tuned)
        program = json.loads((out / "program.json").read_text())
        prov = program["provenance"]
        assert prov["dev_score_after"] >= prov["dev_score_before"]
        assert prov["spec_sha256"] and prov["data"]["train_sha256"] and prov["seed"] == 0
        assert program["predictors"][0]["demos"], "compiled program has demos"
        trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
        full = [t for t in trials if t["full_eval"]]
        assert full[0]["kind"] == "zero_shot" and all("score" in t for t in trials)
        assert full[0]["score"] == prov["dev_score_before"]
        assert (out / "prompts" / "classify.md").read_text().count("[[ ## intent ## ]]") > 3
        assert "api_key" not in (out / "program.json").read_text().replace("api_key_env", "")


def test_few_shot_optimizers_spend_nothing_on_dev_unless_asked(tmp_path):
    for name, kind in (("bootstrap_few_shot", "bootstrapped"), ("labeled_few_shot", "labeled")):
        spec = spec_with(tmp_path, f"{{name: {name}}}")
        out = tmp_path / name
        result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "compiled without scoring on dev" in result.stdout and "promptc eval --program" in result.stdout
        trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
        assert [(t["kind"], t["score"], t["n"]) for t in trials] == [(kind, None, 0)]
        program = json.loads((out / "program.json").read_text())
        assert program["predictors"][0]["demos"] and program["provenance"]["dev_score_after"] is None
        # Bootstrapping runs the program on a few training rows only, never on dev.
        assert program["provenance"]["usage"]["calls"] <= (24 if name == "bootstrap_few_shot" else 0)


def test_bootstrap_few_shot_races_its_candidate_runs_on_dev(tmp_path):
    spec = spec_with(tmp_path, "{name: bootstrap_few_shot, race_rows: 2, candidates: 4, max_bootstrapped_demos: 2, "
                               "max_labeled_demos: 0}")
    out = tmp_path / "build"
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--seed", "2")
    assert result.returncode == 0, result.stderr
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["kind"] for t in trials] == ["demo_race"] * 4 + ["bootstrapped"]
    assert [(t["index"], t["params"]["unit"], t["n"]) for t in trials[:4]] == [(i, i, 2) for i in range(4)]
    race = {t["params"]["unit"]: t for t in trials[:4]}
    best = sorted(race, key=lambda u: (-race[u]["score"], u))[:2]
    assert best != [0, 1]  # on seed 2 the first run is the worst demo
    demos = json.loads((out / "program.json").read_text())["predictors"][0]["demos"]
    assert demos == [race[u]["state"]["classify"]["demos"][0] for u in best]
    assert trials[-1]["score"] is None and "raced from 4 runs" in trials[-1]["description"]


def test_a_stop_in_the_bootstrap_race_writes_the_raced_demos(tmp_path):
    spec = spec_with(tmp_path, "{name: bootstrap_few_shot, race_rows: 2, candidates: 4, max_bootstrapped_demos: 2, "
                               "max_labeled_demos: 0, score_dev: true}")
    out = tmp_path / "build"
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--seed", "2",
                     "--max-calls", "13")  # 7 bootstrap runs, 3 race trials of 2 rows: zero-shot not scored yet
    assert result.returncode == 0, result.stderr
    last = json.loads((out / "trials.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "bootstrapped" and last["params"]["stopped_early"]
    assert "zero_shot" not in [json.loads(x)["kind"] for x in (out / "trials.jsonl").read_text().splitlines()]
    program = json.loads((out / "program.json").read_text())
    assert program["predictors"][0]["demos"] == last["state"]["classify"]["demos"]


def test_mipro_stopped_by_the_budget_says_so(tmp_path):
    spec = spec_with(tmp_path, "{name: mipro, num_trials: 6, minibatch_size: 10}")
    out = tmp_path / "build"
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--max-calls", "150")
    assert result.returncode == 0, result.stderr
    assert "stopped early" in result.stderr
    assert json.loads((out / "program.json").read_text())["provenance"]["stopped_early"]


def test_budget_stops_cleanly_with_the_best_so_far(tmp_path):
    spec = spec_with(tmp_path, "{name: random_search, num_candidates: 6}")
    out = tmp_path / "build"
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--max-calls", "250")
    assert result.returncode == 0, result.stderr
    assert "stopped early" in result.stderr
    prov = json.loads((out / "program.json").read_text())["provenance"]
    assert "250" in prov["stopped_early"] and prov["trials"] < 9
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    race = [t for t in trials if t["kind"] == "race"]
    leader = max(race, key=lambda t: (t["score"], -t["index"]))  # stopped in round 0: the best so far
    assert trials[-1]["params"] == {"candidate": leader["params"]["candidate"], "stopped_early": prov["stopped_early"]}
    assert json.loads((out / "program.json").read_text())["predictors"][0]["demos"] == \
        leader["state"]["classify"]["demos"]
    assert prov["usage"]["calls"] <= 250 + 64  # the trial in flight may finish its batch
    nothing = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(tmp_path / "b2"),
                      "--max-calls", "5")
    assert nothing.returncode == 3 and "before any candidate" in nothing.stderr
    assert not (tmp_path / "b2" / "program.json").exists()


def test_dry_run_spends_nothing(tmp_path, fake_server):
    lm = f'lm: {{model: fake-model, base_url: "{fake_server.base_url}", api_key_env: PROMPTC_TEST_KEY}}\n'
    spec = spec_with(tmp_path, "{name: random_search, num_candidates: 4}", lm=lm)
    spec.write_text(spec.read_text() + "prices:\n  fake-model: {input: 0.15, output: 0.6}\n")
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dry-run", env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert result.returncode == 0, result.stderr
    assert "planned: up to" in result.stdout and "estimated cost" in result.stdout
    assert fake_server.request_count == 0


def test_kill_and_resume_without_redoing_trials(tmp_path, fake_server):
    fake_server.latency = 0.003
    lm = (f'lm: {{model: fake-model, base_url: "{fake_server.base_url}", api_key_env: PROMPTC_TEST_KEY, '
          f'concurrency: 4}}\n')
    spec = spec_with(tmp_path, "{name: random_search, num_candidates: 4, max_bootstrapped_demos: 3}", lm=lm)
    env = {**os.environ, "PROMPTC_TEST_KEY": TEST_KEY}
    out = tmp_path / "build"
    args = [sys.executable, "-m", "promptc", "compile", str(spec), "--train", TRAIN, "--dev", DEV,
            "--out", str(out), "--seed", "3"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = out / "trials.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not trials.exists() or len(trials.read_text().splitlines()) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(trials.read_text().splitlines())
    assert 3 <= done_before and not (out / "program.json").exists()

    fake_server.reset_log()
    resumed = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--seed", "3",
                      "--resume", env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {done_before} finished trial(s)" in resumed.stderr
    indices = [json.loads(x)["index"] for x in trials.read_text().splitlines()]
    assert done_before < len(indices) == 11  # 7 candidates raced on 40 dev rows, zero-shot + 3 finalists on all 64
    assert sorted(indices) == list(range(len(indices)))  # nothing redone, nothing lost
    first = (out / "program.json").read_text()

    # A finished compile, resumed again: zero requests, the identical artifact.
    fake_server.reset_log()
    again = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out), "--seed", "3",
                    "--resume", env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert again.returncode == 0 and fake_server.request_count == 0
    assert (out / "program.json").read_text() == first

    # From scratch with a warm cache: zero requests and the same program (usage aside).
    fresh = tmp_path / "fresh"
    scratch = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(fresh), "--seed", "3",
                      env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert scratch.returncode == 0 and fake_server.request_count == 0
    a, b = json.loads(first), json.loads((fresh / "program.json").read_text())
    for doc in (a, b):
        doc["provenance"].pop("usage")
    assert a["predictors"] == b["predictors"] and a["provenance"]["dev_score_after"] == b["provenance"]["dev_score_after"]

    # Changed data refuses to resume.
    other = tmp_path / "train2.jsonl"
    other.write_text(Path(TRAIN).read_text()[:-200].rsplit("\n", 1)[0] + "\n")
    refused = run_cli("compile", str(spec), "--train", str(other), "--dev", DEV, "--out", str(out), "--seed", "3",
                      "--resume", env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert refused.returncode == 2 and "train_sha256" in refused.stderr


def test_bad_optimizer_settings_are_usage_errors(tmp_path):
    spec = spec_with(tmp_path, "{name: random_serch}")
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(tmp_path / "b"))
    assert result.returncode == 2 and "did you mean 'random_search'" in result.stderr
    spec = spec_with(tmp_path, "{name: random_search, num_candidate: 3}")
    result = run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(tmp_path / "b"))
    assert result.returncode == 2 and "optimizer.num_candidate: unknown setting" in result.stderr


def test_export_from_the_cli(tmp_path):
    spec = spec_with(tmp_path, "{name: bootstrap_few_shot}")
    out = tmp_path / "build"
    assert run_cli("compile", str(spec), "--train", TRAIN, "--dev", DEV, "--out", str(out)).returncode == 0
    for fmt, name in (("openai-messages", "classify.json"), ("markdown", "classify.md"),
                      ("jinja", "classify.jinja"), ("finetune-jsonl", "classify.jsonl")):
        result = run_cli("export", str(out), "--format", fmt, "--out", str(tmp_path / fmt))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / fmt / name).exists() and (tmp_path / fmt / "manifest.json").exists()
    template = json.loads((tmp_path / "openai-messages" / "classify.json").read_text())
    filled = [m["content"].format(message="I lost my card") for m in template["messages"]]
    shown = run_cli("inspect", "--program", str(out), "--example", '{"message": "I lost my card"}')
    assert filled[-1] in shown.stdout.replace("\r", "")
    rows = (tmp_path / "finetune-jsonl" / "classify.jsonl").read_text().splitlines()
    assert rows and all(len(json.loads(r)["messages"]) == 3 for r in rows)
    bad = run_cli("export", str(out), "--format", "pdf", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "openai-messages" in bad.stderr


def test_a_budget_stop_writes_the_optimizers_own_pick_over_a_better_scored_trial(tmp_path, monkeypatch):
    """An optimizer that stops logs what it wants written with `stopped_early`; the job writes
    that, not the best scored trial (here zero-shot, scored on all of dev first)."""
    from pydantic import BaseModel

    import promptc
    from promptc.errors import BudgetExhausted
    from promptc.optimize import registry
    from promptc.optimize.base import CompileContext, ready

    class StopsWithAPick:
        name = "stops_with_a_pick"

        class Settings(BaseModel):
            pass

        def __init__(self, **settings):
            self.settings = self.Settings(**settings)

        def planned_calls(self, ctx: CompileContext) -> int:
            return len(ctx.devset)

        async def compile(self, ctx: CompileContext):
            await ctx.trial(0, "zero_shot", ready(ctx.program))
            demos = [{k: v for k, v in ctx.trainset[0].items()}]
            pick = ctx.program.with_state({n: s.model_copy(update={"demos": demos})
                                           for n, s in ctx.program.state().items()})
            await ctx.trial(1, "pick", ready(pick), scored=False, params={"stopped_early": "out of calls"})
            raise BudgetExhausted("out of calls")

    classes = registry.optimizer_classes()
    monkeypatch.setattr(registry, "optimizer_classes", lambda: {**classes, "stops_with_a_pick": StopsWithAPick})
    rows = [json.loads(x) for x in Path(DEV).read_text().splitlines()[:8]]
    with promptc.load_program(ROOT / "specs/intent.yaml") as program:
        result = promptc.compile(program, rows, rows, optimizer="stops_with_a_pick", out=tmp_path / "build")
    assert result.stopped == "out of calls"
    assert result.best is not None and result.best.kind == "pick"
    assert [t.kind for t in result.trials] == ["zero_shot", "pick"] and result.trials[0].score is not None
    written = json.loads((tmp_path / "build" / "program.json").read_text())
    assert written["predictors"][0]["demos"] == [rows[0]] and written["provenance"]["stopped_early"] == "out of calls"

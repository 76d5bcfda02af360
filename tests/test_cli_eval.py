"""End-to-end `promptc eval`: scores, reports, CI gating and every exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from promptc.artifacts.program_file import ProgramArtifact
from promptc.spec.loader import load
from promptc.testing import Fault
from tests.conftest import ROOT, TEST_KEY, run_cli
from tests.test_cli_run import ENV, write_spec

INTENT = "specs/intent.yaml"
DEV = str(ROOT / "datasets/intent/dev.jsonl")


def tuned_artifact(tmp_path: Path, n_demos: int = 48) -> Path:
    program = load(ROOT / INTENT).program
    train = [json.loads(x) for x in (ROOT / "datasets/intent/train.jsonl").read_text().splitlines()]
    program.steps[0].module.demos = train[:n_demos]
    return ProgramArtifact.from_program(program).save(tmp_path / "build").parent


def test_eval_reports_and_threshold_gate(tmp_path, monkeypatch):
    summary_file = tmp_path / "gh.md"
    reports = [tmp_path / f"report.{ext}" for ext in ("json", "csv", "md", "html")]
    args = ["eval", INTENT, "--data", DEV, "--output", str(tmp_path / "res.jsonl"),
            "--junit", str(tmp_path / "junit.xml")]
    for r in reports:
        args += ["--report", str(r)]
    result = run_cli(*args, "--threshold", "0.5", env={"GITHUB_STEP_SUMMARY": str(summary_file)})
    assert result.returncode == 0, result.stderr
    assert "label_accuracy (primary)" in result.stdout and "95% CI" in result.stdout
    assert "PASS" in result.stdout
    records = [json.loads(x) for x in (tmp_path / "res.jsonl").read_text().splitlines()]
    assert len(records) == 64 and {"row", "inputs", "gold", "prediction", "scores", "feedback"} <= set(records[0])
    report = json.loads(reports[0].read_text())
    assert report["summary"]["n"] == 64
    assert 0.0 < report["summary"]["low"] <= report["summary"]["mean"] <= report["summary"]["high"] < 1.0
    assert "row" in reports[1].read_text().splitlines()[0]
    html = reports[3].read_text()
    assert "<svg" in html and "https://" not in html
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    failures = sum(1 for r in records if r["score"] == 0.0)
    assert suite.get("tests") == "64" and suite.get("failures") == str(failures)
    assert "promptc eval" in summary_file.read_text()

    strict = run_cli("eval", INTENT, "--data", DEV, "--threshold", "0.95")
    assert strict.returncode == 1 and "FAIL" in strict.stdout


def test_baseline_regression_is_caught(tmp_path):
    build = tuned_artifact(tmp_path)
    good = tmp_path / "good.jsonl"
    first = run_cli("eval", INTENT, "--program", str(build), "--data", DEV, "--output", str(good))
    assert first.returncode == 0, first.stderr
    # The zero-shot spec against the tuned baseline: a real, significant drop.
    worse = run_cli("eval", INTENT, "--data", DEV, "--baseline", str(good))
    assert worse.returncode == 1, worse.stdout
    assert "significant regression" in worse.stdout and "p=" in worse.stdout
    # An artifact as baseline is re-evaluated on the same data; equal programs don't regress.
    same = run_cli("eval", INTENT, "--program", str(build), "--data", DEV, "--baseline", str(build))
    assert same.returncode == 0, same.stdout
    assert "diff +0.000" in same.stdout
    # A drop within --max-regression passes.
    tolerated = run_cli("eval", INTENT, "--data", DEV, "--baseline", str(good), "--max-regression", "0.9")
    assert tolerated.returncode == 0


def test_metric_that_raises_gives_an_error_row(tmp_path):
    (tmp_path / "flaky_metric.py").write_text(
        "def score(example, prediction, trace=None):\n"
        "    if 'money back' in example['message']:\n"
        "        raise RuntimeError('boom')\n"
        "    return prediction['intent'] == example['intent'], 'checked'\n")
    out = tmp_path / "res.jsonl"
    result = run_cli("eval", str(ROOT / INTENT), "--data", DEV, "--metric", "python:flaky_metric:score",
                     "--output", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    broken = [r for r in rows if r["error"]]
    assert broken and all("boom" in r["error"] for r in broken)
    assert all(r["score"] is None for r in broken)
    assert len(rows) == 64
    assert f"errors={len(broken)}" in result.stdout


def test_offline_replays_the_cache_and_misses_are_exit_3(tmp_path, fake_server, isolated_env):
    spec = write_spec(tmp_path, fake_server.base_url,
                      extra="metric: {type: numeric_match, field: answer}")
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus zero?", "answer": i}) + "\n"
                            for i in range(12)))
    online = run_cli("eval", str(spec), "--data", str(data), "--output", str(tmp_path / "a.jsonl"), env=ENV)
    assert online.returncode == 0, online.stderr
    assert fake_server.request_count == 12
    fake_server.reset_log()
    replay = run_cli("eval", str(spec), "--data", str(data), "--offline", "--output", str(tmp_path / "b.jsonl"),
                     env=ENV)
    assert replay.returncode == 0, replay.stderr
    assert fake_server.request_count == 0
    a = [json.loads(x)["scores"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x)["scores"] for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a == b
    def numbers(out: str) -> str:  # the metrics table and the n/mean line; not timings
        return out.split("latency p50")[0]

    assert numbers(online.stdout) == numbers(replay.stdout)
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"question": "What is 99 plus zero?", "answer": 99}) + "\n")
    miss = run_cli("eval", str(spec), "--data", str(extra), "--offline", env=ENV)
    assert miss.returncode == 3 and "cache miss" in miss.stderr
    assert fake_server.request_count == 0
    assert TEST_KEY not in online.stdout + online.stderr + replay.stdout + miss.stderr


def test_endpoint_failures_over_the_error_rate_are_exit_3(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url, max_retries=1,
                      extra="metric: {type: numeric_match, field: answer}")
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i}?", "answer": i}) + "\n" for i in range(10)))
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.server_error(503)]
    result = run_cli("eval", str(spec), "--data", str(data), "--no-cache", env=ENV)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "errors=10" in result.stdout


def test_usage_errors_are_exit_2(tmp_path):
    bad_data = tmp_path / "bad.jsonl"
    bad_data.write_text('{"message": "hi", "intent": "card_lost"}\nnot json\n')
    assert run_cli("eval", INTENT, "--data", str(bad_data)).returncode == 2
    unknown = run_cli("eval", INTENT, "--data", DEV, "--metric", "exact_matc")
    assert unknown.returncode == 2 and "--metric" in unknown.stderr
    assert run_cli("eval", INTENT, "--resume").returncode == 2
    spec = tmp_path / "s.yaml"
    spec.write_text((ROOT / INTENT).read_text().replace("type: label_accuracy", "type: regex"))
    located = run_cli("eval", str(spec), "--data", DEV)
    assert located.returncode == 2 and "s.yaml:" in located.stderr and "pattern" in located.stderr


def test_resume_completes_without_redoing(tmp_path):
    out = tmp_path / "res.jsonl"
    assert run_cli("eval", INTENT, "--data", DEV, "--output", str(out), "--limit", "20").returncode == 0
    done = run_cli("eval", INTENT, "--data", DEV, "--output", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x)["row"] for x in out.read_text().splitlines()]
    assert sorted(rows) == list(range(1, 65))
    assert "n=64" in done.stdout


def test_weighted_metrics_with_an_llm_judge(tmp_path, fake_server):
    fake_server.responder = lambda body: "[[ ## score ## ]]\n0.5\n\n[[ ## feedback ## ]]\nok-ish\n\n[[ ## completed ## ]]"
    spec = tmp_path / "judged.yaml"
    spec.write_text((ROOT / INTENT).read_text().split("metric:")[0].replace(
        "version: 1\n", f"""version: 1
lms:
  default: {{model: offline}}
  judge: {{model: fake-model, base_url: "{fake_server.base_url}", api_key_env: PROMPTC_TEST_KEY}}
""").replace("../datasets", str(ROOT / "datasets")) + """metric:
  - {type: label_accuracy, field: intent, weight: 1}
  - {type: llm_judge, name: tone, rubric: "Is the label plausible for the message?", lm: judge, weight: 1, primary: true}
""")
    result = run_cli("eval", str(spec), "--limit", "5", "--output", str(tmp_path / "r.jsonl"), env=ENV)
    assert result.returncode == 0, result.stderr
    assert fake_server.request_count == 5
    assert "tone (primary)" in result.stdout and "weighted" in result.stdout
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all(r["scores"]["tone"] == 0.5 and r["feedback"]["tone"] == "ok-ish" for r in rows)
    assert all(r["score"] == 0.5 for r in rows)
    assert "5 HTTP request(s)" in result.stdout  # the judge's calls are in the totals
    rubric_seen = fake_server.requests[0].body["messages"][-1]["content"]
    assert "Is the label plausible" in rubric_seen

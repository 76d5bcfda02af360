"""End-to-end `promptc run` through the real openai client against the fake server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptc.testing import Fault
from tests.conftest import ROOT, TEST_KEY, run_cli

ENV = {"PROMPTC_TEST_KEY": TEST_KEY}


def write_spec(tmp_path: Path, base_url: str, *, timeout: float = 2.0, max_retries: int = 8,
               extra: str = "") -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
version: 1
name: qa
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: PROMPTC_TEST_KEY
  timeout: {timeout}
  max_retries: {max_retries}
  concurrency: 32
{extra}
signatures:
  answer:
    instructions: Answer with the number in the question.
    inputs: {{question: str}}
    outputs:
      answer: {{type: float, desc: a number}}
program:
  - step: answer
    signature: answer
""")
    return spec


def write_rows(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"q{i}", "question": f"What is {i} plus zero?"}) + "\n")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_run_against_fake_server(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert [r["_row"] for r in rows] == list(range(1, 21))  # input order
    assert all(r["_error"] is None and r["answer"] == float(i) for i, r in enumerate(rows))
    assert rows[0]["id"] == "q0" and rows[0]["_usage"]["requests"] == 1
    assert fake_server.request_count == 20
    assert fake_server.requests[0].header("authorization") == f"Bearer {TEST_KEY}"
    assert "20 ok, 0 failed" in result.stdout and "usage: 20 LM call(s)" in result.stdout

    # A warm cache: the same run again makes zero HTTP requests and gives the same rows.
    fake_server.reset_log()
    again = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--overwrite", env=ENV)
    assert again.returncode == 0, again.stderr
    assert fake_server.request_count == 0
    assert "20 cache hit(s)" in again.stdout
    assert [r["answer"] for r in read_rows(out)] == [r["answer"] for r in rows]

    # --no-cache goes to the server again.
    run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--overwrite", "--no-cache", env=ENV)
    assert fake_server.request_count == 20


def test_ten_percent_faults_of_every_kind(tmp_path, fake_server):
    fake_server.fault_rate = 0.10
    fake_server.fault_kinds = ["rate_limit", "server_error", "reset", "hang", "truncated"]
    fake_server.hang_seconds = 3.0
    fake_server.rng.seed(1234)
    spec = write_spec(tmp_path, fake_server.base_url, timeout=0.5, max_retries=10)
    inp, out = write_rows(tmp_path / "in.jsonl", 500), tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_rows(out)
    assert sorted(r["_row"] for r in rows) == list(range(1, 501))  # each exactly once
    assert all(r["_error"] is None for r in rows)
    assert all(r["answer"] == float(r["_row"] - 1) for r in rows)
    outcomes = {rec.outcome for rec in fake_server.requests}
    assert {"rate_limit", "server_error", "reset", "hang", "truncated"} <= outcomes, outcomes
    retried = sum(r["_usage"]["requests"] for r in rows)
    assert retried > 500  # the faults were really retried through


def test_kill_and_resume_exactly_once(tmp_path, fake_server):
    fake_server.latency = 0.01
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 400), tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(inp),
                             "-o", str(out), "-c", "4", "--no-cache"],
                            env={**os.environ, **ENV}, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 40):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(read_rows_lenient(out))
    assert 40 <= partial < 400
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--resume", "--no-cache", env=ENV)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert sorted(r["_row"] for r in rows) == list(range(1, 401))
    assert "resuming" in result.stderr


def read_rows_lenient(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def test_unparseable_reply_is_reasked_once_then_a_row_error(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 1), tmp_path / "out.jsonl"
    fake_server.queue(["I cannot say.", "Still no number, sorry."])
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert result.returncode == 1
    row = read_rows(out)[0]
    assert "answer" in row["_error"] and row["_usage"]["parse_retries"] == 1
    assert row["_usage"]["requests"] == 2
    assert "1 row(s) failed" in result.stderr

    # Failures stay cached (a warm rerun, or --offline in CI, replays them exactly), so a
    # --resume asks again only with --no-cache; then the re-ask recovers.
    fake_server.queue(["nothing useful", "[[ ## answer ## ]]\n0\n\n[[ ## completed ## ]]"])
    again = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--resume", "--no-cache", env=ENV)
    assert again.returncode == 0, again.stderr
    rows = read_rows(out)
    assert len(rows) == 1 and rows[0]["answer"] == 0.0 and rows[0]["_usage"]["parse_retries"] == 1


@pytest.mark.parametrize("status,needle", [(401, "PROMPTC_TEST_KEY"), (404, "--model")])
def test_fatal_status_stops_with_exit_3(tmp_path, fake_server, status, needle):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl"
    fake_server.fault_rate = 1.0
    fake_server.fault_kinds = [Fault.status(status)]
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert result.returncode == 3, result.stderr
    assert needle in result.stderr
    assert fake_server.request_count <= 5  # not retried


def test_missing_key_names_the_variable(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\nlm: {model: gpt-4o-mini, api_key_env: MY_KEY_VAR}\n"
                    "program:\n  - step: a\n    signature: 'q -> a'\n")
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"q": "x"}\n')
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "o.jsonl"))
    assert result.returncode == 3
    assert "MY_KEY_VAR" in result.stderr


def test_api_key_never_written_anywhere(tmp_path, fake_server, isolated_env):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl"
    fake_server.queue([Fault.status(401)])
    first = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    second = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--overwrite", env=ENV)
    third = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--dry-run", env=ENV)
    assert second.returncode == 0
    logs = first.stdout + first.stderr + second.stdout + second.stderr + third.stdout + third.stderr
    assert TEST_KEY not in logs
    files = [p for p in [*tmp_path.rglob("*"), *isolated_env.rglob("*")] if p.is_file()]
    assert any(p.name == "cache.sqlite" for p in files)
    for path in files:
        assert TEST_KEY.encode() not in path.read_bytes(), path


def test_dry_run_sends_nothing(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 7)
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "o.jsonl"), "--dry-run", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "What is 0 plus zero?" in result.stdout
    assert "7 row(s) to run" in result.stdout and "7 LM call(s)" in result.stdout
    assert fake_server.request_count == 0
    assert not (tmp_path / "o.jsonl").exists()


def test_limit_and_existing_output(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl"
    assert run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--limit", "3", env=ENV).returncode == 0
    assert len(read_rows(out)) == 3
    again = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert again.returncode == 2 and "--resume" in again.stderr


def test_json_mode_sends_a_response_format(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    spec.write_text(spec.read_text().replace("    signature: answer", "    signature: answer\n    json_mode: true"))
    inp, out = write_rows(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert result.returncode == 0, result.stderr
    body = fake_server.requests[0].body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["answer"] == {"type": "number"}
    assert [r["answer"] for r in read_rows(out)] == [0.0, 1.0, 2.0]


def test_prices_give_cost_in_usage_and_dry_run(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url, extra="prices:\n  fake-model: {input: 1.0, output: 2.0}")
    inp, out = write_rows(tmp_path / "in.jsonl", 4), tmp_path / "out.jsonl"
    dry = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--dry-run", env=ENV)
    assert "at most (prices from the spec)" in dry.stdout
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), env=ENV)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert all(r["_usage"]["cost"] > 0 for r in rows)
    assert "$0.00" in result.stdout


def test_run_names_its_models_and_warns_of_a_missing_price(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    out = tmp_path / "out.jsonl"
    done = run_cli("run", str(spec), "-i", str(write_rows(tmp_path / "in.jsonl", 2)), "-o", str(out), env=ENV)
    assert done.returncode == 0, done.stderr
    assert "no price for model 'fake-model' in `prices:`" in done.stderr
    record = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert record["provenance"]["models"][0]["model"] == "fake-model"
    assert record["provenance"]["promptc_version"] and record["provenance"]["timestamp"]
    assert TEST_KEY not in (tmp_path / "out.jsonl.meta.json").read_text()
    priced = write_spec(tmp_path, fake_server.base_url, extra="prices:\n  fake-model: {input: 0.15, output: 0.6}")
    again = run_cli("run", str(priced), "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o2.jsonl"), env=ENV)
    assert again.returncode == 0 and "no price" not in again.stderr


def test_compile_warns_of_a_missing_price(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"question": f"What is {i} plus zero?", "answer": i}) + "\n" for i in range(8)))
    done = run_cli("compile", str(spec), "--train", str(train), "--optimizer", "labeled_few_shot",
                   "--out", str(tmp_path / "build"), env=ENV)
    assert done.returncode == 0, done.stderr
    assert "no price for model 'fake-model' in `prices:`" in done.stderr

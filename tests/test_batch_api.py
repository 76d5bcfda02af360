"""`run --batch` / `eval --batch`: the OpenAI Batch API through the real `openai` client,
against the fake server's `/v1/files` and `/v1/batches`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptc.jobs.run import run
from promptc.lm.batch_client import parse_line
from promptc.lm.batch_round import BatchOptions
from promptc.testing import Fault
from tests.conftest import ROOT, TEST_KEY, run_cli
from tests.test_cli_run import read_rows, write_rows, write_spec

ENV = {"PROMPTC_TEST_KEY": TEST_KEY}
FAST = BatchOptions(poll=0.01)
POLL = ["--batch-poll", "0.01"]



@pytest.fixture(autouse=True)
def test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTC_TEST_KEY", TEST_KEY)  # for the jobs run in this process


CHAIN = """
signatures:
  classify:
    instructions: Which team should handle this message?
    inputs: {message: str}
    outputs:
      queue: {type: enum, values: [billing, tech, general]}
program:
  - step: classify
    signature: classify
  - step: reply
    signature: "message, queue -> reply"
    instructions: Reply as that team, in one sentence.
"""


def chain_spec(tmp_path: Path, base_url: str) -> Path:
    spec = write_spec(tmp_path, base_url)
    text = spec.read_text()
    spec.write_text(text[:text.index("signatures:")] + CHAIN)
    return spec


def messages(path: Path, n: int) -> Path:
    topics = ["I was charged twice", "The app crashes on start", "Where is your office?"]
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"message": f"{topics[i % 3]} (ticket {i})"}) + "\n")
    return path


def live_rows(spec: Path, inp: Path, tmp_path: Path, name: str = "live") -> list[dict]:
    """The same spec run live, with its own cache (so the batched run cannot read it)."""
    out = tmp_path / f"{name}.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--cache-dir", str(tmp_path / f"{name}-cache"),
                     env=ENV)
    assert result.returncode == 0, result.stderr
    return read_rows(out)


def test_2000_rows_batched_equal_the_live_run(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 2000), tmp_path / "out.jsonl"
    live = live_rows(spec, inp, tmp_path)
    fake_server.reset_log()
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--batch", *POLL, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_rows(out) == live  # same rows, order, parsed fields and `_usage`
    assert not [r for r in fake_server.requests if r.path.endswith("/chat/completions")]  # nothing live
    assert fake_server.batch_api.created == 1 and fake_server.batch_api.lines_received == 2000
    assert "2000 ok, 0 failed" in result.stdout and "batch: 1 batch(es), 2000 request line(s)" in result.stdout
    assert json.loads((tmp_path / "out.jsonl.batches.json").read_text())["batches"][0]["done"] is True


def test_a_chain_takes_one_round_per_step_and_matches_live(tmp_path, fake_server):
    spec = chain_spec(tmp_path, fake_server.base_url)
    inp = messages(tmp_path / "in.jsonl", 30)
    live = live_rows(spec, inp, tmp_path)
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.ok == 30 and result.batch is not None
    assert result.batch.waves == 2 and fake_server.batch_api.created == 2
    assert read_rows(tmp_path / "out.jsonl") == live
    assert all(r["_error"] is None and r["reply"] and r["_usage"]["calls"] == 2 for r in live)


def test_failed_lines_are_retried_in_a_new_batch(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 40)
    live = live_rows(spec, inp, tmp_path)
    fake_server.batch_api.fail_next(7)  # 7 lines of the first batch land in its error file
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.ok == 40 and result.batch is not None and result.batch.failed_lines == 7
    assert result.batch.requests == 47 and fake_server.batch_api.created == 2
    assert read_rows(tmp_path / "out.jsonl") == live


def test_calls_are_split_over_the_file_limits(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 20)
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=BatchOptions(poll=0.01, max_requests=7))
    assert result.ok == 20 and fake_server.batch_api.created == 3  # 7 + 7 + 6
    one_line = len(fake_server.batch_api.contents["file-fake000001"].splitlines()[0]) + 1
    fake_server.batch_api.created = 0
    other = tmp_path / "other.jsonl"  # new questions: not in the cache
    other.write_text("".join(json.dumps({"question": f"Add nothing to {i}."}) + "\n" for i in range(12)))
    again = run(str(spec), other, tmp_path / "out2.jsonl", batch=BatchOptions(poll=0.01, max_bytes=one_line * 5))
    assert again.ok == 12 and fake_server.batch_api.created >= 3  # about 5 lines a file


def test_lines_failing_every_batch_are_asked_live(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 10)
    fake_server.batch_api.fail_next(10 * 3)  # every line, in the first batch and both retries
    fake_server.reset_log()
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.ok == 10 and fake_server.batch_api.created == 3
    chats = [r for r in fake_server.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 10  # after `retries` new batches, each failing line went live once
    batches = json.loads((tmp_path / "out.jsonl.batches.json").read_text())["batches"]
    assert all(b["status"] == "completed" for b in batches)  # no output file at all, only errors


def test_an_expired_batch_keeps_its_replies_and_resends_the_rest(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 25)
    fake_server.batch_api.expire_next(done=10)
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.ok == 25 and result.batch is not None
    assert result.batch.failed_lines == 15 and fake_server.batch_api.lines_received == 40
    assert [r["answer"] for r in read_rows(tmp_path / "out.jsonl")] == [float(i) for i in range(25)]


def test_a_batch_failing_validation_and_status_jumps(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 12)
    fake_server.batch_api.progression = ["validating", "completed"]  # no in_progress, no finalizing
    fake_server.batch_api.reject_next("quota exceeded for this model")
    events: list[str] = []
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST, on_batch=events.append)
    assert result.ok == 12 and fake_server.batch_api.created == 2
    assert any("failed" in e and "quota exceeded" in e for e in events)


def test_line_errors_from_a_responder_fault_are_retried(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp = write_rows(tmp_path / "in.jsonl", 6)
    seen: set[str] = set()

    def flaky(body):  # each prompt fails the first time it is seen
        from promptc.testing import default_responder

        text = json.dumps(body["messages"])
        if text not in seen:
            seen.add(text)
            return Fault.server_error(503)
        return default_responder(body)

    fake_server.responder = flaky
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.ok == 6 and fake_server.batch_api.created == 2


def test_cached_rows_are_not_sent_and_batch_replies_fill_the_cache(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    run(str(spec), write_rows(tmp_path / "first.jsonl", 5), tmp_path / "first-out.jsonl")  # live, cached
    inp = write_rows(tmp_path / "in.jsonl", 20)
    result = run(str(spec), inp, tmp_path / "out.jsonl", batch=FAST)
    assert result.usage.cache_hits == 5 and fake_server.batch_api.lines_received == 15
    fake_server.reset_log()
    again = run(str(spec), inp, tmp_path / "again.jsonl")  # a later live run replays every row
    assert again.usage.cache_hits == 20 and fake_server.request_count == 0


def test_batch_prices_and_the_saving(tmp_path, fake_server):
    prices = "prices:\n  fake-model: {input: 2.0, output: 8.0, batch_input: 0.5}\n"
    spec = write_spec(tmp_path, fake_server.base_url, extra=prices)
    result = run(str(spec), write_rows(tmp_path / "in.jsonl", 10), tmp_path / "out.jsonl", batch=FAST)
    assert result.batch is not None
    tokens_in, tokens_out = result.usage.prompt_tokens, result.usage.completion_tokens
    assert result.usage.cost == pytest.approx((tokens_in * 0.5 + tokens_out * 4.0) / 1e6)  # output: half
    assert result.batch.saved == pytest.approx((tokens_in * 1.5 + tokens_out * 4.0) / 1e6)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_kill_mid_poll_then_resume_creates_no_new_batch(tmp_path, fake_server, sig):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 120), tmp_path / "out.jsonl"
    state = tmp_path / "out.jsonl.batches.json"
    fake_server.batch_api.hold = True  # the batch stays in_progress: the run polls
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(inp), "-o", str(out),
                             "--batch", *POLL], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (state.exists() and fake_server.batch_api.created == 1):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        time.sleep(0.3)  # a few polls
    finally:
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    again = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--batch", *POLL, env=ENV)
    assert again.returncode == 2 and "--resume" in again.stderr  # batches not collected: not forgotten
    fake_server.batch_api.hold = False
    resumed = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--batch", "--resume", *POLL, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert fake_server.batch_api.created == 1 and fake_server.batch_api.lines_received == 120
    assert [r["_row"] for r in read_rows(out)] == list(range(1, 121))
    assert "1 re-attached" in resumed.stdout


def test_cancel_stops_the_run_and_resume_sends_the_rest(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    fake_server.batch_api.hold = True
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(inp), "-o", str(out),
                             "--batch", *POLL], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while fake_server.batch_api.created == 0 or not (tmp_path / "out.jsonl.batches.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    status = run_cli("batch", "status", str(out), env=ENV)
    assert status.returncode == 0 and "in_progress" in status.stdout and "20 request(s)" in status.stdout
    cancel = run_cli("batch", "cancel", str(out), env=ENV)
    assert cancel.returncode == 0 and "cancelling" in cancel.stdout
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "cancelled" in stderr and "--resume" in stderr
    fake_server.batch_api.hold = False
    resumed = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--batch", "--resume", *POLL, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert fake_server.batch_api.created == 2 and fake_server.batch_api.lines_received == 30  # half was kept
    assert len(read_rows(out)) == 20


def test_eval_batch_scores_like_a_live_eval(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus zero?", "answer": float(i)}) + "\n"
                            for i in range(15)))
    args = ["eval", str(spec), "--data", str(data), "--metric", "numeric_match"]
    result = run_cli(*args, "--batch", *POLL, "--output", str(tmp_path / "ev.jsonl"), env=ENV)
    assert result.returncode == 0, result.stderr
    assert fake_server.batch_api.created == 1
    assert [r["score"] for r in read_rows(tmp_path / "ev.jsonl")] == [1.0] * 15
    fake_server.reset_log()
    replay = run_cli(*args, "--offline", env=ENV)  # batch replies filled the cache
    assert replay.returncode == 0, replay.stderr


def test_dry_run_shows_rounds_and_batch_cost_and_loops_are_refused(tmp_path, fake_server):
    spec = chain_spec(tmp_path, fake_server.base_url)
    spec.write_text(spec.read_text() + "prices:\n  fake-model: {input: 1.0, output: 2.0}\n")
    inp = messages(tmp_path / "in.jsonl", 4)
    dry = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "o.jsonl"), "--batch", "--dry-run", env=ENV)
    assert dry.returncode == 0, dry.stderr
    assert "up to 2 round(s) of batches" in dry.stdout and "at batch price" in dry.stdout
    refused = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "o.jsonl"), "--batch",
                      "--max-waves", "1", env=ENV)
    assert refused.returncode == 2 and "--max-waves is 1" in refused.stderr
    assert fake_server.request_count == 0


def test_output_lines_are_read_as_the_api_reference_says():
    ok = {"id": "r1", "custom_id": "a", "error": None,
          "response": {"status_code": 200, "request_id": "q", "body": {"choices": [{"message": {"content": "x"}}]}}}
    assert parse_line(ok).completion is not None
    bad = {"id": "r2", "custom_id": "b", "error": None,
           "response": {"status_code": 400, "request_id": "q", "body": {"error": {"message": "too long"}}}}
    assert parse_line(bad).completion is None and "too long" in (parse_line(bad).error or "")
    expired = {"id": "r3", "custom_id": "c", "response": None,
               "error": {"code": "batch_expired", "message": "not run"}}
    assert (parse_line(expired).error or "").startswith("batch_expired")

"""`promptc run --engine ray` and `PromptcPredictor` on a local Ray instance, against the fake server.

Ray is an optional extra (`pip install 'promptc[ray]'`): without it these tests skip, and the
one that checks the CLI's install hint runs instead. Ray is kept small (2 CPUs, 2 workers,
no dashboard) because the machines running the suite are.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from promptc.errors import LMAuthError
from tests.conftest import TEST_KEY, run_cli
from tests.test_cli_run import read_rows, write_rows, write_spec

ENV = {"PROMPTC_TEST_KEY": TEST_KEY, "RAY_DISABLE_USAGE_STATS": "1"}
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install 'promptc[ray]')")


@pytest.mark.skipif(HAVE_RAY, reason="checks the message shown when the ray extra is missing")
def test_without_ray_the_cli_says_how_to_install_it(tmp_path):
    spec = write_spec(tmp_path, "http://127.0.0.1:9")
    inp = write_rows(tmp_path / "in.jsonl", 3)
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "out.jsonl"), "--engine", "ray",
                     env=ENV)
    assert result.returncode == 2, result.stderr
    assert "pip install 'promptc[ray]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_address_and_workers_need_the_ray_engine(tmp_path):
    spec = write_spec(tmp_path, "http://127.0.0.1:9")
    inp = write_rows(tmp_path / "in.jsonl", 3)
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(tmp_path / "out.jsonl"), "--workers", "3",
                     env=ENV)
    assert result.returncode == 2
    assert "--engine ray" in result.stderr


@needs_ray
def test_cli_ray_engine_every_row_exactly_once_then_resume(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url, extra="")
    inp, out = write_rows(tmp_path / "in.jsonl", 200), tmp_path / "out.jsonl"
    # A resumable output: rows 1-50 done, row 7 failed (retried), so 151 rows go to Ray.
    done = [{"_row": n, "id": f"q{n - 1}", "question": "?", "answer": float(n - 1), "_usage": {},
             "_error": "boom" if n == 7 else None} for n in range(1, 51)]
    out.write_text("".join(json.dumps(r) + "\n" for r in done))
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--engine", "ray", "--workers", "2",
                     "--resume", env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(out)
    assert sorted(r["_row"] for r in rows) == list(range(1, 201))  # each exactly once
    assert [r["_row"] for r in rows[49:]] == [7, *range(51, 201)]  # new rows in input order
    assert all(r["_error"] is None and r["answer"] == float(r["_row"] - 1) for r in rows)
    assert fake_server.request_count == 151
    assert "151 row(s)" in result.stdout and "usage: 151 LM call(s)" in result.stdout
    assert "resuming: 49 row(s) already done, 151 to go" in result.stderr


@needs_ray
def test_cli_ray_engine_stops_on_a_bad_key(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    inp, out = write_rows(tmp_path / "in.jsonl", 20), tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(inp), "-o", str(out), "--engine", "ray",
                     env={**ENV, "PROMPTC_TEST_KEY": "sk-wrong"}, timeout=300)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert read_rows(out) == []  # nothing is written after a fatal error


@needs_ray
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own, about its own settings
def test_predictor_in_a_ray_data_pipeline(tmp_path, fake_server):
    import ray

    from promptc.distributed import PromptcPredictor, total_usage

    spec = write_spec(tmp_path, fake_server.base_url)
    rows = [{"id": f"q{i}", "question": f"What is {i} plus zero?"} for i in range(40)]
    rows[5] = {"id": "q5", "question": None}  # a missing input: an error row, not a failed task
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PROMPTC_TEST_KEY": TEST_KEY}})
    try:
        ds = ray.data.from_items(rows).map_batches(
            PromptcPredictor, fn_constructor_kwargs={"program": str(spec), "cache": False},
            concurrency=2, batch_size=10, num_cpus=0.5).materialize()
        out = sorted(ds.take_all(), key=lambda r: int(r["id"][1:]))
        usage = total_usage(ds)
    finally:
        ray.shutdown()
    assert [r["id"] for r in out] == [f"q{i}" for i in range(40)]
    assert all(r["answer"] == float(i) and r["_error"] is None for i, r in enumerate(out) if i != 5)
    assert out[5]["_error"].startswith("bad input") and out[5]["answer"] is None
    assert usage.calls == 39 and fake_server.request_count == 39


def test_predictor_runs_a_batch_without_ray(tmp_path, fake_server, monkeypatch):
    """The class is plain Python: a batch in the dict-of-columns shape Ray passes works here too."""
    from promptc.distributed import PromptcPredictor

    monkeypatch.setenv("PROMPTC_TEST_KEY", TEST_KEY)
    predictor = PromptcPredictor(write_spec(tmp_path, fake_server.base_url), cache=False)
    try:
        batch = {"id": ["a", "b", "c"], "question": ["What is 1?", "What is 2?", "What is 3?"]}
        first = predictor(batch)
        second = predictor(batch)  # the same loop and client, batch after batch
    finally:
        predictor.close()
    assert first["answer"] == [1.0, 2.0, 3.0] == second["answer"]
    assert first["_error"] == [None, None, None] and "_row" not in first
    assert [u["requests"] for u in first["_usage"]] == [1, 1, 1]
    assert fake_server.request_count == 6
    predictor.close()  # idempotent


def test_wire_rows_keep_their_row_ids(tmp_path, fake_server, monkeypatch):
    from promptc.distributed import PromptcPredictor

    monkeypatch.setenv("PROMPTC_TEST_KEY", TEST_KEY)
    predictor = PromptcPredictor(str(write_spec(tmp_path, fake_server.base_url)), wire=True, cache=False)
    try:
        out = predictor({"_row": [4, 9], "_json": [json.dumps({"question": "What is 4?", "answer": "x"}),
                                                   json.dumps({"question": "What is 9?"})]})
    finally:
        predictor.close()
    records = [json.loads(text) for text in out["_json"]]
    assert out["_row"] == [4, 9] and out["_fatal"] == ["", ""]
    assert [r["_row"] for r in records] == [4, 9]
    assert records[0]["answer"] == 4.0 and records[0]["_input"] == {"answer": "x"}


def test_a_fatal_error_marks_the_rows_not_run(tmp_path, fake_server, monkeypatch):
    from promptc.distributed import PromptcPredictor

    monkeypatch.setenv("PROMPTC_TEST_KEY", "sk-wrong")
    predictor = PromptcPredictor(Path(write_spec(tmp_path, fake_server.base_url)), wire=True, cache=False)
    try:
        out = predictor({"_row": [1, 2], "_json": [json.dumps({"question": "q"})] * 2})
    finally:
        predictor.close()
    assert out["_json"] == ["", ""]
    assert json.loads(out["_fatal"][0])["type"] == "LMAuthError"
    columns = PromptcPredictor(write_spec(tmp_path, fake_server.base_url), cache=False)
    try:
        with pytest.raises(LMAuthError):  # outside the wire format, a fatal error fails the task
            columns({"question": ["q"]})
    finally:
        columns.close()

"""scripts/bench_quality.py end to end on the fake server (offline LM behind HTTP): the table,
the JSON, the DSPy comparison, and clear exits for a dead URL or a missing data folder."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TEST_KEY


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "scripts" / "bench_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench_quality = _load_script()


def _rows(start: int, n: int) -> list[dict[str, Any]]:
    return [{"id": f"q{i}", "question": f"What is {i} plus {i + 1}?", "answer": 2 * i + 1}
            for i in range(start, start + n)]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for split, start, n in (("train", 0, 8), ("dev", 20, 4), ("test", 40, 6)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(start, n)))
    return folder


def _dspy_file(tmp_path: Path) -> Path:
    path = tmp_path / "dspy.json"
    results = [{"run": "cot", "test_accuracy": 0.5, "compile": {"requests": 0}},
               {"run": "bootstrap", "test_accuracy": 0.75, "compile": {"requests": 6}},
               {"run": "mipro", "test_accuracy": 0.8, "compile": {"requests": 700}}]
    path.write_text(json.dumps({"meta": {"args": {"seed": 0}}, "results": results}))
    return path


def test_table_and_json(fake_server: Any, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(bench_quality.KEY_ENV, TEST_KEY)
    out = tmp_path / "results.json"
    code = bench_quality.main(
        ["--url", fake_server.base_url, "--data", str(data), "--model", "fake-model",
         "--optimizers", "labeled_few_shot,bootstrap_few_shot", "--seeds", "0", "--train-n", "8",
         "--dev-n", "4", "--test-n", "5", "--concurrency", "2", "--out", str(out),
         "--dspy-results", str(_dspy_file(tmp_path))],
        count=lambda: fake_server.request_count)
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("zero_shot_cot", "labeled_few_shot", "bootstrap_few_shot", "promptc / DSPy", "targets"):
        assert name in printed
    doc = json.loads(out.read_text())
    runs = {(r["optimizer"], r["seed"]): r for r in doc["runs"]}
    assert set(runs) == {("zero_shot_cot", 0), ("labeled_few_shot", 0), ("bootstrap_few_shot", 0)}
    assert runs[("zero_shot_cot", 0)]["compile_requests"] == 0
    for run in runs.values():
        assert run["eval_requests"] == 5  # counted at the server: one request per held-out row
        assert 0.0 <= run["held_out"] <= 1.0
    labeled, boot = runs[("labeled_few_shot", 0)], runs[("bootstrap_few_shot", 0)]
    assert labeled["compile_requests"] == labeled["compile_requests_promptc"] == 0  # demos only, no scoring
    assert boot["compile_requests"] == boot["compile_requests_promptc"] > 0
    assert set(labeled["program"]["solve"]) >= {"n_demos", "instructions"}
    summary = doc["summary"]
    assert set(summary["optimizers"]) == {"zero_shot_cot", "labeled_few_shot", "bootstrap_few_shot"}
    assert summary["dspy"]["mipro"] == {"accuracies": [0.8], "requests": [700], "source": "measured",
                                        "mean": 0.8, "mean_requests": 700}
    assert summary["best"] in ("labeled_few_shot", "bootstrap_few_shot")
    assert isinstance(summary["target_bootstrap"], bool)


def test_resume_keeps_finished_runs(fake_server: Any, data: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bench_quality.KEY_ENV, TEST_KEY)
    out = tmp_path / "results.json"
    args = ["--url", fake_server.base_url, "--data", str(data), "--model", "fake-model", "--seeds", "0",
            "--test-n", "3", "--optimizers", "labeled_few_shot", "--out", str(out)]
    assert bench_quality.main(args, count=lambda: fake_server.request_count) == 0
    sent = fake_server.request_count
    assert bench_quality.main([*args, "--resume"], count=lambda: fake_server.request_count) == 0
    assert fake_server.request_count == sent
    assert len(json.loads(out.read_text())["runs"]) == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_url_exits_with_a_message(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    code = bench_quality.main(["--url", url, "--data", str(data), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: cannot read the benchmark LM's request count") and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_missing_data_exits_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_quality.main(["--url", "http://127.0.0.1:9/v1", "--data", str(tmp_path / "nope")])
    assert code == 2
    assert "no such folder" in capsys.readouterr().err


def test_unknown_optimizer_lists_the_registry(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_quality.main(["--url", "http://127.0.0.1:9/v1", "--data", str(data), "--optimizers", "nope"])
    assert code == 2
    assert "mipro" in capsys.readouterr().err  # every registered optimizer is offered

"""scripts/bench_noise.py on the fake server: one compile, its demos reordered, the spread printed;
clear exits for bad arguments, missing data and a dead URL."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TEST_KEY


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench_noise = _load("bench_noise")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for split, start, n in (("train", 0, 8), ("dev", 20, 4), ("test", 40, 5)):
        rows = [{"id": f"q{i}", "question": f"What is {i} plus {i + 1}?", "answer": 2 * i + 1}
                for i in range(start, start + n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_orders_and_summary(fake_server: Any, data: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BENCH_KEY", TEST_KEY)
    before = fake_server.request_count
    code = bench_noise.main(["--url", fake_server.base_url, "--data", str(data), "--model", "fake-model",
                             "--optimizer", "labeled_few_shot", "--orders", "3", "--concurrency", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split(":")[0] for line in out[:3]] == ["order 0", "order 1", "order 2"]
    summary = json.loads(out[-1])
    assert summary["orders"] == 3 and summary["optimizer"] == "labeled_few_shot"
    assert summary["min"] <= summary["mean"] <= summary["max"] and summary["sd_points"] >= 0
    assert fake_server.request_count - before >= 5  # the held-out rows really went to the server


def test_a_reorder_keeps_every_demo() -> None:
    from promptc.core.program import PredictorState

    demos = [{"question": str(i), "answer": i} for i in range(6)]
    state = {"solve": PredictorState(instructions="x", demos=demos)}
    assert bench_noise.shuffled_state(state, 0)["solve"].demos == demos
    moved = bench_noise.shuffled_state(state, 3)["solve"]
    assert moved.instructions == "x" and moved.demos != demos
    assert sorted(d["answer"] for d in moved.demos) == list(range(6))


def test_bad_input_exits_with_a_message(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_noise.main(["--url", "http://127.0.0.1:9/v1", "--data", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench_noise.main(["--url", "http://127.0.0.1:9/v1", "--data", str(data), "--orders", "0"])
    assert exc.value.code == 2 and "--orders must be at least 1" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = bench_noise.main(["--url", f"http://127.0.0.1:{port}/v1", "--data", str(data),
                             "--optimizer", "bootstrap_few_shot", "--concurrency", "2"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: ") and "Traceback" not in err

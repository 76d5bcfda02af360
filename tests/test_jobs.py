"""The library-level jobs, used from Python with no CLI: compile -> save -> load -> evaluate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, TEST_KEY, run_cli

SCRIPT = """
import json, sys
import promptc

result = promptc.compile("specs/intent.yaml", seed=0)
path = result.save(sys.argv[1])
program = promptc.load_program(sys.argv[1])
scores = promptc.evaluate(program, "datasets/intent/test.jsonl")
program.close()
print(json.dumps({"before": result.score_before, "after": result.score_after, "path": str(path),
                  "score": scores.score, "n": scores.summary.n, "errors": scores.summary.errors}))
"""


def test_compile_save_load_evaluate_from_python_matches_the_cli(tmp_path):
    build = tmp_path / "build"
    env = {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT, str(build)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env={**__import__("os").environ, **env})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no ResourceWarning, no leak reported at exit
    got = json.loads(done.stdout)
    assert got["path"] == str(build / "program.json") and (build / "prompts" / "classify.md").exists()
    assert 0.0 <= got["before"] <= got["after"] <= 1.0 and got["errors"] == 0 and got["n"] > 0
    cli = run_cli("eval", "--program", str(build), "--data", "datasets/intent/test.jsonl")
    assert cli.returncode == 0, cli.stderr
    mean = re.search(r"label_accuracy: ([0-9.]+)", cli.stdout)
    assert mean is not None and float(mean.group(1)) == pytest.approx(got["score"], abs=5e-4)


LEAK = """
import promptc
program = promptc.load_program(sys.argv[1], base_url=sys.argv[2], cache_dir=sys.argv[3])
result = promptc.evaluate(program, [{"message": "I lost my card", "intent": "card_lost"}])
print(result.summary.n, result.summary.usage.requests)
again = promptc.evaluate(program, [{"message": "I lost my card", "intent": "card_lost"}])
print(again.summary.usage.cache_hits)
"""


def test_a_loaded_program_leaks_nothing_even_unclosed(tmp_path, fake_server, isolated_env):
    """HTTP sessions and the cache connection are released when each job ends."""
    spec = tmp_path / "spec.yaml"
    spec.write_text((ROOT / "specs" / "intent.yaml").read_text().replace(
        "program:", "lm: {model: fake-model, api_key_env: TEST_KEY}\nprogram:", 1).replace("../datasets", str(ROOT / "datasets")))
    cache = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-W", "error", "-c", "import sys\n" + textwrap.dedent(LEAK),
                           str(spec), fake_server.base_url, str(cache)], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "TEST_KEY": TEST_KEY, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    first, second = done.stdout.split("\n")[:2]
    assert first == "1 1" and second == "1"
    from promptc.lm.cache import SQLiteCache

    with SQLiteCache(cache / "cache.sqlite") as c:
        assert c.stats().hits == 1  # the hit count was flushed when the job ended


def test_jobs_take_rows_in_memory(tmp_path):
    import promptc

    rows = [json.loads(x) for x in (ROOT / "datasets/intent/dev.jsonl").read_text().splitlines()[:12]]
    with promptc.load_program(ROOT / "specs/intent.yaml") as program:
        out = promptc.run(program, [{"message": r["message"]} for r in rows], tmp_path / "out.jsonl")
        assert out.rows == out.ok == 12 and out.failed == 0
        scored = promptc.evaluate(program, rows, metrics=["exact_match"])
        assert scored.summary.n == 12 and 0.0 <= scored.score <= 1.0
        compiled = promptc.compile(program, rows, optimizer="labeled_few_shot", settings={"score_dev": True})
        assert compiled.path is None and compiled.score_after is not None
        unscored = promptc.compile(program, rows, optimizer="labeled_few_shot")
        assert unscored.score_after is None and unscored.artifact.predictors[0].demos
    with pytest.raises(promptc.InputError, match="rows:2"):
        promptc.evaluate(ROOT / "specs/intent.yaml", [rows[0], {"nope": 1}])

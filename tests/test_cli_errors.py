"""Bad input of every kind: a clear message naming file and line, and the documented exit code."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, run_cli

SPEC = """version: 1
name: intent
signatures:
  classify:
    inputs: {message: str, priority: int}
    outputs:
      intent: {type: enum, values: [billing, tech]}
program:
  - step: classify
    signature: classify
"""


def setup(tmp_path, rows: bytes, spec: str = SPEC):
    (tmp_path / "spec.yaml").write_text(spec)
    (tmp_path / "in.jsonl").write_bytes(rows)
    return str(tmp_path / "spec.yaml"), str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl")


def test_malformed_yaml(tmp_path):
    spec, inp, out = setup(tmp_path, b'{"message": "x", "priority": 1}\n',
                           SPEC.replace("    signature: classify", "   signature: [classify"))
    result = run_cli("run", spec, "-i", inp, "-o", out)
    assert result.returncode == 2
    assert "spec.yaml:10:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_key_with_suggestion(tmp_path):
    spec, inp, out = setup(tmp_path, b"{}\n", SPEC.replace("    signature: classify", "    signatur: classify"))
    result = run_cli("validate", spec)
    assert result.returncode == 2
    assert "spec.yaml:10:5: program[0].signatur: unknown key 'signatur'; did you mean 'signature'?" in result.stderr


def test_type_mismatched_flow(tmp_path):
    bad = SPEC + """  - step: route
    signature: "intent: int -> queue: str"
"""
    spec, inp, out = setup(tmp_path, b"{}\n", bad)
    result = run_cli("validate", spec)
    assert result.returncode == 2
    assert "spec.yaml:12:16: program[1].signature: type mismatch: 'classify.intent'" in result.stderr


def test_bad_jsonl_lines_stop_before_any_call(tmp_path):
    rows = (b'{"message": "ok", "priority": 1}\n'
            b'{"message": "broken", \n'
            b'{"message": "no priority"}\n'
            b'{"message": "bad priority", "priority": "high"}\n'
            b'[1, 2]\n')
    spec, inp, out = setup(tmp_path, rows)
    result = run_cli("run", spec, "-i", inp, "-o", out)
    assert result.returncode == 2
    err = result.stderr
    assert "in.jsonl:2: not valid JSON" in err
    assert "in.jsonl:3: missing required input field 'priority'" in err
    assert "in.jsonl:4: field 'priority'" in err
    assert "in.jsonl:5: expected a JSON object" in err
    assert "--on-error skip" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_on_error_skip_writes_rejects(tmp_path):
    rows = b'{"message": "ok", "priority": 1}\nnot json\n{"message": "fine", "priority": 2}\n'
    spec, inp, out = setup(tmp_path, rows)
    result = run_cli("run", spec, "-i", inp, "-o", out, "--on-error", "skip")
    assert result.returncode == 0, result.stderr
    done = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["_row"] for r in done] == [1, 3]
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert rejects == [{"_row": 2, "_error": rejects[0]["_error"], "_raw": "not json"}]
    assert "1 rejected" in result.stdout


def test_empty_input_file(tmp_path):
    spec, inp, out = setup(tmp_path, b"\n\n")
    result = run_cli("run", spec, "-i", inp, "-o", out)
    assert result.returncode == 2
    assert "in.jsonl: the input file has no rows" in result.stderr


def test_empty_spec_file(tmp_path):
    spec, inp, out = setup(tmp_path, b"{}\n", "# nothing\n")
    result = run_cli("validate", spec)
    assert result.returncode == 2 and "empty" in result.stderr


def test_non_utf8_input(tmp_path):
    spec, inp, out = setup(tmp_path, b'{"message": "ok", "priority": 1}\n{"message": "caf\xe9", "priority": 1}\n')
    result = run_cli("run", spec, "-i", inp, "-o", out)
    assert result.returncode == 2
    assert "in.jsonl:2: not valid UTF-8" in result.stderr


def test_missing_files_and_contradictory_flags(tmp_path):
    spec, inp, out = setup(tmp_path, b'{"message": "ok", "priority": 1}\n')
    assert run_cli("run", str(tmp_path / "nope.yaml"), "-i", inp, "-o", out).returncode == 2
    missing = run_cli("run", spec, "-i", str(tmp_path / "nope.jsonl"), "-o", out)
    assert missing.returncode == 2 and "nope.jsonl: file not found" in missing.stderr
    both = run_cli("run", spec, "-i", inp, "-o", out, "--resume", "--overwrite")
    assert both.returncode == 2 and "contradict" in both.stderr


def test_inspect_and_validate(tmp_path):
    spec, inp, out = setup(tmp_path, b"{}\n")
    ok = run_cli("validate", spec)
    assert ok.returncode == 0 and "classify (predict)" in ok.stdout
    shown = run_cli("inspect", spec, "--step", "classify", "--example", '{"message": "refund me", "priority": 2}')
    assert shown.returncode == 0, shown.stderr
    assert "refund me" in shown.stdout and "must be exactly one of: billing; tech" in shown.stdout
    bad = run_cli("inspect", spec, "--step", "nope")
    assert bad.returncode == 2 and "no step named 'nope'" in bad.stderr
    bad_json = run_cli("inspect", spec, "--example", "{oops")
    assert bad_json.returncode == 2 and "--example is not valid JSON" in bad_json.stderr


def test_cache_commands(tmp_path, isolated_env):
    stats = run_cli("cache", "stats")
    assert stats.returncode == 0 and "entries: 0" in stats.stdout
    cleared = run_cli("cache", "clear")
    assert cleared.returncode == 0 and "deleted 0" in cleared.stdout


def test_help_is_fast_and_imports_nothing_heavy():
    code = ("import sys, runpy; sys.argv=['promptc','--help']\n"
            "from promptc.cli.app import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('openai', 'pandas', 'aiohttp', 'promptc.lm.openai_client') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr

"""Bad flags and the files they name: exit 2 naming the flag or the path, never a traceback."""

from __future__ import annotations

import pytest

from tests.bad_input import GOOD_ROW, SPEC, assert_fails, cli, rows, write
from tests.conftest import run_cli


def fill(args: list[str], **paths: object) -> list[str]:
    """The case's arguments with `{name}` replaced by paths (JSON arguments keep their braces)."""
    out = []
    for arg in args:
        for key, value in paths.items():
            arg = arg.replace("{" + key + "}", str(value))
        out.append(arg)
    return out


RANGE_CASES = {
    # name: (command and flags after SPEC, the flag the message names)
    "run --concurrency 0": (["run", "-i", "{data}", "-o", "{out}", "--concurrency", "0"], "'--concurrency'"),
    "run --limit 0": (["run", "-i", "{data}", "-o", "{out}", "--limit", "0"], "'--limit'"),
    "run --limit not a number": (["run", "-i", "{data}", "-o", "{out}", "--limit", "ten"], "'--limit'"),
    "run --timeout 0": (["run", "-i", "{data}", "-o", "{out}", "--timeout", "0"], "'--timeout'"),
    "run --on-error maybe": (["run", "-i", "{data}", "-o", "{out}", "--on-error", "maybe"], "'--on-error'"),
    "run --max-prompt-tokens 0": (["run", "-i", "{data}", "-o", "{out}", "--max-prompt-tokens", "0"],
                                  "'--max-prompt-tokens'"),
    "run without --input": (["run", "-o", "{out}"], "Missing option '--input'"),
    "eval --threshold 1.5": (["eval", "-d", "{data}", "--threshold", "1.5"], "'--threshold'"),
    "eval --alpha -1": (["eval", "-d", "{data}", "--alpha", "-1"], "'--alpha'"),
    "eval --max-error-rate 2": (["eval", "-d", "{data}", "--max-error-rate", "2"], "'--max-error-rate'"),
    "compile --max-calls 0": (["compile", "--train", "{data}", "--max-calls", "0"], "'--max-calls'"),
    "compile --max-cost -1": (["compile", "--train", "{data}", "--max-cost", "-1"], "'--max-cost'"),
}


@pytest.mark.parametrize("name", list(RANGE_CASES))
def test_flag_out_of_range(tmp_path, name):
    args, named = RANGE_CASES[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    filled = fill(args, data=data, out=tmp_path / "out.jsonl")
    assert_fails(cli(filled[0], spec, *filled[1:]), 2, named)
    assert not (tmp_path / "out.jsonl").exists()


USAGE_CASES = {
    "eval --resume without --output": (["eval", "-d", "{data}", "--resume"], ["--resume needs --output"]),
    "eval --resume --overwrite": (["eval", "-d", "{data}", "-o", "{out}", "--resume", "--overwrite"],
                                  ["contradict"]),
    "eval --offline --no-cache": (["eval", "-d", "{data}", "--offline", "--no-cache"],
                                  ["--offline", "--no-cache"]),
    "run output is the input": (["run", "-i", "{data}", "-o", "{data}"], ["--output must differ from --input"]),
    "run output exists": (["run", "-i", "{data}", "-o", "{data2}"], ["in2.jsonl already exists", "--resume"]),
    "unknown --metric": (["eval", "-d", "{data}", "--metric", "numeric_matsh"],
                         ["--metric numeric_matsh", "did you mean 'numeric_match'?"]),
    "--metric module missing": (["eval", "-d", "{data}", "--metric", "python:no_such_module_x:fn"],
                                ["--metric", "no_such_module_x"]),
    "--report unknown suffix": (["eval", "-d", "{data}", "--report", "{tmp}/r.xyz"], ["r.xyz", "unknown suffix"]),
    "unknown --optimizer": (["compile", "--train", "{data}", "--optimizer", "nope"], ["unknown optimizer 'nope'"]),
    "compile --out is a file": (["compile", "--train", "{data}", "--dev", "{data}", "--out", "{data2}"],
                                ["in2.jsonl: the compile output must be a folder"]),
    "inspect unknown --step": (["inspect", "--step", "nope"], ["no step named 'nope'"]),
    "inspect --example wrong type": (["inspect", "--example", '{"question": 7}'],
                                     ["--example: field 'question': expected str, got int"]),
    "inspect --example deep": (["inspect", "--example", "[" * 100_000], ["--example: nested too deeply"]),
    "inspect --example array": (["inspect", "--example", "[1]"], ["--example must be a JSON object"]),
    "inspect --example unknown field": (["inspect", "--example", '{"qestion": "x"}'], ["unknown field(s) qestion"]),
    "run --model twice": (["run", "-i", "{data}", "-o", "{out}", "--model", "a", "--model", "b"],
                          ["run takes one --model, got 2 (a, b)", "promptc compare"]),
    "compile --model twice": (["compile", "--train", "{data}", "--model", "a", "--model", "b"],
                              ["compile takes one --model"]),
    "eval --model twice": (["eval", "-d", "{data}", "--model", "a", "--model", "b"], ["eval takes one --model"]),
    "--column without =": (["run", "-i", "{data}", "-o", "{out}", "--column", "question"],
                           ["--column 'question': expected FIELD=COLUMN"]),
}


@pytest.mark.parametrize("name", list(USAGE_CASES))
def test_flags_that_do_not_fit(tmp_path, name):
    args, named = USAGE_CASES[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    data2 = write(tmp_path, "in2.jsonl", rows(GOOD_ROW))
    filled = fill(args, data=data, data2=data2, out=tmp_path / "out.jsonl", tmp=tmp_path)
    assert_fails(cli(filled[0], spec, *filled[1:]), 2, *named)


MISSING_FILE_CASES = {
    "run --input": ["run", "-i", "{missing}", "-o", "{out}"],
    "eval --data": ["eval", "-d", "{missing}"],
    "eval --baseline": ["eval", "-d", "{data}", "--baseline", "{missing}"],
    "compile --train": ["compile", "--train", "{missing}"],
    "compile --dev": ["compile", "--train", "{data}", "--dev", "{missing}"],
    "run --program": ["run", "-i", "{data}", "-o", "{out}", "--program", "{missing}"],
}


@pytest.mark.parametrize("name", list(MISSING_FILE_CASES))
def test_flag_names_a_missing_file(tmp_path, name):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    missing = str(tmp_path / "nope" / "gone.jsonl")
    args = fill(MISSING_FILE_CASES[name], data=data, missing=missing, out=tmp_path / "out.jsonl")
    assert_fails(cli(args[0], spec, *args[1:]), 2, "gone.jsonl")


ARTIFACT_CASES = {
    "not JSON": ("{not json", "not a JSON program artifact"),
    "deep nesting": ("[" * 100_000, "not a program artifact (nested too deeply)"),
    "not an object": ("[1, 2]", "artifact schema_version None"),
    "old schema": ('{"schema_version": 1, "steps": 7}', "artifact schema_version 1"),
    "wrong shape": ('{"schema_version": 2, "steps": 7}', "invalid artifact at"),
    "binary": (bytes(range(256)).decode("latin-1"), "not a JSON program artifact"),
}


@pytest.mark.parametrize("name", list(ARTIFACT_CASES))
def test_bad_program_artifact(tmp_path, name):
    text, message = ARTIFACT_CASES[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    artifact = write(tmp_path, "program.json", text)
    assert_fails(cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl"), "--program", artifact), 2,
                 "program.json", message)


def test_no_spec_and_no_program_through_the_real_entry_point(tmp_path):
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    assert_fails(run_cli("run", "-i", data, "-o", str(tmp_path / "out.jsonl")), 2,
                 "give a SPEC file, or --program")

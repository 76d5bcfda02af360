"""Bad specs through the real CLI: exit 2, the file and line named, never a traceback.

(tests/test_spec_loader.py checks the loader's messages in-process; these check what a
user sees from `promptc validate` and `promptc run`.)
"""

from __future__ import annotations

import pytest

from tests.bad_input import GOOD_ROW, SPEC, assert_fails, cli, rows, write
from tests.conftest import run_cli

DEEP_FLOW = "version: 1\nname: x\nfoo: " + "[" * 100_000 + "]" * 100_000 + "\n"
DEEP_BLOCK = "version: 1\nname: x\nfoo:\n" + "".join("  " * i + "- \n" for i in range(1, 3000))
DEEP_MAP = "version: 1\nname: x\nfoo: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n"
ALIAS_BOMB = "version: 1\nname: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))

CASES = {
    # name: (spec text or bytes, texts stderr must hold)
    "yaml syntax": (SPEC.replace("    signature: solve", "    signature: [solve"), ["spec.yaml:12:7:", "line 11"]),
    "tab indentation": (SPEC.replace("  - step: solve", "\t- step: solve"), ["spec.yaml:10:", "tabs"]),
    "unknown top-level key": (SPEC + "metrik: []\n", ["spec.yaml:14:1: metrik: unknown key 'metrik'"]),
    "unknown lm key": (SPEC.replace("lm: {model: offline}", "lm: {modle: offline}"),
                       ["spec.yaml:3:6: lm.modle: unknown key 'modle'; did you mean 'model'?"]),
    "wrong type": (SPEC.replace("lm: {model: offline}", "lm: {model: offline, temperature: hot}"),
                   ["spec.yaml:3:", "lm.temperature"]),
    "out of range": (SPEC.replace("lm: {model: offline}", "lm: {model: offline, max_prompt_tokens: 0}"),
                     ["spec.yaml:3:", "lm.max_prompt_tokens"]),
    "unknown field type": (SPEC.replace("level: int", "level: integr"), ["spec.yaml:6:", "unknown type 'integr'"]),
    "bad inline signature": (SPEC.replace("    signature: solve", "    signature: 'question -> '"),
                             ["spec.yaml:11:16:", "needs at least one output"]),
    "unknown signature": (SPEC.replace("    signature: solve", "    signature: slove"),
                          ["spec.yaml:11:16: program[0].signature: unknown signature 'slove'"]),
    "bad reference": (SPEC.replace("    signature: solve", "    signature: solve\n    inputs: {question: nope.text}"),
                      ["spec.yaml:12:", "nope"]),
    "unknown metric": (SPEC.replace("numeric_match", "numeric_matsh"), ["spec.yaml:13:12: metric[0].type", "did you mean 'numeric_match'"]),
    "duplicate key": (SPEC.replace("name: qa\n", "name: qa\nname: again\n"), ["spec.yaml:3:1:", "duplicate key 'name'"]),
    "python tag": (SPEC.replace("name: qa", "name: !!python/object/apply:os.system [ls]"),
                   ["spec.yaml:2:7:", "not allowed"]),
    "unset variable": (SPEC.replace("lm: {model: offline}", "lm: {model: '${PROMPTC_NOPE_VAR}'}"),
                       ["spec.yaml:3:", "PROMPTC_NOPE_VAR is not set"]),
    "top level is a list": ("- version: 1\n- name: qa\n", ["spec.yaml:1:1:", "must be a mapping"]),
    "empty file": (b"", ["spec.yaml:", "empty"]),
    "deep flow nesting": (DEEP_FLOW, ["spec.yaml:3:", "nested too deeply"]),
    "deep block nesting": (DEEP_BLOCK, ["spec.yaml:", "nested too deeply"]),  # the line depends on the stack
    "deep mapping nesting": (DEEP_MAP, ["spec.yaml:3:", "nested too deeply"]),
    "alias bomb": (ALIAS_BOMB, ["spec.yaml:", "too large"]),
    "binary file": (bytes(range(256)) * 8, ["spec.yaml:", "not valid UTF-8"]),
    "NUL byte": (b"version: 1\x00\nname: qa\n", ["spec.yaml:1:11:", "#x0000"]),
    "invalid UTF-8": (SPEC.encode().replace(b"name: qa", b"name: q\xe9"), ["spec.yaml:2:8:", "not valid UTF-8"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_spec(tmp_path, name):
    text, named = CASES[name]
    spec = write(tmp_path, "spec.yaml", text)
    assert_fails(cli("validate", spec), 2, *named)


def test_bad_spec_stops_run_before_reading_data(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC.replace("level: int", "level: integr"))
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    assert_fails(run_cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl")), 2, "spec.yaml:6:")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_spec_path_is_not_a_file(tmp_path, kind):
    path = tmp_path / "spec.yaml"
    if kind == "directory":
        path.mkdir()
    assert_fails(cli("validate", str(path)), 2, str(path))


def test_spec_data_path_missing(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC + "data: {dev: nowhere/dev.jsonl}\n")
    assert_fails(cli("eval", spec), 2, "nowhere/dev.jsonl")


def test_spec_corpus_missing(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC + "retrievers:\n  docs: {type: bm25, corpus: no_corpus.jsonl}\n")
    assert_fails(cli("validate", spec), 2, "no_corpus.jsonl")

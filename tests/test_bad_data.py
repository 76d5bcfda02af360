"""Bad data files through the CLI: every bad line named, exit 2 before anything is spent.

Row 1 of every file below is good; the bad line is line 2, so a message naming
`in.jsonl:2` proves the line number is the bad one's. The last tests cover what a bad row
does *during* a run (a prompt over the size limit: that row's error, exit 1, nothing
sent) and eval's gold fields.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.bad_input import GOOD_ROW, SPEC, assert_fails, cli, rows, write
from tests.conftest import TEST_KEY, run_cli

GOOD = GOOD_ROW.encode() + b"\n"


def row(**changes: object) -> str:
    values = {**json.loads(GOOD_ROW), **changes}
    return json.dumps({k: v for k, v in values.items() if v is not ...})


TYPE_CASES = {
    # name: (line 2, what the message says after "in.jsonl:2: ")
    "str given int": (row(question=123), "field 'question': expected str, got int"),
    "str given object": (row(question={"a": 1}), "field 'question': expected str, got object"),
    "str given list": (row(question=["what?"]), "field 'question': expected str, got list"),
    "str given bool": (row(question=True), "field 'question': expected str, got bool"),
    "str given float": (row(question=1.5), "field 'question': expected str, got float"),
    "null input": (row(question=None), "missing required input field 'question'"),
    "missing input": (row(question=...), "missing required input field 'question'"),
    "int given fraction": (row(level=2.5), "field 'level': expected an integer, got 2.5"),
    "int given str": (row(level="1"), "field 'level': expected int, got str"),
    "int given bool": (row(level=True), "field 'level': expected int, got bool"),
    "list given str": (row(tags="add"), "field 'tags': expected list[str], got str"),
    "list item wrong": (row(tags=["add", 7]), "field 'tags': item 1: expected str, got int"),
    "enum not a value": (row(kind="division"), "field 'kind': expected one of ['sum', 'product']"),
    "enum sentence": (row(kind="it is a sum"), "field 'kind': expected one of"),
}

SYNTAX_CASES = {
    "NaN": ('{"question": NaN}', "not valid JSON: NaN is not a JSON value"),
    "Infinity": ('{"question": "x", "level": -Infinity}', "not valid JSON: -Infinity is not a JSON value"),
    "huge integer": ('{"question": "x", "level": ' + "9" * 5000 + "}", "not valid JSON: Exceeds the limit"),
    "deep nesting": ('{"question": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "deep object nesting": ('{"q": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}", "nested too deeply"),
    "lone surrogate": ('{"question": "\\ud800 alone", "tags": [], "level": 1, "kind": "sum"}',
                       "a string holds an unpaired UTF-16 surrogate"),
    "BOM mid-file": ('\ufeff' + GOOD_ROW, "not valid JSON: Unexpected UTF-8 BOM"),
    "trailing garbage": (GOOD_ROW + " x", "not valid JSON: Extra data"),
    "single quotes": ("{'question': 'x'}", "not valid JSON: Expecting property name"),
    "null line": ("null", "expected a JSON object, got null"),
    "string line": ('"just text"', "expected a JSON object, got string"),
    "number line": ("42", "expected a JSON object, got number"),
    "array line": ('[{"question": "x"}]', "expected a JSON object, got array"),
}


@pytest.mark.parametrize("name", list(TYPE_CASES) + list(SYNTAX_CASES))
def test_bad_line_stops_run_before_any_call(tmp_path, name):
    line, message = {**TYPE_CASES, **SYNTAX_CASES}[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", GOOD + line.encode("utf-8", "surrogatepass") + b"\n")
    out = tmp_path / "out.jsonl"
    assert_fails(cli("run", spec, "-i", data, "-o", str(out)), 2, f"in.jsonl:2: {message}",
                 "--on-error skip")
    assert not out.exists()


BYTE_CASES = {
    "truncated last line": (GOOD + b'{"question": "cut off', "in.jsonl:2: not valid JSON"),
    "invalid UTF-8 mid-line": (GOOD + b'{"question": "\xc3\x28"}\n', "in.jsonl:2: not valid UTF-8 (byte 15"),
    "UTF-16 file": ('{"question": "x"}\n'.encode("utf-16"), "in.jsonl:1: not valid UTF-8"),
    "binary file": (bytes(range(256)) * 8, "in.jsonl:1: not valid JSON"),
    "empty file": (b"", "in.jsonl: the input file has no rows"),
    "only whitespace": (b" \n\t\n\r\n", "in.jsonl: the input file has no rows"),
}


@pytest.mark.parametrize("name", list(BYTE_CASES))
def test_bad_file_bytes(tmp_path, name):
    content, message = BYTE_CASES[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", content)
    assert_fails(cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl")), 2, message)


def test_bom_on_first_line_is_fine(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", b"\xef\xbb\xbf" + GOOD)
    result = cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr


def test_input_is_a_directory(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    (tmp_path / "in.jsonl").mkdir()
    assert_fails(cli("run", spec, "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.jsonl")), 2,
                 "in.jsonl: is a directory")


def test_skip_writes_typed_rejects_with_their_lines(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW, row(question=123), GOOD_ROW, "[1]"))
    result = cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl"), "--on-error", "skip")
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, result.stderr
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert [(r["_row"], r["_error"]) for r in rejects] == [
        (2, "field 'question': expected str, got int"), (4, "expected a JSON object, got array")]


@pytest.mark.parametrize("bad", ['{"a": 1}', "[" * 100_000])
def test_resume_into_a_file_promptc_did_not_write(tmp_path, bad):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW))
    out = write(tmp_path, "out.jsonl", rows(bad))
    assert_fails(cli("run", spec, "-i", data, "-o", out, "--resume"), 2, "out.jsonl:1: not a promptc output row")


def test_huge_line_is_its_rows_error_and_is_never_sent(tmp_path, fake_server, monkeypatch):
    """A 1 MB field (about 250k tokens, over the 100k default): that row fails, nothing of it is
    sent, the other rows run, exit 1. The fake server counts what arrived."""
    monkeypatch.setenv("PROMPTC_TEST_KEY", TEST_KEY)
    spec = write(tmp_path, "spec.yaml", SPEC.replace(
        "lm: {model: offline}", f"lm: {{model: fake-model, base_url: '{fake_server.base_url}', "
        "api_key_env: PROMPTC_TEST_KEY, max_retries: 0}"))
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW, row(question="x " * 500_000), GOOD_ROW))
    out = tmp_path / "out.jsonl"
    result = cli("run", spec, "-i", data, "-o", str(out), "--no-cache")
    assert_fails(result, 1, "1 row(s) failed")
    done = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["_row"], r["_error"] is None) for r in done] == [(1, True), (2, False), (3, True)]
    assert re.search(r"about 2\d\d,\d{3} tokens, over the limit of 100,000", done[1]["_error"])
    assert fake_server.request_count == 2
    assert all(len(json.dumps(r.body)) < 10_000 for r in fake_server.requests)

    # The limit is a flag too: a tighter one refuses the ordinary rows as well.
    fake_server.reset_log()
    again = cli("run", spec, "-i", data, "-o", str(out), "--overwrite", "--no-cache", "--max-prompt-tokens", "5")
    assert_fails(again, 1, "3 row(s) failed")
    assert fake_server.request_count == 0


GOLD_CASES = {
    "missing gold": (row(answer=...), "in.jsonl:2: missing gold field 'answer' (metric 'numeric_match')"),
    "null gold": (row(answer=None), "in.jsonl:2: gold field 'answer' is null"),
    "non-numeric gold": (row(answer="five"), "in.jsonl:2: gold field 'answer': 'five' is not a number"),
    "empty gold list": (row(answer=[]), "in.jsonl:2: gold field 'answer' is an empty list"),
    "a non-number in a gold list": (row(answer=[5, "n/a"]), "in.jsonl:2: gold field 'answer': 'n/a' is not a number"),
    "object gold": (row(answer={"value": 5}), "in.jsonl:2: gold field 'answer':"),
}


@pytest.mark.parametrize("name", list(GOLD_CASES))
def test_eval_bad_gold_is_a_data_error(tmp_path, name):
    line, message = GOLD_CASES[name]
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW, line))
    assert_fails(cli("eval", spec, "-d", data), 2, message)


def test_eval_bad_gold_through_the_real_entry_point(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW, row(answer="abc")))
    result = run_cli("eval", spec, "-d", data)
    assert_fails(result, 2, "in.jsonl:2: gold field 'answer': 'abc' is not a number")
    assert "eval failed" not in result.stderr


def test_compile_bad_input_in_dev(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    train = write(tmp_path, "train.jsonl", rows(*[GOOD_ROW] * 4))
    dev = write(tmp_path, "dev.jsonl", rows(GOOD_ROW, row(question={"nested": True})))
    assert_fails(cli("compile", spec, "--train", train, "--dev", dev, "--out", str(tmp_path / "build")), 2,
                 "dev.jsonl:2: field 'question': expected str, got object")


def test_dry_run_counts_rows_over_the_size_limit(tmp_path):
    spec = write(tmp_path, "spec.yaml", SPEC)
    data = write(tmp_path, "in.jsonl", rows(GOOD_ROW, row(question="x " * 2000)))
    result = cli("run", spec, "-i", data, "-o", str(tmp_path / "out.jsonl"), "--dry-run", "--max-prompt-tokens", "800")
    assert result.returncode == 0, result.stderr
    assert "1 row(s) to run, 1 over the prompt size limit" in result.stdout

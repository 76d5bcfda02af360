"""Data where it lives: CSV and Parquet inputs, Parquet output, stdin, column mapping.

Each format must give the same output rows as the same data in JSONL; a Parquet output
goes through a JSONL journal, so a crash loses nothing and --resume finishes it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_KEY, run_cli
from tests.test_cli_run import write_spec

pa = pytest.importorskip("pyarrow", reason="the `tables` extra (pyarrow) is part of the test extra")
pq = pytest.importorskip("pyarrow.parquet")

SPEC = ROOT / "specs" / "intent.yaml"
DEV = ROOT / "datasets" / "intent" / "dev.jsonl"
OFFLINE = ("--model", "offline", "--no-cache")


def dev_rows() -> list[dict]:
    return [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def outputs(rows: list[dict]) -> list[tuple]:
    """What a run decided per row, whatever the row numbering of its format."""
    return [(r["message"], r["intent"], r["_error"]) for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("ref") / "ref.jsonl"
    done = run_cli("run", str(SPEC), "-i", str(DEV), "-o", str(out), *OFFLINE)
    assert done.returncode == 0, done.stderr
    return jsonl(out)


def test_csv_input_gives_the_jsonl_outputs(tmp_path, reference):
    data = write_csv(tmp_path / "dev.csv", dev_rows())
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(tmp_path / "out.jsonl"), *OFFLINE)
    assert done.returncode == 0, done.stderr
    rows = jsonl(tmp_path / "out.jsonl")
    assert outputs(rows) == outputs(reference)
    assert [r["_row"] for r in rows] == list(range(2, len(rows) + 2))  # CSV line numbers: the header is 1


def test_parquet_in_and_out(tmp_path, reference):
    data = write_parquet(tmp_path / "dev.parquet", dev_rows())
    out = tmp_path / "out.parquet"
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), *OFFLINE)
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out).to_pylist()
    assert outputs(rows) == outputs(reference)
    assert [r["_row"] for r in rows] == list(range(1, len(rows) + 1))
    assert not (tmp_path / "out.parquet.jsonl").exists()  # the journal is gone once the file is whole


def test_column_mapping(tmp_path, reference):
    renamed = [{"utterance": r["message"], "label": r["intent"]} for r in dev_rows()]
    data = write_parquet(tmp_path / "renamed.parquet", renamed)
    out = tmp_path / "out.jsonl"
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--column", "message=utterance", *OFFLINE)
    assert done.returncode == 0, done.stderr
    assert [(r["message"], r["intent"]) for r in jsonl(out)] == [(r["message"], r["intent"]) for r in reference]
    scored = run_cli("eval", str(SPEC), "-d", str(data), "--column", "message=utterance",
                     "--column", "intent=label", *OFFLINE)
    assert scored.returncode in (0, 1), scored.stderr
    assert "64" in scored.stdout + scored.stderr


def test_bad_column_flag(tmp_path):
    data = write_parquet(tmp_path / "d.parquet", dev_rows())
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(tmp_path / "o.jsonl"), "--column", "message", *OFFLINE)
    assert done.returncode == 2
    assert "--column 'message': expected FIELD=COLUMN" in done.stderr
    assert "Traceback" not in done.stderr


def test_stdin_input(tmp_path, reference):
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "promptc", "run", str(SPEC), "-i", "-", "-o", str(out), *OFFLINE],
                          input=DEV.read_text(), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert outputs(jsonl(out)) == outputs(reference)


def test_stdin_bad_line_is_named(tmp_path):
    done = subprocess.run([sys.executable, "-m", "promptc", "run", str(SPEC), "-i", "-",
                           "-o", str(tmp_path / "o.jsonl"), *OFFLINE],
                          input='{"message": "hi"}\nnot json\n', capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "<stdin>:2: not valid JSON" in done.stderr


def test_parquet_output_resumes_from_a_finished_file_and_from_a_journal(tmp_path, reference):
    data = write_parquet(tmp_path / "dev.parquet", dev_rows())
    out = tmp_path / "out.parquet"
    first = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--limit", "10", *OFFLINE)
    assert first.returncode == 0, first.stderr
    assert pq.read_table(out).num_rows == 10
    # A crash mid-run leaves the journal with a half-written last line beside the old file.
    journal = tmp_path / "out.parquet.jsonl"
    kept = [json.dumps(r, default=str) for r in pq.read_table(out).to_pylist()]
    journal.write_text("\n".join(kept[:7]) + "\n" + kept[7][:25], encoding="utf-8")
    again = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--resume", *OFFLINE)
    assert again.returncode == 0, again.stderr
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["_row"] for r in rows) == list(range(1, len(reference) + 1))
    assert sorted(outputs(rows)) == sorted(outputs(reference))
    assert not journal.exists()
    # A finished file is unpacked and completed the same way.
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--resume", *OFFLINE)
    assert done.returncode == 0 and pq.read_table(out).num_rows == len(reference)


def test_existing_parquet_output_needs_resume_or_overwrite(tmp_path):
    data = write_parquet(tmp_path / "dev.parquet", dev_rows())
    out = tmp_path / "out.parquet"
    assert run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--limit", "3", *OFFLINE).returncode == 0
    refused = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), *OFFLINE)
    assert refused.returncode == 2 and "already exists" in refused.stderr
    redone = run_cli("run", str(SPEC), "-i", str(data), "-o", str(out), "--overwrite", "--limit", "5", *OFFLINE)
    assert redone.returncode == 0 and pq.read_table(out).num_rows == 5


@pytest.mark.parametrize("content, message", [
    ("message,intent\nhello,greeting,extra\n", ":2: has 3 column(s), the header has 2"),
    ("message,message\nhello,hi\n", ":1: the header repeats column(s) message"),
    ("message,\nhello,x\n", ":1: the header has an empty column name"),
    ('message,intent\n"unclosed,x\n', "not valid CSV"),
])
def test_bad_csv_is_named(tmp_path, content, message):
    data = tmp_path / "bad.csv"
    data.write_text(content, encoding="utf-8")
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(tmp_path / "o.jsonl"), *OFFLINE)
    assert done.returncode == 2, done.stderr
    assert str(data) in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_parquet_is_named(tmp_path):
    data = tmp_path / "bad.parquet"
    data.write_bytes(b"PAR1 this is not parquet")
    done = run_cli("run", str(SPEC), "-i", str(data), "-o", str(tmp_path / "o.jsonl"), *OFFLINE)
    assert done.returncode == 2
    assert f"{data}: not a readable Parquet file" in done.stderr
    assert "Traceback" not in done.stderr


def test_compile_reads_csv(tmp_path):
    train = write_csv(tmp_path / "train.csv", [json.loads(x) for x in
                                              (ROOT / "datasets" / "intent" / "train.jsonl").read_text().splitlines()])
    dev = write_parquet(tmp_path / "dev.parquet", dev_rows())
    done = run_cli("compile", str(SPEC), "--train", str(train), "--dev", str(dev), "--model", "offline",
                   "--optimizer", "labeled_few_shot", "--out", str(tmp_path / "build"), "--no-cache")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "build" / "program.json").is_file()


def test_parquet_over_the_real_client(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    data = write_parquet(tmp_path / "q.parquet", [{"question": f"What is {i} plus zero?"} for i in range(40)])
    out = tmp_path / "a.parquet"
    done = run_cli("run", str(spec), "-i", str(data), "-o", str(out), env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 40 and all(r["_error"] is None for r in rows)
    assert fake_server.request_count == 40


def test_csv_text_is_parsed_into_typed_fields_while_jsonl_is_checked(tmp_path):
    spec = tmp_path / "typed.yaml"
    spec.write_text('version: 1\nname: typed\nlm: {model: offline}\nprogram:\n'
                    '  - step: a\n    signature: "question, n: int -> answer"\n')
    (tmp_path / "t.csv").write_text("n,question\n3,hi\n", encoding="utf-8")
    ok = run_cli("run", str(spec), "-i", str(tmp_path / "t.csv"), "-o", str(tmp_path / "a.jsonl"), "--no-cache")
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "t.jsonl").write_text('{"n": "3", "question": "hi"}\n', encoding="utf-8")
    strict = run_cli("run", str(spec), "-i", str(tmp_path / "t.jsonl"), "-o", str(tmp_path / "b.jsonl"), "--no-cache")
    assert strict.returncode == 2 and "t.jsonl:1: field 'n': expected int, got str" in strict.stderr


def test_stdin_to_stdout_pipeline(tmp_path, reference):
    done = subprocess.run([sys.executable, "-m", "promptc", "run", str(SPEC), "-i", "-", "-o", "-", *OFFLINE],
                          input=DEV.read_text(), capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]  # nothing but the rows on stdout
    assert outputs(rows) == outputs(reference)
    assert f"{len(rows)} ok, 0 failed" in done.stderr
    refused = subprocess.run([sys.executable, "-m", "promptc", "run", str(SPEC), "-i", str(DEV), "-o", "-",
                              "--resume", *OFFLINE], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert refused.returncode == 2 and "not a regular file" in refused.stderr

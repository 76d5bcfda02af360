"""Eval report writers: JSON, CSV, Markdown, HTML, JUnit XML and the GitHub step summary."""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from promptc.errors import UsageError
from promptc.evaluation.html_report import histogram_svg, render_html
from promptc.evaluation.junit import junit_classname, write_junit
from promptc.evaluation.records import (
    Comparison,
    EvalRecord,
    EvalReport,
    EvalSummary,
    MetricSummary,
)
from promptc.evaluation.reports import (
    append_github_summary,
    load_report,
    markdown_summary,
    md_escape,
    records_frame,
    records_table,
    worst_examples,
    write_report,
)
from promptc.lm.base import Usage

SCRIPT = "<script>alert('pwned')</script>"


def make_records() -> list[EvalRecord]:
    """20 examples: 3 program/metric errors, some failures, feedback, unicode, hostile input."""
    records = []
    for row in range(1, 21):
        question = f"What is {row} + {row}?"
        if row == 4:
            question = SCRIPT
        if row == 5:
            question = "Où est la gare ? 東京 — naïve café ☕ | pipe"
        if row == 6:
            question = "multi\nline\ninput with \"quotes\" and a link https://example.com/x"
        gold = {"answer": str(2 * row), "aliases": [str(2 * row), f"{2 * row}.0"]}
        usage = Usage(requests=1, calls=1, prompt_tokens=100 + row, completion_tokens=10, cost=0.0001)
        if row in (3, 11):
            records.append(EvalRecord(row=row, inputs={"question": question}, gold=gold,
                                      prediction=None, scores={"exact_match": 0.0, "f1": 0.0},
                                      score=0.0, passed=False,
                                      error="\x1b[31mParseError\x1b[0m: reply was not JSON <oops>",
                                      usage=usage, latency=2.5))
            continue
        if row == 17:
            records.append(EvalRecord(row=row, inputs={"question": question}, gold=gold,
                                      prediction={"answer": "34"}, scores={}, score=None,
                                      passed=None, error="metric 'f1' raised KeyError: 'answer'",
                                      usage=usage, latency=0.4))
            continue
        wrong = row % 4 == 0 or row == 5
        answer = "nope" if wrong else str(2 * row)
        score = 0.0 if wrong else 1.0
        f1 = 0.25 if wrong else 1.0
        feedback = {"exact_match": f"expected {2 * row!r}, got {answer!r} <b>bold</b> \x0cpage break"} if wrong else {}
        records.append(EvalRecord(row=row, inputs={"question": question, "context": {"n": row}},
                                  gold=gold, prediction={"answer": answer, "steps": [1, 2]},
                                  scores={"exact_match": score, "f1": f1}, score=score,
                                  passed=score >= 0.5, feedback=feedback, usage=usage,
                                  latency=0.1 * row))
    return records


def make_summary(records: list[EvalRecord], *, comparison: bool = True) -> EvalSummary:
    usage = Usage()
    for r in records:
        usage.add(r.usage)
    cmp = Comparison(baseline="runs/base.json", n=19, baseline_mean=0.7, candidate_mean=0.65,
                     diff=-0.05, low=-0.12, high=0.02, p_value=0.18, method="paired bootstrap",
                     regression=False) if comparison else None
    return EvalSummary(
        spec="specs/qa.v2.yaml", program="build/program.json", data="data/dev.jsonl",
        n=len(records), errors=sum(r.error is not None for r in records), primary="exact_match",
        mean=0.6316, low=0.42, high=0.84, threshold=0.7, passed_gate=False,
        metrics=[MetricSummary(name="exact_match", weight=1.0, primary=True, mean=0.6316,
                               low=0.42, high=0.84, n=19),
                 MetricSummary(name="f1", weight=0.5, primary=False, mean=0.71, low=0.55,
                               high=0.86, n=19)],
        weighted_mean=0.6577, usage=usage, latency_p50=1.05, latency_p95=2.5, wall_seconds=3.2,
        comparison=cmp, exit_code=1)


@pytest.fixture
def data() -> tuple[EvalSummary, list[EvalRecord]]:
    records = make_records()
    return make_summary(records), records


def test_worst_examples_errors_first_then_lowest_score_stable_by_row(data):
    _, records = data
    worst = worst_examples(records, 6)
    assert [r.row for r in worst] == [3, 11, 17, 4, 5, 8]
    assert worst_examples(records, 0) == []
    assert len(worst_examples(records, 100)) == 20
    assert [r.status for r in worst[:4]] == ["error", "error", "error", "fail"]


def test_records_table_columns_and_cells(data):
    _, records = data
    columns, rows = records_table(records)
    assert len(rows) == 20
    for col in ("row", "input.question", "input.context", "gold.answer", "gold.aliases",
                "pred.answer", "pred.steps", "score", "passed", "score.exact_match", "score.f1",
                "feedback.exact_match", "error", "latency", "prompt_tokens",
                "completion_tokens", "cost"):
        assert col in columns, col
    table = [dict(zip(columns, row, strict=True)) for row in rows]
    assert json.loads(table[0]["gold.aliases"]) == ["2", "2.0"]
    assert json.loads(table[0]["input.context"]) == {"n": 1}
    assert [r["row"] for r in table if r["score"] is None] == [17]  # the metric error
    assert sum(1 for r in table if r["passed"] is None) == 1
    assert sum(r["prompt_tokens"] for r in table) == sum(100 + r for r in range(1, 21))
    assert records_table([])[1] == []


def test_records_frame_names_the_extra_without_pandas(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'promptc\[tables\]'"):
        records_frame(data[1])


def test_records_frame_keeps_types(data):
    pytest.importorskip("pandas", reason="pandas is the optional `tables` extra")
    frame = records_frame(data[1])
    assert len(frame) == 20 and frame["score"].dtype == "float64"
    assert frame["score"].isna().sum() == 1 and frame["passed"].isna().sum() == 1


def test_json_round_trips(tmp_path, data):
    summary, records = data
    path = tmp_path / "out" / "report.json"
    write_report(path, summary, records)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["format"] == "promptc-eval-report"
    assert EvalSummary.model_validate(raw["summary"]) == summary
    assert [EvalRecord.model_validate(r) for r in raw["records"]] == records
    assert load_report(path) == EvalReport(summary=summary, records=records)
    assert "東京" in path.read_text(encoding="utf-8")  # unicode kept readable, not \u-escaped


def test_load_report_says_what_is_wrong(tmp_path):
    with pytest.raises(UsageError, match="no eval report"):
        load_report(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"summary": {}}', encoding="utf-8")
    with pytest.raises(UsageError, match="not a promptc eval report"):
        load_report(bad)


def test_csv_has_the_table(tmp_path, data):
    summary, records = data
    path = tmp_path / "report.csv"
    write_report(path, summary, records)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    assert {"row", "input.question", "gold.answer", "pred.answer", "score", "passed",
            "score.f1", "feedback.exact_match", "error", "latency", "cost"} <= set(rows[0])
    assert rows[3]["input.question"] == SCRIPT
    assert rows[5]["input.question"].startswith("multi\nline")
    assert rows[16]["score"] == "" and rows[16]["error"].startswith("metric 'f1'")


def test_markdown_report(tmp_path, data):
    summary, records = data
    path = tmp_path / "report.md"
    write_report(path, summary, records)
    text = path.read_text(encoding="utf-8")
    assert "promptc eval: FAIL" in text
    assert "0.632" in text and "[0.420, 0.840]" in text
    assert "| exact_match (primary) | 1 | 0.632 | [0.420, 0.840] | 19 |" in text
    assert "vs baseline runs/base.json" in text and "no regression" in text
    assert "&lt;script&gt;" in text and SCRIPT not in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    # Every table row keeps its column count: pipes and newlines in the data are escaped.
    worst_rows = [line for line in table if line.split(" | ")[1] in ("ERROR", "FAIL")]
    assert {line.split(" | ")[0] for line in worst_rows} >= {"| 3", "| 11", "| 17", "| 5"}
    for line in worst_rows:
        assert line.replace("\\|", "").count("|") == 8


def test_markdown_summary_is_short_and_has_the_verdict(data):
    summary, records = data
    text = markdown_summary(summary, records, worst=2)
    assert text.startswith("### promptc eval: FAIL")
    assert "exact_match mean 0.632 < threshold 0.7" in text
    assert text.count("| ERROR |") == 2
    assert "| PASS |" not in markdown_summary(summary, records, worst=20)  # perfect scores never "worst"
    regressed = summary.model_copy(update={"mean": 0.75, "comparison": summary.comparison.model_copy(
        update={"regression": True, "diff": -0.08})})
    text = markdown_summary(regressed, records)
    assert "mean 0.750 >= threshold 0.7; regression vs baseline (-0.080)" in text
    assert ": REGRESSION" in text
    passing = summary.model_copy(update={"exit_code": 0, "passed_gate": True, "comparison": None})
    text = markdown_summary(passing, records, worst=0)
    assert text.startswith("### promptc eval: PASS") and "vs baseline" not in text
    assert "Worst" not in text


def test_md_escape():
    assert md_escape("a|b\nc") == "a\\|b c"
    assert md_escape("x" * 100, limit=10) == "x" * 9 + "…"
    assert md_escape("<b>") == "&lt;b&gt;"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def test_html_is_self_contained_and_escaped(tmp_path, data):
    summary, records = data
    path = tmp_path / "report.html"
    write_report(path, summary, records)
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    tags = parser.tags
    # Nothing is loaded from anywhere: no resource attributes, no external tags.
    for tag, attrs in tags:
        assert not {"src", "href", "srcset", "action", "xlink:href"} & set(attrs), (tag, attrs)
        assert tag not in ("link", "img", "iframe", "object", "embed", "base")
    assert "@import" not in text and "url(" not in text
    assert [t for t, _ in tags].count("script") == 1
    assert "http" not in "".join(parser.scripts)
    # The only URL in the file is the one inside an example's text.
    assert text.count("https://") == 1 and "http://" not in text
    # Hostile input is shown, not run.
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "東京" in text and "[31m" not in text
    # Summary, histogram and table are there.
    assert "<svg" in text and text.count('<rect class="bar"') == 10
    assert "0.632" in text and "[0.420, 0.840]" in text and "paired bootstrap" in text
    assert "latency p50 / p95" in text and "1.05 s / 2.50 s" in text
    assert 'class="sortable"' in text
    assert text.count("<tr data-row=") == 20
    assert "content=\"default-src 'none'" in text


def test_histogram_bins():
    svg = histogram_svg([0.0, 0.05, 0.1, 0.7, 0.7, 0.99, 1.0, 1.0])
    titles = [t.split("<")[0] for t in svg.split("<title>")[1:]]
    assert titles[0] == "0.0–0.1: 2 examples"
    assert titles[1] == "0.1–0.2: 1 example"
    assert titles[7] == "0.7–0.8: 2 examples"
    assert titles[9] == "0.9–1.0: 3 examples"
    assert "xmlns" not in svg  # inline SVG needs no namespace URL
    assert histogram_svg([]).count('<rect class="bar"') == 10


def test_html_without_comparison_or_records():
    records: list[EvalRecord] = []
    summary = make_summary(records, comparison=False)
    text = render_html(summary, records)
    assert "Comparison" not in text and "Examples (0)" in text


def test_junit_parses_and_counts_match(tmp_path, data):
    summary, records = data
    path = tmp_path / "junit" / "eval.xml"
    write_junit(path, summary, records)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "promptc eval: specs/qa.v2.yaml"
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    errors = [c for c in cases if c.find("error") is not None]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(len(cases)), str(len(failures)), str(len(errors)))
    assert (len(cases), len(failures), len(errors)) == (20, 6, 3)
    assert root.get("tests") == "20" and root.get("failures") == "6"
    assert {c.get("classname") for c in cases} == {"promptc.qa_v2"}
    assert cases[0].get("name") == "row 1" and cases[0].get("time") == "0.100"
    fail = suite.find("testcase[@name='row 8']/failure")
    assert fail is not None and fail.get("message") == "score 0.00 < threshold"
    assert "expected 16, got 'nope'" in fail.text and "prediction:" in fail.text
    assert "answer: nope" in fail.text and "answer: 16" in fail.text
    err = suite.find("testcase[@name='row 3']/error")
    assert err is not None and err.get("message") == "ParseError: reply was not JSON <oops>"
    xml_text = path.read_text(encoding="utf-8")
    assert "\x1b" not in xml_text and "[31m" not in xml_text  # ANSI colour codes dropped
    assert "\x0c" not in xml_text and "page break" in xml_text  # XML 1.0 cannot hold it
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["mean"] == "0.6316" and props["ci_low"] == "0.4200" and props["ci_high"] == "0.8400"
    assert props["threshold"] == "0.7" and props["passed_gate"] == "false"
    assert props["metric.f1.mean"] == "0.7100" and props["regression"] == "false"
    assert suite.find("testcase[@name='row 4']/failure").text.count("<script>") == 1  # as text


def test_junit_classname():
    assert junit_classname("specs/qa.v2.yaml") == "promptc.qa_v2"
    assert junit_classname("intent") == "promptc.intent"
    assert junit_classname("???") == "promptc.spec"


def test_unknown_suffix_is_a_usage_error(tmp_path, data):
    summary, records = data
    with pytest.raises(UsageError, match=r"\.json, \.csv, \.md, \.html"):
        write_report(tmp_path / "report.txt", summary, records)
    assert not (tmp_path / "report.txt").exists()
    write_report(tmp_path / "REPORT.JSON", summary, records)
    assert list(p.name for p in tmp_path.iterdir()) == ["REPORT.JSON"]  # no temp files left


def test_github_summary_appends(tmp_path, monkeypatch, data):
    summary, records = data
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_github_summary(summary, records) is False
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_github_summary(summary, records) is True
    assert append_github_summary(summary, records) is True
    text = target.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### promptc eval: FAIL")
    assert text.count("### promptc eval: FAIL") == 2

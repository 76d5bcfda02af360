"""The comparison model (matrix, flips) on records built by hand, the eval report's
per-row baseline and filter, and the provenance every result carries."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from promptc.evaluation.compare_html import render_compare_html
from promptc.evaluation.comparison import VariantRun, build_report, flipped
from promptc.evaluation.html_report import render_html
from promptc.evaluation.junit import junit_tree
from promptc.evaluation.records import Endpoint, EvalRecord, EvalSummary, MetricSummary, Provenance
from promptc.evaluation.reports import markdown_report
from promptc.evaluation.stats import mcnemar
from promptc.jobs.provenance import endpoint_host, price_warnings
from tests.conftest import ROOT, run_cli


def rec(row: int, score: float | None, *, error: str | None = None, answer: str = "x") -> EvalRecord:
    return EvalRecord(row=row, inputs={"q": f"question {row} <b>"}, gold={"a": "x"},
                      prediction=None if score is None else {"a": answer},
                      scores={} if score is None else {"exact_match": score}, score=score,
                      passed=None if score is None else score >= 0.5, error=error)


def summary(records: list[EvalRecord], spec: str = "s.yaml") -> EvalSummary:
    scored = [r.score for r in records if r.score is not None]
    mean = sum(scored) / len(scored)
    return EvalSummary(spec=spec, data="d.jsonl", n=len(records), errors=0, primary="exact_match",
                       mean=mean, low=0.0, high=1.0, passed_gate=True, latency_p50=0.0, latency_p95=0.0,
                       metrics=[MetricSummary(name="exact_match", weight=1, primary=True, mean=mean,
                                              low=0.0, high=1.0, n=len(scored))],
                       wall_seconds=1.0, exit_code=0,
                       provenance=Provenance(models=[Endpoint(name="default", model="m1", host="h:1")],
                                             promptc_version="9.9", timestamp="2026-01-01T00:00:00+00:00"))


def three_variants() -> list[VariantRun]:
    a = [rec(1, 1), rec(2, 1), rec(3, 0), rec(4, 1), rec(5, 0)]
    b = [rec(1, 1), rec(2, 0), rec(3, 1), rec(4, None, error="endpoint down"), rec(5, 0)]
    c = [rec(1, 1), rec(2, 1), rec(3, 0), rec(5, 0)]  # row 4 never ran
    return [VariantRun(name, f"{name}.yaml", None, summary(r), r) for name, r in (("a", a), ("b", b), ("c", c))]


def test_flips_gained_lost_and_pairing():
    report = build_report(three_variants(), data="d.jsonl")
    a, b, c = report.variants
    # b against a: row 2 lost, row 3 gained, row 4 errored (not a pass: lost).
    assert (b.gained, b.lost) == (1, 2) and (c.gained, c.lost) == (0, 0)
    # The paired test only uses rows scored in both: the error row drops out.
    m = b.metrics[0]
    assert m.paired == 4 and m.method == "mcnemar_exact"
    assert m.p_value == pytest.approx(mcnemar([1, 1, 0, 0], [1, 0, 1, 0]).p_value) == 1.0
    assert a.metrics[0].p_value is None
    assert [r.row for r in report.flipped_rows] == [2, 3, 4]
    assert [r.row for r in report.rows if r.failing] == [2, 3, 4, 5]
    row4 = report.rows[3]
    assert row4.results[2] is None and row4.results[1] is not None and row4.results[1].status == "error"
    html = render_compare_html(report)
    assert "not run" in html and "question 4 &lt;b&gt;" in html and "question 4 <b>" not in html
    assert 'data-row="4" data-flipped="1" data-failing="1"' in html


def test_flipped_counts_an_error_as_not_passing():
    assert flipped(rec(1, 1), rec(1, None, error="x")) and not flipped(rec(1, 0), rec(1, None, error="x"))


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.headers: list[str] = []
        self._th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and "data-row" in dict(attrs):
            self.rows.append(dict(attrs))
        self._th = tag == "th"

    def handle_data(self, data: str) -> None:
        if self._th:
            self.headers.append(data)
            self._th = False


def test_eval_html_shows_the_baseline_per_row():
    old = [rec(1, 1, answer="old1"), rec(2, 1, answer="old2"), rec(3, 0, answer="old3")]
    new = [rec(1, 1), rec(2, 0), rec(3, 1), rec(4, 1)]
    html = render_html(summary(new), new, baseline=old)
    page = Tags()
    page.feed(html)
    assert {"baseline", "baseline score", "baseline prediction"} <= set(page.headers)
    assert {r["data-row"] for r in page.rows if r["data-flipped"] == "1"} == {"2", "3"}
    assert {r["data-row"] for r in page.rows if r["data-failing"] == "1"} == {"2"}
    assert "old2" in html and "flipped vs baseline (2)" in html and 'type="search"' in html
    plain = render_html(summary(new), new)
    assert "baseline score" not in plain and "data-flipped" not in plain and "failing (1)" in plain


def test_every_format_names_models_version_and_time():
    records = [rec(1, 1), rec(2, 0)]
    s = summary(records)
    assert "m1 @ h:1" in render_html(s, records) and "promptc 9.9" in render_html(s, records)
    assert "m1 @ h:1" in markdown_report(s, records) and "2026-01-01" in markdown_report(s, records)
    props = {p.get("name"): p.get("value") for p in junit_tree(s, records).getroot().iter("property")}
    assert props["models"] == "m1 @ h:1" and props["promptc_version"] == "9.9"
    assert ET.tostring(junit_tree(s, records).getroot()).count(b'timestamp="2026-01-01') == 1
    assert json.loads(s.model_dump_json())["provenance"]["models"][0]["host"] == "h:1"


def test_endpoint_host_never_keeps_credentials():
    assert endpoint_host("https://user:sk-secret@api.example.com:8443/v1?key=sk-x") == "api.example.com:8443"
    assert endpoint_host("http://127.0.0.1:8080/v1") == "127.0.0.1:8080"
    assert endpoint_host("localhost:11434/v1") == "localhost:11434"
    assert endpoint_host(None) == "api.openai.com"
    prov = Provenance(models=[Endpoint(name="default", model="m", host="h", priced=False),
                              Endpoint(name="judge", model="m", host="h", priced=False)],
                      promptc_version="1", timestamp="t")
    assert price_warnings(prov) == ["no price for model 'm' in `prices:`: its cost is counted as $0"]


def test_eval_cli_writes_baseline_columns_and_provenance(tmp_path):
    base = tmp_path / "base.jsonl"
    dev = str(ROOT / "datasets/intent/dev.jsonl")
    first = run_cli("eval", "specs/intent.yaml", "-d", dev, "--limit", "20", "--output", str(base))
    assert first.returncode == 0, first.stderr
    # Flip two rows of the baseline by hand so the report has something to show.
    lines = [json.loads(x) for x in base.read_text().splitlines()]
    for r in lines[:2]:
        r["score"], r["passed"] = (0.0, False) if r["passed"] else (1.0, True)
        r["scores"] = {k: r["score"] for k in r["scores"]}
    base.write_text("".join(json.dumps(r) + "\n" for r in lines))
    html, junit = tmp_path / "r.html", tmp_path / "j.xml"
    second = run_cli("eval", "specs/intent.yaml", "-d", dev, "--limit", "20", "--baseline", str(base),
                     "--report", str(html), "--junit", str(junit), "--max-regression", "1")
    assert second.returncode == 0, second.stdout + second.stderr
    page = Tags()
    page.feed(html.read_text())
    assert {r["data-row"] for r in page.rows if r["data-flipped"] == "1"} == {"1", "2"}
    assert "offline @ offline" in second.stdout and "offline @ offline" in html.read_text()
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert props["models"] == "offline @ offline" and props["timestamp"]

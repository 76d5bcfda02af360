"""`promptc compare` end to end: two programs on 300 rows with known outcomes, through the
real openai client against the fake server; the matrix, the exact p-value, the flipped
rows, the shared cache, and the HTML report's filter."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from promptc.evaluation.html_parts import FILTER_JS
from tests.conftest import TEST_KEY, run_cli
from tests.test_cli_run import ENV, write_spec

N = 300
NUMBER = re.compile(r"What is (\d+) plus zero")


def a_right(i: int) -> bool:
    return i % 3 != 0


def b_right(i: int) -> bool:
    return i % 5 != 0


def responder(body: dict) -> str:
    """Variant A answers wrong on multiples of 3, variant B on multiples of 5."""
    text = "\n".join(str(m.get("content", "")) for m in body["messages"])
    i = int(NUMBER.findall(text)[-1])
    right = a_right(i) if "VARIANT-A" in text else b_right(i)
    return json.dumps({"answer": i if right else i + 1000})


def two_specs(tmp_path: Path, base_url: str) -> tuple[Path, Path]:
    paths = []
    for name in ("A", "B"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        spec = write_spec(folder, base_url)
        spec.write_text(spec.read_text().replace(
            "Answer with the number in the question.", f"VARIANT-{name} - answer with the number."))
        paths.append(spec.rename(folder / f"variant_{name.lower()}.yaml"))
    return paths[0], paths[1]


def write_data(path: Path, n: int = N) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {i} plus zero?", "answer": i}) + "\n"
                            for i in range(n)))
    return path


def mcnemar_by_hand(b: int, c: int) -> float:
    """Exact two-sided binomial test on the discordant pairs, with whole numbers."""
    m, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(m, j) for j in range(k + 1)) / 2**m)


class Rows(HTMLParser):
    """The rows table's body rows, as their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id")
        elif tag == "tr" and self.table == "rows" and "data-row" in a:
            self.rows.append(a)
        elif tag == "button":
            self.buttons.append(a)
        elif tag == "input":
            self.inputs.append(a)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """One 300-row comparison shared by the tests that read it (its own server and cache)."""
    from promptc.testing import FakeOpenAIServer

    tmp_path = tmp_path_factory.mktemp("compare")
    with FakeOpenAIServer(api_key=TEST_KEY, responder=responder) as server:
        spec_a, spec_b = two_specs(tmp_path, server.base_url)
        data = write_data(tmp_path / "data.jsonl")
        html, js = tmp_path / "compare.html", tmp_path / "compare.json"
        # Module scope runs before the autouse per-test environment: set what it would.
        env = {**ENV, "PROMPTC_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200", "NO_COLOR": "1"}
        result = run_cli("compare", str(spec_a), str(spec_b), "-d", str(data), "--report", str(html),
                         "--report", str(js), "--show-flipped", "2", env=env, timeout=600)
        assert result.returncode == 0, result.stderr
        return result, json.loads(js.read_text()), html.read_text(), server.request_count


def test_matrix_p_value_and_flipped_rows_are_right(outcome):
    result, report, _, requests = outcome
    a_pass = {i + 1 for i in range(N) if a_right(i)}  # rows are 1-based line numbers
    b_pass = {i + 1 for i in range(N) if b_right(i)}
    lost, gained = a_pass - b_pass, b_pass - a_pass
    assert (len(a_pass), len(b_pass), len(lost), len(gained)) == (200, 240, 40, 80)

    first, second = report["variants"]
    assert [first["name"], second["name"]] == ["variant_a", "variant_b"]
    (ma,), (mb,) = first["metrics"], second["metrics"]
    assert ma["name"] == mb["name"] == "numeric_match"
    assert ma["mean"] == pytest.approx(200 / 300) and mb["mean"] == pytest.approx(240 / 300)
    assert ma["n"] == mb["n"] == N and ma["low"] < ma["mean"] < ma["high"]
    assert ma["diff"] is None and ma["p_value"] is None  # the reference is not tested against itself
    assert mb["diff"] == pytest.approx(40 / 300) and mb["paired"] == N
    assert mb["method"] == "mcnemar_exact"
    assert mb["p_value"] == pytest.approx(mcnemar_by_hand(40, 80), rel=1e-9)
    assert mb["p_value"] < 0.001 and mb["significant"] is True
    assert (second["gained"], second["lost"]) == (80, 40)

    flipped = {r["row"] for r in report["rows"] if r["flipped"]}
    assert flipped == lost | gained
    row = next(r for r in report["rows"] if r["row"] == 4)  # i = 3: A wrong, B right
    assert [c["status"] for c in row["results"]] == ["fail", "pass"]
    assert [c["prediction"]["answer"] for c in row["results"]] == [1003, 3]
    failing = {r["row"] for r in report["rows"] if r["failing"]}
    assert failing == set(range(1, N + 1)) - (a_pass & b_pass)

    assert "120 of 300 rows flipped" in result.stdout
    assert "variant_a" in result.stdout and "+80/-40" in result.stdout
    assert f"p={mcnemar_by_hand(40, 80):.4f} *" in result.stdout
    assert "fake-model @ 127.0.0.1" in result.stdout and report["provenance"]["promptc_version"]
    assert "no price for model 'fake-model'" in result.stderr
    assert requests == 2 * N  # different prompts: nothing shared, nothing repeated


def test_html_report_filters_rows(outcome):
    _, report, html, _ = outcome
    parser = Rows()
    parser.feed(html)
    assert len(parser.rows) == N
    by_flag = {flag: {int(str(r["data-row"])) for r in parser.rows if r[f"data-{flag}"] == "1"}
               for flag in ("flipped", "failing")}
    assert by_flag["flipped"] == {r["row"] for r in report["rows"] if r["flipped"]}
    assert by_flag["failing"] == {r["row"] for r in report["rows"] if r["failing"]}
    assert [b["data-filter"] for b in parser.buttons] == ["all", "flipped", "failing"]
    assert "flipped (120)" in html and parser.inputs[0]["type"] == "search"
    assert "https://" not in html and "http://" not in html.replace(report["provenance"]["models"][0]["host"], "")
    assert html.count('<table class="sortable"') == 2


# The filter script, run on a stand-in for the DOM that holds only what the script reads.
NODE_HARNESS = """
const rows = JSON.parse(process.argv[1]).map(r => ({attrs: r.attrs, textContent: r.text, hidden: false,
  getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }}));
function el(extra) { const h = {}; return Object.assign({handlers: h, attrs: {},
  addEventListener(t, f) { h[t] = f; }, setAttribute(n, v) { this.attrs[n] = v; }}, extra); }
const buttons = ["all", "flipped", "failing"].map(f => el({dataset: {filter: f}}));
const search = el({value: ""}), count = el({textContent: ""});
const bar = el({dataset: {table: "rows"}, querySelector(s) { return s === "input" ? search : count; },
  querySelectorAll() { return buttons; }});
global.document = {querySelectorAll() { return [bar]; }, getElementById() { return {tBodies: [{rows}]}; }};
eval(require("fs").readFileSync(0, "utf8"));
const shown = () => rows.filter(r => !r.hidden).map(r => +r.attrs["data-row"]);
const out = {all: shown()};
buttons[1].handlers.click(); out.flipped = shown(); out.pressed = buttons.map(b => b.attrs["aria-pressed"]);
search.value = "What is 9 plus"; search.handlers.input(); out.flipped_search = shown();
buttons[2].handlers.click(); out.failing_search = shown(); out.count = count.textContent;
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_filter_script_hides_the_right_rows():
    rows = [{"attrs": {"data-row": str(i), "data-flipped": str(int(i % 2 == 0)), "data-failing": str(int(i > 5))},
             "text": f"What is {i} plus zero?"} for i in range(1, 11)]
    done = subprocess.run(["node", "-e", NODE_HARNESS, json.dumps(rows)], input=FILTER_JS,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["all"] == list(range(1, 11))
    assert out["flipped"] == [2, 4, 6, 8, 10]
    assert out["pressed"] == ["false", "true", "false"]
    assert out["flipped_search"] == []  # 9 is not flipped
    assert out["failing_search"] == [9]
    assert out["count"] == "1 of 10 rows"


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no chromium or chrome on this machine for a headless run")
def test_filter_in_headless_chromium(outcome, tmp_path):
    _, report, html, _ = outcome
    # Click "flipped" on load, then dump the DOM: the visible rows must be the flipped ones.
    page = tmp_path / "clicked.html"
    page.write_text(html.replace("</body>", '<script>document.querySelector(\'[data-filter="flipped"]\')'
                                            ".click();</script></body>"))
    dom = subprocess.run([str(_browser()), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    parser = Rows()
    parser.feed(dom)
    visible = {int(str(r["data-row"])) for r in parser.rows if "hidden" not in r}
    assert visible == {r["row"] for r in report["rows"] if r["flipped"]}


def test_variants_share_the_cache(tmp_path, fake_server):
    """The same program under two names: the second variant's requests are all cache hits."""
    fake_server.responder = responder
    spec_a, _ = two_specs(tmp_path, fake_server.base_url)
    twin = tmp_path / "twin" / spec_a.name
    twin.parent.mkdir()
    shutil.copy(spec_a, twin)
    data = write_data(tmp_path / "data.jsonl", 20)
    out = tmp_path / "c.json"
    result = run_cli("compare", str(spec_a), str(twin), "-d", str(data), "--report", str(out), env=ENV)
    assert result.returncode == 0, result.stderr
    assert fake_server.request_count == 20
    first, second = json.loads(out.read_text())["variants"]
    assert first["name"] != second["name"]  # same file name: told apart by the path
    assert second["summary"]["usage"]["cache_hits"] == 20 and second["metrics"][0]["p_value"] == 1.0


def test_usage_errors(tmp_path):
    one = run_cli("compare", "specs/intent.yaml", "--limit", "2")
    assert one.returncode == 2 and "at least two variants" in one.stderr
    twice = run_cli("eval", "specs/intent.yaml", "--model", "a", "--model", "b")
    assert twice.returncode == 2 and "promptc compare" in twice.stderr and "Traceback" not in twice.stderr
    bad = run_cli("compare", "specs/intent.yaml", "--model", "offline", "--model", "x", "--report",
                  str(tmp_path / "c.csv"))
    assert bad.returncode == 2 and "c.csv" in bad.stderr


def test_variant_names_are_unique_and_readable():
    from promptc.jobs.compare import variants

    names = [v.name for v in variants(["a/x.yaml", "b/x.yaml", "build/intent", "build/y/program.json"], ["m1"])]
    assert names == ["a/x.yaml@m1", "b/x.yaml@m1", "intent@m1", "y@m1"]
    assert [v.name for v in variants(["s.yaml", "s.yaml"])] == ["s.yaml#1", "s.yaml#2"]
    crossed = variants(["p.yaml", "q.yaml"], ["m1", "m2"])
    assert [(v.name, v.model) for v in crossed] == [("p@m1", "m1"), ("p@m2", "m2"), ("q@m1", "m1"), ("q@m2", "m2")]

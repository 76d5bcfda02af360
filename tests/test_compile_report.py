"""The compile report (report.html): written by compile, rebuilt by `promptc report`, read
here as a DOM (html.parser) and, where Chromium is installed, rendered headless."""

from __future__ import annotations

import importlib.util
import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from promptc.artifacts.compile_report import read_trials, render_report
from promptc.artifacts.program_file import load_artifact
from promptc.artifacts.word_diff import word_diff_html
from tests.conftest import ROOT, run_cli


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("report_demo", ROOT / "scripts" / "report_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report_demo = _load_script()


class Dom(HTMLParser):
    """Elements as (tag, attrs, text inside) and the page's text, for assertions."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self.open: list[tuple[str, dict[str, str], list[str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element: tuple[str, dict[str, str], list[str]] = (tag, {k: v or "" for k, v in attrs}, [])
        self.elements.append(element)
        self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for element in self.open:
            element[2].append(data)

    def find(self, tag: str, cls: str | None = None) -> list[tuple[str, dict[str, str], list[str]]]:
        return [e for e in self.elements if e[0] == tag and (cls is None or cls in e[1].get("class", "").split())]


def _points(dom: Dom) -> list[dict[str, str]]:
    return [attrs for _, attrs, _ in dom.find("circle", "pt")]


def _compile_intent(out: Path) -> None:
    result = run_cli("compile", "specs/intent.yaml", "--out", str(out))
    assert result.returncode == 0, result.stderr


def test_intent_compile_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "intent"
    _compile_intent(out)
    html = (out / "report.html").read_text(encoding="utf-8")
    dom = Dom(html)
    trials = read_trials(out / "trials.jsonl")
    # random_search races 9 candidates on 40 dev rows, then scores the spec as written and 3 finalists on all 64
    assert [(t["kind"], t["full_eval"]) for t in trials[:9]] == [("race", False)] * 9
    assert [t["kind"] for t in trials[9:]] == ["zero_shot"] + ["bootstrapped"] * 3
    charts = dom.find("svg", "trajectory")
    assert len(charts) == 1  # the offline LM has no prices: no cost chart
    points = _points(dom)
    assert [int(p["data-trial"]) for p in points] == [t["index"] for t in trials]  # one point per trial
    assert [p["class"].split()[1] for p in points] == ["subset"] * 9 + ["full"] * 4
    assert dom.find("polyline", "dev") and dom.find("circle", "chosen")
    best = json.loads((out / "program.json").read_text())["provenance"]["best_trial"]
    assert dom.find("tr", "best")[0][1]["id"] == f"trial-{best}"
    # No network: no external URL anywhere, and a CSP that forbids fetching.
    assert "http://" not in html and "https://" not in html and "default-src 'none'" in html
    text = " ".join(dom.text)
    calls = json.loads((out / "program.json").read_text())["provenance"]["usage"]["calls"]
    for fact in ("offline", "sha256", "random_search", "num_candidates", "0.1.0", f"LM calls {calls}", "seed"):
        assert fact in text, fact
    assert "the instruction is unchanged" in text  # random_search tunes demos only


def test_mipro_report_shows_the_instruction_diff_runner_ups_and_subset_scores(tmp_path: Path) -> None:
    from promptc.testing import FakeOpenAIServer

    out = tmp_path / "mipro"
    with FakeOpenAIServer(api_key=report_demo.KEY, responder=report_demo.scripted_responder()) as server:
        done = report_demo.compile_demo(out, server.base_url)
    assert done.returncode == 0, done.stderr
    dom = Dom((out / "report.html").read_text(encoding="utf-8"))
    trials = read_trials(out / "trials.jsonl")
    points = _points(dom)
    assert len(points) == len(trials) and {"full", "subset"} <= {p["class"].split()[1] for p in points}
    assert dom.find("polyline", "subset") and dom.find("polyline", "dev")
    inserted = " ".join("".join(t) for _, _, t in dom.find("ins"))
    deleted = " ".join("".join(t) for _, _, t in dom.find("del"))
    assert "answer with the intent label only" in inserted and "Classify" in deleted
    assert "You are a support agent" in " ".join(dom.text)  # a runner-up, with its score
    # The terminal said which best is which, and showed the instruction being tried.
    assert "on 40-row subset" in done.stderr and "on dev" in done.stderr
    assert 'classify: "Read the customer' in done.stderr and "/15 · " in done.stderr and "ETA" in done.stderr
    # The model is named in the provenance (never the key).
    text = " ".join(dom.text)
    assert "fake-model at 127.0.0.1" in text and report_demo.KEY not in text

    # `promptc report` rebuilds the same page from the folder alone.
    first = (out / "report.html").read_text(encoding="utf-8")
    (out / "report.html").unlink()
    rebuilt = run_cli("report", str(out))
    assert rebuilt.returncode == 0 and (out / "report.html").read_text(encoding="utf-8") == first

    chromium = report_demo.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on PATH (chromium, chromium-browser, google-chrome): DOM checked, no screenshot")
    png = tmp_path / "report.png"
    assert report_demo.screenshot(out / "report.html", png, width=900, height=900)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    dumped = _dump_dom(chromium, out / "report.html")
    assert "<svg" in dumped and "circle" in dumped and "<ins>" in dumped  # as the browser parsed it


def _dump_dom(chromium: str, html: Path) -> str:
    import subprocess

    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", html.as_uri()],
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def test_everything_from_the_data_is_escaped(tmp_path: Path) -> None:
    _compile_intent(tmp_path / "x")
    artifact = load_artifact(tmp_path / "x")
    evil = "<script>alert(1)</script>"
    artifact.predictors[0].signature = artifact.predictors[0].signature.model_copy(update={"instructions": evil})
    artifact.predictors[0].demos = [{"message": evil, "intent": "card_lost"}]
    trials = read_trials(tmp_path / "x" / "trials.jsonl")
    trials[0]["description"] = evil
    html = render_report(artifact, trials)
    assert evil not in html and "&lt;script&gt;" in html
    assert "<script>" not in html  # the report needs no script at all


def test_word_diff_marks_words_and_escapes() -> None:
    html = word_diff_html("Classify the <b>message</b>.", "Label the  <b>message</b>. Be brief.")
    assert html == ("<del>Classify</del><ins>Label</ins> the  &lt;b&gt;message&lt;/b&gt;. "
                    "<ins>Be brief.</ins>")


def test_old_trial_files_and_missing_trials_still_render(tmp_path: Path) -> None:
    out = tmp_path / "old"
    _compile_intent(out)
    lines = (out / "trials.jsonl").read_text().splitlines()
    old = []
    for line in lines:  # as written before trials carried overhead and finish times
        record = json.loads(line)
        record.pop("overhead"), record.pop("finished_at")
        old.append(json.dumps(record))
    (out / "trials.jsonl").write_text("\n".join(old) + "\n{torn")
    assert run_cli("report", str(out)).returncode == 0
    assert len(_points(Dom((out / "report.html").read_text()))) == len(lines)
    (out / "trials.jsonl").unlink()
    assert run_cli("report", str(out)).returncode == 0
    assert "nothing to chart" in (out / "report.html").read_text()
    missing = run_cli("report", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a compile folder" in missing.stderr and "Traceback" not in missing.stderr

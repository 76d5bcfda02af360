"""JUnit XML for `promptc eval --junit`: one testcase per example, readable by CI systems.

Failures carry the metric feedback and the prediction against the gold; errored examples
become <error>. The root is <testsuites> with one <testsuite>, the shape pytest writes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptc.evaluation.formatting import fields_text, fmt_num, strip_ansi, to_text
from promptc.evaluation.records import EvalRecord, EvalSummary
from promptc.runner.output_paths import write_atomic

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _xml(text: Any, limit: int | None = None) -> str:
    out = _XML_BAD.sub("", strip_ansi(to_text(text)))
    if limit is not None:
        out = " ".join(out.split())
        if len(out) > limit:
            out = out[: limit - 1] + "…"
    return out


def junit_classname(spec: str) -> str:
    """'promptc.<spec name>', with dots replaced so CI does not split it into packages."""
    stem = Path(spec).stem if spec.endswith((".yaml", ".yml")) else Path(spec).name
    return "promptc." + (re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "spec")


def junit_tree(summary: EvalSummary, records: Sequence[EvalRecord]) -> ET.ElementTree:
    """The JUnit document: <testsuites> holding one <testsuite> with a case per example."""
    failures = sum(r.status == "fail" for r in records)
    errors = sum(r.status == "error" for r in records)
    counts = {"tests": str(len(records)), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": f"{summary.wall_seconds:.3f}"}
    name = _xml(f"promptc eval: {summary.spec}")
    root = ET.Element("testsuites", {"name": name, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts})
    if summary.provenance is not None:
        suite.set("timestamp", summary.provenance.timestamp)
    props = ET.SubElement(suite, "properties")
    for key, value in _junit_properties(summary):
        ET.SubElement(props, "property", {"name": key, "value": _xml(value)})
    classname = junit_classname(summary.spec)
    for r in records:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": f"row {r.row}",
                                                 "time": f"{r.latency:.3f}"})
        if r.status == "error":
            el = ET.SubElement(case, "error", {"message": _xml(r.error or "no score", 200),
                                               "type": "error"})
            el.text = _xml(_case_text(r, summary))
        elif r.status == "fail":
            el = ET.SubElement(case, "failure", {"message": f"score {r.score or 0.0:.2f} < threshold",
                                                 "type": "threshold"})
            el.text = _xml(_case_text(r, summary))
    ET.indent(root)
    return ET.ElementTree(root)


def _junit_properties(summary: EvalSummary) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = [
        ("spec", summary.spec), ("program", summary.program or ""), ("data", summary.data),
        ("primary", summary.primary), ("mean", fmt_num(summary.mean, 4)),
        ("ci_low", fmt_num(summary.low, 4)), ("ci_high", fmt_num(summary.high, 4)),
        ("threshold", "" if summary.threshold is None else f"{summary.threshold:g}"),
        ("passed_gate", str(summary.passed_gate).lower()), ("n", summary.n),
        ("errors", summary.errors)]
    props += [(f"metric.{m.name}.mean", fmt_num(m.mean, 4)) for m in summary.metrics]
    if summary.weighted_mean is not None:
        props.append(("weighted_mean", fmt_num(summary.weighted_mean, 4)))
    u = summary.usage
    props += [("prompt_tokens", u.prompt_tokens), ("completion_tokens", u.completion_tokens),
              ("cost", f"{u.cost:.6f}"), ("latency_p50", f"{summary.latency_p50:.3f}"),
              ("latency_p95", f"{summary.latency_p95:.3f}")]
    c = summary.comparison
    if c is not None:
        props += [("baseline", c.baseline), ("baseline_mean", fmt_num(c.baseline_mean, 4)),
                  ("diff", f"{c.diff:+.4f}"), ("diff_ci_low", fmt_num(c.low, 4)),
                  ("diff_ci_high", fmt_num(c.high, 4)), ("p_value", fmt_num(c.p_value, 4)),
                  ("regression", str(c.regression).lower())]
    prov = summary.provenance
    if prov is not None:
        props += [("models", prov.models_text()), ("promptc_version", prov.promptc_version),
                  ("timestamp", prov.timestamp)]
    props.append(("exit_code", summary.exit_code))
    return [(k, str(v)) for k, v in props]


def _case_text(r: EvalRecord, summary: EvalSummary) -> str:
    lines = []
    if r.error is not None:
        lines += [f"error: {r.error}", ""]
    if r.score is not None:
        per_metric = ", ".join(f"{k} {v:.2f}" for k, v in r.scores.items())
        lines.append(f"score: {r.score:.2f} ({summary.primary})"
                     + (f"; {per_metric}" if per_metric else ""))
    for k, v in r.feedback.items():
        lines.append(f"feedback ({k}): {v}")
    for title, fields in (("inputs", r.inputs), ("prediction", r.prediction), ("gold", r.gold)):
        lines.append(f"{title}:" if fields else f"{title}: (none)")
        lines += [f"  {line}" for line in fields_text(fields).splitlines()]
    return "\n".join(lines) + "\n"


def write_junit(path: Path, summary: EvalSummary, records: Sequence[EvalRecord]) -> None:
    """Write a JUnit XML file: one test case per example (failures and errors marked)."""
    tree = junit_tree(summary, records)
    write_atomic(Path(path), lambda p: tree.write(p, encoding="utf-8", xml_declaration=True))


# ----------------------------------------------------------------------------- JSON / dispatch

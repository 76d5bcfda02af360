"""`promptc export`: a compiled program as portable files that need no promptc to use.

    openai-messages   OUT/STEP.json           chat template ({name} placeholders), response_format
    markdown          OUT/STEP.md             readable step: signature, instructions, demos, messages
    jinja             OUT/STEP.messages.json  each message's content as a Jinja2 template
                      OUT/STEP.jinja          the whole conversation; renders to a JSON message list
    finetune-jsonl    OUT/STEP.jsonl          {"messages": [system, user, assistant]} training rows

Every format also writes OUT/README.md (how to use the files) and OUT/manifest.json.
Templates come from promptc's own adapter (see export_formats.py), so filling them with
`format_value(value, type)` reproduces exactly the messages promptc sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc import __version__
from promptc.artifacts.export_formats import (
    VALUE_FORMAT,
    StepTemplate,
    finetune_readme,
    jinja_chat_template,
    jinja_readme,
    jinja_template,
    markdown_index,
    openai_readme,
    python_template,
    step_markdown,
    step_templates,
)
from promptc.artifacts.program_file import ProgramArtifact
from promptc.core.adapter import ChatAdapter
from promptc.errors import InputError, UsageError, output_errors

FORMATS = ("openai-messages", "markdown", "jinja", "finetune-jsonl")
MANIFEST = "manifest.json"
TRACES = "traces.jsonl"
_RESERVED = {"readme", "manifest"}


@dataclass
class ExportReport:
    """What an export wrote, and what it had to leave out (finetune rows)."""

    fmt: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # finetune rows written, per step
    skipped: dict[str, int] = field(default_factory=dict)  # finetune rows missing a field, per step


def export_artifact(artifact: ProgramArtifact, fmt: str, out_dir: Path, *,
                    traces: Sequence[dict[str, Any]] | None = None) -> list[Path]:
    """Write `artifact` in format `fmt` into `out_dir` (created); returns the files written."""
    return export_report(artifact, fmt, out_dir, traces=traces).files


def export_report(artifact: ProgramArtifact, fmt: str, out_dir: Path, *,
                  traces: Sequence[dict[str, Any]] | None = None) -> ExportReport:
    """Like `export_artifact`, also returning notes and finetune row counts."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise UsageError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    with output_errors():
        return _export(artifact, fmt, writer, Path(out_dir), traces)


def _export(artifact: ProgramArtifact, fmt: str, writer: Writer, out_dir: Path,
            traces: Sequence[dict[str, Any]] | None) -> ExportReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(fmt=fmt)
    templates = step_templates(artifact)
    skipped = [s.name for s in artifact.steps if s.name not in {t.step.name for t in templates}]
    if skipped:
        report.notes.append(f"no prompt to export for {', '.join(skipped)} (retrieval steps call no LM)")
    stems = _file_stems([t.name for t in templates])
    pooled = [t.name for t in templates if t.module.selector is not None]
    if pooled and fmt != "finetune-jsonl":
        report.notes.append(f"{', '.join(pooled)}: demos are chosen per input from a pool; the messages show "
                            "the pool's first k demos, and the step's `demo_selection` (Markdown: its demo "
                            "pool section) holds the pool and the rule that picks the k nearest")
    writer(artifact, templates, stems, out_dir, report, traces)
    manifest: dict[str, Any] = {
        "format": fmt,
        "name": artifact.name,
        "promptc_version": __version__,
        "artifact_promptc_version": artifact.promptc_version,
        "steps": [t.name for t in templates],
        "files": [p.relative_to(out_dir).as_posix() for p in report.files],
        "notes": report.notes,
    }
    if fmt == "finetune-jsonl":
        manifest["rows"], manifest["skipped"] = report.rows, report.skipped
    report.files.append(_write(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"))
    return report


def load_traces(path: Path) -> list[dict[str, Any]]:
    """The rows of traces.jsonl (`path` is the file or the compile folder); [] when missing."""
    path = Path(path)
    target = path / TRACES if path.is_dir() else path
    if not target.exists():
        return []
    rows = []
    with open(target, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not JSON ({exc.msg})", file=str(target), line=lineno) from None
            if not isinstance(row, dict):
                raise InputError("expected a JSON object per line", file=str(target), line=lineno)
            rows.append(row)
    return rows


# -- writers ---------------------------------------------------------------------------

Writer = Callable[..., None]


def _write_openai(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
                  out: Path, report: ExportReport, traces: Sequence[dict[str, Any]] | None) -> None:
    for t in templates:
        doc: dict[str, Any] = {"step": t.name, "module": t.step.module}
        if t.model:
            doc["model"] = t.model
        doc.update(t.fields)
        doc["messages"] = [{"role": m.role, "content": python_template(m.segments)} for m in t.messages]
        doc["response_format"] = t.response_format
        doc["value_format"] = VALUE_FORMAT
        selection = t.demo_selection()
        if selection is not None:
            doc["demo_selection"] = selection
        report.files.append(_write_json(out / f"{stems[t.name]}.json", doc))
    report.files.append(_write(out / "README.md", openai_readme(artifact, templates, stems)))


def _write_markdown(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
                    out: Path, report: ExportReport, traces: Sequence[dict[str, Any]] | None) -> None:
    for t in templates:
        report.files.append(_write(out / f"{stems[t.name]}.md", step_markdown(t)))
    report.files.append(_write(out / "README.md", markdown_index(artifact, templates, stems)))


def _write_jinja(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
                 out: Path, report: ExportReport, traces: Sequence[dict[str, Any]] | None) -> None:
    for t in templates:
        stem = stems[t.name]
        doc: dict[str, Any] = {"step": t.name, "module": t.step.module}
        if t.model:
            doc["model"] = t.model
        doc.update(t.fields)
        doc["messages"] = [{"role": m.role, "content": jinja_template(m.segments)} for m in t.messages]
        doc["response_format"] = t.response_format
        doc["value_format"] = VALUE_FORMAT
        selection = t.demo_selection()
        if selection is not None:
            doc["demo_selection"] = selection
        report.files.append(_write_json(out / f"{stem}.messages.json", doc))
        report.files.append(_write(out / f"{stem}.jinja", jinja_chat_template(t)))
    report.files.append(_write(out / "README.md", jinja_readme(artifact, templates, stems)))


def _write_finetune(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
                    out: Path, report: ExportReport, traces: Sequence[dict[str, Any]] | None) -> None:
    adapter = ChatAdapter()
    by_step: dict[str, list[Any]] = {t.name: [] for t in templates}
    from_traces = bool(traces)
    if from_traces:
        stray: dict[str, int] = {}
        for row in traces or ():
            name = row.get("step") if isinstance(row, Mapping) else None
            if isinstance(name, str) and name in by_step:
                by_step[name].append((row.get("inputs"), row.get("outputs")))
            else:
                stray[str(name)] = stray.get(str(name), 0) + 1
        if stray:
            report.notes.append(f"{sum(stray.values())} trace row(s) name no step of this program: "
                                + ", ".join(sorted(stray)))
    else:
        for t in templates:
            outs = set(t.module.signature.output_names)
            demos = [*t.module.demos, *(t.module.selector.pool if t.module.selector else [])]
            by_step[t.name] = [({k: v for k, v in d.items() if k not in outs},
                                {k: v for k, v in d.items() if k in outs}) for d in demos]
    for t in templates:
        lines = _finetune_rows(t, by_step[t.name], adapter, report)
        if not lines:
            report.notes.append(f"{t.name}: no training rows (no "
                                + ("traces" if from_traces else "demos") + " for this step)")
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
        report.files.append(_write(out / f"{stems[t.name]}.jsonl", text))
    report.files.append(_write(out / "README.md",
                               finetune_readme(artifact, templates, stems, report.rows, report.notes,
                                               from_traces)))


def _finetune_rows(t: StepTemplate, pairs: list[Any], adapter: ChatAdapter,
                   report: ExportReport) -> list[dict[str, Any]]:
    sig = t.module.signature
    required = sig.input_names + [n for n in sig.output_names if n not in t.module.optional_outputs]
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    skipped, duplicates, no_reasoning = 0, 0, 0
    missing_names: set[str] = set()
    for inputs, outputs in pairs:
        inputs = inputs if isinstance(inputs, Mapping) else {}
        outputs = outputs if isinstance(outputs, Mapping) else {}
        values = {n: inputs.get(n) for n in sig.input_names}
        values.update({n: outputs.get(n) for n in sig.output_names})
        values = {k: v for k, v in values.items() if v is not None}
        missing = [n for n in required if n not in values]
        if missing:
            skipped += 1
            missing_names.update(missing)
            continue
        if "reasoning" in t.module.optional_outputs and "reasoning" not in values:
            no_reasoning += 1
        # The demo turn of a one-demo render is exactly "these inputs, and this reply".
        system, _, assistant, user = adapter.format(
            sig, inputs={n: values[n] for n in sig.input_names}, demos=[values],
            json_mode=t.module.json_mode)
        row = {"messages": [m.model_dump() for m in (system, user, assistant)]}
        key = json.dumps(row, sort_keys=True, ensure_ascii=False)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        rows.append(row)
    name = t.name
    report.rows[name], report.skipped[name] = len(rows), skipped
    if skipped:
        report.notes.append(f"{name}: skipped {skipped} row(s) missing a required field "
                            f"({', '.join(sorted(missing_names))})")
    if duplicates:
        report.notes.append(f"{name}: dropped {duplicates} duplicate row(s)")
    if no_reasoning:
        report.notes.append(f"{name}: {no_reasoning} row(s) have no reasoning; their replies omit it")
    return rows


_WRITERS: dict[str, Writer] = {
    "openai-messages": _write_openai,
    "markdown": _write_markdown,
    "jinja": _write_jinja,
    "finetune-jsonl": _write_finetune,
}


# -- files -----------------------------------------------------------------------------

def _file_stems(names: list[str]) -> dict[str, str]:
    """A safe, unique file stem per step (never README or manifest)."""
    stems: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", name) or "step"
        if stem.lower() in _RESERVED:
            stem += "_step"
        base, n = stem, 2
        while stem.lower() in used:  # case-insensitive file systems
            stem, n = f"{base}_{n}", n + 1
        used.add(stem.lower())
        stems[name] = stem
    return stems


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _write_json(path: Path, doc: Any) -> Path:
    return _write(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

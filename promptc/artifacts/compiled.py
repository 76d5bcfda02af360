"""The compile output folder: program.json, readable prompts, and the teacher's traces.

    OUT/program.json        the artifact (see program_file.py)
    OUT/trials.jsonl        every candidate tried, with its score (written during compile)
    OUT/prompts/NAME.md     each predictor's final prompt, with {placeholders} for inputs
    OUT/traces.jsonl        successful teacher runs, one row per LM call (for finetune export)
    OUT/report.html         what the compile tried and chose (see compile_report.py)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from promptc.artifacts.program_file import ProgramArtifact
from promptc.core.program import Program
from promptc.core.trace import Trace
from promptc.errors import output_errors


def prompt_markdown(program: Program, name: str) -> str:
    """One predictor's messages as Markdown, inputs shown as {name}."""
    predictor = program.predictor(name)
    step = program.step_of(name)
    placeholders = {f.name: "{" + f.name + "}" for f in predictor.signature.inputs}
    lines = [f"# Step `{name}` ({step.module.kind})", "",
             f"Signature: `{predictor.signature.render()}`", "",
             f"{len(predictor.demos)} demo(s). Inputs appear as {{name}} placeholders.", ""]
    if predictor.selector is not None:
        lines += [f"Demos per input: {predictor.selector.describe()}. Shown: the pool's first "
                  f"{len(predictor.selector.static_demos())} (the full pool is in program.json).", ""]
    shown = step.module.shown_signature_of(predictor)
    static = predictor.selector.static_demos() if predictor.selector is not None else None
    for message in predictor.render(placeholders, program.adapter, shown=shown, selected=static):
        lines += [f"## {message.role}", "", "````text", message.content, "````", ""]
    return "\n".join(lines)


def write_compiled(out: Path, artifact: ProgramArtifact, *, traces: Iterable[Trace] = (),
                   trials: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write program.json, prompts/, traces.jsonl and report.html (from `trials`, as JSON
    dicts) into `out`; returns program.json's path.

    An OSError is an OutputError naming the file; trials.jsonl, written during the
    compile, stays whole, so `compile --resume` can write the folder again without a rerun.
    """
    with output_errors():
        return _write_compiled(out, artifact, traces, trials)


def _write_compiled(out: Path, artifact: ProgramArtifact, traces: Iterable[Trace],
                    trials: Sequence[Mapping[str, Any]]) -> Path:
    from promptc.artifacts.compile_report import REPORT_NAME, render_report, save_report

    out.mkdir(parents=True, exist_ok=True)
    path = artifact.save(out)
    prompts = out / "prompts"
    prompts.mkdir(exist_ok=True)
    for old in prompts.glob("*.md"):
        old.unlink()
    program = artifact.build({})
    for name, _ in program.named_predictors():
        (prompts / f"{name}.md").write_text(prompt_markdown(program, name), encoding="utf-8")
    with open(out / "traces.jsonl", "w", encoding="utf-8") as fh:
        for trace in traces:
            for s in trace.steps:
                if s.predictor and s.error is None and not s.rejected:
                    fh.write(json.dumps({"step": s.predictor, "inputs": s.inputs, "outputs": s.outputs},
                                        ensure_ascii=False, sort_keys=True) + "\n")
    save_report(out / REPORT_NAME, render_report(artifact, trials))
    return path

"""The compile output folder: program.json, readable prompts, and the teacher's traces.

    OUT/program.json        the artifact (see program_file.py)
    OUT/trials.jsonl        every candidate tried, with its score (written during compile)
    OUT/prompts/STEP.md     each step's final prompt, with {placeholders} for inputs
    OUT/traces.jsonl        successful teacher runs, one row per step call (for finetune export)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from promptc.artifacts.program_file import ProgramArtifact
from promptc.core.trace import Trace


def step_prompt_markdown(artifact: ProgramArtifact, step_name: str) -> str:
    """One step's messages as Markdown, inputs shown as {name}."""
    program = artifact.build({})
    module = program.step(step_name).module
    placeholders = {f.name: "{" + f.name + "}" for f in module.prompt_signature.inputs}
    lines = [f"# Step `{step_name}` ({module.kind})", "",
             f"Signature: `{module.prompt_signature.render()}`", "",
             f"{len(module.demos)} demo(s). Inputs appear as {{name}} placeholders.", ""]
    for message in module.render(placeholders, program.adapter):
        lines += [f"## {message.role}", "", "````text", message.content, "````", ""]
    return "\n".join(lines)


def write_compiled(out: Path, artifact: ProgramArtifact, *, traces: Iterable[Trace] = ()) -> Path:
    """Write program.json, prompts/ and traces.jsonl into `out`; returns program.json's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = artifact.save(out)
    prompts = out / "prompts"
    prompts.mkdir(exist_ok=True)
    for old in prompts.glob("*.md"):
        old.unlink()
    for step in artifact.steps:
        (prompts / f"{step.name}.md").write_text(step_prompt_markdown(artifact, step.name), encoding="utf-8")
    with open(out / "traces.jsonl", "w", encoding="utf-8") as fh:
        for trace in traces:
            for s in trace.steps:
                fh.write(json.dumps({"step": s.step, "inputs": s.inputs, "outputs": s.outputs},
                                    ensure_ascii=False, sort_keys=True) + "\n")
    return path

"""`promptc export`: a compiled program's prompts as portable files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptc.cli.common import handle_errors, stderr, stdout

EXPORT_HELP = """Write a compiled program's prompts as files usable without promptc.

Formats: openai-messages (a JSON chat template per step, inputs as {placeholders}; filled with the documented value format it reproduces exactly the messages promptc sends), markdown (readable), jinja (Jinja2 chat templates), finetune-jsonl (chat-format training rows from the compile's successful traces, for an OpenAI-compatible fine-tuning API).

Examples:

  promptc export build/intent --format openai-messages --out exported/

  promptc export build/intent/program.json --format finetune-jsonl --out ft/
"""


@handle_errors
def export_command(
    artifact: Annotated[Path, typer.Argument(help="program.json or the compile folder.", show_default=False,
                                             metavar="ARTIFACT")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="openai-messages | markdown | jinja | finetune-jsonl")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
) -> None:
    from promptc.artifacts.export import export_report, load_traces
    from promptc.artifacts.program_file import load_artifact

    loaded = load_artifact(artifact)
    folder = artifact if artifact.is_dir() else artifact.parent
    report = export_report(loaded, fmt, out, traces=load_traces(folder))
    for note in report.notes:
        stderr.print(f"note: {note}", soft_wrap=True)
    stdout.print(f"wrote {len(report.files)} file(s) to {out} ({fmt})")

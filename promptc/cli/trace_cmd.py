"""`promptc trace`: the LM calls of one finished row, replayed from the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from promptc.cli.common import CacheDirOpt, ProgramOpt, handle_errors, stdout

if TYPE_CHECKING:
    from promptc.jobs.trace import RowTrace

TRACE_HELP = """Show the rendered messages, raw completion and parsed outputs of every LM call of one row of a `promptc run` output.

The row is replayed from the LM cache with the program and overrides recorded in OUTPUT.meta.json (written by `promptc run`): nothing is sent, nothing is paid. A row run with --no-cache cannot be replayed.

Examples:

  promptc trace out/math.jsonl --row 3

  promptc trace out/math.jsonl --row 3 --json
"""


@handle_errors
def trace_command(
    output: Annotated[Path, typer.Argument(help="A `promptc run` output file.", show_default=False)],
    row: Annotated[int, typer.Option("--row", "-r", min=1, help="The row's `_row` (its input line number).")],
    spec: Annotated[Path | None, typer.Option("--spec", help="The spec, if not the one the run recorded.")] = None,
    program: ProgramOpt = None,
    cache_dir: CacheDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the replay as JSON.")] = False,
) -> None:
    from promptc.jobs.trace import trace_row

    traced = trace_row(output, row, spec=spec, program=program, cache_dir=cache_dir)
    if as_json:
        typer.echo(traced.model_dump_json(indent=2))
        return
    _render(traced)


def _render(traced: RowTrace) -> None:
    facts = traced.record.provenance
    stdout.print(f"[bold]row {traced.row}[/] · {escape(facts.models_text())} · run {facts.timestamp} · "
                 f"promptc {facts.promptc_version}")
    stdout.print(f"inputs: {escape(json.dumps(traced.inputs, ensure_ascii=False))}")
    for i, step in enumerate(traced.steps, 1):
        where = f"step {step.step}" + (f", predictor {step.predictor}" if step.predictor else "")
        stdout.print(f"\n[bold cyan]── call {i}: {escape(where)} ({step.module}) ──[/]")
        for message in step.messages:
            stdout.print(f"[bold]{message.role}:[/]\n{escape(message.content)}")
        if step.completion is not None:
            stdout.print(f"[bold]completion[/] ({step.usage.prompt_tokens} prompt + "
                         f"{step.usage.completion_tokens} completion tokens):\n{escape(step.completion)}")
        shown = {"error": step.error} if step.error else step.outputs
        stdout.print(f"[bold]parsed:[/] {escape(json.dumps(shown, ensure_ascii=False, default=str))}")
    if traced.error:
        stdout.print(f"\n[red]the row failed:[/] {escape(traced.error)}")

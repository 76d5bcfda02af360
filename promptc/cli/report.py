"""`promptc report`: rebuild a compile folder's report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptc.cli.common import handle_errors, stdout

REPORT_HELP = """Rebuild the compile report (report.html) of a compile folder from its program.json and trials.jsonl.

`promptc compile` writes the report itself; this rebuilds it (after a crash, or for a folder compiled by an older promptc). One self-contained HTML file that opens from disk with no network: the optimization trajectory (score of every trial against cumulative calls and cost, full-dev and subset scores told apart, the best so far, a budget stop), per step the final instruction as a word diff against the original, the chosen demos and the runner-up instructions, every trial, and the provenance (models, data hashes, seed, optimizer settings, promptc version, time, calls, tokens, cost).

Exit status: 0 written; 2 not a compile folder (no program.json, or an unreadable one); 3 the report could not be written.

Examples:

  promptc report build/intent

  promptc report build/intent --out /tmp/intent-report.html
"""


@handle_errors
def report_command(
    folder: Annotated[Path, typer.Argument(help="The compile folder (holds program.json and trials.jsonl).",
                                           show_default=False, metavar="FOLDER")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write (default FOLDER/report.html).")] = None,
) -> None:
    from promptc.artifacts.compile_report import write_report

    stdout.print(f"wrote {write_report(folder, out)}")

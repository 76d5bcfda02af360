"""The `promptc` command: one sub-command per module of this package."""

from __future__ import annotations

import typer

from promptc.cli.batch_cmds import batch_app
from promptc.cli.cache_cmds import cache_app
from promptc.cli.compare import COMPARE_HELP, compare_command
from promptc.cli.compile import COMPILE_HELP, compile_command
from promptc.cli.eval import EVAL_HELP, eval_command
from promptc.cli.export import EXPORT_HELP, export_command
from promptc.cli.report import REPORT_HELP, report_command
from promptc.cli.run import RUN_HELP, run_command
from promptc.cli.spec_cmds import inspect_command, validate_command
from promptc.cli.trace_cmd import TRACE_HELP, trace_command

app = typer.Typer(
    name="promptc",
    help="promptc: a prompt compiler for LLM pipelines. Write YAML specs; run, evaluate and "
    "compile them against any OpenAI-compatible endpoint or the built-in offline LM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run", help=RUN_HELP)(run_command)
app.command("eval", help=EVAL_HELP)(eval_command)
app.command("compile", help=COMPILE_HELP)(compile_command)
app.command("compare", help=COMPARE_HELP)(compare_command)
app.command("export", help=EXPORT_HELP)(export_command)
app.command("report", help=REPORT_HELP)(report_command)
app.command("trace", help=TRACE_HELP)(trace_command)
app.command("validate")(validate_command)
app.command("inspect")(inspect_command)
app.add_typer(cache_app, name="cache")
app.add_typer(batch_app, name="batch")


def main() -> None:
    """Entry point of the `promptc` script."""
    app()

"""Options and output helpers shared by the commands."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar, overload

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from promptc.lm.base import Usage
    from promptc.runner.source import DataFile

P = ParamSpec("P")
R = TypeVar("R")

SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False, metavar="SPEC")]
# A list, so that a repeated --model is an error (`one_model`) instead of silently the last one.
ModelOpt = Annotated[list[str] | None, typer.Option(
    "--model", help="Override the default LM's model (`offline` = the built-in offline LM); "
    "to compare models, use `promptc compare`.")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="Override the default LM's OpenAI-compatible base URL (env: OPENAI_BASE_URL).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the LM response cache.")]
ProgramOpt = Annotated[Path | None, typer.Option(
    "--program", help="A compiled program artifact (program.json or its folder) to use instead "
    "of the spec's own instructions and demos; it must match the spec's steps and fields.")]
MaxPromptTokensOpt = Annotated[int | None, typer.Option(
    "--max-prompt-tokens", min=1, help="Refuse a row whose prompt is estimated above this many tokens "
    "(that row fails, nothing is sent; default: the spec's lm.max_prompt_tokens, 100000).")]
CacheDirOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Cache folder (env: PROMPTC_CACHE_DIR; default ~/.cache/promptc).")]

ColumnOpt = Annotated[list[str] | None, typer.Option(
    "--column", help="FIELD=COLUMN: read input or gold field FIELD from data column COLUMN (repeatable).",
    show_default=False)]
OtelEndpointOpt = Annotated[str | None, typer.Option(
    "--otel-endpoint", help="Export OpenTelemetry traces over OTLP/HTTP to this collector, e.g. "
    "http://localhost:4318 (env: OTEL_EXPORTER_OTLP_ENDPOINT; needs the `otel` extra).", show_default=False)]
OtelContentOpt = Annotated[bool, typer.Option(
    "--otel-content", help="Put prompts and completions in the exported spans (off: they may hold personal data).")]

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def cache_path(cache_dir: Path | None) -> Path | None:
    """The cache file for a `--cache-dir`, or None for the default location."""
    return cache_dir / "cache.sqlite" if cache_dir else None


@overload
def data_file(path: Path, columns: list[str] | None) -> Path | DataFile: ...
@overload
def data_file(path: None, columns: list[str] | None) -> None: ...
@overload
def data_file(path: Path | None, columns: list[str] | None) -> Path | DataFile | None: ...


def data_file(path: Path | None, columns: list[str] | None) -> Path | DataFile | None:
    """A data flag as the jobs take it: the path, or a DataFile when --column maps fields."""
    from promptc.runner.source import DataFile, parse_columns

    if path is None or not columns:
        return path
    return DataFile(path, parse_columns(columns))


def one_model(models: list[str] | None, command: str) -> str | None:
    """The --model of a one-model command; a repeated flag is a usage error, not the last one."""
    from promptc.errors import UsageError

    if models and len(set(models)) > 1:
        raise UsageError(f"{command} takes one --model, got {len(models)} ({', '.join(models)}); "
                         "to compare models on the same rows use: promptc compare SPEC "
                         + " ".join(f"--model {m}" for m in models))
    return models[0] if models else None


def interactive() -> bool:
    """Whether to draw live displays (a terminal, and not CI's dumb terminal)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def usage_line(usage: Usage) -> str:
    """One line of usage accounting, printed at the end of every command that calls an LM."""
    parts = [
        f"{usage.calls} LM call(s)",
        f"{usage.requests} HTTP request(s)",
        f"{usage.cache_hits} cache hit(s)",
        f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens",
    ]
    if usage.parse_retries:
        parts.append(f"{usage.parse_retries} parse re-ask(s)")
    if usage.cost:
        parts.append(f"${usage.cost:.4f}")
    return "usage: " + ", ".join(parts)


def fail(error: BaseException) -> typer.Exit:
    """Print a PromptcError the way users should see it; return the Exit to raise."""
    from promptc.errors import EXIT_USAGE, LMUnreachable, PromptcError

    code = error.exit_code if isinstance(error, PromptcError) else EXIT_USAGE
    message = str(error) or type(error).__name__
    first, _, rest = message.partition("\n")
    stderr.print(f"[bold red]error:[/] {escape(first)}", soft_wrap=True)
    if rest:
        stderr.print(escape(rest), soft_wrap=True)
    if isinstance(error, LMUnreachable):
        stderr.print("finished work is saved; rerun with --resume once the endpoint answers")
    return typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn promptc's exceptions into a message and its exit code (the CLI's one place for it)."""
    from promptc.errors import EXIT_INTERRUPTED, OutputError, PromptcError

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PromptcError as exc:
            raise fail(exc) from None
        except OSError as exc:  # a file operation no layer above expected to fail: still no traceback
            raise fail(OutputError.from_os(exc.filename or "a file", exc, doing="access")) from None
        except KeyboardInterrupt:
            stderr.print("[yellow]interrupted[/]: finished work is saved; rerun with --resume to continue")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper

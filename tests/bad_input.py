"""Shared by the bad-input tests: a small spec, and the one assertion every case makes.

Every hostile or malformed input must end with the documented exit code, a message that
names the file and line (or the flag, or the path), and never a Python traceback.

`cli` runs the command in-process (typer's CliRunner: a fraction of a subprocess's start-up
cost, which matters for this many cases) and fails the test on any exception other than
the exit itself, the exception that would have been a traceback; a few cases also go
through the real entry point (`tests.conftest.run_cli`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SPEC = """version: 1
name: qa
lm: {model: offline}
signatures:
  solve:
    inputs: {question: str, tags: "list[str]", level: int, kind: "Literal['sum', 'product']"}
    outputs:
      answer: {type: float, desc: the number}
program:
  - step: solve
    signature: solve
metric:
  - {type: numeric_match, field: answer}
"""

GOOD_ROW = '{"question": "What is 2+3?", "tags": ["add"], "level": 1, "kind": "sum", "answer": 5}'


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def rows(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`promptc ARGS` in-process; an escaping exception (a would-be traceback) fails the test."""
    from typer.testing import CliRunner

    from promptc.cli.app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"promptc {' '.join(args)[:200]} raised "
                             f"{type(result.exception).__name__}: {result.exception}") from result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def assert_fails(result: subprocess.CompletedProcess[str], code: int, *named: str) -> None:
    """Exit `code`, no traceback anywhere, and every `named` text (file:line, flag, path) in stderr."""
    everything = result.stdout + result.stderr
    assert result.returncode == code, f"exit {result.returncode}, wanted {code}\n{everything[-3000:]}"
    assert "Traceback" not in everything, everything[-3000:]
    for text in named:
        assert text in result.stderr, f"{text!r} not in stderr:\n{result.stderr[-3000:]}"

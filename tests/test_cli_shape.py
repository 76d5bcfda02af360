"""The CLI only maps flags to library calls and renders results: no long functions there."""

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parent.parent / "promptc" / "cli"
MAX_LINES = 60


def test_no_cli_function_is_longer_than_60_lines():
    long = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = (node.end_lineno or node.lineno) - start + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "move the work into promptc.jobs: " + ", ".join(long)


def test_jobs_do_not_import_the_cli():
    jobs = CLI.parent / "jobs"
    for path in jobs.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("promptc.cli"), f"{path.name} imports {node.module}"

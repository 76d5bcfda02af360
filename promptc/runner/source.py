"""Where a job reads rows from: a data file (JSONL, CSV or Parquet) or rows in memory.

Every reader yields the same `Line`s (number, value or problem, raw text), so validation,
resume and error messages do not care what the file was. `DataFile` adds a column
mapping for files whose column names are not the program's field names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.errors import UsageError
from promptc.runner.jsonl import Line, iter_jsonl
from promptc.runner.tables import is_csv, is_parquet, iter_csv, iter_parquet


@dataclass(frozen=True)
class DataFile:
    """A data file and how its columns map to field names (`{field: column}`)."""

    path: Path
    columns: Mapping[str, str] = field(default_factory=dict)
    label: str | None = None  # how messages name it, if not by its path (e.g. `<stdin>`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


# What a job reads rows from: a file, or rows already in memory (the Python API).
RowSource = Path | DataFile | Sequence[Mapping[str, Any]]


def source_path(source: RowSource) -> Path | None:
    """The file behind a source, or None for rows in memory."""
    if isinstance(source, DataFile):
        return source.path
    return source if isinstance(source, Path) else None


def source_label(source: RowSource) -> str:
    """How messages name a row source: the file, or `rows` for in-memory rows."""
    if isinstance(source, DataFile) and source.label:
        return source.label
    path = source_path(source)
    return str(path) if path is not None else "rows"


def iter_lines(source: RowSource) -> Iterator[Line]:
    """Every row of a source, numbered from 1 (a file's line or record number)."""
    if isinstance(source, DataFile):
        lines = iter_file(source.path)
        yield from (_renamed(line, source.columns) for line in lines) if source.columns else lines
    elif isinstance(source, Path):
        yield from iter_file(source)
    else:
        for number, row in enumerate(source, 1):
            if isinstance(row, Mapping):
                yield Line(number, dict(row), None, "")
            else:
                yield Line(number, None, f"expected a mapping, got {type(row).__name__}", repr(row))


def iter_file(path: Path) -> Iterator[Line]:
    """The rows of a JSONL, CSV or Parquet file, chosen by its suffix."""
    if is_csv(path):
        for number, value, problem, raw in iter_csv(path):
            yield Line(number, value, problem, raw, text=True)
    elif is_parquet(path):
        for number, row in iter_parquet(path):
            yield Line(number, row, None, "")
    else:
        yield from iter_jsonl(path)


def _renamed(line: Line, columns: Mapping[str, str]) -> Line:
    if line.value is None:
        return line
    value = dict(line.value)
    for name, column in columns.items():
        if column in value:
            value[name] = value.pop(column)
    return Line(line.number, value, line.error, line.raw or json.dumps(line.value, default=str), line.text)


def parse_columns(pairs: Sequence[str]) -> dict[str, str]:
    """`FIELD=COLUMN` flags as a mapping; UsageError names a malformed one."""
    columns: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise UsageError(f"--column {pair!r}: expected FIELD=COLUMN, e.g. --column question=text")
        if name.strip() in columns:
            raise UsageError(f"--column maps field '{name.strip()}' twice")
        columns[name.strip()] = column.strip()
    return columns

"""Streaming JSONL reading with line numbers, and crash-safe appending.

Files are read line by line in binary so that memory stays flat however large the
file is, and so a bad byte or a bad line is reported with its line number instead
of failing the whole file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from promptc.errors import InputError


@dataclass
class Line:
    """One non-blank line of a JSONL file: its number and either a value or what is wrong."""

    number: int
    value: dict[str, Any] | None
    error: str | None = None
    raw: str = ""


def iter_jsonl(path: Path) -> Iterator[Line]:
    """Yield every non-blank line as a parsed object or an error, never raising for content."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a JSONL file", file=str(path)) from None
    with fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Line(number, None, f"not valid UTF-8 (byte {exc.start + 1} of the line); "
                           "re-encode the file as UTF-8", raw.decode("utf-8", "replace").rstrip("\n"))
                continue
            text = text.lstrip("\ufeff") if number == 1 else text
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Line(number, None, f"not valid JSON: {exc.msg} (column {exc.colno})", text.rstrip("\n"))
                continue
            if not isinstance(value, dict):
                yield Line(number, None, f"expected a JSON object, got {type(value).__name__}",
                           text.rstrip("\n"))
                continue
            yield Line(number, value, None, text.rstrip("\n"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A whole (small) JSONL file as objects; InputError at the first bad line."""
    rows = []
    for line in iter_jsonl(path):
        if line.error:
            raise InputError(line.error, file=str(path), line=line.number)
        assert line.value is not None
        rows.append(line.value)
    return rows


class JsonlAppender:
    """Appends one JSON object per line and flushes each, so a crash loses at most one row."""

    def __init__(self, path: Path, *, fsync: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[str] = open(path, "a", encoding="utf-8")
        self._fsync = fsync

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_tail(path: Path) -> int:
    """Cut a partial last line left by a crash. Returns the number of bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline; everything after it is an unfinished write.
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            block = fh.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                fh.truncate(keep)
                return size - keep
            pos = start
        fh.truncate(0)
        return size

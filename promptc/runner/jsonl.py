"""Streaming JSONL reading with line numbers, and crash-safe appending.

Files are read line by line in binary so that memory stays flat however large the
file is, and so a bad byte or a bad line is reported with its line number instead
of failing the whole file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptc.errors import InputError, OutputError, output_errors
from promptc.runner.output_paths import ensure_parent


@dataclass
class Line:
    """One non-blank line of a JSONL file: its number and either a value or what is wrong."""

    number: int
    value: dict[str, Any] | None
    error: str | None = None
    raw: str = ""
    text: bool = False  # every value is text (CSV): typed fields are parsed from it, not type-checked


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
            value, error = parse_object(text)
            yield Line(number, value, error, text.rstrip("\n"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (write null or a string)")


# An escaped UTF-16 surrogate: valid JSON, but alone it is no character and cannot be written.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """One line's JSON object, or what is wrong with it (never raises for content).

    Hostile lines are errors of their line, not crashes: nesting deeper than the parser's
    stack, integers past Python's digit limit, NaN/Infinity, and lone surrogates.
    """
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, "nested too deeply (more arrays or objects inside each other than can be read)"
    except ValueError as exc:  # parse_constant, or an integer with too many digits
        return None, f"not valid JSON: {str(exc).split(';')[0]}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {_json_kind(value)}"
    if _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        return None, "a string holds an unpaired UTF-16 surrogate (\\uD800-\\uDFFF); it is not text"
    return value, None


def _json_kind(value: Any) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


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
    """Appends one JSON object per line, each line written whole with no buffer in between,
    so a crash loses at most the row being written.

    A write that fails (disk full, I/O error) is rolled back to the end of the last whole
    line when the target is a regular file, then raised as an `OutputError` naming the file
    and the OS error: the rows already written stay valid JSONL, and `--resume` goes on
    from them. A device or FIFO (`-o /dev/stdout`) is written into as it is.
    """

    def __init__(self, path: Path, *, fsync: bool = False):
        ensure_parent(path)
        with output_errors(path, "open"):
            self._fh = open(path, "ab", buffering=0)
        self.path = path
        self._fsync = fsync
        mode = os.fstat(self._fh.fileno())
        self._end: int | None = mode.st_size if stat.S_ISREG(mode.st_mode) else None

    def write(self, row: dict[str, Any]) -> None:
        self.write_line(json.dumps(row, ensure_ascii=False, default=str))

    def write_line(self, text: str) -> None:
        """Append `text` (one JSON document, no newline) as a line."""
        line = (text + "\n").encode("utf-8")
        data = memoryview(line)
        try:
            while data:
                written = self._fh.write(data)
                if not written:  # cannot happen on a blocking file; never loop forever on it
                    raise OSError(errno.EIO, "the write made no progress")
                data = data[written:]
            if self._fsync:
                os.fsync(self._fh.fileno())
        except OSError as exc:
            self._rollback()
            raise OutputError.from_os(self.path, exc) from exc
        if self._end is not None:
            self._end += len(line)

    def _rollback(self) -> None:
        """Cut what a failed write left of its line (truncating frees space on a full disk)."""
        if self._end is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fh.fileno(), self._end)

    def close(self) -> None:
        with output_errors(self.path, "close"):
            self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_tail(path: Path) -> int:
    """Cut a partial last line left by a crash. Returns the number of bytes removed."""
    with output_errors(path, "repair"):
        return _cut_partial_line(path)


def _cut_partial_line(path: Path) -> int:
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

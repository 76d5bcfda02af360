"""Labelled data for compile: a JSONL file or rows in memory, as Examples; splits; digests."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptc.core.example import Example
from promptc.core.program import Program
from promptc.errors import InputError, UsageError
from promptc.runner.job import MAX_REPORTED, check_row
from promptc.runner.source import DataFile, RowSource, iter_lines, source_label, source_path

DEV_FRACTION = 0.3

# Data as a caller gives it: a file (JSONL, CSV, Parquet; "-" for JSONL on stdin), a
# DataFile with a column mapping, or rows (dicts or Examples).
DataLike = str | Path | DataFile | Sequence[Mapping[str, Any]]
STDIN = "-"
_spooled: dict[str, Path] = {}


def as_source(data: DataLike) -> RowSource:
    """A path stays a file to stream; rows stay in memory; stdin is spooled to a file."""
    if isinstance(data, DataFile):
        if str(data.path) == STDIN:
            return DataFile(stdin_file(), data.columns, label="<stdin>")
        return data
    if isinstance(data, (str, Path)):
        return DataFile(stdin_file(), label="<stdin>") if str(data) == STDIN else Path(data)
    return data


def stdin_file() -> Path:
    """Standard input copied to a temporary file, once per process.

    A job reads its input twice (validation, then the run), and stdin can be read only
    once; the copy streams, so memory stays flat. It is removed when the process exits.
    """
    if STDIN not in _spooled:
        fd, name = tempfile.mkstemp(prefix="promptc-stdin-", suffix=".jsonl")
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
        atexit.register(os.unlink, name)
        _spooled[STDIN] = Path(name)
    return _spooled[STDIN]


def load_examples(data: DataLike, program: Program) -> list[Example]:
    """Every labelled row as an Example; InputError lists bad rows."""
    source = as_source(data)
    label = source_label(source)
    examples: list[Example] = []
    problems: list[str] = []
    bad = 0
    for line in iter_lines(source):
        _, problem = check_row(program, line.value, line.error, text=line.text)
        if problem is not None:
            bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(f"{label}:{line.number}: {problem}")
            continue
        assert line.value is not None
        examples.append(Example(line.value, input_keys=program.input_names))
    if bad:
        raise InputError("\n".join([*problems, f"{bad} bad line(s) in {label}"]))
    if not examples:
        raise InputError("the file has no rows", file=label)
    return examples


def split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded train/dev split for when no dev set is given."""
    if len(examples) < 4:
        raise UsageError(f"{len(examples)} training example(s) are too few to split off a dev set; pass --dev")
    order = random.Random(seed).sample(examples, len(examples))
    n_dev = max(2, round(len(order) * DEV_FRACTION))
    return order[n_dev:], order[:n_dev]


def sha256(data: RowSource | None) -> str | None:
    """A digest of a file's bytes, or of in-memory rows as canonical JSON."""
    if data is None:
        return None
    digest = hashlib.sha256()
    path = source_path(data)
    if path is not None:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if isinstance(data, DataFile) and data.columns:  # another mapping is other data
            digest.update(json.dumps(dict(data.columns), sort_keys=True).encode("utf-8"))
    elif not isinstance(data, (Path, DataFile)):
        for row in data:
            digest.update(json.dumps(dict(row), sort_keys=True, default=str).encode("utf-8") + b"\n")
    return digest.hexdigest()

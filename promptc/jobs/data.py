"""Labelled data for compile: a JSONL file or rows in memory, as Examples; splits; digests."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptc.core.example import Example
from promptc.core.program import Program
from promptc.errors import InputError, UsageError
from promptc.runner.job import MAX_REPORTED, check_row
from promptc.runner.jsonl import RowSource, iter_lines, source_label

DEV_FRACTION = 0.3

# Data as a caller gives it: a JSONL path, or rows (dicts or Examples).
DataLike = str | Path | Sequence[Mapping[str, Any]]


def as_source(data: DataLike) -> RowSource:
    """A path stays a file to stream; rows stay in memory."""
    return Path(data) if isinstance(data, (str, Path)) else data


def load_examples(data: DataLike, program: Program) -> list[Example]:
    """Every labelled row as an Example; InputError lists bad rows."""
    source = as_source(data)
    label = source_label(source)
    examples: list[Example] = []
    problems: list[str] = []
    bad = 0
    for line in iter_lines(source):
        _, problem = check_row(program, line.value, line.error)
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
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for row in data:
            digest.update(json.dumps(dict(row), sort_keys=True, default=str).encode("utf-8") + b"\n")
    return digest.hexdigest()

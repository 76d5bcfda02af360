"""`OUTPUT.meta.json`: what a `promptc run` ran with, written beside its output.

A finished output file then says which models (and endpoint hosts, never keys) produced
it, with which promptc and when; and `promptc trace` can replay one of its rows with the
same program, overrides and cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

from promptc.errors import OutputError, UsageError
from promptc.evaluation.records import Provenance
from promptc.jobs.program import LoadedProgram
from promptc.jobs.provenance import provenance
from promptc.runner.output_paths import ensure_parent

SUFFIX = ".meta.json"


class RunRecord(BaseModel):
    """The facts of one run, as recorded next to its output."""

    provenance: Provenance
    spec: str | None = None
    program: str | None = Field(default=None, description="the compiled artifact, if one was used")
    model_override: str | None = None
    base_url_override: str | None = None
    cache_path: str | None = None
    cache: bool = True


def run_record(source: LoadedProgram) -> RunRecord:
    options = source.options
    spec = source.spec.path if source.spec is not None else None
    return RunRecord(
        provenance=provenance(source),
        spec=str(Path(spec).resolve()) if spec else None,
        program=str(source.artifact.resolve()) if source.artifact is not None else None,
        model_override=options.model if options else None,
        base_url_override=options.base_url if options else None,
        cache_path=str(options.cache_path.resolve()) if options and options.cache_path else None,
        cache=options.cache if options else True)


def meta_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def write_run_record(output: Path, record: RunRecord) -> Path:
    """Write `OUTPUT.meta.json` (atomically); OutputError names the path if it cannot."""
    path = meta_path(output)
    tmp = path.with_name(path.name + ".tmp")
    ensure_parent(path)
    try:
        tmp.write_text(json.dumps(record.model_dump(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError.from_os(path, exc) from None
    return path


def read_run_record(output: Path) -> RunRecord:
    path = meta_path(output)
    try:
        return RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} not found: it is written by `promptc run`; for other files pass "
                         "the SPEC (and --program) the rows came from") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a promptc run record ({exc})") from None

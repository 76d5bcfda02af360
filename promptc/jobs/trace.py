"""`promptc.trace_row`: replay one finished row of a run and show each LM call.

The `inspect_history` of the command line. The output row holds the row's inputs, and
`OUTPUT.meta.json` the program and overrides it ran with; the row is run again from the
LM cache only (`--offline`), so nothing is sent and nothing is paid: the messages,
completions and parses are those of the original run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from promptc.core.trace import TraceStep
from promptc.errors import FATAL_LM_ERRORS, OfflineCacheMiss, StepFailed, UsageError
from promptc.jobs.program import lm_options, load_source
from promptc.jobs.run_record import RunRecord, read_run_record


class RowTrace(BaseModel):
    """One row's LM calls, replayed."""

    row: int
    inputs: dict[str, Any]
    output: dict[str, Any] = Field(description="the row as the run wrote it")
    steps: list[TraceStep]
    error: str | None = None
    record: RunRecord = Field(description="what the run recorded in OUTPUT.meta.json")


def trace_row(output: str | Path, row: int, *, spec: str | Path | None = None,
              program: str | Path | None = None, cache_dir: str | Path | None = None) -> RowTrace:
    """Replay row `row` (its `_row`) of a `promptc run` output from the cache."""
    output = Path(output)
    facts = read_run_record(output)
    record = find_row(output, row)
    spec_path = Path(spec) if spec else (Path(facts.spec) if facts.spec else None)
    artifact = Path(program) if program else (Path(facts.program) if facts.program else None)
    options = lm_options(model=facts.model_override, base_url=facts.base_url_override, offline=True,
                         cache_dir=cache_dir or (Path(facts.cache_path).parent if facts.cache_path else None))
    with load_source(spec_path, artifact, options) as source:
        inputs = {name: _input(record, name) for name in source.program.input_names}
        steps, error = asyncio.run(_replay(source.program, inputs))
    return RowTrace(row=row, inputs=inputs, output=record, steps=steps, error=error, record=facts)


async def _replay(program: Any, inputs: dict[str, Any]) -> tuple[list[TraceStep], str | None]:
    try:
        prediction = await program.acall(inputs)
        return prediction.trace.steps, None
    except OfflineCacheMiss:
        raise UsageError("this row's LM calls are not in the cache (was the run made with --no-cache, "
                         "or another --cache-dir?): nothing was sent") from None
    except FATAL_LM_ERRORS:
        raise
    except StepFailed as exc:
        steps = exc.trace.steps if hasattr(exc.trace, "steps") else []
        return list(steps), str(exc)
    finally:
        await program.aclose()


def find_row(output: Path, row: int) -> dict[str, Any]:
    """The output row (JSONL or Parquet) whose `_row` is `row`; UsageError names the file if none."""
    from promptc.errors import InputError
    from promptc.runner.source import iter_lines

    try:
        for line in iter_lines(output):
            if line.value is not None and line.value.get("_row") == row:
                return line.value
    except InputError as exc:
        raise UsageError(str(exc)) from None
    raise UsageError(f"{output}: no row with `_row` {row}")


def _input(record: dict[str, Any], name: str) -> Any:
    moved = record.get("_input") or {}
    if name in moved:  # an input named like an output was kept under `_input`
        return moved[name]
    if name not in record:
        raise UsageError(f"row {record.get('_row')} has no input field '{name}': was it written by this program?")
    return record[name]

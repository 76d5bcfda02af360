"""The `run` job: validate the input, resume what is done, run the rest, append results.

Output rows are JSON objects: `_row` (the input line number), the input's fields,
the program's outputs (an input field of the same name moves to `_input`), `_usage`,
and `_error` when the row failed. Rows are appended in input order and flushed one by
one; `--resume` cuts a half-written last line, drops failed rows (they are retried)
and runs only the rows that are missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from promptc.core.program import Program
from promptc.errors import InputError, UsageError
from promptc.runner.batch import BatchStats, Engine, RowResult, WorkItem, execute
from promptc.runner.jsonl import JsonlAppender, RowSource, iter_lines, repair_tail, source_label

MAX_REPORTED = 20


@dataclass
class InputScan:
    """What a validation pass over the input found."""

    valid: int = 0
    invalid: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_REPORTED

    def error(self, source: RowSource) -> InputError:
        path = source_label(source)
        lines = [f"{path}:{n}: {msg}" for n, msg in self.problems]
        more = self.invalid - len(self.problems)
        if more > 0:
            lines.append(f"... and {more} more bad line(s)")
        lines.append(f"{self.invalid} bad line(s) in {path}; fix them, or pass --on-error skip "
                     "to write them to a rejects file and run the rest")
        return InputError("\n".join(lines))


def check_row(program: Program, value: dict[str, Any] | None, error: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Typed program inputs for a parsed line, or the reason it can't run."""
    if error is not None or value is None:
        return None, error
    try:
        return program.coerce_inputs(value), None
    except ValueError as exc:
        return None, str(exc)


def scan_input(source: RowSource, program: Program, limit: int | None = None) -> InputScan:
    """Validate every row before any LM call (streaming; keeps only the first problems)."""
    scan = InputScan()
    seen = 0
    for line in iter_lines(source):
        if limit is not None and seen >= limit:
            break
        seen += 1
        _, problem = check_row(program, line.value, line.error)
        if problem is None:
            scan.valid += 1
        else:
            scan.invalid += 1
            if len(scan.problems) < MAX_REPORTED:
                scan.problems.append((line.number, problem))
    if seen == 0:
        raise InputError("the input file has no rows (it is empty or only blank lines)",
                         file=source_label(source))
    return scan


def prepare_resume(output: Path, *, row_key: str = "_row", error_key: str = "_error",
                   keep: Callable[[dict[str, Any]], None] | None = None) -> set[int]:
    """Rows already done in `output`; cuts a partial last line and drops failed rows.

    `keep`, if given, is called with every row that stays (eval reads its records back).
    """
    if not output.exists():
        return set()
    repair_tail(output)
    done: set[int] = set()
    kept_all = True
    tmp = output.with_name(output.name + ".resume-tmp")
    with open(output, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for number, text in enumerate(src, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                row_id = row[row_key]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UsageError(f"{output}:{number}: not a promptc output row (no `{row_key}`); "
                                 "refusing to resume into a file promptc did not write") from None
            if row.get(error_key) is not None or row_id in done:
                kept_all = False
                continue
            done.add(row_id)
            if keep is not None:
                keep(row)
            dst.write(text if text.endswith("\n") else text + "\n")
    if kept_all:
        tmp.unlink()
    else:
        os.replace(tmp, output)  # atomic: a crash here leaves either file whole
    return done


def output_record(result: RowResult) -> dict[str, Any]:
    """The output row for a finished item."""
    record: dict[str, Any] = {"_row": result.item.row}
    outputs = dict(result.prediction or {})
    moved = {k: v for k, v in result.item.record.items() if k in outputs or k.startswith("_")}
    record.update({k: v for k, v in result.item.record.items() if k not in moved})
    if moved:
        record["_input"] = moved
    record.update(outputs)
    usage = result.usage
    record["_usage"] = usage.model_dump(exclude={"cost"} if not usage.cost else None)
    record["_error"] = result.error
    return record


@dataclass
class RunJob:
    """Everything `promptc run` needs, minus the terminal."""

    program: Program
    input: RowSource
    output: Path
    resume: bool = False
    overwrite: bool = False
    limit: int | None = None
    on_error: Literal["fail", "skip"] = "fail"
    rejects: Path | None = None
    concurrency: int = 16
    # How finished rows are recognized on --resume (eval writes `row`/`error` records).
    row_key: str = "_row"
    error_key: str = "_error"
    keep: Callable[[dict[str, Any]], None] | None = None
    # What runs the rows: `execute` (live), or one with its signature (`run --batch`).
    engine: Engine = execute

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.output.with_name(self.output.stem + ".rejects.jsonl")

    def prepare(self) -> tuple[InputScan, set[int]]:
        """Validate input and output files; no LM call happens here."""
        if isinstance(self.input, Path) and self.input.resolve() == self.output.resolve():
            raise UsageError("--output must differ from --input")
        scan = scan_input(self.input, self.program, self.limit)
        if scan.invalid and self.on_error == "fail":
            raise scan.error(self.input)
        if self.output.exists() and self.output.stat().st_size > 0 and not (self.resume or self.overwrite):
            raise UsageError(f"{self.output} already exists: pass --resume to complete it, "
                             "or --overwrite to start again")
        if self.overwrite and self.output.exists():
            self.output.unlink()
        done = (prepare_resume(self.output, row_key=self.row_key, error_key=self.error_key, keep=self.keep)
                if self.resume else set())
        return scan, done

    def items(self, done: set[int], rejects: JsonlAppender | None) -> Iterator[WorkItem]:
        seen = 0
        for line in iter_lines(self.input):
            if self.limit is not None and seen >= self.limit:
                return
            seen += 1
            if line.number in done:
                continue
            inputs, problem = check_row(self.program, line.value, line.error)
            if problem is not None:
                if rejects is not None:
                    rejects.write({"_row": line.number, "_error": problem, "_raw": line.raw})
                continue
            assert inputs is not None and line.value is not None
            yield WorkItem(row=line.number, inputs=inputs, record=line.value)

    async def run(self, done: set[int], *, total: int | None = None,
                  on_update: Callable[[BatchStats], None] | None = None) -> BatchStats:
        rejects = None
        if self.on_error == "skip":
            # Bad lines are never "done", so every run rewrites the whole rejects file.
            self.rejects_path.unlink(missing_ok=True)
            rejects = JsonlAppender(self.rejects_path)
        stats = BatchStats(total=total)
        try:
            with JsonlAppender(self.output) as out:
                await self.engine(self.program, self.items(done, rejects),
                                  lambda r: out.write(output_record(r)),
                                  concurrency=self.concurrency, stats=stats, on_update=on_update)
        finally:
            if rejects is not None:
                rejects.close()
            await self.program.aclose()  # this loop's connections; they reopen on next use
        return stats

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
from promptc.errors import InputError, OutputError, UsageError, output_errors
from promptc.runner.batch import BatchStats, Engine, RowResult, WorkItem, execute
from promptc.runner.jsonl import JsonlAppender, repair_tail
from promptc.runner.output_paths import (
    REGULAR,
    empty_regular,
    kind,
    refuse_directory,
    refuse_unless_regular,
)
from promptc.runner.source import RowSource, iter_lines, source_label, source_path
from promptc.runner.tables import is_parquet, journal_of, journal_to_parquet, parquet_to_journal

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


# A job's own check of a parsed row beyond the program's inputs (eval: the gold fields).
RowCheck = Callable[[dict[str, Any]], "str | None"]


def check_row(program: Program, value: dict[str, Any] | None, error: str | None,
              check: RowCheck | None = None, *, text: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """Typed program inputs for a parsed line, or the reason it can't run.

    JSON values are type-checked strictly; `text` values (CSV) are parsed into the types.
    """
    if error is not None or value is None:
        return None, error
    try:
        inputs = program.coerce_inputs(value, strict=not text)
    except ValueError as exc:
        return None, str(exc)
    problem = check(value) if check is not None else None
    return (None, problem) if problem else (inputs, None)


def scan_input(source: RowSource, program: Program, limit: int | None = None,
               check: RowCheck | None = None) -> InputScan:
    """Validate every row before any LM call (streaming; keeps only the first problems)."""
    scan = InputScan()
    seen = 0
    for line in iter_lines(source):
        if limit is not None and seen >= limit:
            break
        seen += 1
        _, problem = check_row(program, line.value, line.error, check, text=line.text)
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


@dataclass
class Resumed:
    """What `prepare_resume` found in an output file."""

    done: set[int] = field(default_factory=set)
    cut: int = 0  # bytes of a half-written last line, cut
    retried: int = 0  # failed rows, dropped to run again

    def notes(self, output: Path) -> list[str]:
        notes = []
        if self.cut:
            notes.append(f"{output}: cut a half-written last line ({self.cut} bytes) left by an "
                         "interrupted run; that row runs again")
        if self.retried:
            notes.append(f"{output}: {self.retried} failed row(s) dropped; they run again")
        return notes


def prepare_resume(output: Path, *, row_key: str = "_row", error_key: str = "_error",
                   keep: Callable[[dict[str, Any]], None] | None = None) -> Resumed:
    """Rows already done in `output`; cuts a partial last line and drops failed rows.

    `keep`, if given, is called with every row that stays (eval reads its records back).
    """
    if not output.exists():
        return Resumed()
    resumed = Resumed(cut=repair_tail(output))
    done, rewrite = resumed.done, False
    tmp = output.with_name(output.name + ".resume-tmp")
    with output_errors(tmp), open(output, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for number, text in enumerate(src, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                row_id = row[row_key]
            except (ValueError, KeyError, TypeError, RecursionError):
                tmp.unlink()
                raise UsageError(f"{output}:{number}: not a promptc output row (no `{row_key}`); "
                                 "refusing to resume into a file promptc did not write") from None
            if row.get(error_key) is not None or row_id in done:
                resumed.retried += row.get(error_key) is not None
                rewrite = True
                continue
            done.add(row_id)
            if keep is not None:
                keep(row)
            dst.write(text if text.endswith("\n") else text + "\n")
    with output_errors(output, "rewrite"):
        if rewrite:
            os.replace(tmp, output)  # atomic: a crash here leaves either file whole
        else:
            tmp.unlink()
    return resumed


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
    notes: list[str] = field(default_factory=list)  # what prepare() repaired, for the user
    check: RowCheck | None = None
    # What runs the rows: `execute` (live), or one with its signature (`run --batch`).
    engine: Engine = execute

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.output.with_name(self.output.stem + ".rejects.jsonl")

    def prepare(self) -> tuple[InputScan, set[int]]:
        """Validate input and output files; no LM call happens here."""
        path = source_path(self.input)
        if path is not None and path.resolve() == self.output.resolve():
            raise UsageError("--output must differ from --input")
        scan = scan_input(self.input, self.program, self.limit, self.check)
        if scan.invalid and self.on_error == "fail":
            raise scan.error(self.input)
        self._check_output()
        if self.overwrite:
            for path in dict.fromkeys((self.output, self.journal)):
                empty_regular(path, "--overwrite only empties a regular file, and never removes "
                              "anything else; without --overwrite promptc writes into it")
        if self.resume and self.journal != self.output and self.output.exists() and not self.journal.exists():
            parquet_to_journal(self.output, self.journal)  # a finished Parquet output, to go on from
        resumed = (prepare_resume(self.journal, row_key=self.row_key, error_key=self.error_key, keep=self.keep)
                   if self.resume else Resumed())
        self.notes = resumed.notes(self.journal)
        if self.on_error == "skip":
            refuse_directory(self.rejects_path, "--rejects")
        return scan, resumed.done

    def _check_output(self) -> None:
        """A directory is never an output; a device or FIFO is written into as it is."""
        refuse_directory(self.output, "--output")
        for path in dict.fromkeys((self.output, self.journal)):
            if self.resume:
                refuse_unless_regular(path, "--resume reads and rewrites a regular file")
            if kind(path) == REGULAR and path.stat().st_size > 0 and not (self.resume or self.overwrite):
                raise UsageError(f"{path} already exists: pass --resume to complete it, "
                                 "or --overwrite to start again")

    @property
    def journal(self) -> Path:
        """Where rows are appended: the output itself, or the JSONL journal of a Parquet output."""
        return journal_of(self.output) if is_parquet(self.output) else self.output

    def items(self, done: set[int], rejects: JsonlAppender | None) -> Iterator[WorkItem]:
        seen = 0
        for line in iter_lines(self.input):
            if self.limit is not None and seen >= self.limit:
                return
            seen += 1
            if line.number in done:
                continue
            inputs, problem = check_row(self.program, line.value, line.error, self.check, text=line.text)
            if problem is not None:
                if rejects is not None:
                    rejects.write({"_row": line.number, "_error": problem, "_raw": line.raw})
                continue
            assert inputs is not None and line.value is not None
            yield WorkItem(row=line.number, inputs=inputs, record=line.value)

    async def run(self, done: set[int], *, total: int | None = None,
                  on_update: Callable[[BatchStats], None] | None = None) -> BatchStats:
        rejects = None
        stats = BatchStats(total=total)
        try:
            if self.on_error == "skip":
                # Bad lines are never "done", so every run rewrites the whole rejects file
                # (a device such as /dev/null is written into, never removed).
                if kind(self.rejects_path) == REGULAR:
                    empty_regular(self.rejects_path, "--rejects")
                rejects = JsonlAppender(self.rejects_path)
            with JsonlAppender(self.journal) as out:
                await self.engine(self.program, self.items(done, rejects),
                                  lambda r: out.write(output_record(r)),
                                  concurrency=self.concurrency, stats=stats, on_update=on_update)
            if self.journal != self.output:
                journal_to_parquet(self.journal, self.output)
        except OutputError as exc:
            raise resume_hint(exc, self.journal, len(done) + stats.done) from exc.__cause__
        finally:
            if rejects is not None:
                rejects.close()
            await self.program.aclose()  # this loop's connections; they reopen on next use
        return stats


def resume_hint(error: OutputError, output: Path, kept: int) -> OutputError:
    """`error`, telling what is kept and how to go on once the cause is fixed."""
    if kind(output) != REGULAR:
        return error
    return OutputError(f"{error}\n{kept} complete row(s) are kept in {output}; once that is fixed, "
                       "rerun with --resume to run the rest", row=error.row, path=error.path)

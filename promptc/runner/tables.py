"""Rows from where data lives: CSV and Parquet files, with the line numbers messages need.

CSV is read with the standard library, one record at a time; its values are strings
(the signature's types coerce them, as for JSONL). Parquet is read a record batch at a
time through pyarrow (the `tables` extra: pandas reads Parquet with it too, but only a
whole file at once), so memory stays flat for a file of any size. A Parquet "line" is
the row's 1-based position in the file.

Parquet cannot be appended to, so a Parquet *output* is written the crash-safe way:
rows go to a JSONL journal beside it (`out.parquet.jsonl`), appended and flushed one by
one like any output; when the job ends the journal becomes the Parquet file (written to
a temporary name, then renamed) and is removed. `--resume` continues the journal, or
unpacks a finished Parquet file into one.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from promptc.errors import InputError, OutputError, UsageError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
BATCH_ROWS = 8192  # rows per Parquet record batch read, and per row group written
INSTALL_HINT = "Parquet needs the `tables` extra: pip install '.[tables]' (from the promptc repository)"


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in CSV_SUFFIXES


def iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None, str]]:
    """(line number, row, problem, raw) per CSV record; the header names the fields."""
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a CSV file", file=str(path)) from None
    with fh:
        reader = csv.reader(fh, strict=True)  # bad quoting is an error, not a silent merge
        try:
            header = next(reader, None)
            if header is None:
                return
            names = [h.strip() for h in header]
            _check_header(path, names)
            number = reader.line_num + 1
            for record in reader:
                raw = ",".join(record)
                if not any(cell.strip() for cell in record):
                    number = reader.line_num + 1
                    continue
                if len(record) != len(names):
                    yield number, None, f"has {len(record)} column(s), the header has {len(names)}", raw
                else:
                    yield number, dict(zip(names, record, strict=True)), None, raw
                number = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 ({exc.reason}); re-encode the file as UTF-8", file=str(path)) from None
        except csv.Error as exc:
            raise InputError(f"not valid CSV: {exc}", file=str(path), line=reader.line_num) from None


def _check_header(path: Path, names: list[str]) -> None:
    if any(not n for n in names):
        raise InputError("the header has an empty column name", file=str(path), line=1)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"the header repeats column(s) {', '.join(dupes)}", file=str(path), line=1)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return pyarrow


def iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) per Parquet row, a record batch at a time."""
    pa = _pyarrow()
    if not path.exists():
        raise InputError("file not found", file=str(path))
    try:
        reader = pa.parquet.ParquetFile(path)
    except IsADirectoryError:
        raise InputError("is a directory, not a Parquet file", file=str(path)) from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=str(path)) from None
    number = 0
    with reader:
        for batch in reader.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row


# -- Parquet output through a JSONL journal ------------------------------------------------

def journal_of(output: Path) -> Path:
    """The JSONL file a Parquet output is appended to until the job ends."""
    return output.with_name(output.name + ".jsonl")


def parquet_to_journal(output: Path, journal: Path) -> None:
    """Unpack a finished Parquet output into its journal, so --resume can continue it."""
    tmp = journal.with_name(journal.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for _, row in iter_parquet(output):
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, journal)


def journal_to_parquet(journal: Path, output: Path) -> None:
    """Write the journal's rows as `output` (atomically), then remove the journal.

    Two streaming passes: the first unifies the schema of every batch (a column that is
    null in early rows and text later becomes text), the second writes with it.
    """
    pa = _pyarrow()
    try:
        schemas = [pa.Table.from_pylist(rows).schema for rows in _journal_batches(journal)]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        tmp = output.with_name(output.name + ".tmp")
        with pa.parquet.ParquetWriter(tmp, schema) as writer:
            for rows in _journal_batches(journal):
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise OutputError(f"{output}: the rows do not fit one Parquet schema ({exc}); they are kept "
                          f"in {journal} — write JSONL instead") from None
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror or exc}; the rows are kept in {journal}") from None
    os.replace(tmp, output)
    journal.unlink()


def _journal_batches(journal: Path) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    with open(journal, encoding="utf-8") as fh:
        for text in fh:
            if text.strip():
                rows.append(json.loads(text))
            if len(rows) >= BATCH_ROWS:
                yield rows
                rows = []
    if rows:
        yield rows

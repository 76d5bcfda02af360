"""`PromptcPredictor`: a promptc program as a Ray Data `map_batches` callable class.

    ds.map_batches(PromptcPredictor, fn_constructor_kwargs={"program": "build/triage/"},
                   concurrency=4, batch_size=128)

Ray builds one instance per worker (an actor). The constructor loads the program once,
with its own runtime: one LM client, one connection pool, one event loop kept for the
actor's life, so connections are reused from batch to batch. The rows of a batch run
concurrently through `promptc.runner.batch.execute`, the engine behind `promptc run`,
limited by the spec's `lm.concurrency` (or `concurrency=`). The SQLite cache is the same
file for every worker on a machine (it is safe across processes), so the cache rules are
those of `promptc run`.

Output rows are `promptc run`'s: the input's fields, the outputs, `_usage`, `_error`.
A row that fails is a row with `_error` set, never a failed Ray task; an error that dooms
every row (bad key, unknown model) is raised, which fails the Ray job.

With `wire=True` (what `promptc run --engine ray` uses) a row is `{"_row", "_json"}` in and
`{"_row", "_json", "_fatal"}` out, the records as JSON text: Arrow needs one type per
column, JSONL rows need not agree, and a fatal error must reach the driver in order.
Ray itself is never imported here: the class is plain Python, testable without Ray.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from promptc.errors import FATAL_LM_ERRORS, LMError
from promptc.jobs.program import SPEC_SUFFIXES, LoadedProgram, lm_options, load_source
from promptc.lm.base import Usage
from promptc.runner.batch import RowResult, WorkItem, execute
from promptc.runner.job import check_row, output_record
from promptc.spec.lms import LMOptions

Columns = dict[str, list[Any]]


class PromptcPredictor:
    """Runs a program (a spec, or a compiled artifact) on every row of a batch.

    `program`: a spec (.yaml) or a compiled artifact (program.json or its folder); with
    `spec`, the artifact is applied to that spec. Paths must be readable on every worker.
    `options` (or keyword overrides: model, base_url, cache, cache_dir, offline,
    concurrency, rpm, tpm, timeout) are the `promptc run` flags. rpm/tpm are per worker.
    """

    def __init__(self, program: str | Path, *, spec: str | Path | None = None, wire: bool = False,
                 options: LMOptions | None = None, **overrides: Any) -> None:
        self._source: LoadedProgram | None = None
        self._loop = asyncio.new_event_loop()
        self.wire = wire
        options = options or lm_options(**overrides)
        path = Path(program)
        if spec is None and path.suffix in SPEC_SUFFIXES:
            self._source = load_source(path, None, options)
        else:
            self._source = load_source(Path(spec) if spec is not None else None, path, options)
        self.concurrency = options.concurrency or self._source.concurrency

    def __call__(self, batch: Any) -> Columns:
        assert self._source is not None, "the predictor was closed"
        rows = batch_rows(batch)
        items = self._items(rows)
        results: dict[int, RowResult] = {}
        bad = {n: item for n, item in enumerate(items) if isinstance(item, str)}
        runnable = [(n, item) for n, item in enumerate(items) if isinstance(item, WorkItem)]
        fatal = self._loop.run_until_complete(self._run(runnable, results))
        records: list[dict[str, Any] | None] = []
        for n, row in enumerate(rows):
            if n in results:
                records.append(output_record(results[n]))
            elif n in bad:
                records.append(_bad_row(self._row_id(row, n), self._record(row), bad[n]))
            else:
                records.append(None)  # not run: a fatal error stopped the batch first
        if fatal is not None and not self.wire:
            raise fatal
        return self._columns(rows, records, fatal)

    def _row_id(self, row: Mapping[str, Any], n: int) -> int:
        value = row.get("_row")
        return int(value) if value is not None else n + 1

    def _record(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if self.wire:
            value = json.loads(row["_json"])
            return value if isinstance(value, dict) else {}
        return {k: v for k, v in row.items() if k != "_row"}

    def _items(self, rows: list[dict[str, Any]]) -> list[WorkItem | str]:
        """A WorkItem per row, or why the row cannot run (a missing or mistyped field)."""
        assert self._source is not None
        items: list[WorkItem | str] = []
        for n, row in enumerate(rows):
            record = self._record(row)
            inputs, problem = check_row(self._source.program, record, None)
            if problem is not None or inputs is None:
                items.append(problem or "no inputs")
            else:
                items.append(WorkItem(row=self._row_id(row, n), inputs=inputs, record=record))
        return items

    async def _run(self, runnable: list[tuple[int, WorkItem]],
                   results: dict[int, RowResult]) -> LMError | None:
        """Run the items; fill `results` by batch position. Returns a fatal error, if one stopped it."""
        assert self._source is not None
        position = {id(item): n for n, item in runnable}

        def sink(result: RowResult) -> None:
            results[position[id(result.item)]] = result

        try:
            await execute(self._source.program, [item for _, item in runnable], sink,
                          concurrency=self.concurrency)
        except FATAL_LM_ERRORS as exc:
            return exc
        return None

    def _columns(self, rows: list[dict[str, Any]], records: list[dict[str, Any] | None],
                 fatal: LMError | None) -> Columns:
        if self.wire:
            fatal_text = json.dumps({"type": type(fatal).__name__, "message": str(fatal)}) if fatal else ""
            return {"_row": [self._row_id(row, n) for n, row in enumerate(rows)],
                    "_json": [json.dumps(r, ensure_ascii=False, default=str) if r else "" for r in records],
                    "_fatal": ["" if r else fatal_text for r in records]}
        kept = [r or {} for r in records]
        if "_row" not in (rows[0] if rows else {}):
            for r in kept:
                r.pop("_row", None)
        names = list(dict.fromkeys(k for r in kept for k in r))
        return {name: [r.get(name) for r in kept] for name in names}

    def close(self) -> None:
        """Close the LM clients and the cache; idempotent (Ray may or may not call `__del__`)."""
        source, self._source = self._source, None
        if source is not None:
            try:
                self._loop.run_until_complete(source.aclose())
            finally:
                source.close()
        if not self._loop.is_closed():
            self._loop.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to report to
            pass


def _bad_row(row: int, record: dict[str, Any], problem: str) -> dict[str, Any]:
    from promptc.core.trace import Trace

    return output_record(RowResult(WorkItem(row, {}, record), None, f"bad input: {problem}", Trace(), 0.0))


def batch_rows(batch: Any) -> list[dict[str, Any]]:
    """A Ray Data batch (pyarrow Table, pandas DataFrame, or dict of numpy arrays) as rows."""
    if hasattr(batch, "to_pylist"):  # pyarrow.Table
        return list(batch.to_pylist())
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas.DataFrame
        return [{k: _plain(v) for k, v in row.items()} for row in batch.to_dict("records")]
    columns = {k: [_plain(v) for v in values] for k, values in dict(batch).items()}
    size = len(next(iter(columns.values()))) if columns else 0
    return [{k: values[i] for k, values in columns.items()} for i in range(size)]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values (json and promptc's coercion want them)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def total_usage(dataset: Any) -> Usage:
    """The summed `_usage` of a dataset `PromptcPredictor` mapped (runs what is not run yet)."""
    total = Usage()
    for batch in dataset.select_columns(["_usage"]).iter_batches(batch_format="pyarrow"):
        for usage in batch.column("_usage").to_pylist():
            total.add(Usage.model_validate(usage or {}))
    return total

"""A persistent on-disk cache of LM responses, in one SQLite file.

Keys are `LMRequest.cache_key(namespace)` hex digests; values are the `LMResponse`
as JSON (text, usage tokens, finish reason). Nothing else about the request is
stored except its model name (for `stats` and `clear --model`); the request holds
no API key or header, so none can leak into the file.

Concurrency and durability choices:

* One connection per `SQLiteCache`, opened with `check_same_thread=False` and
  guarded by a lock. The main caller is a single asyncio event loop, so the lock is
  almost never contended, and SQLite serialises writers anyway. A single connection
  also lets `close()` close everything deterministically; per-thread connections
  would leak from worker threads that have exited (Python 3.13 warns about that).
* WAL journal + `synchronous=NORMAL`: readers never block the writer, and a commit
  is an append to the WAL without an fsync. Each `set` is its own transaction, so a
  kill -9 loses nothing that `set` returned from; a power cut may lose the last few
  commits but never corrupts the file. Per-row commits measured ~20-40 us, so
  batching was not worth the durability loss.
* Several processes may share the file: `busy_timeout` makes SQLite wait for a
  lock, and the few cases where it returns "database is locked" at once (e.g. WAL
  recovery, schema creation races) are retried here with backoff.
* Hit counts are kept in memory and flushed in batches, so `get` stays a pure read;
  `release()` and `close()` flush them.
* Lifetime: `release()` (called when a job or a call ends, through `CachedLM.aclose`)
  flushes and closes the connection, and the next use reopens it, so nothing stays
  open between jobs; `close()` (the owning `Runtime`'s) is final.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError

from promptc.errors import OutputError, UsageError
from promptc.lm.base import LMRequest, LMResponse

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
# Hits are a statistic, not data: flushing them every N gets keeps reads write-free.
_HITS_FLUSH_EVERY = 256
# Retries on top of busy_timeout for the cases where SQLite reports BUSY without waiting.
_LOCK_RETRIES = 50

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
# The file or its disk cannot take a write: an output failure (exit 3), not a corrupt cache.
_SQLITE_WRITE_FAILURES = {8: "readonly", 10: "disk i/o error", 13: "disk is full", 14: "unable to open"}

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    key        TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_at REAL NOT NULL,
    hits       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS responses_model ON responses(model);
"""


def default_cache_path() -> Path:
    """`$PROMPTC_CACHE_DIR/cache.sqlite`, else `$XDG_CACHE_HOME/promptc/cache.sqlite`,
    else `~/.cache/promptc/cache.sqlite`."""
    explicit = os.environ.get("PROMPTC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser() / "cache.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "promptc" / "cache.sqlite"


def delete_cache_files(path: str | Path) -> bool:
    """Remove the cache file and its WAL/shared-memory companions, without opening it.

    For `promptc cache clear` when the file is too corrupt for `SQLiteCache` to open.
    Returns whether the main file existed.
    """
    base = Path(path).expanduser()
    existed = base.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(str(base) + suffix).unlink(missing_ok=True)
    return existed


class CacheStats(BaseModel):
    """What `promptc cache stats` shows."""

    path: str
    entries: int = 0
    size_bytes: int = 0
    hits: int = 0
    by_model: dict[str, int] = Field(default_factory=dict)
    oldest: datetime | None = None
    newest: datetime | None = None


def _is_write_failure(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_WRITE_FAILURES
    msg = str(exc).lower()
    return any(words in msg for words in _SQLITE_WRITE_FAILURES.values())


def _is_lock_error(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class SQLiteCache:
    """A thread- and process-safe LM response cache in one SQLite file.

    `get` and `set` are fast local calls (tens of microseconds), meant to be called
    straight from the event loop. Use as a context manager or call `close()`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._pending_hits: dict[str, int] = {}
        self._pending_count = 0
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unusable(exc) from exc
        self._conn = self._open()

    # -- setup -----------------------------------------------------------------

    def _unusable(self, exc: BaseException) -> UsageError | OutputError:
        if isinstance(exc, sqlite3.Error) and _is_write_failure(exc):
            return OutputError(f"cannot write the LM cache at {self.path}: {exc} (free space or fix "
                               "its permissions, or pass --no-cache / --cache-dir)", path=str(self.path))
        return UsageError(
            f"the LM cache at {self.path} is unreadable or corrupt ({exc}); "
            f"run `promptc cache clear` or delete the file"
        )

    def _open(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: autocommit, so each statement is its own short
            # transaction and we issue BEGIN IMMEDIATE ourselves where needed.
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc
        try:
            self._retry(lambda: self._init_db(conn))
        except sqlite3.Error as exc:
            conn.close()
            raise self._unusable(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _init_db(conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # journal_mode is persistent in the file; only the first opener pays for it.
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # One write transaction, so concurrent first openers cannot race on the schema.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta(name, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif row[0] != str(SCHEMA_VERSION):
                raise sqlite3.DatabaseError(
                    f"schema version {row[0]}, this promptc expects {SCHEMA_VERSION}"
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- plumbing --------------------------------------------------------------

    @staticmethod
    def _retry(fn: Callable[[], _T]) -> _T:
        delay = 0.001
        for attempt in range(_LOCK_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        raise AssertionError("unreachable")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite failures become a UsageError."""
        with self._lock:
            if self._conn is None:
                if self._closed:
                    raise UsageError(f"the LM cache at {self.path} is closed")
                self._conn = self._open()  # released after an earlier job: reopen
            try:
                yield self._conn
            except sqlite3.OperationalError as exc:
                if _is_lock_error(exc):
                    raise UsageError(
                        f"the LM cache at {self.path} stayed locked by another process "
                        f"for too long ({exc})"
                    ) from exc
                raise self._unusable(exc) from exc
            except sqlite3.Error as exc:
                raise self._unusable(exc) from exc

    # -- public API ------------------------------------------------------------

    def get(self, key: str) -> LMResponse | None:
        """The cached response for `key` (marked `cached=True`), or None."""
        with self._db() as conn:
            row = self._retry(
                lambda: conn.execute(
                    "SELECT response FROM responses WHERE key = ?", (key,)
                ).fetchone()
            )
            if row is None:
                return None
            self._pending_hits[key] = self._pending_hits.get(key, 0) + 1
            self._pending_count += 1
            if self._pending_count >= _HITS_FLUSH_EVERY:
                self._flush_hits(conn)
        try:
            response = LMResponse.model_validate_json(row[0])
        except ValidationError:
            # One bad row (e.g. written by a future version) is a miss, not a fatal error.
            return None
        response.cached = True
        return response

    def set(self, key: str, request: LMRequest, response: LMResponse) -> None:
        """Store `response` under `key`, recording the request's model name only."""
        blob = response.model_dump_json(exclude={"cached"})
        now = time.time()
        with self._db() as conn:
            self._retry(
                lambda: conn.execute(
                    "INSERT OR REPLACE INTO responses(key, model, response, created_at, hits) "
                    "VALUES (?, ?, ?, ?, 0)",
                    (key, request.model, blob, now),
                )
            )

    def delete(self, key: str) -> bool:
        """Forget one entry (e.g. a reply that could not be parsed). True if it existed."""
        with self._db() as conn:
            cur = self._retry(lambda: conn.execute("DELETE FROM responses WHERE key = ?", (key,)))
        return cur.rowcount > 0

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._db() as conn:
            row = self._retry(
                lambda: conn.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone()
            )
        return row is not None

    def __len__(self) -> int:
        with self._db() as conn:
            return int(
                self._retry(lambda: conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            )

    def stats(self) -> CacheStats:
        """Entry counts (total and per model), file size, hits and age range."""
        with self._db() as conn:
            self._flush_hits(conn)

            def query() -> tuple[list[tuple[str, int]], tuple[float | None, float | None, int]]:
                by_model = conn.execute(
                    "SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model"
                ).fetchall()
                agg = conn.execute(
                    "SELECT MIN(created_at), MAX(created_at), COALESCE(SUM(hits), 0) FROM responses"
                ).fetchone()
                return by_model, agg

            by_model, (oldest, newest, hits) = self._retry(query)
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.path.getsize(str(self.path) + suffix)
            except OSError:
                pass
        return CacheStats(
            path=str(self.path),
            entries=sum(n for _, n in by_model),
            size_bytes=size,
            hits=int(hits),
            by_model={m: int(n) for m, n in by_model},
            oldest=_to_datetime(oldest),
            newest=_to_datetime(newest),
        )

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (or only `model`'s); return how many rows went."""
        with self._db() as conn:
            self._pending_hits.clear()
            self._pending_count = 0
            if model is None:
                deleted = self._retry(lambda: conn.execute("DELETE FROM responses").rowcount)
                # Give the space back: a full clear is when users expect the file to shrink.
                self._retry(lambda: conn.execute("VACUUM"))
                self._retry(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
            else:
                deleted = self._retry(
                    lambda: conn.execute("DELETE FROM responses WHERE model = ?", (model,)).rowcount
                )
        return int(deleted)

    def release(self) -> None:
        """Flush hit counts and close the connection; the next use reopens it."""
        self._disconnect()

    def close(self) -> None:
        """Flush hit counts and close the connection for good. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._disconnect()

    def _disconnect(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                self._flush_hits(conn)
            except sqlite3.Error:
                pass  # hit counts are best-effort; never fail a run on close
            finally:
                conn.close()

    def __enter__(self) -> SQLiteCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r})"

    # -- internals ---------------------------------------------------------------

    def _flush_hits(self, conn: sqlite3.Connection) -> None:
        if not self._pending_hits:
            return
        pending = list(self._pending_hits.items())
        self._pending_hits.clear()
        self._pending_count = 0

        def write() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE responses SET hits = hits + ? WHERE key = ?",
                    [(n, k) for k, n in pending],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        self._retry(write)


def _to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)

"""The embedded default retriever: Okapi BM25 over a local corpus, on SQLite FTS5.

Why FTS5 rather than `bm25s` or `rank_bm25`:

* no new dependency: FTS5 ships in the `sqlite3` module of CPython's builds (python.org,
  manylinux, Debian/Ubuntu, conda, Homebrew);
* the index lives on disk and is built by streaming the corpus in batches, so a build of
  1M passages (20 s here) peaks at ~80 MB of RAM, 64 MB of it SQLite's page cache, and a later process only opens the file instead of
  re-tokenising the corpus (rank_bm25 keeps every tokenised document in Python lists and
  rebuilds on every start; bm25s holds a sparse score matrix in RAM and needs numpy/scipy);
* FTS5's built-in `bm25()` is Okapi BM25 with k1 = 1.2 and b = 0.75, the usual defaults;
* readers share one file from many threads and processes (SQLite locking), and a rebuild
  writes a new file and renames it into place, so readers never see half an index.

Index: `<corpus>.promptc-bm25.sqlite` next to the corpus, or `<index_dir>/<corpus name>-<hash>
.promptc-bm25.sqlite` when `index_dir` is set (for a read-only corpus folder). With neither
writable-next-to-corpus nor `index_dir`, it goes to promptc's cache folder. It is rebuilt when
the corpus fingerprint changes (rule in promptc.retrieve.corpus), or the schema/tokenizer do.
The corpus is checked once per retriever object, on first use; changes after that are seen by
the next run.

Text is tokenised by `unicode61` (Unicode letters/digits, case- and diacritic-folded) with the
Porter stemmer, so "running" finds "runs". Scripts without spaces (Chinese, Japanese) are
tokenised poorly: a whole run of characters is one token.

Queries never reach FTS5's query language: the text is cut into letter/digit words (the
first 32 distinct ones are used), each is quoted, and they are OR-ed, so any word may match and BM25 ranks by how many and how rare.
Words found in more than half of the passages are dropped (FTS5 floors their IDF to 1e-6, so
they change no score; a passage matching only such words is not returned), unless nothing
else is left. FTS5 scores every row an OR query matches (~1 us each), which for common words
means most of a large corpus, so the top k is found MaxScore-style instead (see
`search_sync`): exact BM25 top k, touching only the postings that can still change it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from urllib.parse import quote

from promptc.retrieve.base import Passage
from promptc.retrieve.corpus import (
    default_index_path,
    fingerprint,
    fingerprint_matches,
    iter_docs,
    remove_stale_temp_files,
)

SCHEMA_VERSION = "1"
TOKENIZER = "porter unicode61 remove_diacritics 2"
K1 = 1.2  # FTS5's bm25() constants
IDF_FLOOR = 1e-6
BUILD_BATCH = 10_000
MAX_QUERY_TERMS = 32
# Below this many postings in all, scoring every match beats planning (~1 us per posting).
DIRECT_LIMIT = 5_000
_WORD = re.compile(r"[^\W_]+")
_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()


def query_terms(query: str) -> list[str]:
    """The distinct lower-cased letter/digit words of `query`, at most MAX_QUERY_TERMS."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_TERMS:
            break
    return list(seen)


class BM25Retriever:
    """BM25 search over a JSONL file or a folder of .txt/.md files (see module docstring).

    Nothing is read at construction; the index is checked (and built if needed) on the
    first `search`, or up front with `prepare()`. `builds` counts builds by this object.
    """

    def __init__(self, corpus: str | Path, *, name: str = "bm25", index_dir: str | Path | None = None,
                 text_field: str = "text") -> None:
        self.name = name
        self.corpus = Path(corpus)
        self.text_field = text_field
        self.index_path = default_index_path(self.corpus, Path(index_dir) if index_dir else None)
        self.builds = 0
        self._ready = False
        self._n_passages = 0
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._alock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        return f"BM25Retriever(name={self.name!r}, corpus={str(self.corpus)!r})"

    async def prepare(self, on_build: Callable[[BM25Retriever], None] | None = None) -> bool:
        """Make sure the index is current; True if it had to be (re)built.

        `on_build(self)` is called (from a worker thread) just before a build starts, so the
        CLI can say why the first search is slow.
        """
        if self._ready:
            return False
        async with self._async_lock():
            if self._ready:
                return False
            return await asyncio.to_thread(self.ensure_index, on_build)

    async def search(self, query: str, k: int) -> list[Passage]:
        """The `k` best passages for `query` by BM25; [] for a query with no words."""
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        await self.prepare()
        return await asyncio.to_thread(self.search_sync, terms, k)

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    async def aclose(self) -> None:
        self.close()

    # -- index -----------------------------------------------------------------------

    def ensure_index(self, on_build: Callable[[BM25Retriever], None] | None = None) -> bool:
        """Blocking: build the index unless a current one exists. True if built."""
        key = str(self.index_path)
        with _build_locks_guard:
            lock = _build_locks.setdefault(key, threading.Lock())
        with lock:
            if self._ready:
                return False
            current = fingerprint(self.corpus)
            if not self._is_current(current):
                if on_build is not None:
                    on_build(self)
                self._build(current)
                self.builds += 1
                built = True
            else:
                built = False
            self._n_passages = int(self._meta(self._conn()).get("passages", "0"))
            self._ready = True
            return built

    def _wanted_meta(self) -> dict[str, str]:
        return {"schema": SCHEMA_VERSION, "tokenizer": TOKENIZER, "text_field": self.text_field}

    def _is_current(self, current: dict[str, list]) -> bool:
        if not self.index_path.exists():
            return False
        try:
            conn = sqlite3.connect(self._uri(), uri=True)
            try:
                meta = self._meta(conn)
            finally:
                conn.close()
        except sqlite3.Error:
            return False  # unreadable or not ours: rebuild over it
        if any(meta.get(k) != v for k, v in self._wanted_meta().items()):
            return False
        try:
            stored = json.loads(meta.get("fingerprint") or "null")
            return isinstance(stored, dict) and fingerprint_matches(stored, current)
        except (ValueError, TypeError, KeyError):
            return False  # a fingerprint we cannot read is not a match

    def _build(self, current: dict[str, list]) -> None:
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.index_path)
        tmp = self.index_path.with_name(f".{self.index_path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # No journal, no fsync: a crash leaves only the temp file, never a half index.
            conn.executescript(f"""
                PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;
                CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE VIRTUAL TABLE passages USING fts5(
                    title, text, pid UNINDEXED, tokenize='{TOKENIZER}');
            """)
            conn.execute("BEGIN")
            docs = ((d.title, d.text, d.id) for d in iter_docs(self.corpus, self.text_field))
            count = 0
            while batch := list(islice(docs, BUILD_BATCH)):
                conn.executemany("INSERT INTO passages(title, text, pid) VALUES (?, ?, ?)", batch)
                count += len(batch)
            # One merged segment makes every query read one b-tree per term.
            conn.execute("INSERT INTO passages(passages) VALUES ('optimize')")
            # FTS5 stores no document frequencies; the query planner needs them per stem.
            for sql in ("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, passages, row)",
                        "CREATE TABLE df (term TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
                        "INSERT INTO df SELECT term, doc FROM temp.vocab"):
                conn.execute(sql)
            meta = {**self._wanted_meta(), "passages": str(count), "built_at": str(time.time()),
                    "fingerprint": json.dumps(current)}  # written last: it marks the index complete
            conn.executemany("INSERT INTO meta(name, value) VALUES (?, ?)", meta.items())
            conn.execute("COMMIT")
            conn.close()
            os.replace(tmp, self.index_path)
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise

    # -- search ----------------------------------------------------------------------

    def search_sync(self, words: list[str], k: int) -> list[Passage]:
        """Blocking search on this thread's connection; the index must be ready."""
        conn = self._conn()
        terms = _plan(conn, words, self._n_passages)
        useful = [t for t in terms if t.bound > IDF_FLOOR * (K1 + 1)]
        if not useful:  # only stop words (or nothing) matched: any order is as good
            return _run(conn, _any(terms), k, ranked=False) if terms else []
        if len(useful) == 1 or sum(t.df for t in useful) <= DIRECT_LIMIT:
            return _run(conn, _any(useful), k)
        # MaxScore, one term group at a time, rarest first: group i holds the passages
        # whose rarest matching term is term i; they score at most the bounds of terms
        # i..n, so once the k-th best so far beats that, no later group can enter the top k
        # and the (huge) posting lists of the common terms are never scored. Every query
        # names each term exactly once, so FTS5's bm25() of each passage is the full score.
        best: list[Passage] = []

        def add(match: str, bound: float) -> None:
            if len(best) < k or best[k - 1].score < bound:
                best.extend(_run(conn, match, k))
                best.sort(key=lambda p: p.score, reverse=True)
                del best[k:]

        for i, term in enumerate(useful):
            own, later, earlier = _any([term]), _any(useful[i + 1:]), _any(useful[:i])
            if later:
                both = f"({own} AND ({later}))" + (f" NOT ({earlier})" if earlier else "")
                add(both, sum(t.bound for t in useful[i:]))
            # Passages with term i and no other term score at most term i's own bound.
            add(f"{own} NOT ({_any(useful[:i] + useful[i + 1:])})", term.bound)
        return best

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._uri(), uri=True, check_same_thread=False)
            # A scratch FTS5 table with the index's tokenizer tells which stems a query
            # word becomes, to look up their document frequencies.
            conn.executescript(f"""
                CREATE VIRTUAL TABLE temp.qtok USING fts5(w, tokenize='{TOKENIZER}');
                CREATE VIRTUAL TABLE temp.qtok_v USING fts5vocab(temp, qtok, instance);
            """)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _uri(self) -> str:
        return f"file:{quote(str(self.index_path.resolve()))}?mode=ro"

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> dict[str, str]:
        return dict(conn.execute("SELECT name, value FROM meta").fetchall())

    def _async_lock(self) -> asyncio.Lock:
        # asyncio locks belong to one loop; tests and the CLI may use several in turn.
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock[0] is not loop:
            self._alock = (loop, asyncio.Lock())
        return self._alock[1]


@dataclass(frozen=True)
class _Term:
    word: str
    df: int  # passages holding it (for a phrase: of its rarest token, an upper bound)
    bound: float  # the most it can add to a passage's score
    phrase: bool  # the tokenizer cut the word into several tokens: FTS5 matches a phrase


def _plan(conn: sqlite3.Connection, words: list[str], n_rows: int) -> list[_Term]:
    """The words that can match, phrases first, then rarest first."""
    conn.execute("DELETE FROM temp.qtok")
    conn.executemany("INSERT INTO temp.qtok(rowid, w) VALUES (?, ?)", enumerate(words))
    tokens: dict[int, list[str]] = {}
    for row, term in conn.execute("SELECT doc, term FROM temp.qtok_v ORDER BY doc, offset"):
        tokens.setdefault(row, []).append(term)
    terms = []
    for i, word in enumerate(words):
        toks = tokens.get(i)
        if not toks:
            continue
        dfs = [_df(conn, t) for t in toks]
        df = min(dfs)
        if df == 0:
            continue  # cannot match anything
        # FTS5's bm25(): idf = ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6; the tf part
        # tf*(k1+1) / (tf + k1*(1 - b + b*len/avglen)) stays below k1 + 1.
        # A phrase's own df is unknown (at most its rarest token's): never bound it.
        idf = max(math.log((n_rows - df + 0.5) / (df + 0.5)), IDF_FLOOR)
        phrase = len(toks) > 1
        terms.append(_Term(word, df, math.inf if phrase else idf * (K1 + 1.0), phrase))
    terms.sort(key=lambda t: (not t.phrase, t.df))
    return terms


def _df(conn: sqlite3.Connection, token: str) -> int:
    row = conn.execute("SELECT n FROM df WHERE term = ?", (token,)).fetchone()
    return row[0] if row else 0


def _any(terms: list[_Term]) -> str:
    # Quoted strings are plain text to FTS5: no operator, column filter or prefix can leak in.
    return " OR ".join('"' + t.word.replace('"', '""') + '"' for t in terms)


def _run(conn: sqlite3.Connection, match: str, k: int, ranked: bool = True) -> list[Passage]:
    order = "ORDER BY s " if ranked else ""  # unranked: the first k matches, no full scan
    rows = conn.execute(
        "SELECT pid, title, text, bm25(passages) AS s FROM passages WHERE passages MATCH ? "
        f"{order}LIMIT ?", (match, k)).fetchall()
    hits = [Passage(id=pid, title=title, text=text, score=-s) for pid, title, text, s in rows]
    return hits if ranked else sorted(hits, key=lambda p: p.score, reverse=True)

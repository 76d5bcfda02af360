"""Tests for promptc.lm.cache.SQLiteCache."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from promptc.errors import UsageError
from promptc.lm.base import LMRequest, LMResponse, Message, Usage
from promptc.lm.cache import CacheStats, SQLiteCache, default_cache_path, delete_cache_files

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_request(text: str, model: str = "gpt-test", sample_index: int = 0) -> LMRequest:
    return LMRequest(
        model=model,
        messages=[Message(role="user", content=text)],
        temperature=0.7,
        sample_index=sample_index,
    )


def make_response(text: str) -> LMResponse:
    return LMResponse(
        text=text,
        usage=Usage(requests=1, calls=1, prompt_tokens=11, completion_tokens=7, cost=0.5),
        model="gpt-test-2024",
        finish_reason="stop",
    )


@pytest.fixture
def cache(tmp_path: Path):
    with SQLiteCache(tmp_path / "c" / "cache.sqlite") as c:
        yield c


def test_round_trip(cache: SQLiteCache) -> None:
    req = make_request("hello")
    key = req.cache_key("ns")
    assert cache.get(key) is None
    cache.set(key, req, make_response("world"))
    got = cache.get(key)
    assert got is not None
    assert got.cached is True
    assert got.text == "world"
    assert got.usage.prompt_tokens == 11
    assert got.usage.completion_tokens == 7
    assert got.finish_reason == "stop"
    assert got.model == "gpt-test-2024"
    assert key in cache
    assert len(cache) == 1


def test_set_replaces(cache: SQLiteCache) -> None:
    req = make_request("q")
    key = req.cache_key()
    cache.set(key, req, make_response("a"))
    cache.set(key, req, make_response("b"))
    got = cache.get(key)
    assert got is not None and got.text == "b"
    assert len(cache) == 1


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    req = make_request("x")
    with SQLiteCache(path) as c:
        c.set(req.cache_key(), req, make_response("y"))
    with SQLiteCache(path) as c:
        got = c.get(req.cache_key())
        assert got is not None and got.text == "y"
        mode = sqlite3.connect(str(path))
        try:
            assert mode.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            mode.close()


def test_sample_index_makes_distinct_keys(cache: SQLiteCache) -> None:
    reqs = [make_request("same prompt", sample_index=i) for i in range(3)]
    keys = [r.cache_key("ns") for r in reqs]
    assert len(set(keys)) == 3
    for i, (r, k) in enumerate(zip(reqs, keys, strict=True)):
        cache.set(k, r, make_response(f"sample {i}"))
    assert [cache.get(k).text for k in keys] == ["sample 0", "sample 1", "sample 2"]  # type: ignore[union-attr]
    # The namespace separates keys too.
    assert reqs[0].cache_key("other") not in cache


def test_only_model_and_response_stored(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    req = make_request("secret prompt text")
    with SQLiteCache(path) as c:
        c.set(req.cache_key(), req, make_response("out"))
    conn = sqlite3.connect(str(path))
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(responses)")]
        assert cols == ["key", "model", "response", "created_at", "hits"]
        model, blob = conn.execute("SELECT model, response FROM responses").fetchone()
        version = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    finally:
        conn.close()
    assert model == "gpt-test"
    assert "secret prompt text" not in blob
    assert '"cached"' not in blob
    assert version == ("1",)


def test_stats(cache: SQLiteCache) -> None:
    empty = cache.stats()
    assert isinstance(empty, CacheStats)
    assert empty.entries == 0 and empty.by_model == {} and empty.oldest is None
    for i in range(3):
        r = make_request(f"a{i}", model="model-a")
        cache.set(r.cache_key(), r, make_response("x"))
    r = make_request("b", model="model-b")
    cache.set(r.cache_key(), r, make_response("x"))
    cache.get(r.cache_key())
    cache.get(r.cache_key())
    s = cache.stats()
    assert s.path == str(cache.path)
    assert s.entries == 4
    assert s.by_model == {"model-a": 3, "model-b": 1}
    assert s.size_bytes > 0
    assert s.hits == 2
    assert s.oldest is not None and s.newest is not None and s.oldest <= s.newest


def test_clear_by_model_and_all(cache: SQLiteCache) -> None:
    for model in ("m1", "m1", "m2"):
        r = make_request(f"{model}-{len(cache)}", model=model)
        cache.set(r.cache_key(), r, make_response("x"))
    assert cache.clear(model="m1") == 2
    assert cache.stats().by_model == {"m2": 1}
    assert cache.clear(model="nope") == 0
    assert cache.clear() == 1
    assert cache.stats().entries == 0
    # Still usable after VACUUM.
    r = make_request("again")
    cache.set(r.cache_key(), r, make_response("y"))
    assert cache.get(r.cache_key()) is not None


def test_many_threads(cache: SQLiteCache) -> None:
    errors: list[BaseException] = []
    n_threads, per_thread = 8, 150

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                r = make_request(f"t{t}-{i}")
                k = r.cache_key()
                cache.set(k, r, make_response(f"{t}/{i}"))
                got = cache.get(k)
                assert got is not None and got.text == f"{t}/{i}"
                # Read someone else's keys too (hits or misses, never errors).
                cache.get(make_request(f"t{(t + 1) % n_threads}-{i}").cache_key())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert cache.stats().entries == n_threads * per_thread


_WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from promptc.lm.base import LMRequest, LMResponse, Message
    from promptc.lm.cache import SQLiteCache

    path, worker, n, n_procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    # Start barrier: every writer has imported and opened the cache before any writes,
    # so the writes really overlap instead of running one process after another.
    with SQLiteCache(path) as c:
        ready = pathlib.Path(path).parent / f"ready-{worker}"
        ready.touch()
        deadline = time.monotonic() + 30
        while len(list(ready.parent.glob("ready-*"))) < n_procs and time.monotonic() < deadline:
            time.sleep(0.005)
        for i in range(n):
            own = LMRequest(model=f"m{worker}", messages=[Message(role="user", content=f"{worker}-{i}")])
            c.set(own.cache_key(), own, LMResponse(text=f"{worker}:{i}"))
            # A key every writer shares: concurrent INSERT OR REPLACE on one row.
            shared = LMRequest(model="shared", messages=[Message(role="user", content=str(i % 10))])
            c.set(shared.cache_key(), shared, LMResponse(text="shared"))
            c.get(own.cache_key())
    print("ok")
    """
)


def test_several_processes_write_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "cache.sqlite"
    n_procs, per_proc = 3, 500
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(w), str(per_proc), str(n_procs)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_procs)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.strip() == "ok"
        assert err == ""
    with SQLiteCache(path) as c:
        stats = c.stats()
        assert stats.by_model == {**{f"m{w}": per_proc for w in range(n_procs)}, "shared": 10}
        for w in range(n_procs):
            for i in range(per_proc):
                req = LMRequest(model=f"m{w}", messages=[Message(role="user", content=f"{w}-{i}")])
                got = c.get(req.cache_key())
                assert got is not None and got.text == f"{w}:{i}"


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database at all, just junk bytes " * 100)
    with pytest.raises(UsageError) as info:
        SQLiteCache(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "promptc cache clear" in msg and "delete the file" in msg
    # The escape hatch `promptc cache clear` needs when the file cannot be opened.
    assert delete_cache_files(path) is True
    assert not path.exists()
    assert delete_cache_files(path) is False
    with SQLiteCache(path) as c:
        assert len(c) == 0


def test_unreadable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="promptc cache clear"):
        SQLiteCache(blocker / "sub" / "cache.sqlite")


def test_newer_schema_version_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    SQLiteCache(path).close()
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            conn.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    finally:
        conn.close()
    with pytest.raises(UsageError, match="schema version 99"):
        SQLiteCache(path)


def test_bad_row_is_a_miss(cache: SQLiteCache) -> None:
    r = make_request("q")
    cache.set(r.cache_key(), r, make_response("a"))
    conn = sqlite3.connect(str(cache.path))
    try:
        with conn:
            conn.execute("UPDATE responses SET response = '{not json'")
    finally:
        conn.close()
    assert cache.get(r.cache_key()) is None


def test_closed_cache_raises(tmp_path: Path) -> None:
    c = SQLiteCache(tmp_path / "cache.sqlite")
    c.close()
    c.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        c.get("k")


def test_default_cache_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMPTC_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "explicit" / "cache.sqlite"
    monkeypatch.delenv("PROMPTC_CACHE_DIR")
    assert default_cache_path() == tmp_path / "xdg" / "promptc" / "cache.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "promptc" / "cache.sqlite"

"""Retrievers: embedded BM25 (SQLite FTS5), the ColBERTv2 client against a fake server,
Elasticsearch through its official client against a fake `_search` endpoint, and config."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from promptc.errors import EXIT_LM, InputError, UsageError
from promptc.retrieve import (
    BM25Retriever,
    ColBERTv2Retriever,
    ElasticsearchRetriever,
    Passage,
    Retriever,
    RetrieverConfig,
    RetrieverError,
    build_retriever,
)
from promptc.retrieve import bm25 as bm25_mod
from promptc.testing.fake_colbert import FakeColBERTServer

DOCS = [
    {"id": "paris", "title": "France", "text": "Paris is the capital and largest city of France."},
    {"id": "berlin", "title": "Germany", "text": "Berlin is the capital of Germany, on the Spree."},
    {"id": "python", "text": "Python is a programming language that emphasises readability."},
    {"id": "cafe", "text": "A café serves coffee, tea and pastries to its customers."},
    {"id": "run", "text": "Marathon runners train by running long distances every week."},
    {"id": "moon", "text": "The Moon orbits the Earth about once every 27 days."},
    {"text": "Volcanoes erupt when magma reaches the surface of the Earth."},
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def search(retriever: Any, query: str, k: int = 3) -> list[Passage]:
    async def go() -> list[Passage]:
        try:
            return await retriever.search(query, k)
        finally:
            await retriever.aclose()
    return asyncio.run(go())


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "kb.jsonl", DOCS)


# -- BM25 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query, top", [
    ("What is the capital of France?", "paris"),
    ("capital germany", "berlin"),
    ("programming languages", "python"),   # porter: languages -> languag
    ("CAFE", "cafe"),                       # case and diacritics folded
    ("who runs marathons", "run"),
    ("earth orbit", "moon"),
    ("magma", "7"),                         # id defaults to the line number
])
def test_bm25_top_hit(corpus: Path, query: str, top: str) -> None:
    hits = search(BM25Retriever(corpus), query)
    assert hits and hits[0].id == top
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert hits[0].score > 0


def test_bm25_passage_fields_and_k(corpus: Path) -> None:
    r = BM25Retriever(corpus, name="kb")
    assert isinstance(r, Retriever) and r.name == "kb"
    hits = search(r, "the capital city of france or germany", k=1)
    assert len(hits) == 1
    assert hits[0].title == "France" and hits[0].text.startswith("Paris")
    assert len(search(r, "the capital city of france or germany", k=2)) == 2
    assert search(r, "earth", k=0) == []
    assert search(r, "zzzunknownword") == []


def test_bm25_index_next_to_corpus_and_reused(corpus: Path) -> None:
    r1 = BM25Retriever(corpus)
    index = corpus.parent / "kb.jsonl.promptc-bm25.sqlite"
    assert r1.index_path == index and not index.exists()  # lazy: nothing built yet
    announced: list[str] = []
    assert asyncio.run(r1.prepare(on_build=lambda r: announced.append(r.name))) is True
    assert index.exists() and r1.builds == 1 and announced == ["bm25"]
    mtime = index.stat().st_mtime_ns
    assert asyncio.run(r1.prepare()) is False
    r1.close()
    r2 = BM25Retriever(corpus)
    assert search(r2, "moon")[0].id == "moon"
    assert r2.builds == 0 and index.stat().st_mtime_ns == mtime
    os.utime(corpus)  # touched, same content: the content hash says keep it
    r3 = BM25Retriever(corpus)
    asyncio.run(r3.prepare())
    assert r3.builds == 0
    r3.close()


def test_bm25_rebuilds_when_corpus_changes(corpus: Path) -> None:
    assert search(BM25Retriever(corpus), "giraffe") == []
    with corpus.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "giraffe", "text": "The giraffe is the tallest animal."}) + "\n")
    r = BM25Retriever(corpus)
    assert search(r, "giraffe")[0].id == "giraffe"
    assert r.builds == 1


def test_bm25_concurrent_first_searches_build_once(corpus: Path) -> None:
    r = BM25Retriever(corpus)

    async def go() -> list[list[Passage]]:
        try:
            return await asyncio.gather(*(r.search("capital", 2) for _ in range(16)))
        finally:
            await r.aclose()
    results = asyncio.run(go())
    assert r.builds == 1 and all(len(h) == 2 for h in results)


@pytest.mark.parametrize("query", [
    '"foo" OR bar*', "NEAR(", "NEAR(capital france, 2)", '"', '""', "'", "capital AND",
    "NOT capital", "title:paris", "^paris", "-capital", "(((", "a + b - c", "{title text}: x",
    "café ñandú 日本語 😀", "\x00", "_", "capital_of_france", "*", ":",
])
def test_bm25_query_syntax_is_not_injectable(corpus: Path, query: str) -> None:
    hits = search(BM25Retriever(corpus), query)
    assert isinstance(hits, list)


def test_bm25_empty_queries(corpus: Path) -> None:
    r = BM25Retriever(corpus)
    assert search(r, "") == [] and search(r, "  ?! ") == []
    assert r.builds == 0  # nothing to search for: no reason to build


def test_bm25_folder_of_paragraphs(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "guide.md").write_text(
        "# Setup\n\nInstall the package with pip.\n\n## Usage\n\nRun the compiler on a spec.\n",
        encoding="utf-8")
    (folder / "sub" / "notes.txt").write_text("Bananas are yellow.\n\n\nApples are red.\n",
                                               encoding="utf-8")
    (folder / ".hidden.md").write_text("secret bananas", encoding="utf-8")
    (folder / "image.png").write_bytes(b"\x89PNG bananas")
    r = BM25Retriever(folder)
    assert r.index_path == tmp_path / "docs.promptc-bm25.sqlite"
    hit = search(r, "apples")[0]
    assert (hit.id, hit.title, hit.text) == ("sub/notes.txt#2", "sub/notes.txt", "Apples are red.")
    hit = search(r, "how to install")[0]
    assert hit.id == "guide.md#1" and hit.text == "# Setup\nInstall the package with pip."
    assert search(r, "usage")[0].id == "guide.md#2"
    assert [h.id for h in search(r, "bananas", k=5)] == ["sub/notes.txt#1"]
    (folder / "sub" / "more.md").write_text("Cherries are dark red.", encoding="utf-8")
    r2 = BM25Retriever(folder)
    assert search(r2, "cherries")[0].id == "sub/more.md#1" and r2.builds == 1


@pytest.mark.parametrize("lines, line, message", [
    (['{"text": "ok"}', "{not json", '{"text": "x"}'], 2, "invalid JSON"),
    (['{"text": "ok"}', "", '{"title": "no text"}'], 3, "'text' is missing"),
    (['[1, 2]'], 1, "expected a JSON object"),
    (['{"text": 5}'], 1, "not a string"),
    (['{"text": "a", "id": [1]}'], 1, "'id' must be"),
])
def test_bm25_bad_jsonl_line(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        search(BM25Retriever(path), "text")
    assert info.value.line == line and f"bad.jsonl:{line}" in str(info.value)
    assert message in str(info.value)
    assert not (tmp_path / "bad.jsonl.promptc-bm25.sqlite").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_bm25_text_field_and_missing_corpus(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"body": "zebras have stripes"}])
    assert search(BM25Retriever(path, text_field="body"), "zebra")[0].text == "zebras have stripes"
    with pytest.raises(UsageError, match="does not exist"):
        search(BM25Retriever(tmp_path / "nope.jsonl"), "x")


def test_bm25_index_dir_and_read_only_fallback(corpus: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    r = BM25Retriever(corpus, index_dir=tmp_path / "idx")
    assert search(r, "moon")[0].id == "moon"
    assert r.index_path.parent == tmp_path / "idx" and r.index_path.exists()
    monkeypatch.setattr("promptc.retrieve.corpus.os.access", lambda *a: False)
    r2 = BM25Retriever(corpus)
    assert r2.index_path.is_relative_to(Path(os.environ["PROMPTC_CACHE_DIR"]))
    assert search(r2, "moon")[0].id == "moon"


def test_bm25_maxscore_matches_exhaustive_ranking(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The MaxScore path (forced on for a small corpus) against scoring every match.
    monkeypatch.setattr(bm25_mod, "DIRECT_LIMIT", 0)
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(400)]
    rows = [{"text": " ".join(rng.choices(vocab, weights, k=rng.randint(5, 30)))} for _ in range(3000)]
    r = BM25Retriever(write_jsonl(tmp_path / "z.jsonl", rows))
    r.ensure_index()
    conn = r._conn()
    checked = 0
    for _ in range(40):
        words = bm25_mod.query_terms(" ".join(rng.choices(vocab, weights, k=rng.randint(2, 6))))
        got = r.search_sync(words, 10)
        terms = [t for t in bm25_mod._plan(conn, words, 3000) if t.bound > 1e-5]
        if len(terms) < 2:
            continue
        want = bm25_mod._run(conn, bm25_mod._any(terms), 10)
        assert [round(p.score, 6) for p in got] == [round(p.score, 6) for p in want]
        checked += 1
    r.close()
    assert checked >= 20


def test_bm25_word_the_tokenizer_splits_is_a_phrase(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # U+19B0 is a letter to Python but a separator to unicode61: FTS5 gets the phrase "a b".
    monkeypatch.setattr(bm25_mod, "DIRECT_LIMIT", 0)
    rows = [{"id": "hit", "text": "a b capital"}, *({"text": f"capital filler {i}"} for i in range(20))]
    r = BM25Retriever(write_jsonl(tmp_path / "p.jsonl", rows))
    assert search(r, "a\u19b0b capital")[0].id == "hit"


# -- ColBERTv2 client against the fake server --------------------------------------------

PASSAGES = ["Paris is the capital of France.", "Berlin is the capital of Germany.",
            "Bananas are yellow fruit.", "The capital of Italy is Rome."]


@pytest.fixture
def colbert() -> Any:
    with FakeColBERTServer(PASSAGES) as server:
        yield server


def test_colbert_results(colbert: FakeColBERTServer) -> None:
    hits = search(ColBERTv2Retriever(colbert.url, name="wiki"), "capital of France", k=2)
    assert [h.text for h in hits] == PASSAGES[:2]
    assert hits[0].id == "0" and hits[0].score == 3.0
    assert colbert.requests[0]["params"] == {"query": "capital of France", "k": "2"}


@pytest.mark.parametrize("fmt", ["list", "passages"])
def test_colbert_other_reply_shapes(fmt: str) -> None:
    with FakeColBERTServer(PASSAGES, reply_format=fmt) as server:
        assert search(ColBERTv2Retriever(server.url), "bananas")[0].text == PASSAGES[2]


def test_colbert_retries_through_503_and_429(colbert: FakeColBERTServer) -> None:
    colbert.fail_next(1, status=200)  # a 200 without `topk` is retried like a cut-off body
    colbert.fail_next(2, status=503, retry_after=0)
    colbert.fail_next(1, status=429, retry_after=0.3)
    t0 = time.monotonic()
    hits = search(ColBERTv2Retriever(colbert.url, max_retries=4), "bananas")
    assert hits[0].text == PASSAGES[2] and colbert.request_count == 5
    assert time.monotonic() - t0 >= 0.3  # Retry-After honoured


def test_colbert_gives_up_after_retries(colbert: FakeColBERTServer) -> None:
    colbert.fail_next(10, status=502, retry_after=0)
    with pytest.raises(RetrieverError) as info:
        search(ColBERTv2Retriever(colbert.url, name="wiki", max_retries=2), "x")
    assert colbert.request_count == 3 and info.value.attempts == 3 and info.value.status == 502
    assert info.value.exit_code == EXIT_LM
    assert colbert.url in str(info.value) and "502" in str(info.value)


def test_colbert_4xx_fails_fast(colbert: FakeColBERTServer) -> None:
    colbert.fail_next(1, status=400, body="bad k")
    with pytest.raises(RetrieverError, match="rejected the search: HTTP 400: .*bad k") as info:
        search(ColBERTv2Retriever(colbert.url, max_retries=4), "x")
    assert colbert.request_count == 1 and info.value.status == 400


def test_colbert_timeout(colbert: FakeColBERTServer) -> None:
    colbert.hang_next(1, seconds=5)
    hits = search(ColBERTv2Retriever(colbert.url, timeout=0.3, max_retries=1), "bananas")
    assert hits[0].text == PASSAGES[2]  # the retry after the timeout got through
    colbert.hang_next(2, seconds=5)
    with pytest.raises(RetrieverError, match="timed out after 0.3 s"):
        search(ColBERTv2Retriever(colbert.url, timeout=0.3, max_retries=1), "bananas")


def test_colbert_api_key_from_env_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-colbert-SECRET"
    monkeypatch.setenv("COLBERT_KEY", secret)
    with FakeColBERTServer(PASSAGES, api_key=secret) as server:
        r = ColBERTv2Retriever(server.url, api_key_env="COLBERT_KEY", max_retries=0)
        assert search(r, "bananas")[0].text == PASSAGES[2]
        monkeypatch.setenv("COLBERT_KEY", "wrong")
        with pytest.raises(RetrieverError, match="HTTP 401") as info:
            search(r, "bananas")
        assert secret not in str(info.value) and secret not in repr(r)
    monkeypatch.delenv("COLBERT_KEY")
    with pytest.raises(UsageError, match="COLBERT_KEY"):
        search(r, "bananas")


def test_colbert_connection_refused_names_url_without_credentials() -> None:
    r = ColBERTv2Retriever("http://user:pw-SECRET@127.0.0.1:9/search?token=SECRET2", max_retries=1)
    with pytest.raises(RetrieverError) as info:
        search(r, "x")
    msg = str(info.value)
    assert "http://127.0.0.1:9/search" in msg and "SECRET" not in msg and info.value.attempts == 2


# -- Elasticsearch through the official client ---------------------------------------------


async def _fake_es(hits: list[dict[str, Any]], faults: list[int], seen: list[dict[str, Any]]) -> Any:
    from aiohttp import web

    headers = {"X-Elastic-Product": "Elasticsearch",
               "Content-Type": "application/vnd.elasticsearch+json; compatible-with=9"}

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append({"method": request.method, "path": request.path, "query": dict(request.query),
                     "body": json.loads(raw) if raw else None})
        if faults:
            status = faults.pop(0)
            return web.Response(status=status, headers=headers, text=json.dumps(
                {"error": {"type": "index_not_found_exception" if status == 404 else "unavailable",
                           "reason": "fake"}, "status": status}))
        return web.Response(headers=headers, text=json.dumps(
            {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits)}, "hits": hits}}))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner


def _es_search(query: str, faults: list[int], **kwargs: Any) -> tuple[list[Passage], list[dict[str, Any]]]:
    pytest.importorskip("elasticsearch")
    hits = [{"_index": "kb", "_id": "a1", "_score": 2.5,
             "_source": {"body": "Paris is the capital of France.", "title": "France"}},
            {"_index": "kb", "_id": "a2", "_score": 1.0, "_source": {"title": "no body"}}]
    seen: list[dict[str, Any]] = []

    async def go() -> list[Passage]:
        runner = await _fake_es(hits, faults, seen)
        port = runner.addresses[0][1]
        r = ElasticsearchRetriever(f"http://elastic:pw-SECRET@127.0.0.1:{port}", "kb",
                                   text_field="body", **kwargs)
        try:
            return await r.search(query, 3)
        finally:
            await r.aclose()
            await runner.cleanup()
    return asyncio.run(go()), seen


def test_elasticsearch_match_query_and_hits() -> None:
    hits, seen = _es_search("capital of France", [])
    assert hits == [Passage(text="Paris is the capital of France.", score=2.5, id="a1", title="France")]
    req = seen[-1]
    assert req["method"] in ("POST", "GET") and req["path"] == "/kb/_search"
    assert req["body"]["query"] == {"match": {"body": "capital of France"}}
    assert req["body"]["size"] == 3


def test_elasticsearch_retries_and_fails_fast() -> None:
    hits, seen = _es_search("capital", [503, 429], max_retries=3)
    assert hits[0].id == "a1" and len(seen) == 3
    with pytest.raises(RetrieverError, match="index 'kb'.*404.*does the index exist") as info:
        _es_search("capital", [404], max_retries=3)
    assert info.value.attempts == 1 and "SECRET" not in str(info.value)


def test_elasticsearch_missing_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "elasticsearch", None)
    with pytest.raises(UsageError, match=r"pip install 'promptc\[elasticsearch\]'"):
        search(ElasticsearchRetriever("http://127.0.0.1:9", "kb"), "x")


# -- config -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, message", [
    ({"type": "bm25"}, "needs `corpus`"),
    ({"type": "colbert"}, "needs `url`"),
    ({"type": "colbert", "url": "ftp://x"}, "http:// or https://"),
    ({"type": "elasticsearch", "url": "http://es:9200"}, "needs `index`"),
    ({"type": "bm25", "corpus": "c.jsonl", "url": "http://x"}, "url does not apply"),
    ({"type": "colbert", "url": "http://x", "corpus": "c", "index": "i"}, "corpus, index do not apply"),
    ({"type": "bm25", "corpus": "c.jsonl", "k": 3}, "Extra inputs are not permitted"),
    ({"type": "faiss"}, "Input should be 'bm25', 'colbert' or 'elasticsearch'"),
    ({"type": "colbert", "url": "http://x", "timeout": 0}, "greater than 0"),
])
def test_config_validation(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RetrieverConfig.model_validate(raw)


def test_build_retriever_is_lazy_and_resolves_paths(corpus: Path, tmp_path: Path) -> None:
    r = build_retriever("kb", RetrieverConfig(type="bm25", corpus="kb.jsonl", index_dir="idx"), tmp_path)
    assert isinstance(r, BM25Retriever) and r.name == "kb"
    assert r.corpus == corpus and r.index_path.parent == tmp_path / "idx"
    assert not (tmp_path / "idx").exists()
    assert search(r, "moon")[0].id == "moon"
    c = build_retriever("wiki", RetrieverConfig(type="colbert", url="http://h/s", timeout=5,
                                                max_retries=1), tmp_path)
    assert isinstance(c, ColBERTv2Retriever) and (c.timeout, c.max_retries) == (5, 1)
    e = build_retriever("es", RetrieverConfig(type="elasticsearch", url="http://h:9200", index="kb",
                                              text_field="body"), tmp_path)
    assert isinstance(e, ElasticsearchRetriever) and e.text_field == "body"
    assert all(isinstance(x, Retriever) for x in (r, c, e))

"""Benchmark the embedded BM25 retriever (SQLite FTS5) on a synthetic corpus.

    python scripts/bench_retrieve.py --passages 1000000      # ~2 minutes on 2 cores
    python scripts/bench_retrieve.py --passages 200000 --queries 500

The corpus is made here, deterministically: a self-made vocabulary of pronounceable
pseudo-words drawn with Zipf frequencies (s=1.07, like English word counts), passages of
20-80 words with a 2-4 word title. Queries are 3-6 words drawn from the same distribution,
so most contain a very common word (the hard case for an OR query). Nothing is downloaded.

Prints corpus size, build time, index size, peak RSS (ru_maxrss of this process), a second
open (no rebuild), and queries/s sequentially and with concurrency 8, with p50/p95 latency,
plus the same queries as one plain FTS5 OR query (what the MaxScore planner avoids).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.retrieve.bm25 import BM25Retriever  # noqa: E402

ONSETS = ["", "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p",
          "pl", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """`size` distinct pseudo-words; short ones get the frequent (low) ranks."""
    seen: dict[str, None] = {}
    syllables = 1
    while len(seen) < size:
        for _ in range(size * 4):
            word = "".join(ONSETS[rng.integers(len(ONSETS))] + VOWELS[rng.integers(len(VOWELS))]
                           + CODAS[rng.integers(len(CODAS))] for _ in range(syllables))
            seen.setdefault(word, None)
            if len(seen) >= size:
                break
        syllables += 1
    return list(seen)


def zipf_probabilities(size: int, s: float = 1.07) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** s
    return weights / weights.sum()


def make_corpus(path: Path, passages: int, vocab: list[str], probs: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = np.array(vocab, dtype=object)
    chunk = 10_000
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, passages, chunk):
            n = min(chunk, passages - start)
            lengths = rng.integers(20, 81, size=n)
            title_lengths = rng.integers(2, 5, size=n)
            tokens = words[rng.choice(len(vocab), size=int(lengths.sum() + title_lengths.sum()), p=probs)]
            pos = 0
            lines = []
            for i in range(n):
                title = " ".join(tokens[pos:pos + title_lengths[i]])
                pos += title_lengths[i]
                text = " ".join(tokens[pos:pos + lengths[i]])
                pos += lengths[i]
                lines.append(json.dumps({"id": f"p{start + i}", "title": title, "text": text}))
            fh.write("\n".join(lines) + "\n")


def make_queries(count: int, vocab: list[str], probs: np.ndarray, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    return [" ".join(vocab[j] for j in rng.choice(len(vocab), size=int(rng.integers(3, 7)), p=probs))
            for _ in range(count)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_queries(retriever: BM25Retriever, queries: list[str], k: int,
                      concurrency: int) -> tuple[float, list[float]]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(q: str) -> None:
        async with sem:
            t0 = time.perf_counter()
            await retriever.search(q, k)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(q) for q in queries))
    return time.perf_counter() - t0, latencies


def report(label: str, elapsed: float, latencies: list[float]) -> None:
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] * 1000
    print(f"{label:<22} {len(lat) / elapsed:8.1f} q/s   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--baseline", type=int, default=50,
                    help="also time this many queries as one plain FTS5 OR query (0: skip)")
    ap.add_argument("--dir", type=Path, default=None, help="keep the corpus and index here")
    args = ap.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="promptc-bench-retrieve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / f"corpus-{args.passages}.jsonl"
    rng = np.random.default_rng(args.seed)
    vocab = vocabulary(args.vocab, rng)
    probs = zipf_probabilities(len(vocab))
    if not corpus.exists():
        t0 = time.perf_counter()
        make_corpus(corpus, args.passages, vocab, probs, args.seed)
        print(f"generated {args.passages:,} passages in {time.perf_counter() - t0:.1f} s")
    print(f"corpus      {corpus}  {corpus.stat().st_size / 1e6:.0f} MB")
    print(f"peak RSS before build: {peak_rss_mb():.0f} MB")

    retriever = BM25Retriever(corpus, name="bench")
    retriever.index_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    retriever.ensure_index()
    build = time.perf_counter() - t0
    print(f"build       {build:.1f} s  ({args.passages / build:,.0f} passages/s)")
    print(f"index       {retriever.index_path.stat().st_size / 1e6:.0f} MB")
    print(f"peak RSS after build:  {peak_rss_mb():.0f} MB")

    again = BM25Retriever(corpus, name="bench2")
    t0 = time.perf_counter()
    rebuilt = again.ensure_index()
    print(f"second open {(time.perf_counter() - t0) * 1000:.1f} ms (rebuilt: {rebuilt})")
    again.close()

    queries = make_queries(args.queries, vocab, probs, args.seed)

    async def bench() -> None:
        await retriever.search(queries[0], args.k)  # warm the page cache and the connection
        for conc in (1, 8):
            elapsed, lat = await run_queries(retriever, queries, args.k, conc)
            report(f"queries, concurrency {conc}", elapsed, lat)

    asyncio.run(bench())
    if args.baseline:
        # What FTS5 alone does with the same OR query: score every matching row.
        from promptc.retrieve import bm25

        conn = retriever._conn()
        lat = []
        t_all = time.perf_counter()
        for q in queries[:args.baseline]:
            t0 = time.perf_counter()
            terms = bm25._plan(conn, bm25.query_terms(q), args.passages)
            bm25._run(conn, bm25._any(terms), args.k)
            lat.append(time.perf_counter() - t0)
        report("plain FTS5 OR, conc. 1", time.perf_counter() - t_all, lat)
    print(f"peak RSS after queries: {peak_rss_mb():.0f} MB")
    retriever.close()


if __name__ == "__main__":
    main()

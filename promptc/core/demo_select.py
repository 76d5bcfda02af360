"""Per-input demos: a `DemoSelector` picks, for each call, the k pool demos nearest its inputs.

After DSPy's KNNFewShot and Liu et al. 2021 ("What Makes Good In-Context Examples for
GPT-3?"): demos similar to the current input help more than a fixed set. A `Predict`
holding a selector (`predictor.selector`) shows, on every call, the `k` demos of the
selector's `pool` whose inputs are most similar to the call's inputs, the most similar
one last (closest to the question, as Liu et al. found best).

Similarity is one of:

* `lexical` (the default): BM25 over the words of the inputs' text, pure Python and
  deterministic; the index is built once per selector, from the pool alone.
* `embedding`: cosine between embedding vectors. The pool's vectors are stored with the
  pool (`vectors`, computed at compile time); the call's inputs are embedded through the
  run's embedder (`CallContext.embedder(name)`, owned by the runtime like the LMs), so the
  core itself never touches the network.

Rendering without a run (`render()` for inspect, export, dry runs and prompts/*.md) uses
the lexical index on the inputs it is given, whatever the selector's similarity: for real
inputs that is a close stand-in, and for `{placeholder}` inputs, which match nothing, it
is the first k demos of the pool (`static_demos()`).

Ties (equal similarity) go to the earlier pool demo, so selection is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from promptc.core.adapter import format_value

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
BM25_K1, BM25_B = 1.2, 0.75


def tokens(text: str) -> list[str]:
    """Lower-cased words and numbers (no stemming, no stop list: short inputs need them all)."""
    return _WORD.findall(text.lower())


def query_text(values: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The text of the inputs similarity is computed on: each key's value, in order."""
    return "\n".join(format_value(values[k]) for k in keys if values.get(k) is not None)


class LexicalIndex:
    """BM25 over a fixed list of texts (Robertson & Zaragoza 2009), with k1=1.2, b=0.75."""

    def __init__(self, texts: Sequence[str]):
        self.docs = [Counter(tokens(t)) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in df.items()}

    def weights(self, i: int) -> dict[str, float]:
        """Document `i` as idf-weighted term frequencies (for document-to-document cosine)."""
        return {t: n * self.idf[t] for t, n in self.docs[i].items()}

    def scores(self, text: str) -> list[float]:
        query = set(tokens(text))
        out = []
        for doc, length in zip(self.docs, self.lengths, strict=True):
            norm = BM25_K1 * (1 - BM25_B + BM25_B * length / self.avg) if self.avg else BM25_K1
            out.append(sum(self.idf[t] * doc[t] * (BM25_K1 + 1) / (doc[t] + norm) for t in query if t in doc))
        return out


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class DemoSelector(BaseModel):
    """A demo pool, how to compare inputs with it, and how many demos a call gets.

    Plain data (it is saved in program.json as is): `pool` are demos like `Predict.demos`;
    `keys` are the input fields compared (default: all the demo's fields that are inputs
    of the predictor, set by whoever builds it); `vectors[i]` is `pool[i]`'s embedding
    when `similarity` is `embedding`.
    """

    model_config = {"extra": "forbid"}

    k: int = Field(default=4, ge=1, description="demos per call")
    pool: list[dict[str, Any]] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list, description="input fields compared")
    similarity: Literal["lexical", "embedding"] = "lexical"
    embedder: str = Field(default="default", description="the runtime's embedder, for `embedding`")
    vectors: list[list[float]] | None = Field(default=None, description="the pool's embeddings")
    diversity: float = Field(default=0.0, ge=0.0, le=1.0, description=(
        "0: the k most similar; above 0, maximal marginal relevance (Carbonell & Goldstein 1998): "
        "each next demo trades similarity to the inputs for dissimilarity to those already chosen"))

    _index: LexicalIndex | None = PrivateAttr(default=None)

    def text(self, values: Mapping[str, Any]) -> str:
        return query_text(values, self.keys)

    def pool_texts(self) -> list[str]:
        return [self.text(d) for d in self.pool]

    def lexical_index(self) -> LexicalIndex:
        if self._index is None:
            self._index = LexicalIndex(self.pool_texts())
        return self._index

    def static_demos(self) -> list[dict[str, Any]]:
        """What a call would get if its inputs matched nothing: the first k of the pool."""
        return [dict(d) for d in self.pool[: self.k]]

    def nearest(self, scores: Sequence[float]) -> list[dict[str, Any]]:
        """The k best-scoring pool demos (MMR-diversified if asked), the most similar last."""
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        if self.diversity > 0:
            order = self._diversified(order, scores)
        return [dict(self.pool[i]) for i in reversed(order[: self.k])]

    def _diversified(self, order: list[int], scores: Sequence[float]) -> list[int]:
        top = max(scores[order[0]], 1e-9) if order else 1.0
        relevance = {i: scores[i] / top for i in order}
        chosen: list[int] = []
        left = list(order)
        while left and len(chosen) < self.k:
            def gain(i: int) -> float:
                redundancy = max((self._pair(i, j) for j in chosen), default=0.0)
                return (1 - self.diversity) * relevance[i] - self.diversity * redundancy
            best = max(left, key=lambda i: (gain(i), -order.index(i)))
            chosen.append(best)
            left.remove(best)
        return chosen

    def _pair(self, i: int, j: int) -> float:
        if self.vectors and self.similarity == "embedding":
            return cosine(self.vectors[i], self.vectors[j])
        index = self.lexical_index()
        a, b = index.weights(i), index.weights(j)
        dot = sum(w * b.get(t, 0.0) for t, w in a.items())
        na, nb = math.sqrt(sum(w * w for w in a.values())), math.sqrt(sum(w * w for w in b.values()))
        return dot / (na * nb) if na and nb else 0.0

    def select(self, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The k demos nearest `inputs` by the lexical index (no LM, no network)."""
        if len(self.pool) <= self.k:
            return [dict(d) for d in self.pool]
        return self.nearest(self.lexical_index().scores(self.text(inputs)))

    def select_by_vector(self, vector: Sequence[float]) -> list[dict[str, Any]]:
        """The k demos whose stored vectors are nearest `vector` (cosine)."""
        if not self.vectors or len(self.vectors) != len(self.pool):
            raise ValueError("this demo selector has no embedding vectors for its pool")
        return self.nearest([cosine(vector, v) for v in self.vectors])

    async def aselect(self, inputs: Mapping[str, Any], embedders: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The k demos for one call: by embedding when configured (the inputs embedded by
        `embedders[self.embedder]`), else lexically."""
        if self.similarity != "embedding" or len(self.pool) <= self.k:
            return self.select(inputs)
        embedder = embedders.get(self.embedder)
        if embedder is None:
            from promptc.errors import UsageError

            raise UsageError(f"this program picks demos by embedding with embedder {self.embedder!r}, "
                             f"but none is configured (have: {', '.join(embedders) or 'none'}): "
                             "set `embedder:` in the spec or the artifact")
        text = self.text(inputs)
        if not text.strip():  # nothing to embed (endpoints refuse empty input): the static view
            return self.select(inputs)
        [vector] = await embedder.embed([text])
        return self.select_by_vector(vector)

    def describe(self) -> str:
        how = "embedding cosine" if self.similarity == "embedding" else "BM25 over words"
        return (f"{self.k} of {len(self.pool)} pool demos chosen per call, nearest the inputs "
                f"({', '.join(self.keys) or 'all'}) by {how}")

"""Retrievers for `retrieve` steps and agent tools.

    from promptc.retrieve import RetrieverConfig, build_retriever

    retriever = build_retriever("docs", RetrieverConfig(type="bm25", corpus="kb.jsonl"), spec_dir)
    passages = await retriever.search("how do I reset my card?", k=5)

* `bm25`: embedded Okapi BM25 over a local JSONL file or folder of .txt/.md (SQLite FTS5,
  index stored on disk next to the corpus) - promptc.retrieve.bm25
* `colbert`: a ColBERTv2-style HTTP search endpoint - promptc.retrieve.colbert
* `elasticsearch`: an Elasticsearch index via the official client (`promptc[elasticsearch]`)
  - promptc.retrieve.elastic

Every retriever has `name`, `async search(query, k)` and `async aclose()`; BM25 also has
`async prepare()` to build its index up front.
"""

from promptc.retrieve.base import Passage, Retriever, RetrieverError
from promptc.retrieve.bm25 import BM25Retriever
from promptc.retrieve.colbert import ColBERTv2Retriever
from promptc.retrieve.config import RetrieverConfig, build_retriever
from promptc.retrieve.elastic import ElasticsearchRetriever

__all__ = [
    "BM25Retriever",
    "ColBERTv2Retriever",
    "ElasticsearchRetriever",
    "Passage",
    "Retriever",
    "RetrieverConfig",
    "RetrieverError",
    "build_retriever",
]

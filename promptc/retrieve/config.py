"""The `retrievers:` block of a spec, and turning one entry into a Retriever.

    retrievers:
      docs:   {type: bm25, corpus: data/passages.jsonl}
      wiki:   {type: colbert, url: "http://20.102.90.50:2017/wiki17_abstracts"}
      search: {type: elasticsearch, url: "https://es.internal:9200", index: kb,
               text_field: body, api_key_env: ES_API_KEY}

`build_retriever` only constructs objects: no file is read, no index built, no connection
made, so `promptc validate` stays fast. A BM25 index is built on first search, or by
`await retriever.prepare()` when the CLI wants to say so up front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptc.retrieve.base import Retriever

_ONLY: dict[str, set[str]] = {
    # fields that mean nothing for a type: setting them is a mistake worth reporting
    "bm25": {"url", "index", "api_key_env"},
    "colbert": {"corpus", "index_dir", "index"},
    "elasticsearch": {"corpus", "index_dir"},
}


class RetrieverConfig(BaseModel):
    """One named retriever of a spec."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bm25", "colbert", "elasticsearch"]
    corpus: str | None = None  # bm25: JSONL file or folder, relative to the spec's folder
    index_dir: str | None = None  # bm25: where the index goes (default: next to the corpus)
    url: str | None = None  # colbert / elasticsearch
    index: str | None = None  # elasticsearch index name
    text_field: str = "text"  # bm25 JSONL field / elasticsearch document field with the text
    api_key_env: str | None = None  # env var holding the endpoint's key (never the key itself)
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)

    @model_validator(mode="after")
    def _check_type_fields(self) -> RetrieverConfig:
        if self.type == "bm25" and not self.corpus:
            raise ValueError("a bm25 retriever needs `corpus` (a JSONL file or a folder of .txt/.md files)")
        if self.type in ("colbert", "elasticsearch"):
            if not self.url:
                raise ValueError(f"a {self.type} retriever needs `url`")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"`url` must start with http:// or https:// (got {self.url!r})")
        if self.type == "elasticsearch" and not self.index:
            raise ValueError("an elasticsearch retriever needs `index` (the index name)")
        wrong = sorted(f for f in _ONLY[self.type] if getattr(self, f) is not None)
        if wrong:
            raise ValueError(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not "
                             f"apply to a {self.type} retriever")
        if not self.text_field.strip():
            raise ValueError("`text_field` must not be empty")
        return self


def build_retriever(name: str, cfg: RetrieverConfig, base_dir: Path) -> Retriever:
    """The retriever `cfg` describes; relative paths resolve against `base_dir` (the spec's folder).

    Cheap: nothing is read, built or connected until the first search.
    """
    if cfg.type == "bm25":
        from promptc.retrieve.bm25 import BM25Retriever

        assert cfg.corpus is not None
        index_dir = _resolve(cfg.index_dir, base_dir) if cfg.index_dir else None
        return BM25Retriever(_resolve(cfg.corpus, base_dir), name=name, index_dir=index_dir,
                             text_field=cfg.text_field)
    assert cfg.url is not None
    if cfg.type == "colbert":
        from promptc.retrieve.colbert import ColBERTv2Retriever

        return ColBERTv2Retriever(cfg.url, name=name, api_key_env=cfg.api_key_env,
                                  timeout=cfg.timeout, max_retries=cfg.max_retries)
    from promptc.retrieve.elastic import ElasticsearchRetriever

    assert cfg.index is not None
    return ElasticsearchRetriever(cfg.url, cfg.index, name=name, text_field=cfg.text_field,
                                  api_key_env=cfg.api_key_env, timeout=cfg.timeout,
                                  max_retries=cfg.max_retries)


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p

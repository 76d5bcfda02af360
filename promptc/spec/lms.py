"""Named LMs from a spec (`lm:` / `lms:`), command-line overrides, and the runtime that holds them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptc.lm.base import LM, Price
from promptc.lm.cache import SQLiteCache, default_cache_path
from promptc.lm.spans import TracedLM
from promptc.runtime import Runtime
from promptc.spec.models import EmbedderConfig, LMConfig, SpecDocument

DEFAULT = "default"


@dataclass
class LMOptions:
    """Overrides from flags or the Python API; None means 'as the spec says'."""

    model: str | None = None
    base_url: str | None = None
    concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None
    cache: bool = True
    cache_path: Path | None = None
    offline_only: bool = False
    max_prompt_tokens: int | None = None  # applies to every LM, not only the default


def resolve_lm_configs(doc: SpecDocument, options: LMOptions,
                       err: Callable[[tuple[Any, ...], str], None]) -> dict[str, LMConfig]:
    """The LM configs by name, with `default` always present and flags applied to it."""
    configs = dict(doc.lms)
    if doc.lm is not None:
        if DEFAULT in configs:
            err(("lm",), "both `lm:` and `lms.default` are given; keep one")
        configs[DEFAULT] = doc.lm
    configs.setdefault(DEFAULT, LMConfig())
    update: dict[str, Any] = {}
    if options.model:
        update["model"] = options.model
        update["provider"] = None  # re-infer: `--model offline` switches to the offline LM
    if options.base_url:
        update["base_url"] = options.base_url
    for name in ("concurrency", "rpm", "tpm", "timeout"):
        value = getattr(options, name)
        if value is not None:
            update[name] = value
    if update:
        configs[DEFAULT] = configs[DEFAULT].model_copy(update=update)
    if options.max_prompt_tokens is not None:
        configs = {name: cfg.model_copy(update={"max_prompt_tokens": options.max_prompt_tokens})
                   for name, cfg in configs.items()}
    return configs


def build_runtime(prices: Mapping[str, Price], configs: dict[str, LMConfig], options: LMOptions,
                  retrievers: Mapping[str, Any] | None = None,
                  embedder: EmbedderConfig | None = None) -> Runtime:
    """Every named LM as a layered stack, in a Runtime that owns the cache. Makes no request.

    The spec's `embedder:` becomes the runtime's `default` embedder, cached in the same file.

    A remote LM is `TracedLM(CachedLM(OpenAICompatibleLM))` when caching is on (all share
    one cache file), or the traced bare client; spans cost nothing unless a listener is on. The cache file is opened once here, so an unreadable one
    is an error now rather than on the first row, and released until the first call.
    Every LM is then wrapped in `PromptGuardLM`: an oversized prompt is neither sent nor cached.
    """
    from promptc.lm.guard import PromptGuardLM

    runtime = Runtime(retrievers=retrievers)
    cache: SQLiteCache | None = None
    for name, cfg in configs.items():
        if cfg.resolved_provider == "offline":
            from promptc.lm.offline import OfflineLM

            runtime.lms[name] = TracedLM(PromptGuardLM(OfflineLM(), cfg.max_prompt_tokens), system="promptc.offline")
            continue
        from promptc.lm.openai_client import OpenAICompatibleLM

        lm: LM = OpenAICompatibleLM(
            cfg.model, base_url=cfg.base_url or None, api_key_env=cfg.api_key_env,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, timeout=cfg.timeout,
            max_retries=cfg.max_retries, concurrency=cfg.concurrency, rpm=cfg.rpm, tpm=cfg.tpm,
            price=prices.get(cfg.model), rate_limit_patience=cfg.rate_limit_patience,
        )
        if options.cache and cfg.cache:
            if cache is None:
                cache = SQLiteCache(options.cache_path or default_cache_path())
                cache.release()
                runtime.caches.append(cache)
            from promptc.lm.layers import CachedLM

            lm = CachedLM(lm, cache, offline_only=options.offline_only)
        elif options.offline_only:
            from promptc.lm.layers import OfflineOnlyLM

            lm = OfflineOnlyLM(lm)  # `cache: false` under --offline: nothing to replay from
        runtime.lms[name] = TracedLM(PromptGuardLM(lm, cfg.max_prompt_tokens),
                                     server=cfg.base_url or "https://api.openai.com/v1")
    if embedder is not None:
        runtime.embedders[DEFAULT] = _embedder(embedder, options, runtime)
    return runtime


def _embedder(cfg: EmbedderConfig, options: LMOptions, runtime: Runtime) -> Any:
    from promptc.lm.embeddings import CachedEmbedder, OpenAIEmbedder

    inner = OpenAIEmbedder(cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env, timeout=cfg.timeout,
                           max_retries=cfg.max_retries, batch_size=cfg.batch_size)
    if not (options.cache and cfg.cache):
        return inner
    cache = runtime.caches[0] if runtime.caches else None
    if cache is None:
        cache = SQLiteCache(options.cache_path or default_cache_path())
        cache.release()
        runtime.caches.append(cache)
    return CachedEmbedder(inner, cache, offline_only=options.offline_only)

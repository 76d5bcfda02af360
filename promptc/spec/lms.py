"""Named LMs from a spec (`lm:` / `lms:`), command-line overrides, and building the clients."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptc.lm.base import LM, Price
from promptc.spec.models import LMConfig, SpecDocument

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
    return configs


def build_lms(prices: Mapping[str, Price], configs: dict[str, LMConfig], options: LMOptions) -> dict[str, LM]:
    """Instantiate every named LM. Clients connect lazily, so this makes no request."""
    from promptc.lm.cache import SQLiteCache, default_cache_path

    cache: SQLiteCache | None = None
    lms: dict[str, LM] = {}
    for name, cfg in configs.items():
        if cfg.resolved_provider == "offline":
            from promptc.lm.offline import OfflineLM

            lms[name] = OfflineLM()
            continue
        from promptc.lm.openai_client import OpenAICompatibleLM

        if options.cache and cfg.cache and cache is None:
            cache = SQLiteCache(options.cache_path or default_cache_path())
        lm = OpenAICompatibleLM(
            cfg.model, base_url=cfg.base_url or None, api_key_env=cfg.api_key_env,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, timeout=cfg.timeout,
            max_retries=cfg.max_retries, concurrency=cfg.concurrency, rpm=cfg.rpm, tpm=cfg.tpm,
            cache=cache if (options.cache and cfg.cache) else None, price=prices.get(cfg.model),
        )
        lm.offline_only = options.offline_only
        lms[name] = lm
    return lms


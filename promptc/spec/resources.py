"""Retrievers and tools named in a spec, built lazily (no index is built at load time)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptc.spec.models import SpecDocument


def ensure_importable(base_dir: Path) -> None:
    """Let `python: module:name` find modules that sit beside the spec."""
    folder = str(base_dir.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)


def build_resources(doc: SpecDocument, base_dir: Path,
                    err: Callable[[tuple[Any, ...], str], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(retrievers, tools) by name. Retrievers prepare themselves on first search."""
    retrievers: dict[str, Any] = {}
    if doc.retrievers:
        from promptc.retrieve.config import build_retriever

        for name, cfg in doc.retrievers.items():
            if cfg.type == "bm25" and cfg.corpus and not (base_dir / cfg.corpus).expanduser().exists():
                err(("retrievers", name, "corpus"), f"corpus not found: {(base_dir / cfg.corpus)}")
                continue
            try:
                retrievers[name] = build_retriever(name, cfg, base_dir)
            except ValueError as exc:
                err(("retrievers", name), str(exc))
    tools: dict[str, Any] = {}
    if doc.tools:
        from promptc.core.tools import tool_from_import_path, tool_from_retriever

        ensure_importable(base_dir)
        for name, decl in doc.tools.items():
            if (decl.retriever is None) == (decl.python is None):
                err(("tools", name), "a tool is `python: module:function` or `retriever: NAME`, exactly one")
            elif decl.retriever is not None:
                if decl.retriever not in retrievers:
                    err(("tools", name, "retriever"), f"unknown retriever '{decl.retriever}' "
                        f"(have: {', '.join(retrievers) or 'none'})")
                    continue
                tools[name] = tool_from_retriever(retrievers[decl.retriever], name=name, k=decl.k,
                                                  description=decl.description)
            else:
                try:
                    tools[name] = tool_from_import_path(decl.python or "", name=name, description=decl.description)
                except ValueError as exc:
                    err(("tools", name, "python"), str(exc))
    return retrievers, tools

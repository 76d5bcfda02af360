"""Optimizers by name, built from the spec's `optimizer:` block (flags override)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from promptc.optimize.base import Optimizer
from promptc.optimize.few_shot import BootstrapFewShot, LabeledFewShot, RandomSearch


def optimizer_classes() -> dict[str, type]:
    from promptc.optimize.gepa import GEPA
    from promptc.optimize.knn import KNNFewShot
    from promptc.optimize.mipro import MIPRO
    from promptc.optimize.reflective import ReflectiveBootstrap

    return {c.name: c for c in (LabeledFewShot, BootstrapFewShot, RandomSearch, MIPRO, GEPA,  # type: ignore[attr-defined]
                                KNNFewShot, ReflectiveBootstrap)}


def make_optimizer(name: str, settings: dict[str, Any]) -> Optimizer:
    """An optimizer instance; ValueError lists what is wrong with the name or settings."""
    classes = optimizer_classes()
    if name not in classes:
        import difflib

        close = difflib.get_close_matches(name, list(classes), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown optimizer '{name}'{hint} (have: {', '.join(classes)})")
    try:
        return classes[name](**settings)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"optimizer.{key}: {msg}")
        raise ValueError("; ".join(problems)) from None

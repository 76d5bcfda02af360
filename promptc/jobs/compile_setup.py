"""Compile bookkeeping: resume fingerprints, provenance, spend outside trials, estimates."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from promptc import __version__
from promptc.core.example import Example
from promptc.core.program import Program
from promptc.core.ref import INPUT
from promptc.errors import UsageError, output_errors
from promptc.jobs.data import DEV_FRACTION, sha256
from promptc.lm.base import LMRequest, Usage
from promptc.optimize.base import Trial
from promptc.optimize.bootstrap import labeled_state
from promptc.runner.output_paths import ensure_parent
from promptc.runner.source import RowSource, source_label


def placeholder_inputs(program: Program, index: int, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A step's inputs, with '…' standing in for outputs of earlier steps (not computed yet).

    Steps of a Python Module program have no static bindings: their inputs are matched
    to the program inputs by name.
    """
    step = program.steps[index]
    bindings = program.bindings(step.name)
    out: dict[str, Any] = {}
    for f in step.module.signature.inputs:
        ref = bindings.get(f.name)
        source = ref.field if ref is not None and ref.source == INPUT else (f.name if ref is None else None)
        out[f.name] = inputs.get(source, "…") if source is not None else "…"
    return out


def fingerprint(spec: Path | None, train: RowSource, dev: RowSource | None, optimizer: str,
                settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """What must not change between a compile and its --resume."""
    return {"spec_sha256": sha256(spec), "train_sha256": sha256(train), "dev_sha256": sha256(dev),
            "optimizer": optimizer, "settings": settings, "seed": seed}


def check_resume(out: Path, current: dict[str, Any], resume: bool) -> None:
    """Refuse to resume a compile whose inputs changed; remember this compile's inputs."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: the compile output must be a folder, and this is a file (--out)")
    path = out / "checkpoint.json"
    if resume and path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
            raise UsageError(f"{path}: not a checkpoint promptc wrote ({type(exc).__name__}); "
                             "run without --resume to start over") from None
        if not isinstance(old, dict):
            raise UsageError(f"{path}: not a checkpoint promptc wrote; run without --resume to start over")
        changed = sorted(k for k in current if old.get(k) != current[k])
        if changed:
            raise UsageError(f"cannot --resume {out}: {', '.join(changed)} changed since that compile "
                             "(run without --resume to start over)")
    ensure_parent(path)  # a read-only or impossible --out fails here, before any LM call
    with output_errors(path):
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def overhead(spent: Usage, trials: list[Trial], resumed: set[int]) -> Usage:
    """What this session spent outside its trials (e.g. MIPRO's instruction proposals)."""
    inside = Usage()
    for t in trials:
        if t.index not in resumed:
            inside.add(t.usage)
    return Usage(**{k: max(0, getattr(spent, k) - getattr(inside, k)) for k in Usage.model_fields})


def provenance(fp: dict[str, Any], *, spec: str | None, train: RowSource, dev: RowSource | None, trials: list[Trial],
               best: Trial | None, stopped: str | None, extra: Usage | None = None,
               models: dict[str, str] | None = None, original: dict[str, str] | None = None) -> dict[str, Any]:
    """Where a compiled program came from (no timestamps: a rerun gives the same file; each
    trial in trials.jsonl says when it finished). `original`: each predictor's instructions
    before the compile, which the compile report diffs against."""
    usage = extra.model_copy() if extra is not None else Usage()
    for t in trials:
        usage.add(t.usage)
    before = next((t.score for t in sorted(trials, key=lambda t: t.index) if t.full_eval), None)
    return {
        "promptc_version": __version__, "spec": spec, "spec_sha256": fp["spec_sha256"],
        "data": {"train": source_label(train), "train_sha256": fp["train_sha256"],
                 "dev": source_label(dev) if dev is not None else None, "dev_sha256": fp["dev_sha256"],
                 "dev_split": None if dev is not None else f"{DEV_FRACTION:.0%} of train, seed {fp['seed']}"},
        "optimizer": fp["optimizer"], "settings": fp["settings"], "seed": fp["seed"],
        "dev_score_before": before, "dev_score_after": best.score if best else None,
        "best_trial": best.index if best else None, "trials": len(trials),
        "usage": usage.model_dump(), "stopped_early": stopped,
        "models": dict(models or {}), "original_instructions": dict(original or {}),
    }


def estimate_tokens(program: Program, trainset: list[Example], calls: int, demos: int) -> tuple[int, int]:
    """(prompt, completion) tokens for `calls` calls whose prompts carry up to `demos` demos."""
    sample = labeled_state(program, trainset[:demos], demos)
    shown = program.with_state(sample)
    per_step = []
    example = trainset[0].inputs()
    for i, step in enumerate(shown.steps):
        messages = step.module.render(placeholder_inputs(shown, i, example), shown.adapter)
        per_step.append(LMRequest(model="", messages=messages).approx_prompt_tokens())
    prompt = calls * (sum(per_step) // max(1, len(per_step)))
    max_tokens = [getattr(program.lms.get(s.module.lm or "default"), "max_tokens", None) for s in program.steps]
    completion = calls * (sum(m or 150 for m in max_tokens) // max(1, len(max_tokens)))
    return prompt, completion

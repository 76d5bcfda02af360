"""Glue for `promptc compile`: data, splits, fingerprints, provenance and estimates."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from promptc import __version__
from promptc.core.example import Example
from promptc.core.program import Program
from promptc.errors import InputError, UsageError
from promptc.lm.base import LMRequest, Usage
from promptc.optimize.base import Trial
from promptc.optimize.bootstrap import labeled_state
from promptc.runner.job import MAX_REPORTED, check_row
from promptc.runner.jsonl import iter_jsonl

DEV_FRACTION = 0.3


def load_examples(path: Path, program: Program) -> list[Example]:
    """Every row of a labelled file as an Example; InputError lists bad lines."""
    examples: list[Example] = []
    problems: list[str] = []
    bad = 0
    for line in iter_jsonl(path):
        _, problem = check_row(program, line.value, line.error)
        if problem is not None:
            bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(f"{path}:{line.number}: {problem}")
            continue
        assert line.value is not None
        examples.append(Example(line.value, input_keys=program.input_names))
    if bad:
        raise InputError("\n".join([*problems, f"{bad} bad line(s) in {path}"]))
    if not examples:
        raise InputError("the file has no rows", file=str(path))
    return examples


def split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded train/dev split for when no dev set is given."""
    if len(examples) < 4:
        raise UsageError(f"{len(examples)} training example(s) are too few to split off a dev set; pass --dev")
    order = random.Random(seed).sample(examples, len(examples))
    n_dev = max(2, round(len(order) * DEV_FRACTION))
    return order[n_dev:], order[:n_dev]


def sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(spec: Path, train: Path, dev: Path | None, optimizer: str, settings: dict[str, Any],
                seed: int) -> dict[str, Any]:
    """What must not change between a compile and its --resume."""
    return {"spec_sha256": sha256(spec), "train_sha256": sha256(train), "dev_sha256": sha256(dev),
            "optimizer": optimizer, "settings": settings, "seed": seed}


def check_resume(out: Path, current: dict[str, Any], resume: bool) -> None:
    """Refuse to resume a compile whose inputs changed; remember this compile's inputs."""
    path = out / "checkpoint.json"
    if resume and path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in current if old.get(k) != current[k])
        if changed:
            raise UsageError(f"cannot --resume {out}: {', '.join(changed)} changed since that compile "
                             "(run without --resume to start over)")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def overhead(spent: Usage, trials: list[Trial], resumed: set[int]) -> Usage:
    """What this session spent outside its trials (e.g. MIPRO's instruction proposals)."""
    inside = Usage()
    for t in trials:
        if t.index not in resumed:
            inside.add(t.usage)
    return Usage(**{k: max(0, getattr(spent, k) - getattr(inside, k)) for k in Usage.model_fields})


def provenance(fp: dict[str, Any], *, spec: Path, train: Path, dev: Path | None, trials: list[Trial],
               best: Trial | None, stopped: str | None, extra: Usage | None = None) -> dict[str, Any]:
    """Where a compiled program came from (no timestamps: a rerun gives the same file)."""
    usage = extra.model_copy() if extra is not None else Usage()
    for t in trials:
        usage.add(t.usage)
    before = next((t.score for t in sorted(trials, key=lambda t: t.index) if t.full_eval), None)
    return {
        "promptc_version": __version__, "spec": str(spec), "spec_sha256": fp["spec_sha256"],
        "data": {"train": str(train), "train_sha256": fp["train_sha256"],
                 "dev": str(dev) if dev else None, "dev_sha256": fp["dev_sha256"],
                 "dev_split": None if dev else f"{DEV_FRACTION:.0%} of train, seed {fp['seed']}"},
        "optimizer": fp["optimizer"], "settings": fp["settings"], "seed": fp["seed"],
        "dev_score_before": before, "dev_score_after": best.score if best else None,
        "best_trial": best.index if best else None, "trials": len(trials),
        "usage": usage.model_dump(), "stopped_early": stopped,
    }


def estimate_tokens(program: Program, trainset: list[Example], calls: int, demos: int) -> tuple[int, int]:
    """(prompt, completion) tokens for `calls` calls whose prompts carry up to `demos` demos."""
    sample = labeled_state(program, trainset[:demos], demos)
    shown = program.with_state(sample)
    per_step = []
    example = trainset[0].inputs()
    from promptc.cli.dry_run import placeholder_inputs

    for i, step in enumerate(shown.steps):
        messages = step.module.render(placeholder_inputs(shown, i, example), shown.adapter)
        per_step.append(LMRequest(model="", messages=messages).approx_prompt_tokens())
    prompt = calls * (sum(per_step) // max(1, len(per_step)))
    max_tokens = [getattr(program.lms.get(s.module.lm or "default"), "max_tokens", None) for s in program.steps]
    completion = calls * (sum(m or 150 for m in max_tokens) // max(1, len(max_tokens)))
    return prompt, completion

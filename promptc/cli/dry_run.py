"""Showing prompts without calling the LM: `run --dry-run` and `inspect`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.rule import Rule

from promptc.cli.common import stdout
from promptc.core.program import Program
from promptc.errors import InputError
from promptc.jobs.compile_setup import placeholder_inputs
from promptc.lm.base import LMRequest, Message
from promptc.lm.batch_round import BatchOptions
from promptc.runner.job import RunJob, check_row
from promptc.runner.source import iter_lines, source_label

COMPLETION_GUESS = 150  # tokens per call when the spec sets no max_tokens


def print_messages(messages: list[Message], title: str) -> None:
    stdout.print(Rule(escape(title)))
    if not messages:
        stdout.print("(no LM call: this step searches a retriever)\n")
    for m in messages:
        stdout.print(f"[bold cyan]{m.role}[/]")
        stdout.print(escape(m.content), soft_wrap=True)
        stdout.print()


def row_messages(program: Program, inputs: Mapping[str, Any]) -> list[list[Message]]:
    return [step.module.render(placeholder_inputs(program, i, inputs), program.adapter)
            for i, step in enumerate(program.steps)]


def print_dry_run(job: RunJob, batch: BatchOptions | None = None) -> None:
    """The first row's prompts and an estimate of requests and tokens for the whole file
    (and, with `batch`, of the Batch API's rounds and cost)."""
    program = job.program
    rows = bad = oversized = prompt_tokens = 0
    limits = [getattr(program.lms.get(s.module.lm or "default"), "max_prompt_tokens", None) for s in program.steps]
    first: dict[str, Any] | None = None
    seen = 0
    for line in iter_lines(job.input):
        if job.limit is not None and seen >= job.limit:
            break
        seen += 1
        inputs, problem = check_row(program, line.value, line.error, text=line.text)
        if problem is not None or inputs is None:
            bad += 1
            continue
        sizes = [LMRequest(model="", messages=m).approx_prompt_tokens() for m in row_messages(program, inputs)]
        if any(limit is not None and size > limit for size, limit in zip(sizes, limits, strict=True)):
            oversized += 1  # refused when run, so neither sent nor counted below
            continue
        rows += 1
        first = first or inputs
        prompt_tokens += sum(sizes)
    if seen == 0:
        raise InputError("the input file has no rows (it is empty or only blank lines)", file=source_label(job.input))
    if first is not None:
        for step, messages in zip(program.steps, row_messages(program, first), strict=True):
            print_messages(messages, f"step '{step.name}' ({step.module.kind}), first row")
    calls = rows * program.calls_per_row()
    max_tokens = [getattr(program.lms.get(s.module.lm or "default"), "max_tokens", None) for s in program.steps]
    completion = rows * sum(m or COMPLETION_GUESS for m in max_tokens)
    stdout.print(Rule("estimate"))
    stdout.print(f"{rows} row(s) to run" + (f", {bad} bad line(s)" if bad else "")
                 + (f", {oversized} over the prompt size limit (each would fail, unsent)" if oversized else ""))
    stdout.print(f"{calls} LM call(s) (more if replies need a parse re-ask or requests are retried)")
    stdout.print(f"~{prompt_tokens:,} prompt tokens, up to ~{completion:,} completion tokens")
    price = getattr(program.lms.get("default"), "price", None)
    if price is not None:
        stdout.print(f"~${price.cost(prompt_tokens, completion):.4f} at most (prices from the spec)")
    if batch is not None:
        print_batch_plan(program, batch, calls, price.batch_cost(prompt_tokens, completion) if price else None)
    stdout.print("nothing was sent (--dry-run)")


def print_batch_plan(program: Program, batch: BatchOptions, calls: int, cost: float | None) -> None:
    from promptc.runner.waves import waves_needed

    waves = waves_needed(program)
    files = -(-calls // batch.max_requests)
    rounds = f"up to {waves} round(s)" if waves is not None else "an unknown number of rounds (a Python program)"
    stdout.print(f"--batch: {rounds} of batches, one per LM call in sequence (each round up to 24h); "
                 f"~{files} batch file(s) in the first round")
    if waves is not None and waves > batch.max_waves:
        stdout.print(f"[red]refused[/]: more rounds than --max-waves {batch.max_waves} (loops or agent steps)")
    if cost is not None:
        stdout.print(f"~${cost:.4f} at most at batch price (`prices:` batch_input/batch_output, "
                     "else half the live price)")

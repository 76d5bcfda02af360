"""`promptc validate` and `promptc inspect`: check a spec and look at its prompts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from promptc.cli.common import (
    BaseUrlOpt,
    ModelOpt,
    ProgramOpt,
    SpecArg,
    handle_errors,
    one_model,
    stdout,
)
from promptc.cli.source import OptionalSpecArg

if TYPE_CHECKING:
    from promptc.core.program import Program


@handle_errors
def validate_command(spec: SpecArg, model: ModelOpt = None, base_url: BaseUrlOpt = None) -> None:
    """Check a spec without calling any LM: YAML, keys, types, signatures and field flow.

    Exit status 0 when the spec is valid, 2 with every problem as FILE:LINE:COL otherwise.

    Example:

      promptc validate specs/math.yaml
    """
    from promptc.spec.lms import LMOptions
    from promptc.spec.loader import load

    loaded = load(spec, options=LMOptions(model=one_model(model, "validate"), base_url=base_url, cache=False))
    loaded.runtime.close()  # nothing runs: the wiring is printed from the built program
    program = loaded.program
    stdout.print(f"[green]ok[/]: {spec} — program '{program.name}', {len(program.steps)} step(s)")
    stdout.print(escape(f"  inputs:  {', '.join(f'{f.name}: {f.type.display()}' for f in program.input_fields)}"))
    for step in program.steps:
        bindings = program.bindings(step.name)
        wiring = ", ".join(f"{k} <- {ref}" for k, ref in bindings.items()) or "bound in forward()"
        outs = ", ".join(f"{f.name}: {f.type.display()}" for f in step.module.produces.outputs)
        stdout.print(escape(f"  {step.name} ({step.module.kind}): {wiring} -> {outs}"))
    for name, cfg in loaded.lm_configs.items():
        where = f" at {cfg.base_url}" if cfg.base_url else ""
        stdout.print(f"  lm {name}: {cfg.model} ({cfg.resolved_provider}{where})")


@handle_errors
def inspect_command(
    spec: OptionalSpecArg = None,
    step: Annotated[str | None, typer.Option("--step", help="Step to show (default: every step).")] = None,
    example: Annotated[str | None, typer.Option("--example", help="Input values as a JSON object.")] = None,
    program_path: ProgramOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Print the chat messages a step sends, without calling the LM.

    Inputs that come from earlier steps are shown as '…'.

    Example:

      promptc inspect specs/math.yaml --step solve --example '{"question": "What is 2+3?"}'
    """
    from promptc.jobs.program import lm_options, load_source

    with load_source(spec, program_path, lm_options(model=one_model(model, "inspect"), base_url=base_url, cache=False)) as source:
        _inspect(source.program, step, example)


def _check_types(program: Program, values: dict) -> None:
    """The fields given in --example, type-checked like a data row's."""
    from promptc.core.types import CoercionError
    from promptc.errors import UsageError

    for f in program.input_fields:
        if values.get(f.name) is not None:
            try:
                f.type.check_input(values[f.name])
            except CoercionError as exc:
                raise UsageError(f"--example: field '{f.name}': {exc}") from None


def _inspect(program: Program, step: str | None, example: str | None) -> None:
    from promptc.cli.dry_run import print_messages
    from promptc.errors import UsageError
    from promptc.jobs.compile_setup import placeholder_inputs
    from promptc.runner.jsonl import parse_object

    values: dict = {}
    if example is not None:
        parsed, problem = parse_object(example)
        if parsed is None:
            if problem and problem.startswith("expected a JSON object"):
                raise UsageError("--example must be a JSON object, e.g. '{\"question\": \"...\"}'")
            raise UsageError(f"--example is {problem}" if problem and problem.startswith("not")
                             else f"--example: {problem}")
        values = parsed
        unknown = sorted(set(values) - set(program.input_names))
        if unknown:
            raise UsageError(f"--example has unknown field(s) {', '.join(unknown)}; "
                             f"the program's inputs are: {', '.join(program.input_names)}")
        _check_types(program, values)
    names = [s.name for s in program.steps]
    if step is not None and step not in names:
        raise UsageError(f"no step named '{step}' (steps: {', '.join(names)})")
    for i, s in enumerate(program.steps):
        if step is not None and s.name != step:
            continue
        shown = {k: values.get(k, "{" + k + "}") for k in program.input_names}
        messages = s.module.render(placeholder_inputs(program, i, shown), program.adapter)
        print_messages(messages, f"step '{s.name}' ({s.module.kind})")

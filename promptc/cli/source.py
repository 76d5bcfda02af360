"""The optional SPEC argument of commands that also take `--program`.

Loading what the command line names is a job (`promptc.jobs.program.load_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OptionalSpecArg = Annotated[Path | None, typer.Argument(
    help="The spec file (YAML). May be left out when --program gives a compiled artifact.",
    show_default=False, metavar="[SPEC]")]

"""The record of a batched run's batches, kept next to its output (`OUTPUT.batches.json`).

It is written atomically right after each batch is created and after each batch's results
are in the cache, so a run killed at any point knows on `--resume` which lines were
already submitted (it re-attaches to their batches instead of paying twice), which
batches still have results to fetch, and how many times each failed line was tried.
It holds batch and file ids, custom ids and the *name* of the key variable, never a key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from promptc.errors import UsageError

VERSION = 1


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".batches.json")


class BatchRecord(BaseModel):
    """One batch this run created."""

    id: str
    lm: str = Field(description="the LM's name in the spec (`default`, ...)")
    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    input_file_id: str
    wave: int
    custom_ids: list[str]
    status: str = "validating"
    done: bool = Field(default=False, description="its results are in the cache, its failures counted")


class BatchState(BaseModel):
    """Every batch of a run, and the failed attempts of each line that failed."""

    version: int = VERSION
    batches: list[BatchRecord] = Field(default_factory=list)
    attempts: dict[str, int] = Field(default_factory=dict, description="custom_id -> failed batch attempts")

    def active(self) -> list[BatchRecord]:
        """Batches whose results are not fetched yet (running, or finished while nobody polled)."""
        return [b for b in self.batches if not b.done]

    @classmethod
    def load(cls, path: Path) -> BatchState:
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, ValidationError) as exc:
            raise UsageError(f"{path}: not a readable promptc batch state file ({type(exc).__name__}); "
                             "it lists the batches of an earlier --batch run") from None

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old file or the new one, whole."""
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.model_dump_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

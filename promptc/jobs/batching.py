"""`--batch` for `run` and `eval`, and `promptc batch status|cancel`: the OpenAI Batch API.

The batches of a run are listed in `OUTPUT.batches.json` (promptc.lm.batch_state); status
and cancel read that file and ask the provider, with the key from the variable it names.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

from promptc.errors import UsageError
from promptc.lm.batch_client import BatchClient, BatchInfo, api_key
from promptc.lm.batch_round import BatchOptions, Event
from promptc.lm.batch_state import BatchRecord, BatchState, state_path
from promptc.runner.waves import BatchEngine


def batch_engine(output: Path | None, options: BatchOptions, *, resume: bool, overwrite: bool,
                 on_event: Event | None = None) -> BatchEngine:
    """The engine of a batched job whose state lives next to `output` (none without one)."""
    engine = BatchEngine(options, state=state_path(output) if output is not None else None, resume=resume,
                         on_event=on_event)
    engine.prepare(overwrite)
    return engine


class BatchView(BaseModel):
    """One batch of a run, as the provider sees it now."""

    id: str
    lm: str
    model: str
    wave: int
    requests: int
    status: str
    completed: int = 0
    failed: int = 0
    collected: bool = False  # its replies are in the cache


def batch_status(output: str | Path) -> list[BatchView]:
    """Every batch of the batched run writing `output`, with its status from the provider."""
    return asyncio.run(_each(Path(output), cancel=False))


def batch_cancel(output: str | Path) -> list[BatchView]:
    """Cancel the batches of `output`'s run that are not finished; all batches, as they are now.

    A running `--batch` job then stops once it has kept the replies already made;
    `--resume` sends the cancelled lines again.
    """
    return asyncio.run(_each(Path(output), cancel=True))


async def _each(output: Path, *, cancel: bool) -> list[BatchView]:
    path = state_path(output)
    if not path.exists():
        raise UsageError(f"no batches for {output}: {path} does not exist (was it written by `run --batch`?)")
    state = BatchState.load(path)
    clients: dict[tuple[str | None, str], BatchClient] = {}
    views = []
    try:
        for record in state.batches:
            key = (record.base_url, record.api_key_env)
            if key not in clients:
                clients[key] = BatchClient(base_url=record.base_url, key=api_key(*key))
            info = await clients[key].retrieve(record.id)
            if cancel and not record.done and not info.terminal and info.status != "cancelling":
                info = await clients[key].cancel(record.id)
            views.append(_view(record, info))
    finally:
        for client in clients.values():
            await client.aclose()
    return views


def _view(record: BatchRecord, info: BatchInfo) -> BatchView:
    return BatchView(id=record.id, lm=record.lm, model=record.model, wave=record.wave,
                     requests=len(record.custom_ids), status=info.status, completed=info.completed,
                     failed=info.failed, collected=record.done)

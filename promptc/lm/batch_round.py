"""One round of a batched run: send the recorded calls, wait for every batch, fill the cache.

A round re-attaches first: a call already in a batch whose results are not fetched (a
run killed mid-poll, then `--resume`) is not sent again. The rest is split by LM (a batch
file holds one model) and by the provider's limits (requests and bytes per file), each
batch is recorded in the state file as soon as it exists, and every unfinished batch is
polled with backoff until it ends. Its output and error files are then read: replies go
to the cache, and each line with no reply (an error line, an expired or failed batch)
counts one failed attempt. A cancelled batch stops the run once its replies are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.errors import LMError, UsageError
from promptc.lm.base import LMRequest
from promptc.lm.batch_client import BatchClient, BatchInfo, LineResult, api_key, request_line
from promptc.lm.batch_state import BatchRecord, BatchState
from promptc.lm.batching import BatchingLM, Wanted, batch_response
from promptc.lm.layers import CachedLM

MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000  # "200 MB": counted in the smaller unit, to stay under either reading


@dataclass
class BatchOptions:
    """How a batched run uses the Batch API."""

    max_requests: int = MAX_REQUESTS  # lines per batch file
    max_bytes: int = MAX_BYTES  # bytes per batch file
    poll: float = 10.0  # seconds before the first poll; grows 1.5x up to 30x this
    retries: int = 2  # new batches for a line that failed, before it is asked live
    max_waves: int = 10  # programs needing more rounds (loops, agents) are refused


@dataclass
class BatchTotals:
    """What the batches of a run did, for the summary."""

    waves: int = 0
    batches: int = 0
    requests: int = 0  # lines sent in new batches
    reattached: int = 0  # batches of an earlier run this one waited for
    failed_lines: int = 0
    cost: float = 0.0  # at batch price
    live_cost: float = 0.0  # the same tokens at live price
    events: list[str] = field(default_factory=list)

    @property
    def saved(self) -> float:
        return self.live_cost - self.cost


Event = Callable[[str], None]


class BatchRound:
    """Sends, polls and collects batches for one batched run (see the module docstring)."""

    def __init__(self, lms: dict[str, BatchingLM], state: BatchState, path: Path | None,
                 options: BatchOptions, totals: BatchTotals, on_event: Event | None = None):
        self.lms, self.state, self.path, self.options = lms, state, path, options
        self.totals, self.on_event = totals, on_event
        self.clients: dict[tuple[str | None, str], BatchClient] = {}
        self.inherited = {record.id for record in state.active()}  # an earlier run's (--resume)

    async def run(self, wanted: dict[str, Wanted]) -> None:
        self.totals.waves += 1
        waiting = {cid for record in self.state.active() for cid in record.custom_ids}
        fresh = [w for key, w in wanted.items() if key not in waiting]
        by_lm: dict[str, list[Wanted]] = {}
        for w in fresh:
            by_lm.setdefault(w.lm, []).append(w)
        for name, calls in by_lm.items():
            for chunk in self._chunks(calls):
                await self._submit(self.lms[name], chunk)
        active = self.state.active()
        self.totals.reattached += sum(1 for r in active if r.id in self.inherited)
        self.inherited.clear()
        statuses = await asyncio.gather(*(self._finish(record) for record in active))
        cancelled = [r.id for r, status in zip(active, statuses, strict=True) if status == "cancelled"]
        if cancelled:
            raise LMError(f"batch {', '.join(cancelled)} was cancelled; the replies it finished are kept "
                          "in the cache. Rerun with --resume to send the rest")

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()

    # -- sending ------------------------------------------------------------------------
    def _chunks(self, calls: list[Wanted]) -> Iterator[list[tuple[Wanted, bytes]]]:
        chunk: list[tuple[Wanted, bytes]] = []
        size = 0
        for w in calls:
            line = request_line(w.key, w.request)
            if len(line) > self.options.max_bytes:
                raise UsageError(f"one request is {len(line):,} bytes, over the batch file limit of "
                                 f"{self.options.max_bytes:,} (--batch-max-bytes)")
            if chunk and (len(chunk) >= self.options.max_requests or size + len(line) > self.options.max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append((w, line))
            size += len(line)
        if chunk:
            yield chunk

    async def _submit(self, lm: BatchingLM, chunk: list[tuple[Wanted, bytes]]) -> None:
        client_lm = lm.client
        client = self._client(client_lm.base_url, client_lm.api_key_env, getattr(client_lm, "_api_key", None))
        file_id, info = await client.submit(b"".join(line for _, line in chunk),
                                            {"promptc_lm": lm.name, "promptc_wave": str(self.totals.waves)})
        record = BatchRecord(id=info.id, lm=lm.name, model=lm.model, base_url=client_lm.base_url,
                             api_key_env=client_lm.api_key_env, input_file_id=file_id, wave=self.totals.waves,
                             custom_ids=[w.key for w, _ in chunk], status=info.status)
        self.state.batches.append(record)
        lm.collector.served.update(record.custom_ids)
        self._save()  # at once: a kill from here on re-attaches instead of paying twice
        self.totals.batches += 1
        self.totals.requests += len(chunk)
        self._event(f"batch {info.id}: {len(chunk)} request(s) sent ({lm.model}, round {self.totals.waves})")

    def _client(self, base_url: str | None, key_env: str, explicit: str | None = None) -> BatchClient:
        found = self.clients.get((base_url, key_env))
        if found is None:
            found = BatchClient(base_url=base_url, key=api_key(base_url, key_env, explicit))
            self.clients[(base_url, key_env)] = found
        return found

    # -- waiting and collecting ----------------------------------------------------------
    async def _finish(self, record: BatchRecord) -> str:
        client = self._client(record.base_url, record.api_key_env)
        delay = self.options.poll
        info = await client.retrieve(record.id)
        while not info.terminal:
            if info.status != record.status:
                record.status = info.status
                self._event(f"batch {record.id}: {info.status} ({info.completed}/{info.total} done)")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.options.poll * 30)
            info = await client.retrieve(record.id)
        self._collect(record, info, await client.results(info))
        return info.status

    def _collect(self, record: BatchRecord, info: BatchInfo, lines: list[LineResult]) -> None:
        lm = self.lms.get(record.lm)
        submitted = set(record.custom_ids)
        answered: set[str] = set()
        for line in lines:
            if line.custom_id not in submitted or line.completion is None or line.custom_id in answered:
                continue
            answered.add(line.custom_id)
            if lm is not None:
                self._keep(lm.live, lm, line.custom_id, record.model, line.completion)
        missing = submitted - answered
        if info.status != "cancelled":  # a cancellation is no fault of the lines
            for cid in missing:
                self.state.attempts[cid] = self.state.attempts.get(cid, 0) + 1
            self.totals.failed_lines += len(missing)
        record.status, record.done = info.status, True
        self._save()
        note = f"; {'; '.join(info.errors)[:300]}" if info.errors else ""
        self._event(f"batch {record.id}: {info.status}, {len(answered)} answered, "
                    f"{len(missing)} unanswered{note}")

    def _keep(self, live: CachedLM, lm: BatchingLM, key: str, model: str, completion: dict[str, Any]) -> None:
        response = batch_response(completion, lm.price)
        live.cache.set(key, LMRequest.model_construct(model=model, messages=[]), response)
        self.totals.cost += response.usage.cost
        if lm.price is not None:
            self.totals.live_cost += lm.price.cost(response.usage.prompt_tokens, response.usage.completion_tokens)

    def _save(self) -> None:
        if self.path is not None:
            self.state.save(self.path)

    def _event(self, message: str) -> None:
        self.totals.events.append(message)
        if self.on_event is not None:
            self.on_event(message)

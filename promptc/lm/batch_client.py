"""The OpenAI Batch API through the `openai` client: upload, create, retrieve, cancel, download.

Nothing is assumed beyond the API reference: a batch's `status` may move in any order
and skip states; `output_file_id` is null when no line succeeded and `error_file_id` when
none failed; output lines come in any order and are matched by `custom_id`; a line is a
success only when its `response.status_code` is 200 and its body is a chat completion.
Every other line (from either file, or a line missing from both) is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from promptc.errors import LMAuthError, LMError
from promptc.lm.base import LMRequest

ENDPOINT: Final = "/v1/chat/completions"
WINDOW: Final = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# The SDK's own retries (429, 5xx, connection errors, with backoff) cover these few
# management calls; row-level retries are the batch's business.
MANAGEMENT_RETRIES = 5


@dataclass
class BatchInfo:
    """The fields of a batch object that promptc reads."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # `errors.data` messages (a failed validation)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class LineResult:
    """One line of an output or error file: the completion, or why there is none."""

    custom_id: str
    completion: dict[str, Any] | None
    error: str | None = None


def chat_body(request: LMRequest) -> dict[str, Any]:
    """The `/v1/chat/completions` body of a resolved request, as the live client sends it."""
    body: dict[str, Any] = {"model": request.model, "messages": [m.model_dump() for m in request.messages]}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.response_format is not None:
        body["response_format"] = request.response_format
    return body


def request_line(custom_id: str, request: LMRequest) -> bytes:
    """One line of a batch input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": chat_body(request)}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def api_key(base_url: str | None, api_key_env: str, explicit: str | None = None) -> str:
    """The key the live client would use (`OpenAICompatibleLM._key`'s rule)."""
    key = explicit or os.environ.get(api_key_env)
    if key:
        return key
    if base_url:
        return "not-needed"
    raise LMAuthError(f"no API key: set the {api_key_env} environment variable")


class BatchClient:
    """The Files and Batches endpoints of one OpenAI-compatible server."""

    def __init__(self, *, base_url: str | None, key: str, timeout: float = 600.0):  # a 200 MB upload
        import openai

        self.client = openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=timeout,
                                         max_retries=MANAGEMENT_RETRIES)

    async def submit(self, lines: bytes, metadata: Mapping[str, str]) -> tuple[str, BatchInfo]:
        """Upload an input file and create its batch: (input file id, the batch)."""
        async with self._errors("uploading a batch file"):
            uploaded = await self.client.files.create(file=("promptc-batch.jsonl", lines, "application/jsonl"),
                                                      purpose="batch")
        async with self._errors("creating a batch"):
            batch = await self.client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                                     completion_window=WINDOW, metadata=dict(metadata))
        return uploaded.id, _info(batch)

    async def retrieve(self, batch_id: str) -> BatchInfo:
        async with self._errors(f"reading batch {batch_id}"):
            return _info(await self.client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchInfo:
        async with self._errors(f"cancelling batch {batch_id}"):
            return _info(await self.client.batches.cancel(batch_id))

    async def results(self, info: BatchInfo) -> list[LineResult]:
        """Every line of the batch's output and error files (either may be absent)."""
        found: list[LineResult] = []
        for file_id in (info.output_file_id, info.error_file_id):
            if file_id:
                async with self._errors(f"downloading file {file_id} of batch {info.id}"):
                    content = await self.client.files.content(file_id)
                found.extend(parse_lines(content.content))
        return found

    @contextlib.asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """The SDK's errors (after its retries) as promptc's: exit 3 with a message, no traceback."""
        import openai

        try:
            yield
        except openai.APIStatusError as exc:
            where = str(self.client.base_url)
            kind = LMAuthError if exc.status_code in (401, 403) else LMError
            raise kind(f"{where} answered HTTP {exc.status_code} while {doing}: {_message(exc)}",
                       status=exc.status_code) from exc
        except openai.APIError as exc:  # connection errors and timeouts
            raise LMError(f"{self.client.base_url} failed while {doing}: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self.client.close()


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    return str(message or exc)[:300]


def parse_lines(data: bytes) -> Iterator[LineResult]:
    """The lines of an output or error file; a line that is not JSON or has no custom_id is skipped."""
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            yield parse_line(line)


def parse_line(line: dict[str, Any]) -> LineResult:
    custom_id = line["custom_id"]
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    body = response.get("body") if response is not None else None
    status = response.get("status_code") if response is not None else None
    if status == 200 and isinstance(body, dict) and _is_completion(body):
        return LineResult(custom_id, body)
    return LineResult(custom_id, None, _line_error(line.get("error"), status, body))


def _is_completion(body: dict[str, Any]) -> bool:
    choices = body.get("choices")
    return isinstance(choices, list) and bool(choices) and isinstance(choices[0], dict)


def _line_error(error: Any, status: Any, body: Any) -> str:
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        return f"HTTP {status}: {inner['message']}"
    return f"HTTP {status}" if status else "no response"


def _info(batch: Any) -> BatchInfo:
    counts = getattr(batch, "request_counts", None)
    errors = getattr(batch, "errors", None)
    messages = [f"{e.code or 'error'}: {e.message or ''}" for e in (getattr(errors, "data", None) or [])]
    return BatchInfo(id=batch.id, status=batch.status, output_file_id=batch.output_file_id,
                     error_file_id=batch.error_file_id, total=getattr(counts, "total", 0) or 0,
                     completed=getattr(counts, "completed", 0) or 0, failed=getattr(counts, "failed", 0) or 0,
                     errors=messages)

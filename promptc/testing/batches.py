"""The fake server's `/v1/files` and `/v1/batches`, as the OpenAI API reference describes them.

Lines are answered by the server's responder (a `Fault` becomes an error line with its
HTTP status). What a real provider may do, and a client must survive, can be asked for:

    srv.batch_api.progression = ["validating", "completed"]  # statuses may jump
    srv.batch_api.hold = True          # stay `in_progress` until set back to False
    srv.batch_api.fail_next(3)         # the next 3 lines go to the error file (HTTP 500)
    srv.batch_api.expire_next(done=5)  # the next batch expires after 5 lines
    srv.batch_api.reject_next("...")   # the next batch fails validation

Output lines are shuffled (seeded), `output_file_id` is null when no line succeeded and
`error_file_id` when none failed; a cancelled batch keeps the first half of its lines.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from promptc.testing.faults import Fault, error_body

if TYPE_CHECKING:
    from aiohttp import web


class _Server(Protocol):
    """What the batch API uses of its FakeOpenAIServer (not imported: it imports this)."""

    api_key: str | None

    def responder(self, body: dict[str, Any]) -> Any: ...

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]: ...

ENDPOINT = "/v1/chat/completions"


@dataclass
class _Batch:
    obj: dict[str, Any]
    lines: list[dict[str, Any]]
    step: int = 0
    expire_after: int | None = None
    rejected: str | None = None


@dataclass
class FakeBatchAPI:
    """Files and batches of one fake server (see the module docstring)."""

    server: _Server
    progression: list[str] = field(default_factory=lambda: ["validating", "in_progress", "finalizing", "completed"])
    hold: bool = False
    seed: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, _Batch] = field(default_factory=dict)
    created: int = 0  # batches created (what resume tests count)
    lines_received: int = 0
    _fail: int = 0
    _expire: int | None = None
    _reject: str | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, lines: int) -> None:
        with self._lock:
            self._fail += lines

    def expire_next(self, done: int) -> None:
        with self._lock:
            self._expire = done

    def reject_next(self, message: str) -> None:
        with self._lock:
            self._reject = message

    # -- routing --------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        srv = self.server
        if srv.api_key is not None and request.headers.get("Authorization") != f"Bearer {srv.api_key}":
            return _error(401, "Incorrect API key provided (fake server).")
        parts = [p for p in request.path.split("/") if p][1:]  # drop "v1"
        method = request.method
        if parts == ["files"] and method == "POST":
            return await self._upload(request)
        if len(parts) == 2 and parts[0] == "files" and method == "GET" and parts[1] in self.files:
            return web.json_response(self.files[parts[1]])
        if len(parts) == 3 and parts[0] == "files" and parts[2] == "content" and parts[1] in self.contents:
            return web.Response(body=self.contents[parts[1]], content_type="application/octet-stream")
        if parts == ["batches"] and method == "POST":
            return self._create(await request.json())
        if len(parts) >= 2 and parts[0] == "batches" and parts[1] in self.batches:
            batch = self.batches[parts[1]]
            if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                return web.json_response(self._cancel(batch))
            if len(parts) == 2 and method == "GET":
                return web.json_response(self._advance(batch))
        return _error(404, f"No such object or route: {method} {request.path} (fake server).")

    # -- files ----------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        form = await request.post()
        from aiohttp.web_request import FileField

        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, FileField) or purpose != "batch":
            return _error(400, "expected multipart `file` and purpose=batch (fake server).")
        data = upload.file.read()
        return web.json_response(self._store(data, upload.filename or "upload.jsonl", "batch"))

    def _store(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-fake{next(self._ids):06d}"
        self.contents[file_id] = data
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed"}
        return self.files[file_id]

    # -- batches --------------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> web.StreamResponse:
        from aiohttp import web

        file_id = body.get("input_file_id")
        if file_id not in self.contents or body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return _error(400, "bad input_file_id, endpoint or completion_window (fake server).")
        lines = [json.loads(raw) for raw in self.contents[file_id].splitlines() if raw.strip()]
        now = int(time.time())
        batch_id = f"batch_fake{next(self._ids):06d}"
        obj = {"id": batch_id, "object": "batch", "endpoint": ENDPOINT, "errors": None, "input_file_id": file_id,
               "completion_window": "24h", "status": "validating", "output_file_id": None, "error_file_id": None,
               "created_at": now, "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None,
               "completed_at": None, "failed_at": None, "expired_at": None, "cancelling_at": None,
               "cancelled_at": None, "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
               "metadata": body.get("metadata")}
        with self._lock:
            batch = _Batch(obj, lines, expire_after=self._expire, rejected=self._reject or _invalid(lines))
            self._expire = self._reject = None
            self.batches[batch_id] = batch
            self.created += 1
            self.lines_received += len(lines)
        return web.json_response(obj)

    def _advance(self, batch: _Batch) -> dict[str, Any]:
        """One retrieve moves the batch one status on (never past in_progress while held)."""
        obj = batch.obj
        if obj["status"] in ("completed", "failed", "expired", "cancelled"):
            return obj
        if obj["status"] == "cancelling":
            self._finish(batch, "cancelled", len(batch.lines) // 2)
            return obj
        if batch.rejected is not None:
            obj.update(status="failed", failed_at=int(time.time()),
                       errors={"object": "list", "data": [{"code": "invalid_request", "message": batch.rejected,
                                                           "param": None, "line": None}]})
            return obj
        if self.hold and obj["status"] == "in_progress":
            return obj
        batch.step = min(batch.step + 1, len(self.progression) - 1)
        status = self.progression[batch.step]
        if status == "completed":
            done = batch.expire_after
            self._finish(batch, "expired" if done is not None else "completed",
                         len(batch.lines) if done is None else done)
        else:
            obj["status"] = status
            obj[f"{status}_at"] = int(time.time())
        return obj

    def _cancel(self, batch: _Batch) -> dict[str, Any]:
        if batch.obj["status"] not in ("completed", "failed", "expired", "cancelled"):
            batch.obj.update(status="cancelling", cancelling_at=int(time.time()))
        return batch.obj

    def _finish(self, batch: _Batch, status: str, done: int) -> None:
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, line in enumerate(batch.lines):
            if n >= done:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append({"id": f"batch_req_{n}", "custom_id": line.get("custom_id"), "response": None,
                               "error": {"code": code, "message": f"This request was not run ({status})."}})
                continue
            status_code, body = self._answer(line.get("body") or {})
            target = outputs if status_code == 200 else errors
            target.append({"id": f"batch_req_{n}", "custom_id": line.get("custom_id"),
                           "response": {"status_code": status_code, "request_id": f"req_fake_b{n}", "body": body},
                           "error": None})
        rng = random.Random(self.seed + len(self.batches))
        rng.shuffle(outputs)  # providers return lines in any order
        rng.shuffle(errors)
        obj = batch.obj
        obj.update(status=status, **{f"{status}_at": int(time.time())},
                   output_file_id=self._file(outputs, f"{obj['id']}_output.jsonl"),
                   error_file_id=self._file(errors, f"{obj['id']}_error.jsonl"),
                   request_counts={"total": len(batch.lines), "completed": len(outputs), "failed": len(errors)})

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            failing = self._fail > 0
            self._fail -= 1 if failing else 0
        if failing:
            return 500, error_body(500, "The server had an error processing this line (fake server).")
        try:
            reply = self.server.responder(body)
        except Exception as exc:
            return 500, error_body(500, f"fake server responder raised {type(exc).__name__}: {exc}")
        if isinstance(reply, Fault):
            status = reply.http_status if reply.http_status >= 400 else 500
            return status, error_body(status, reply.message)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        return 200, self.server._completion(body, text)

    def _file(self, lines: list[dict[str, Any]], name: str) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
        return str(self._store(data, name, "batch_output")["id"])


def _invalid(lines: list[dict[str, Any]]) -> str | None:
    """Why the provider would refuse this input file, if it would."""
    ids = [line.get("custom_id") for line in lines]
    if len(set(ids)) != len(ids) or not all(isinstance(i, str) for i in ids):
        return "custom_id values must be unique strings"
    if any(line.get("method") != "POST" or line.get("url") != ENDPOINT for line in lines):
        return f"every line must be POST {ENDPOINT}"
    if len({(line.get("body") or {}).get("model") for line in lines}) > 1:
        return "all requests in a batch must use the same model"
    return None


def _error(status: int, message: str) -> web.Response:
    from aiohttp import web

    return web.json_response(error_body(status, message), status=status)

"""OpenTelemetry export (one trace per row; step and LM-call spans) and `promptc trace`.

Runs go through the real openai client against the fake server; spans are checked with
the SDK's in-memory exporter and with a local OTLP/HTTP receiver decoding the protobuf
the real exporter sends.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import promptc
from promptc.telemetry import exporting, traces_url
from tests.conftest import TEST_KEY, run_cli
from tests.test_cli_run import read_rows, write_rows, write_spec

pytest.importorskip("opentelemetry.sdk", reason="the `otel` extra is part of the test extra")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

ENV = {"PROMPTC_TEST_KEY": TEST_KEY}


class Receiver(http.server.ThreadingHTTPServer):
    """A minimal OTLP/HTTP traces endpoint: keeps every span it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[dict] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.paths.append(self.path)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.server.spans.append({"name": span.name, "trace": span.trace_id.hex(),
                                              "id": span.span_id.hex(), "parent": span.parent_span_id.hex(),
                                              "attributes": attributes})
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _value(value: object) -> object:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


@pytest.fixture(autouse=True)
def test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTC_TEST_KEY", TEST_KEY)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_nest_row_step_call_and_add_up(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    exporter = InMemorySpanExporter()
    with promptc.load_program(spec, cache=False) as program, exporting(exporter=exporter):
        result = promptc.run(program, write_rows(tmp_path / "in.jsonl", 12), tmp_path / "out.jsonl")
    spans = exporter.get_finished_spans()
    rows = [s for s in spans if s.name == "promptc.row"]
    calls = [s for s in spans if s.name.startswith("chat ")]
    steps = {s.context.span_id: s for s in spans if s.name == "promptc.step"}
    assert len(rows) == 12 and len({s.context.trace_id for s in rows}) == 12  # a trace per row
    assert all(s.parent is None for s in rows)
    assert len(calls) == 12 and all(c.parent.span_id in steps for c in calls)
    assert all(steps[c.parent.span_id].parent.span_id in {r.context.span_id for r in rows} for c in calls)
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls) == result.usage.prompt_tokens
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls) == result.usage.completion_tokens
    first = calls[0].attributes
    assert first["gen_ai.request.model"] == "fake-model" and first["server.address"] == "127.0.0.1"
    assert "gen_ai.prompt" not in first  # content only when asked


def test_content_only_when_asked(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    exporter = InMemorySpanExporter()
    with promptc.load_program(spec, cache=False) as program, exporting(exporter=exporter, content=True):
        promptc.run(program, write_rows(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl")
    call = next(s for s in exporter.get_finished_spans() if s.name.startswith("chat "))
    assert "What is" in call.attributes["gen_ai.prompt"] and call.attributes["gen_ai.completion"]


def test_cli_exports_to_an_otlp_http_receiver(tmp_path, fake_server, receiver):
    spec = write_spec(tmp_path, fake_server.base_url)
    out = tmp_path / "out.jsonl"
    done = run_cli("run", str(spec), "-i", str(write_rows(tmp_path / "in.jsonl", 30)), "-o", str(out),
                   "--no-cache", "--otel-endpoint", receiver.url, env=ENV)
    assert done.returncode == 0, done.stderr
    assert set(receiver.paths) == {"/v1/traces"}
    rows = [s for s in receiver.spans if s["name"] == "promptc.row"]
    assert len(rows) == 30 and len({s["trace"] for s in rows}) == 30
    assert sorted(s["attributes"]["promptc.row"] for s in rows) == list(range(1, 31))
    calls = [s for s in receiver.spans if s["name"].startswith("chat ")]
    written = read_rows(out)
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in calls) == \
        sum(r["_usage"]["prompt_tokens"] for r in written)
    assert sum(c["attributes"]["promptc.requests"] for c in calls) == fake_server.request_count


def test_otel_endpoint_from_the_environment(tmp_path, fake_server, receiver):
    spec = write_spec(tmp_path, fake_server.base_url)
    data = tmp_path / "gold.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} plus zero?", "answer": i}) + "\n" for i in range(3)))
    done = run_cli("eval", str(spec), "-d", str(data), "--metric", "numeric_match", "--no-cache",
                   env={**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    assert len([s for s in receiver.spans if s["name"] == "promptc.row"]) == 3


def test_traces_url():
    assert traces_url("http://h:4318") == "http://h:4318/v1/traces"
    assert traces_url("http://h:4318/v1/traces/") == "http://h:4318/v1/traces"


def test_missing_extra_says_how_to_install(monkeypatch):
    import sys

    from promptc.errors import UsageError

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(UsageError, match=r"pip install '\.\[otel\]'"), exporting("http://127.0.0.1:9"):
        pass


# -- promptc trace ---------------------------------------------------------------------------

def test_trace_replays_a_row_from_the_cache(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    out = tmp_path / "out.jsonl"
    cache = tmp_path / "cache"
    done = run_cli("run", str(spec), "-i", str(write_rows(tmp_path / "in.jsonl", 5)), "-o", str(out),
                   "--cache-dir", str(cache), env=ENV)
    assert done.returncode == 0, done.stderr
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    port = fake_server.base_url.split(":")[2].split("/")[0]
    assert meta["provenance"]["models"] == [{"name": "default", "model": "fake-model", "host": f"127.0.0.1:{port}",
                                             "priced": False}]
    sent = fake_server.request_count
    shown = run_cli("trace", str(out), "--row", "4", env=ENV)
    assert shown.returncode == 0, shown.stderr
    assert "What is 3 plus zero?" in shown.stdout and "completion" in shown.stdout and "parsed:" in shown.stdout
    as_json = json.loads(run_cli("trace", str(out), "--row", "4", "--json", env=ENV).stdout)
    row = next(r for r in read_rows(out) if r["_row"] == 4)
    assert as_json["steps"][0]["outputs"]["answer"] == row["answer"]
    assert as_json["steps"][0]["messages"][-1]["content"].count("What is 3 plus zero?") == 1
    assert fake_server.request_count == sent  # replayed, not re-sent


@pytest.mark.parametrize("case", ["no-cache", "no-meta", "no-row"])
def test_trace_errors_name_the_problem(tmp_path, fake_server, case):
    spec = write_spec(tmp_path, fake_server.base_url)
    out = tmp_path / "out.jsonl"
    flags = ["--no-cache"] if case == "no-cache" else ["--cache-dir", str(tmp_path / "c")]
    assert run_cli("run", str(spec), "-i", str(write_rows(tmp_path / "in.jsonl", 2)), "-o", str(out), *flags,
                   env=ENV).returncode == 0
    if case == "no-meta":
        (tmp_path / "out.jsonl.meta.json").unlink()
    done = run_cli("trace", str(out), "--row", "9" if case == "no-row" else "1", env=ENV)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    expected = {"no-cache": "not in the cache", "no-meta": "out.jsonl.meta.json not found",
                "no-row": "no row with `_row` 9"}[case]
    assert expected in done.stderr
    assert isinstance(Path(out), Path)

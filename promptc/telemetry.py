"""OpenTelemetry traces of a job: one trace per row, a span per step and per LM call.

    with promptc.telemetry.exporting("http://localhost:4318"):   # any OTLP/HTTP collector
        promptc.run(program, "in.jsonl", "out.jsonl")

`promptc run|eval --otel-endpoint URL` does the same (or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables); Jaeger,
Phoenix, Langfuse and the OpenTelemetry Collector all take OTLP/HTTP. LM-call spans follow
the GenAI semantic conventions (`gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...);
prompts and completions are recorded (`gen_ai.prompt`, `gen_ai.completion`) only with
`content=True` (`--otel-content`), since they may hold personal data.

Needs the `otel` extra (opentelemetry-sdk and its OTLP/HTTP exporter). Callers that
already run an OpenTelemetry SDK pass their own `tracer_provider`, which is then theirs
to shut down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from promptc.errors import UsageError
from promptc.lm.spans import listening

INSTALL_HINT = "OpenTelemetry export needs the `otel` extra: pip install '.[otel]' (from the promptc repository)"
TRACES_PATH = "/v1/traces"
ENV_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def endpoint_from(flag: str | None) -> str | None:
    """The OTLP endpoint to export to: the flag, else the standard environment variables."""
    return flag or next((os.environ[v] for v in ENV_VARS if os.environ.get(v)), None)


def traces_url(endpoint: str) -> str:
    """A collector's base URL (http://host:4318) or its traces URL, as the traces URL."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


class _OtelSpan:
    def __init__(self, span: Any, content: bool):
        self.span, self.record_content = span, content

    def set(self, attributes: Mapping[str, Any]) -> None:
        self.span.set_attributes(dict(attributes))

    def content(self, prompt: str, completion: str) -> None:
        if self.record_content:
            self.span.set_attributes({"gen_ai.prompt": prompt, "gen_ai.completion": completion})


class OtelListener:
    """Turns promptc's spans into OpenTelemetry spans of `tracer` (nested by context)."""

    def __init__(self, tracer: Any, *, content: bool = False):
        self.tracer, self.record_content = tracer, content

    @contextmanager
    def start(self, name: str, attributes: Mapping[str, Any]) -> Iterator[_OtelSpan]:
        with self.tracer.start_as_current_span(name, attributes=dict(attributes)) as span:
            yield _OtelSpan(span, self.record_content)


@contextmanager
def exporting(endpoint: str | None = None, *, content: bool = False, tracer_provider: Any = None,
              exporter: Any = None) -> Iterator[None]:
    """Export the spans of the jobs run inside this block.

    Give an OTLP/HTTP `endpoint`, an SDK span `exporter` (tests use the in-memory one), or
    your own `tracer_provider`. With none of them this does nothing. Spans are flushed
    when the block ends.
    """
    if endpoint is None and exporter is None and tracer_provider is None:
        yield
        return
    from promptc import __version__

    provider, owned = tracer_provider, tracer_provider is None
    if owned:
        provider = _provider(endpoint, exporter)
    tracer = provider.get_tracer("promptc", __version__)
    try:
        with listening(OtelListener(tracer, content=content)):
            yield
    finally:
        if owned:
            provider.shutdown()  # flushes the batch processor


def _provider(endpoint: str | None, exporter: Any) -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    from promptc import __version__

    provider = TracerProvider(resource=Resource.create({"service.name": "promptc", "service.version": __version__}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise UsageError(INSTALL_HINT) from None
        assert endpoint is not None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))))
    return provider

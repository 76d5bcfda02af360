"""Test helpers shipped with promptc: a fake OpenAI-compatible server with fault injection.

    from promptc.testing import FakeOpenAIServer, Fault

    with FakeOpenAIServer() as srv:
        srv.responder = lambda body: "Answer: 42"
        srv.queue([Fault.rate_limit(retry_after=0.05), "first reply"])
        ...  # point an OpenAI client at srv.base_url

`spawn_server_process()` runs the same server in a subprocess (for benchmarks).
"""

from promptc.testing.fake_colbert import FakeColBERTServer
from promptc.testing.faults import DEFAULT_RANDOM_KINDS, FAULT_KINDS, Fault, error_body
from promptc.testing.process import spawn_server_process
from promptc.testing.server import (
    FakeOpenAIServer,
    RequestRecord,
    Responder,
    default_responder,
)
from promptc.testing.wire import estimate_tokens

__all__ = [
    "DEFAULT_RANDOM_KINDS",
    "FAULT_KINDS",
    "FakeColBERTServer",
    "FakeOpenAIServer",
    "Fault",
    "RequestRecord",
    "Responder",
    "default_responder",
    "error_body",
    "estimate_tokens",
    "spawn_server_process",
]

"""`python -m promptc.testing`: run the fake OpenAI server until SIGTERM or SIGINT.

Prints `READY http://127.0.0.1:PORT/v1` on one line once it accepts connections.
"""

from __future__ import annotations

import argparse
import sys

from promptc.testing.faults import DEFAULT_RANDOM_KINDS, FAULT_KINDS
from promptc.testing.process import READY_PREFIX
from promptc.testing.server import DEFAULT_HOST, FakeOpenAIServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m promptc.testing", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help="fraction of chat requests that fail"
    )
    p.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_RANDOM_KINDS),
        help=f"comma-separated, from: {', '.join(FAULT_KINDS)}",
    )
    p.add_argument("--hang-seconds", type=float, default=5.0, help="how long a `hang` fault sleeps")
    p.add_argument("--seed", type=int, default=None, help="seed for the fault RNG")
    p.add_argument("--api-key", default=None, help="answer 401 unless this bearer token is sent")
    p.add_argument("--echo-key", action="store_true",
                   help="repeat the key the client sent in the 401 message (some servers do)")
    p.add_argument("--rpm", type=int, default=None, help="requests per minute, answering 429 above it")
    p.add_argument("--no-rate-headers", action="store_true",
                   help="leave the x-ratelimit-* headers out (a 429 still says Retry-After)")
    p.add_argument("--max-inflight", type=int, default=None,
                   help="requests served at once, answering 429 above it")
    p.add_argument("--model", action="append", dest="models", help="model id to list (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse flags and serve until signalled."""
    args = _parser().parse_args(argv)
    kinds = [k.strip() for k in args.fault_kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        _parser().error(f"unknown fault kinds: {', '.join(unknown)}")
    srv = FakeOpenAIServer(
        host=args.host,
        port=args.port,
        latency=args.latency,
        fault_rate=args.fault_rate,
        fault_kinds=kinds,
        hang_seconds=args.hang_seconds,
        seed=args.seed,
        models=args.models or ["fake-model"],
        api_key=args.api_key,
        echo_key=args.echo_key,
        rpm=args.rpm,
        rate_headers=not args.no_rate_headers,
        max_inflight=args.max_inflight,
        # A long benchmark would otherwise keep every request body in memory.
        record=False,
    )

    def ready(url: str) -> None:
        print(f"{READY_PREFIX}{url}", flush=True)

    srv.serve_forever(on_ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the fake server as a separate process, so client and server don't share a GIL."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

READY_PREFIX = "READY "


@contextlib.contextmanager
def spawn_server_process(
    *,
    latency: float = 0.0,
    fault_rate: float = 0.0,
    fault_kinds: Iterable[str] | None = None,
    seed: int | None = None,
    hang_seconds: float | None = None,
    api_key: str | None = None,
    models: Iterable[str] | None = None,
    rpm: int | None = None,
    rate_headers: bool = True,
    max_inflight: int | None = None,
    port: int = 0,
    startup_timeout: float = 15.0,
) -> Iterator[str]:
    """Start `python -m promptc.testing`, yield its base URL, and terminate it on exit."""
    cmd = [sys.executable, "-m", "promptc.testing", "--port", str(port), "--latency", str(latency)]
    if fault_rate:
        cmd += ["--fault-rate", str(fault_rate)]
    if fault_kinds is not None:
        cmd += ["--fault-kinds", ",".join(fault_kinds)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if hang_seconds is not None:
        cmd += ["--hang-seconds", str(hang_seconds)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    if rpm is not None:
        cmd += ["--rpm", str(rpm)]
    if not rate_headers:
        cmd += ["--no-rate-headers"]
    if max_inflight is not None:
        cmd += ["--max-inflight", str(max_inflight)]
    for model in models or ():
        cmd += ["--model", model]

    # The child must import this very promptc even when it is not installed.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        yield _wait_ready(proc, startup_timeout)
    finally:
        _terminate(proc)


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    # readline() cannot time out, so a helper thread reads and the timeout is on the queue.
    reader = threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"fake OpenAI server gave no READY line within {timeout} s") from None
    if not line.startswith(READY_PREFIX):
        try:  # EOF means the child died: wait briefly so the message has its exit code
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        raise RuntimeError(f"fake OpenAI server failed to start (exit {proc.poll()}): {line!r}")
    return line[len(READY_PREFIX) :].strip()


def _terminate(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()

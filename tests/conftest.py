"""Every test gets its own cache folder and an environment without real credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-test-SECRET-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("PROMPTC_CACHE_DIR", str(cache_dir))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return cache_dir


@pytest.fixture
def fake_server() -> Iterator[object]:
    from promptc.testing import FakeOpenAIServer

    with FakeOpenAIServer(api_key=TEST_KEY) as server:
        yield server


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m promptc ARGS` in a subprocess: the real entry point, real exit codes."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "promptc", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=timeout)

"""A compile report worth looking at, made offline: `specs/intent.yaml` compiled with MIPRO
against the fake OpenAI-compatible server, whose answers are the offline LM's except that
(1) instruction proposals come from a short script and (2) the classifier answers well only
under one of the proposed instructions. So the search has something to find, and the report
shows a changed instruction (a word diff), runner-ups, subset and full-dev scores.

    python scripts/report_demo.py --out build/report-demo [--screenshot docs/compile-report.png]

The screenshot needs a Chromium on PATH (`chromium`, `chromium-browser`, `google-chrome`);
without one the report is still written and the script says so.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-report-demo-key"
GOOD = ("Read the customer's message and name the one support intent it asks for; "
        "answer with the intent label only.")
PROPOSALS = (GOOD, "You are a support agent. Pick the intent of the customer's message.",
             "Classify the customer's message into a support intent, thinking about what they want done.")
_LABELS = re.compile(r"\b(refund_request|double_charge|password_reset|delivery_late|change_address|"
                     r"cancel_subscription|exchange_rate)\b")


def scripted_responder() -> Callable[[dict[str, Any]], str]:
    """The offline LM, but proposals are scripted and only GOOD makes the classifier right."""
    from promptc.testing.server import default_responder

    proposals = itertools.cycle(PROPOSALS)

    def respond(body: dict[str, Any]) -> str:
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        if "`proposed_instruction`" in system:
            return f"[[ ## proposed_instruction ## ]]\n{next(proposals)}\n\n[[ ## completed ## ]]"
        answer = default_responder(body)
        if "`intent`" in system and GOOD not in system:
            answer = _LABELS.sub("card_lost", answer)  # a poor classifier without the good instruction
        return answer

    return respond


def compile_demo(out: Path, base_url: str, *, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`promptc compile specs/intent.yaml --optimizer mipro` against `base_url`, into `out`."""
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "promptc", "compile", "specs/intent.yaml", "--optimizer", "mipro",
                           "--model", "fake-model", "--base-url", base_url, "--out", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def screenshot(html: Path, png: Path, *, width: int = 1200, height: int = 1500) -> bool:
    """A headless Chromium screenshot of `html`; False when no Chromium is installed."""
    browser = find_chromium()
    if browser is None:
        return False
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--screenshot={png.resolve()}", html.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    return png.exists()


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from promptc.testing import FakeOpenAIServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "report-demo")
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args(argv)
    with FakeOpenAIServer(api_key=KEY, responder=scripted_responder()) as server:
        done = compile_demo(args.out, server.base_url, extra=("--no-cache",))
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        return done.returncode
    print(f"report: {args.out / 'report.html'}")
    if args.screenshot is not None:
        ok = screenshot(args.out / "report.html", args.screenshot)
        print(f"screenshot: {args.screenshot}" if ok else "no Chromium on PATH: no screenshot")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

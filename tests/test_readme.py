"""Every fenced code block of README.md is executed or checked, in README order.

What happens to a block depends on its fence's info string:

- ```python: run as a script with `python -W error`;
- ```bash / ```sh / ```shell / ```console: each command line is run (`promptc ...` as
  `python -m promptc ...`, `&&` chains split) and must exit 0. `pip install ...` is not
  run: the test environment is already installed, and installing would change it;
- ```yaml: a full spec (it has `version:`) must load with `promptc.spec.loader.load_text`;
  any other YAML must parse with `yaml.safe_load`;
- a transcript (a block without a language whose first line starts with `$ `): the
  command is run, and every output line shown must appear in what it prints.

Anything else, or a block that cannot run here, needs an HTML comment on the line right
before its fence saying why:

    <!-- not run: REASON -->

Such a block is reported as skipped with that reason; a block that is neither runnable
nor explained fails. Nothing is skipped silently.

The blocks run like a reader following along: in README order, in one scratch folder
holding a copy of `specs/` and `datasets/` (so `build/`, `out/` and exports never land in
the repository), with one cache folder, and with `OPENAI_BASE_URL` / `OPENAI_API_KEY`
pointing at `promptc.testing`'s fake server, so examples written for a real endpoint
(math.yaml's gpt-4o-mini) run for real through the openai client, offline.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TEST_KEY

README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"
COPIED = ("specs", "datasets")  # what the README's commands read
TIMEOUT = 120

SHELL_LANGS = {"bash", "sh", "shell", "console"}
NOT_RUN = re.compile(r"^<!--\s*not run:(.*?)-->\s*$")
FENCE = re.compile(r"^( {0,3})(`{3,})\s*([^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its info string, its text, why it is not run."""

    line: int
    info: str
    text: str
    not_run: str | None = None

    @property
    def lang(self) -> str:
        return self.info.split()[0].lower() if self.info else ""

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def parse_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of `markdown`, each with the reason of a `<!-- not run -->` before it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = opening.groups()
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip().startswith(fence) and not lines[j].strip().strip("`")), None)
        if end is None:
            raise AssertionError(f"README.md:{i + 1}: a code fence that is never closed")
        body = "\n".join(line[len(indent):] for line in lines[i + 1:end])
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(previous.strip())
        blocks.append(Block(i + 1, info.strip(), body, marker.group(1).strip() if marker else None))
        i = end + 1
    return blocks


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def fake_endpoint() -> Iterator[str]:
    from promptc.testing import FakeOpenAIServer

    with FakeOpenAIServer(api_key=TEST_KEY) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reader's checkout: copies of what the commands read; everything they write stays here."""
    work = tmp_path_factory.mktemp("readme")
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("*.bm25*"))
    # The README commits a response cache with `git add`: the reader's folder is a repository.
    subprocess.run(["git", "init", "-q", str(work)], check=True, timeout=TIMEOUT)
    return work


@pytest.fixture
def env(workdir: Path, fake_endpoint: str) -> dict[str, str]:
    out = {**os.environ, "OPENAI_BASE_URL": fake_endpoint, "OPENAI_API_KEY": TEST_KEY,
           "PROMPTC_CACHE_DIR": str(workdir.parent / f"{workdir.name}-cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_COLOR": "1", "COLUMNS": "200"}
    out.pop("GITHUB_STEP_SUMMARY", None)  # eval would append its summary to CI's page
    return out


def shell_commands(text: str) -> Iterator[list[str]]:
    """The commands of a shell block as argv lists; `pip install` is left out (see above)."""
    joined = re.sub(r"\\\n", " ", text)  # line continuations
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if any(w in {"|", ";", ">", ">>", "<", "||", "&"} for w in words):
            raise AssertionError(f"shell syntax the README harness does not run: {line!r}")
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            command, words = words[:cut], words[cut + 1:]
            if command[:2] != ["pip", "install"]:
                yield command


def argv(command: list[str]) -> list[str]:
    """`promptc X` runs as `python -m promptc X` with this interpreter: this checkout, no PATH lookup."""
    if command[0] == "promptc":
        return [sys.executable, "-m", "promptc", *command[1:]]
    if command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return command


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv(command), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def report(block: Block, command: list[str], done: subprocess.CompletedProcess[str]) -> str:
    return (f"{block.where}: `{shlex.join(command)}` exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def transcript(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """(command, output lines shown) for each `$ ` line of a transcript block."""
    command: list[str] | None = None
    shown: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, shown
            command, shown = shlex.split(line[2:], comments=True), []
        elif line.strip():
            shown.append(line)
    if command is not None:
        yield command, shown


def normalized(line: str) -> str:
    return " ".join(line.split())


# ----------------------------------------------------------------------------- the checks


def check_python(block: Block, workdir: Path, env: dict[str, str]) -> None:
    script = workdir / f"readme_block_{block.line}.py"
    script.write_text(block.text + "\n", encoding="utf-8")
    command = ["python", "-W", "error", script.name]
    done = run(command, workdir, env)
    assert done.returncode == 0, report(block, command, done)


def check_shell(block: Block, workdir: Path, env: dict[str, str]) -> None:
    commands = list(shell_commands(block.text))
    assert commands or "pip install" in block.text, f"{block.where}: no command in the block"
    for command in commands:
        done = run(command, workdir, env)
        assert done.returncode == 0, report(block, command, done)


def check_yaml(block: Block) -> None:
    from promptc.spec.loader import load_text

    data = yaml.safe_load(block.text)
    assert isinstance(data, (dict, list)), f"{block.where}: YAML that is not a mapping or list"
    if isinstance(data, dict) and "version" in data:
        load_text(block.text, file=block.where, lms={})  # the whole spec checked; no LM built


def check_transcript(block: Block, workdir: Path, env: dict[str, str]) -> None:
    for command, shown in transcript(block.text):
        done = run(command, workdir, env)
        printed = {normalized(line) for line in (done.stdout + done.stderr).splitlines()}
        missing = [line for line in shown if normalized(line) not in printed]
        assert not missing, (f"{block.where}: not printed by `{shlex.join(command)}`: {missing}\n"
                             + report(block, command, done))


@pytest.mark.parametrize("block", BLOCKS, ids=[f"L{b.line}-{b.lang or 'plain'}" for b in BLOCKS])
def test_readme_block(block: Block, workdir: Path, env: dict[str, str]) -> None:
    if block.not_run is not None:
        assert block.not_run, f"{block.where}: `<!-- not run: -->` needs a reason"
        pytest.skip(f"{block.where}: not run: {block.not_run}")
    if block.lang == "python":
        check_python(block, workdir, env)
    elif block.lang in SHELL_LANGS:
        check_shell(block, workdir, env)
    elif block.lang in ("yaml", "yml"):
        check_yaml(block)
    elif block.lang in ("", "text") and block.text.startswith("$ "):
        check_transcript(block, workdir, env)
    else:
        pytest.fail(f"{block.where}: a ```{block.info} block is neither runnable here nor "
                    f"marked `<!-- not run: REASON -->` on the line before it")


def test_ci_runs_the_readme_test_command() -> None:
    """The README's test command is not run here (it is the suite itself): .ci/run runs it."""
    [block] = [b for b in BLOCKS if b.lang in SHELL_LANGS and "pytest" in b.text]
    command = block.text.strip()
    assert command in CI_SCRIPT.read_text(encoding="utf-8"), f"{CI_SCRIPT} must run `{command}`"


def test_the_parser_finds_fences_markers_and_commands() -> None:
    """The harness itself: a README test that finds no block would pass on anything."""
    text = ("intro\n\n<!-- not run: needs a key -->\n```bash\npromptc run x  # note\n```\n"
            "```\n$ promptc validate s.yaml\nerror: s.yaml:1:1: bad\n```\n")
    first, second = parse_blocks(text)
    assert (first.line, first.lang, first.not_run) == (4, "bash", "needs a key")
    assert (second.lang, second.not_run) == ("", None)
    assert list(shell_commands("pip install -e . && promptc a 'b c'  # x\nx \\\n  y\n")) == [
        ["promptc", "a", "b c"], ["x", "y"]]
    assert list(transcript(second.text)) == [(["promptc", "validate", "s.yaml"],
                                              ["error: s.yaml:1:1: bad"])]
    assert len(BLOCKS) >= 10

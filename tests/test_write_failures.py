"""Writing can fail: a clear message naming the path and the OS error, exit 3 at once, nothing
already written lost, and never anything but a regular file replaced.

A read-only folder is a read-only tmpfs when the tests run as root (where chmod stops
nothing), else a chmod 0555 folder; a full disk is a 64 KiB tmpfs (root only) or /dev/full,
which every Linux user can open and which fails every write with ENOSPC.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptc.artifacts.program_file import ProgramArtifact
from promptc.errors import OutputError
from promptc.runner.jsonl import JsonlAppender
from promptc.spec.loader import load
from tests.conftest import run_cli
from tests.test_cli_run import ENV, write_rows, write_spec

needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (not Linux)")


def _mount_tmpfs(path: Path, options: str) -> str | None:
    """Mount a tmpfs on `path`; None when it worked, else why not."""
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    why = _mount_tmpfs(folder, "ro,size=64k") if os.geteuid() == 0 else None
    if why is not None:
        pytest.skip(f"running as root, where chmod does not stop writes, and {why}")
    mounted = os.geteuid() == 0
    if not mounted:
        folder.chmod(0o555)
    try:
        try:
            (folder / "probe").write_text("x")
        except OSError:
            yield folder
        else:
            pytest.skip("this user can write into a chmod 0555 folder")
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "disk"
    folder.mkdir()
    why = _mount_tmpfs(folder, "size=64k")
    if why is not None:
        pytest.skip(f"a real full disk needs a small tmpfs: {why}; /dev/full covers ENOSPC")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def clean_failure(result: subprocess.CompletedProcess[str], path: object, reason: str) -> None:
    assert result.returncode == 3, result.stderr
    assert f"cannot write {path}" in result.stderr or f"{path}" in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr


def valid_rows(path: Path) -> list[dict]:
    """Every line of `path` parsed; fails on a half-written line."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"half-written last line: {data[-80:]!r}"
    return [json.loads(line) for line in data.decode().splitlines()]


def eval_data(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"question": f"What is {i} plus zero?", "answer": float(i)}) + "\n")
    return path


# ----------------------------------------------------------------------------- read-only


def test_run_output_in_a_readonly_folder(tmp_path, readonly_dir, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 5)
    out = readonly_dir / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(out), env=ENV, timeout=60)
    clean_failure(result, out, "Read-only file system" if os.geteuid() == 0 else "Permission denied")
    assert fake_server.request_count == 0


def test_run_output_under_a_file_is_not_a_folder(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 5)
    result = run_cli("run", str(spec), "-i", str(rows), "-o", "/proc/version/x", env=ENV, timeout=60)
    clean_failure(result, "/proc/version/x", "/proc/version is not a folder")


def test_eval_reports_and_output_in_a_readonly_folder_fail_before_any_call(tmp_path, readonly_dir,
                                                                          fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    data = eval_data(tmp_path / "dev.jsonl", 5)
    base = ["eval", str(spec), "--data", str(data), "--metric", "numeric_match"]
    for flags, path in [(["--report", str(readonly_dir / "r.html")], readonly_dir / "r.html"),
                        (["--report", str(readonly_dir / "r.json")], readonly_dir / "r.json"),
                        (["--junit", str(readonly_dir / "junit.xml")], readonly_dir / "junit.xml"),
                        (["--output", str(readonly_dir / "res.jsonl")], readonly_dir / "res.jsonl")]:
        result = run_cli(*base, *flags, env=ENV, timeout=60)
        assert result.returncode == 3 and str(path) in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert fake_server.request_count == 0


def test_compile_out_in_a_readonly_folder_fails_before_any_call(tmp_path, readonly_dir, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    train = eval_data(tmp_path / "train.jsonl", 8)
    out = readonly_dir / "build"
    result = run_cli("compile", str(spec), "--train", str(train), "--optimizer", "labeled_few_shot",
                     "--out", str(out), env=ENV, timeout=60)
    assert result.returncode == 3 and str(out) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert fake_server.request_count == 0


def test_export_into_a_readonly_folder(tmp_path, readonly_dir):
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: n\nlms: {default: {model: offline}}\n"
                    "program:\n  - step: a\n    signature: 'question -> answer'\n")
    build = ProgramArtifact.from_program(load(spec).program).save(tmp_path / "build").parent
    result = run_cli("export", str(build), "--format", "markdown", "--out", str(readonly_dir / "x"))
    assert result.returncode == 3 and str(readonly_dir / "x") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- full disk


@needs_dev_full
def test_run_into_dev_full_is_a_clean_enospc(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 200)
    result = run_cli("run", str(spec), "-i", str(rows), "-o", "/dev/full", env=ENV, timeout=60)
    clean_failure(result, "/dev/full", "No space left on device (ENOSPC)")
    assert "--resume" not in result.stderr  # nothing was kept in a device to resume from
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@needs_dev_full
def test_appender_on_a_full_device_raises_output_error():
    with JsonlAppender(Path("/dev/full")) as out, pytest.raises(OutputError, match="/dev/full: No space left"):
        out.write({"x": 1})


def test_full_disk_mid_run_keeps_every_complete_row_and_resumes(tmp_path, small_disk, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 3000)
    out = small_disk / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(out), "--no-cache", env=ENV, timeout=120)
    clean_failure(result, out, "No space left on device (ENOSPC)")
    kept = valid_rows(out)
    assert 0 < len(kept) < 3000
    assert [r["_row"] for r in kept] == list(range(1, len(kept) + 1))
    assert f"{len(kept)} complete row(s) are kept in {out}" in result.stderr
    # After freeing space (here: moving the file to a roomy disk), --resume runs only the rest.
    moved = tmp_path / "out.jsonl"
    shutil.copy(out, moved)
    before = fake_server.request_count
    again = run_cli("run", str(spec), "-i", str(rows), "-o", str(moved), "--resume", "--no-cache", env=ENV,
                    timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(r["_row"] for r in valid_rows(moved)) == list(range(1, 3001))
    assert fake_server.request_count - before == 3000 - len(kept)


def test_full_cache_disk_is_a_clean_error(tmp_path, small_disk, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 3000)
    out = tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(out), "--cache-dir", str(small_disk),
                     env=ENV, timeout=120)
    assert result.returncode == 3, result.stderr
    assert f"cannot write the LM cache at {small_disk / 'cache.sqlite'}" in result.stderr
    assert "Traceback" not in result.stderr and "never retrieved" not in result.stderr
    assert len(valid_rows(out)) < 3000


# ----------------------------------------------------------------------------- never clobber


@needs_dev_full
def test_overwrite_never_replaces_a_device(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 3)
    result = run_cli("run", str(spec), "-i", str(rows), "-o", "/dev/full", "--overwrite", env=ENV)
    assert result.returncode == 2, result.stderr
    assert "/dev/full is a character device, not a regular file" in result.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    assert fake_server.request_count == 0


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_overwrite_and_resume_refuse_a_fifo_and_a_folder(tmp_path, fake_server, flag):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(fifo), flag, env=ENV, timeout=30)
    assert result.returncode == 2 and "is a FIFO (named pipe), not a regular file" in result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    folder = tmp_path / "folder"
    folder.mkdir()
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(folder), flag, env=ENV)
    assert result.returncode == 2 and "is a directory" in result.stderr
    assert folder.is_dir()


def test_overwrite_empties_a_regular_file_in_place(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 3)
    real = tmp_path / "real.jsonl"
    real.write_text('{"old": 1}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(link), "--overwrite", env=ENV)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and [r["_row"] for r in valid_rows(real)] == [1, 2, 3]


def test_rejects_into_dev_null_is_written_not_removed(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"question": "What is 1?"}\nnot json\n')
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(tmp_path / "out.jsonl"),
                     "--on-error", "skip", "--rejects", "/dev/null", env=ENV)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_report_to_a_device_is_written_into(tmp_path):
    from promptc.runner.output_paths import write_atomic

    write_atomic(Path("/dev/null"), lambda p: p.write_text("report"))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ----------------------------------------------------------------------------- resume


def test_resume_cuts_a_half_written_last_line_with_a_note(tmp_path, fake_server):
    spec = write_spec(tmp_path, fake_server.base_url)
    rows = write_rows(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out.jsonl"
    first = run_cli("run", str(spec), "-i", str(rows), "-o", str(out), "--limit", "2", env=ENV)
    assert first.returncode == 0, first.stderr
    with open(out, "ab") as fh:
        fh.write(b'{"_row": 3, "question": "What is 2 pl')
    result = run_cli("run", str(spec), "-i", str(rows), "-o", str(out), "--resume", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "cut a half-written last line (37 bytes)" in result.stderr
    assert sorted(r["_row"] for r in valid_rows(out)) == [1, 2, 3, 4]

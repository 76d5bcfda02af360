"""The paths results are written to: what promptc may replace there, and failing cleanly.

Every file promptc writes (run and eval JSONL, rejects, eval reports) goes through here,
under three rules:

- Only a regular file is ever emptied, replaced or deleted. A device, FIFO or socket the
  user names (`-o /dev/stdout`, `--junit /dev/null`) is written into as it is, never
  unlinked or renamed over (as root, `os.replace` onto /dev/full would turn the device
  node into a plain file); a flag that would have to replace it is a usage error.
- What cannot be written is found before the first LM call where possible
  (`probe_writable`), so a read-only `--report` folder does not cost a whole evaluation.
- Every OSError becomes an `OutputError` naming the path and the OS error (exit 3).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from promptc.errors import OutputError, UsageError, output_errors

REGULAR = "a regular file"
DIRECTORY = "a directory"
_KINDS = ((stat.S_ISDIR, DIRECTORY), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def kind(path: Path) -> str | None:
    """What `path` is (following symlinks): None when nothing is there, else `REGULAR`,
    `DIRECTORY`, 'a character device', ..."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the open or mkdir that follows says why
        return None
    except OSError as exc:
        raise OutputError.from_os(path, exc, doing="inspect") from exc
    return next((name for test, name in _KINDS if test(mode)), REGULAR)


def refuse_unless_regular(path: Path, why: str) -> None:
    """UsageError when something other than a regular file is at `path` (nothing is fine)."""
    found = kind(path)
    if found not in (None, REGULAR):
        raise UsageError(f"{path} is {found}, not a regular file: {why}")


def refuse_directory(path: Path, flag: str) -> None:
    if kind(path) == DIRECTORY:
        raise UsageError(f"{path} is a directory; {flag} names a file")


def ensure_parent(path: Path) -> None:
    """Create the folder `path` goes in; an OutputError naming it when that is impossible."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), parent)
        raise OutputError(f"cannot write {path}: {blocker} is not a folder", path=str(path)) from exc
    except OSError as exc:
        raise OutputError.from_os(parent, exc, doing="create the folder") from exc


def empty_regular(path: Path, why: str) -> None:
    """Empty an existing regular file in place (`--overwrite`): its symlinks, hard links and
    permissions stay. Anything else at `path` is refused, never unlinked."""
    refuse_unless_regular(path, why)
    if kind(path) == REGULAR:
        with output_errors(path, "empty"):
            os.truncate(path, 0)


def probe_writable(path: Path, flag: str) -> None:
    """Fail now, before any LM call, when `path` could not be written at the end.

    Creates (and removes) a temporary file beside `path`, which is exactly what
    `write_atomic` will need. A device or FIFO is only checked for write permission:
    opening a FIFO with no reader would block.
    """
    found = kind(path)
    if found == DIRECTORY:
        raise UsageError(f"{path} is a directory; {flag} names a file")
    if found not in (None, REGULAR):
        if not os.access(path, os.W_OK):
            raise OutputError(f"cannot write {path}: permission denied", path=str(path))
        return
    ensure_parent(path)
    with output_errors(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(tmp)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write` on a temporary sibling of `path`, then rename it over `path`, so a reader
    never sees half a file. A device or FIFO at `path` is written into directly instead."""
    found = kind(path)
    if found == DIRECTORY:
        raise UsageError(f"cannot write {path}: it is a directory")
    if found not in (None, REGULAR):
        with output_errors(path):
            write(path)
        return
    ensure_parent(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with output_errors(path):
            write(tmp)
            tmp.replace(path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)

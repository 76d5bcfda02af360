"""Reading a local corpus for the embedded BM25 retriever, fingerprinting it, and
placing its index.

A corpus is one of:

* a JSONL file: one JSON object per line with the passage text under `text` (or the
  configured `text_field`), an optional `id` (string or number; default: the 1-based line
  number) and an optional `title`. Blank lines are skipped; any other bad line is an
  InputError naming file:line.
* a folder: every `.txt` / `.md` file below it (hidden files and folders skipped, sorted
  by path), each split into paragraphs at blank lines. Paragraphs, not whole files, are
  the passages, because a retrieved passage is pasted into a prompt and should be about
  one thing; BM25's length normalisation would otherwise favour short files. A markdown
  paragraph made only of headings is glued to the paragraph after it, so a heading is
  found together with its text. id = `relative/path.md#n` (n = 1-based paragraph number),
  title = the relative path. Paragraphs are not split further, and a blank line inside a
  code fence splits it too.
* a single `.txt` / `.md` file: read like a folder holding just that file.

Fingerprint rule (when the BM25 index must be rebuilt): the index stores, for every corpus
file, its relative path, size and mtime_ns, plus a SHA-256 of its content when it is at
most HASH_LIMIT bytes. The index is stale when a file appeared or vanished, a size
changed, a small file's hash changed, or a large file's mtime_ns changed. So touching or
re-checking-out a small file does not rebuild, while a same-size edit of a small file
does; big files are trusted on size + mtime (hashing hundreds of MB on every start would
cost more than it saves).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptc.errors import InputError, UsageError

HASH_LIMIT = 8 * 1024 * 1024
INDEX_SUFFIX = ".promptc-bm25.sqlite"
TEXT_SUFFIXES = (".txt", ".md")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_HEADING_LINE = re.compile(r"#{1,6}(\s|$)")


@dataclass(frozen=True)
class Doc:
    """A passage as read from the corpus, before indexing."""

    id: str
    text: str
    title: str | None = None


def corpus_files(path: Path) -> list[Path]:
    """The files that make up the corpus at `path` (the file itself, or the folder's texts)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UsageError(f"the retriever corpus {path} does not exist")
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(TEXT_SUFFIXES):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


def iter_docs(path: Path, text_field: str = "text") -> Iterator[Doc]:
    """Every passage of the corpus at `path`, in corpus order."""
    files = corpus_files(path)
    if path.is_file() and not path.name.lower().endswith(TEXT_SUFFIXES):
        yield from _iter_jsonl(path, text_field)
        return
    base = path.parent if path.is_file() else path
    for file in files:
        rel = file.relative_to(base).as_posix()
        yield from _iter_paragraphs(file, rel)


def _iter_jsonl(path: Path, text_field: str) -> Iterator[Doc]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not valid UTF-8 ({exc.reason})", file=str(path), line=lineno) from None
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputError(f"invalid JSON: {exc}", file=str(path), line=lineno) from None
            except RecursionError:
                raise InputError("nested too deeply", file=str(path), line=lineno) from None
            yield _doc_from_object(obj, text_field, str(path), lineno)


def _doc_from_object(obj: Any, text_field: str, file: str, lineno: int) -> Doc:
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", file=file, line=lineno)
    text = obj.get(text_field)
    if not isinstance(text, str):
        what = "missing" if text is None else f"not a string ({type(text).__name__})"
        raise InputError(f"field {text_field!r} is {what}", file=file, line=lineno)
    pid = obj.get("id")
    if pid is None:
        pid = str(lineno)
    elif isinstance(pid, (str, int)) and not isinstance(pid, bool):
        pid = str(pid)
    else:
        raise InputError(f"field 'id' must be a string or an integer, got {type(pid).__name__}",
                         file=file, line=lineno)
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise InputError(f"field 'title' must be a string, got {type(title).__name__}",
                         file=file, line=lineno)
    return Doc(id=pid, text=text, title=title)


def _iter_paragraphs(file: Path, rel: str) -> Iterator[Doc]:
    try:
        content = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 ({exc.reason})", file=str(file)) from None
    content = content.replace("\r\n", "\n")
    pending_heading = ""
    n = 0
    for block in _PARAGRAPH_BREAK.split(content):
        block = block.strip()
        if not block:
            continue
        if file.suffix.lower() == ".md" and all(_HEADING_LINE.match(ln) for ln in block.splitlines()):
            pending_heading = f"{pending_heading}\n{block}" if pending_heading else block
            continue
        if pending_heading:
            block, pending_heading = f"{pending_heading}\n{block}", ""
        n += 1
        yield Doc(id=f"{rel}#{n}", text=block, title=rel)
    if pending_heading:  # a file ending in a heading: keep it findable
        yield Doc(id=f"{rel}#{n + 1}", text=pending_heading, title=rel)


# -- fingerprint ---------------------------------------------------------------------


def fingerprint(path: Path) -> dict[str, list[Any]]:
    """{relative path: [size, mtime_ns, sha256 or None]} for every corpus file."""
    base = path.parent if path.is_file() else path
    out: dict[str, list[Any]] = {}
    for file in corpus_files(path):
        st = file.stat()
        digest = _sha256(file) if st.st_size <= HASH_LIMIT else None
        out[file.relative_to(base).as_posix()] = [st.st_size, st.st_mtime_ns, digest]
    return out


def fingerprint_matches(stored: dict[str, list[Any]], current: dict[str, list[Any]]) -> bool:
    """Whether an index built from `stored` is still valid for `current` (see module doc)."""
    if stored.keys() != current.keys():
        return False
    for rel, (size, mtime_ns, digest) in current.items():
        old_size, old_mtime, old_digest = stored[rel]
        if size != old_size:
            return False
        if digest is not None and old_digest is not None:
            if digest != old_digest:
                return False
        elif mtime_ns != old_mtime:
            return False
    return True


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- where the index lives ---------------------------------------------------------


def default_index_path(corpus: Path, index_dir: Path | None = None) -> Path:
    """Where the BM25 index of `corpus` lives (the rule is in promptc.retrieve.bm25)."""
    corpus = corpus.resolve()
    hashed = f"{corpus.name}-{hashlib.sha256(str(corpus).encode()).hexdigest()[:12]}{INDEX_SUFFIX}"
    if index_dir is not None:
        return index_dir / hashed
    if os.access(corpus.parent, os.W_OK):
        return corpus.parent / f"{corpus.name}{INDEX_SUFFIX}"
    from promptc.lm.cache import default_cache_path

    return default_cache_path().parent / "bm25" / hashed


def remove_stale_temp_files(index: Path) -> None:
    """Delete temp files of killed index builds next to `index`."""
    # Left by a build that was killed: the pid in the name is no longer running.
    for tmp in index.parent.glob(f".{index.name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # alive, or not ours to signal

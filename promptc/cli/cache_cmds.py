"""`promptc cache stats|clear`: the on-disk LM response cache."""

from __future__ import annotations

from typing import Annotated

import typer

from promptc.cli.common import CacheDirOpt, cache_path, handle_errors, stdout

cache_app = typer.Typer(help="Inspect or clear the LM response cache.", no_args_is_help=True)


def _open(cache_dir):  # type: ignore[no-untyped-def]
    from promptc.lm.cache import SQLiteCache, default_cache_path

    return SQLiteCache(cache_path(cache_dir) or default_cache_path())


@cache_app.command("stats")
@handle_errors
def stats_command(cache_dir: CacheDirOpt = None) -> None:
    """Entries, size and models in the cache."""
    with _open(cache_dir) as cache:
        s = cache.stats()
    stdout.print(f"cache: {s.path}")
    stdout.print(f"entries: {s.entries:,}  size: {s.size_bytes / 1e6:.2f} MB")
    for model, count in sorted(s.by_model.items()):
        stdout.print(f"  {model}: {count:,}")


@cache_app.command("clear")
@handle_errors
def clear_command(
    cache_dir: CacheDirOpt = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's entries.")] = None,
) -> None:
    """Delete cached responses (all, or one model's)."""
    with _open(cache_dir) as cache:
        n = cache.clear(model)
    stdout.print(f"deleted {n:,} cached response(s)")

"""What a result names about how it was produced: models, endpoint hosts, version, time.

Only the host of an endpoint is recorded: a base URL may carry credentials in its
user-info or query string, and a report is shared far more widely than a spec.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

from promptc import __version__
from promptc.evaluation.records import Endpoint, Provenance
from promptc.jobs.program import LoadedProgram

OPENAI_HOST = "api.openai.com"


def endpoint_host(base_url: str | None) -> str:
    """`host[:port]` of a base URL (the OpenAI API's when there is none)."""
    if not base_url:
        return OPENAI_HOST
    parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:  # a malformed port is still not worth failing a finished run over
        port = None
    return f"{host}:{port}" if port else host


def _innermost(lm: object) -> object:
    """The client under an LM's layers (tracing, cache, budget)."""
    while getattr(lm, "inner", None) is not None:
        lm = lm.inner  # type: ignore[attr-defined]
    return lm


def endpoints(source: LoadedProgram) -> list[Endpoint]:
    """Every LM of the program, as it will be called (after --model/--base-url overrides)."""
    out = []
    lms = source.runtime.lms or source.program.lms
    for name, lm in sorted(lms.items()):
        model = str(getattr(lm, "model", "?"))
        if type(_innermost(lm)).__name__ == "OfflineLM":
            out.append(Endpoint(name=name, model=model, host="offline", priced=True))
            continue
        out.append(Endpoint(name=name, model=model, host=endpoint_host(getattr(lm, "base_url", None)),
                            priced=getattr(lm, "price", None) is not None))
    return out


def provenance(source: LoadedProgram) -> Provenance:
    """The provenance block of a result finishing now."""
    return Provenance(models=endpoints(source), promptc_version=__version__,
                      timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def price_warnings(prov: Provenance) -> list[str]:
    """One line per remote model that `prices:` does not list (its cost would read $0)."""
    seen: set[str] = set()
    out = []
    for e in prov.models:
        if not e.priced and e.model not in seen:
            seen.add(e.model)
            out.append(f"no price for model '{e.model}' in `prices:`: its cost is counted as $0")
    return out

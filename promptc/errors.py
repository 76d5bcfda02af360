"""The one exception tree of promptc.

    PromptcError                 base; carries an exit code for the CLI
    ├── SpecError                a spec (YAML) is wrong: file, line, column, dotted path
    ├── InputError               a data file (JSONL) is wrong: file and line
    ├── UsageError               a flag or argument combination is wrong
    ├── ParseError               an LM reply could not be parsed into typed fields
    ├── StepFailed               a program step failed for one example (carries the trace)
    ├── AssertionFailed          a hard constraint (assert:) still failed after its retries
    ├── PromptTooLarge           a row's prompt is over lm.max_prompt_tokens: refused, not sent
    ├── OutputError              a result could not be written (disk full, permissions; exit 3)
    └── ServiceError             an external service failed (exit 3)
        ├── RetrieverError       a retrieval endpoint failed (promptc.retrieve.base)
        └── LMError              the LM endpoint failed (after retries, or fatally)
            ├── LMAuthError      401/403: wrong or missing key
            ├── LMConfigError    400/404: unknown model, bad base URL, bad request
            ├── LMUnreachable    the endpoint cannot be reached at all (refused, no DNS, TLS)
            ├── OfflineCacheMiss `--offline` and the reply is not in the cache
            ├── RateLimitStalled nothing but 429s for minutes: the run stops
            └── BudgetExhausted  compile's --max-calls / --max-cost is spent

The CLI is the single place that turns these into messages and exit codes.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Exit codes shared by every command (documented in README and --help).
EXIT_OK = 0
EXIT_ROWS_FAILED = 1  # quality / per-row failures: the job ran, some results are bad
EXIT_USAGE = 2  # spec, usage or input error: nothing was spent
EXIT_LM = 3  # LM / infrastructure failure that stopped the job
EXIT_INTERRUPTED = 130


class PromptcError(Exception):
    """Base class of every error promptc raises on purpose."""

    exit_code: int = EXIT_USAGE


@dataclass(frozen=True)
class Location:
    """Where in a file something is: 1-based line and column, plus a dotted path."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class SpecError(PromptcError):
    """A spec file is invalid. Holds one or more located problems."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[tuple[Location, str]] | str, location: Location | None = None):
        if isinstance(problems, str):
            problems = [(location or Location(), problems)]
        self.problems = problems
        super().__init__(self._render())

    def _render(self) -> str:
        lines = []
        for loc, msg in self.problems:
            where = f"{loc.path}: " if loc.path else ""
            lines.append(f"{loc}: {where}{msg}")
        return "\n".join(lines)


class InputError(PromptcError):
    """A data file is invalid (bad JSON, missing field, wrong encoding...)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.file, self.line = file, line
        if file is None and line is None:
            super().__init__(message)
            return
        prefix = file or "<input>"
        if line is not None:
            prefix += f":{line}"
        super().__init__(f"{prefix}: {message}")


class UsageError(PromptcError):
    """A command was called with arguments that do not fit together."""

    exit_code = EXIT_USAGE


class ParseError(PromptcError):
    """An LM completion could not be turned into the signature's typed outputs."""

    exit_code = EXIT_ROWS_FAILED

    def __init__(self, message: str, *, completion: str | None = None):
        self.completion = completion
        super().__init__(message)


class StepFailed(PromptcError):
    """A step of a program failed for one example; the run of other examples goes on."""

    exit_code = EXIT_ROWS_FAILED

    def __init__(self, step: str, cause: Exception, trace: object = None):
        self.step, self.cause, self.trace = step, cause, trace
        super().__init__(f"step '{step}': {cause}")


class AssertionFailed(PromptcError):
    """A hard constraint on a step's output still failed after its retries."""

    exit_code = EXIT_ROWS_FAILED


class PromptTooLarge(PromptcError):
    """A row's prompt is over the size limit; it was refused before anything was sent.

    A problem of that row's data (one huge field), so the row fails and the batch goes on.
    """

    exit_code = EXIT_ROWS_FAILED


class OutputError(PromptcError):
    """A result could not be written (an OSError on the output file: disk full, permissions).

    It stops the job: every later row would fail the same way, and the rows already
    written stay valid (a prefix of the input, in order), so `--resume` can go on from them.
    """

    exit_code = EXIT_LM  # an infrastructure failure that stopped the job, like a dead endpoint

    def __init__(self, message: str, *, row: int | None = None, path: str | None = None):
        self.row, self.path = row, path
        super().__init__(message)

    @classmethod
    def from_os(cls, path: object, exc: BaseException, *, doing: str = "write") -> OutputError:
        """`cannot write PATH: No space left on device (ENOSPC)`: the path the user named
        and the OS's own words, never a traceback."""
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        code = errno.errorcode.get(getattr(exc, "errno", None) or -1)
        error = cls(f"cannot {doing} {path}: {reason}" + (f" ({code})" if code else ""), path=str(path))
        error.__cause__ = exc
        return error


@contextmanager
def output_errors(path: object = None, doing: str = "write") -> Iterator[None]:
    """Turn an OSError raised inside the block into an OutputError naming `path` (by
    default the file the OS names, for a block that writes several)."""
    try:
        yield
    except OSError as exc:
        name = path if path is not None else exc.filename or "a file"
        raise OutputError.from_os(name, exc, doing=doing) from exc


class ServiceError(PromptcError):
    """An external service the program calls (an LM endpoint, a retriever) failed."""

    exit_code = EXIT_LM


class LMError(ServiceError):
    """The LM endpoint failed. `retryable` says whether trying again may help.

    `requests` is how many HTTP requests the failed call sent (429s included), so a
    failed row's usage still counts what the server received.
    """

    exit_code = EXIT_LM

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1,
                 retryable: bool = False, requests: int = 0):
        self.status, self.attempts, self.retryable = status, attempts, retryable
        self.requests = requests
        super().__init__(message)


class LMAuthError(LMError):
    """The endpoint refused the credentials (401/403). Fatal for a whole run."""


class LMConfigError(LMError):
    """The request can never succeed as configured (400/404: model, URL, parameters)."""


class LMUnreachable(LMError):
    """The endpoint cannot be reached at all (connection refused, name not resolved, TLS
    failed) and has not answered for a while: every row would fail the same way."""


class OfflineCacheMiss(LMError):
    """Running with `--offline` and a request is not in the cache: nothing may be sent."""


class RateLimitStalled(LMError):
    """The endpoint answered nothing but 429 for `patience` seconds: every row would wait forever."""


class BudgetExhausted(LMError):
    """The compile budget (--max-calls / --max-cost) is spent; stop and keep the best so far."""


# Errors that doom every row of a batch: the batch stops at the first one.
FATAL_LM_ERRORS: tuple[type[LMError], ...] = (LMAuthError, LMConfigError, LMUnreachable, OfflineCacheMiss,
                                              BudgetExhausted, RateLimitStalled)

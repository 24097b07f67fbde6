"""One exception hierarchy for everything golive raises.

Errors are sorted by whether a retry can help (as dlt does): ``TransientError`` may succeed when tried
again (network, lock timeout, server restart), ``TerminalError`` will not (bad URL, wrong password,
missing table). The CLI maps ``exit_code`` to the process exit status and prints ``str(error)`` as one
line. Messages name the object involved and, where there is one, the fix.

Exceptions keep their context in attributes and stay picklable, because Prefect stores task failures
and Dask ships them between processes.
"""

from __future__ import annotations


class GoliveError(Exception):
    """Base class for every error golive raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __reduce__(self):  # keep picklable with keyword context
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls, message, context):
    return cls(message, **context)


class TransientError(GoliveError):
    """Safe to retry: connection dropped, server restarting, lock timeout, throttling."""


class TerminalError(GoliveError):
    """Retrying will not help: the input or the environment must change first."""


class ConfigError(TerminalError):
    """A URL, option or parameter is wrong (malformed, unsupported, contradictory)."""


class ConnectionFailed(TerminalError):
    """A database or endpoint could not be reached or refused the credentials."""


class DiskFull(TerminalError):
    """A local file system golive writes to (state directory, staging, scratch) ran out of space."""


def is_disk_full(exc: BaseException) -> bool:
    """True for "no space left on device", as the OS (``ENOSPC``, ``EDQUOT``) or SQLite ("database or disk is
    full") reports it."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "database or disk is full" in text or "no space left on device" in text


class SourceError(TerminalError):
    """The source is missing, corrupt, or not what it claims to be."""


class TargetNotEmpty(TerminalError):
    """The target already holds tables golive would create."""


class PlanError(TerminalError):
    """The migration cannot be planned (name collisions, unsupported constructs)."""


class MigrationFailed(GoliveError):
    """The run finished but not cleanly: rows were rejected or validation failed."""

    exit_code = 1


class ValidationFailed(GoliveError):
    """The target does not match the source (row counts, keys, content, integrity)."""

    exit_code = 1

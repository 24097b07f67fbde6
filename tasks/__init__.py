"""Prefect tasks: each one retryable unit of work (one chunk, one table's keys, one file batch).

Tasks are thin wrappers around one ``golive`` engine call. They return small, serialisable results
(counts, keys, checksums), never rows, and retry only what a retry can fix (``retry_only_transient``).
"""

from __future__ import annotations

from golive.errors import TransientError


def retry_only_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry on ``TransientError`` (network, locks), never on bad input."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception as exc:  # driver errors that escaped translation: retry connection-ish ones only
        name = type(exc).__name__
        return name in ("OperationalError", "InterfaceError", "ConnectionError", "TimeoutError")
    return False

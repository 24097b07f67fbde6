"""Prefect tasks: each one retryable unit of work (one chunk, one table's keys, one file batch).

Tasks are thin wrappers around one ``golive`` engine call. They return small, serialisable results
(counts, keys, checksums), never rows, and retry only what a retry can fix (``retry_only_transient``).
"""

from __future__ import annotations

import hashlib
from typing import Any

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


def cached(result: Any, *parts: object, what: str, message: str):
    """The task run's state when golive's own bookkeeping says an earlier run did this unit of work and
    golive checked it against the target: a Completed state named ``Cached`` (as the Prefect UI shows
    skipped work), holding ``result``.

    golive decides, never Prefect's result cache: the tasks keep ``cache_policy=NO_CACHE`` and results
    are not persisted, so Prefect skips nothing golive has not verified. The cache key shown with the
    state is ``<what>-<hash>``, the hash of ``parts`` (what makes the work the same: the source's
    fingerprint and the chunk's key range, a file's path, size and MD5 and its destination, a go-live
    step and its inputs); callers pass no secret in ``parts`` and none in ``message``.
    """
    from prefect.states import Completed

    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:20]
    return Completed(name="Cached", data=result, message=message,
                     state_details={"cache_key": f"golive-{what}-{digest}"})

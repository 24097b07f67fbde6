"""Prefect tasks for the continuous archive: each a thin wrapper of one ``golive.archive`` call.

The archiver restarts its receiver itself (a dropped connection, a server restart); the task retries the whole
archiver only on a transient failure (the storage still failing after its retries), and the deployment's schedule
starts it again if the process dies. A drill is not retried: its verdict is the point.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive import archive as ar
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient,
               retry_jitter_factor=0.5)


@task(name="run-archiver", retries=3, retry_delay_seconds=10, **_COMMON)
def run_archiver(db_url: str, to: str, options: ar.ArchiveOptions) -> ar.ArchiveRunResult:
    """Stream the change log into the bucket until stopped (or ``options.seconds``)."""
    result = ar.run_archive(db_url, to, options)
    get_run_logger().info("Archive %s: %d segments stored, %d flushes, %d receiver restarts in %.0f s; window %s to %s",
                          result.url, result.segments_stored, result.flushes, result.restarts, result.seconds,
                          result.window.get("earliest"), result.window.get("latest"))
    return result


@task(name="drill-archive", retries=0, **_COMMON)
def run_drill(at: str, **kwargs):
    """Restore to a moment inside the window into a scratch and check it (recorded under drills/)."""
    d = ar.drill(at, **kwargs)
    log = get_run_logger()
    (log.info if d.status == "passed" else log.error)("Drill of %s to %s: %s in %.1f s; %s", at, d.target, d.status,
                                                      d.rto_seconds, "; ".join(d.problems or d.checks))
    return d


@task(name="prune-archive", retries=1, retry_delay_seconds=10, **_COMMON)
def run_prune(at: str, keep_window: str, storage) -> ar.ArchivePruneResult:
    return ar.prune_archive(at, keep_window, storage=storage)

"""Prefect tasks for files: each one retryable unit (one batch of files, one batch of rows).

Retries only help with transient errors (5xx, throttling, timeouts, dropped connections): the engine
raises ``golive.errors.TransientError`` for those, and ``retry_only_transient`` lets everything else
(bad credentials, a missing bucket, a bad column) fail at once. Backoff is exponential with jitter.
Tasks return counts and paths, never file contents, and results are not persisted.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from golive.errors import TransientError
from golive.files import rewrite as rw
from golive.files import sync
from golive.files import verify as vf
from tasks import cached, retry_only_transient


_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient,
               retry_jitter_factor=0.5)


@task(name="check-destination", retries=2, retry_delay_seconds=exponential_backoff(1), **_COMMON)
def check_destination(job: sync.UploadJob) -> str:
    """Fail fast, with one line, on a wrong endpoint, bucket or credentials."""
    where = sync.check_destination(job)
    get_run_logger().info("Destination %s answers", where)
    return where


@task(name="plan-upload", retries=2, retry_delay_seconds=exponential_backoff(1), **_COMMON)
def plan_upload(job: sync.UploadJob) -> sync.UploadPlan:
    """Scan the source and compare it with the manifest (or one listing of the destination)."""
    plan = sync.plan_upload(job)
    get_run_logger().info("%d files to upload, %d unchanged, %d problems",
                          len(plan.todo), plan.unchanged, len(plan.problems))
    return plan


@task(name="upload-batch", task_run_name="upload-batch-{batch.index}", retries=4,
      retry_delay_seconds=exponential_backoff(backoff_factor=1), **_COMMON)
def upload_batch(job: sync.UploadJob, batch: sync.Batch) -> sync.BatchResult:
    """Upload and verify one batch of files; a retry skips what the manifest already holds."""
    result = sync.upload_batch(job, batch)
    get_run_logger().info("Batch %d: %d uploaded, %d unchanged, %d problems",
                          batch.index, len(result.uploaded), result.unchanged, len(result.problems))
    return result


@task(name="upload-batch", task_run_name="upload-batch-done-{batch.index}", **_COMMON)
def uploaded_batch(job: sync.UploadJob, batch: sync.Batch) -> int:
    """A batch of files an earlier run uploaded and verified: Cached. The manifest records each (path, size,
    mtime, MD5), the file is unchanged, and this run's listing of the destination still shows its object (one
    that is gone was put back in the to-do list by ``plan_upload``). Returns the number of files."""
    n = len(batch.files)
    return cached(n, job.storage.dest, *(f"{t.rel}\x1e{t.size}\x1e{t.md5_hint}" for t in batch.files),
                  what="files", message=f"{n} file(s) ({batch.files[0].rel} .. {batch.files[-1].rel}) uploaded and "
                  "verified by an earlier run, still at the destination")


def show_uploaded(job: sync.UploadJob, batches: list[sync.Batch]) -> None:
    """One Cached ``upload-batch`` task run per batch of files an earlier run uploaded (nothing is sent)."""
    for future in [uploaded_batch.submit(job, b) for b in batches]:
        future.wait()


def upload_batches(job: sync.UploadJob, batches: list[sync.Batch]) -> list[sync.BatchResult]:
    """Run ``upload_batch`` over ``batches`` with at most ``job.workers`` at a time.

    A batch that still fails after its retries becomes a result listing its files as problems (no
    silent loss); credential and bucket errors are raised, since no other batch can succeed either.
    Ctrl-C stops the batches in flight at their next file or part (a multipart upload is aborted) and
    cancels those not started, instead of waiting for the whole upload: the manifest keeps what was
    verified, and the same command resumes.
    """
    interrupted = threading.Event()
    old = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C sets the job's stop flag at once and is raised once the batches in flight have stopped: a
        # KeyboardInterrupt raised wherever the main thread happens to be (inside Prefect's task submission, say)
        # can be swallowed there, and the upload would run to its end. A second Ctrl-C raises at once.
        def on_sigint(signum, frame):
            if interrupted.is_set():
                raise KeyboardInterrupt
            interrupted.set()
            sync.stop(job)

        old = signal.signal(signal.SIGINT, on_sigint)
    try:
        with ThreadPoolTaskRunner(max_workers=job.workers) as runner:
            try:
                futures = []
                for b in batches:
                    if interrupted.is_set():
                        break
                    futures.append(runner.submit(upload_batch, {"job": job, "batch": b}))
                results = []
                for batch, future in zip(batches, futures):
                    future.wait()
                    if interrupted.is_set():
                        continue  # stopped at its next file or part: raised below, once all have stopped
                    outcome = future.state.result(raise_on_failure=False)
                    if isinstance(outcome, TransientError):  # still failing after the retries
                        outcome = sync.failed_batch(batch, outcome, job)
                    elif isinstance(outcome, BaseException):
                        raise outcome
                    results.append(outcome)
            except BaseException:
                # before the runner's exit, which waits for every running task
                sync.stop(job)
                raise
        if interrupted.is_set():
            raise KeyboardInterrupt
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    return results


@task(name="verify-files", retries=2, retry_delay_seconds=exponential_backoff(1), **_COMMON)
def verify_files(job: sync.UploadJob) -> vf.VerifyReport:
    """Compare the source with the destination: missing, different, extra."""
    report = vf.verify_files(job)
    get_run_logger().info("Verify: %s", report.summary())
    return report


@task(name="check-rewrite-target", retries=2, retry_delay_seconds=exponential_backoff(1), **_COMMON)
def check_rewrite_target(job: rw.RewriteJob) -> str:
    """Check the table and column; return the primary key column."""
    return rw.check_target(job)


@task(name="rewrite-batch", task_run_name="rewrite-after-{after}", retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=1), **_COMMON)
def rewrite_batch(job: rw.RewriteJob, pk: str, after: Any, dry_run: bool = False) -> rw.RewriteBatch:
    """Rewrite (or reverse) one batch of rows in one transaction."""
    result = rw.rewrite_batch(job, pk, after, dry_run=dry_run)
    get_run_logger().info("Rows after %s: %d scanned, %d rewritten, %d missing", after, result.scanned,
                          result.rewritten, result.missing)
    return result

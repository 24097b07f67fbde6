"""Prefect tasks of the ``release`` flow: each step of ``golive.release.runner.Release`` as one task run.

No task is retried by Prefect: a migration is not idempotent, and the engine already retries what a retry
can fix (a statement that only timed out waiting for its lock, with backoff, within the overall timeout).
The tasks share one ``Release`` (its sessions and the release lock live in the flow's process).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive.release.model import Migration
from golive.release.runner import Release

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retries=0)


@task(name="precheck", **_COMMON)
def precheck_release(rel: Release) -> list:
    """Connectivity, version, extensions, the release lock (held to the end), migrations, drift, privileges,
    long transactions, disk, backup destination, rollback plan, health before."""
    checks = rel.precheck()
    log = get_run_logger()
    for c in checks:
        (log.info if c.status == "pass" else log.warning)("%s %s: %s", c.status.upper(), c.id, c.message)
    return checks


@task(name="lint", **_COMMON)
def lint_release(rel: Release) -> list:
    """The pending SQL against the lint rules, sized by the live tables."""
    findings = rel.lint()
    log = get_run_logger()
    for f in findings:
        (log.error if f.blocks else log.warning)("%s %s (%s line %d): %s", f.severity, f.rule, f.migration, f.line,
                                                 f.message)
    return findings


@task(name="begin-release", **_COMMON)
def begin_release(rel: Release) -> None:
    """The journal row and the tools' history tables (before the backup, so it holds them), the state before."""
    rel.begin()


@task(name="migrate", task_run_name="migrate-{migration.version}", **_COMMON)
def apply_migration(rel: Release, migration: Migration):
    """One migration under the lock and statement timeouts (lock timeouts retried with backoff)."""
    run = rel.migrate(migration)
    if run is not None:
        get_run_logger().info("%s: %s (%d statements, %d attempts, %.2f s)%s", run.label, run.status, run.statements,
                              run.attempts, run.seconds, f": {run.error}" if run.error else "")
    return run


@task(name="validate", **_COMMON)
def validate_release(rel: Release) -> dict:
    """--check-sql queries and the Great Expectations row counts of the changed tables."""
    return rel.validate()


@task(name="health", task_run_name="health-{phase}", **_COMMON)
def check_health(rel: Release, phase: str) -> bool:
    """Poll the health URLs (and command) until green or the health timeout."""
    return rel.health(phase)


@task(name="rollback", **_COMMON)
def rollback_undo(rel: Release):
    """Nothing to undo (remove the failed record) or the down-migrations, newest first; then compare."""
    return rel.rollback_undo()


@task(name="notify", **_COMMON)
def notify_release(rel: Release, targets: list[str]) -> list:
    """The summary to each webhook in its payload shape."""
    return rel.notify(targets)

"""Prefect tasks for backups: each a thin wrapper of one ``golive.backup`` call.

Retries only what a retry can fix (``retry_only_transient``): an upload that keeps failing after the
per-part retries (S3 5xx, dropped connections) runs the backup again under a new ID (the failed attempt
left no manifest and its objects were removed); a failing dump, a wrong password, a damaged object or a
full scratch disk are not retried.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from golive import backup as bk
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient,
               retry_jitter_factor=0.5)


@task(name="backup-database", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5), **_COMMON)
def run_backup(db_url: str, to: str, options: bk.BackupOptions) -> bk.BackupResult:
    """Dump, compress, (encrypt,) upload; the manifest last."""
    result = bk.backup_database(db_url, to, options)
    m = result.manifest
    get_run_logger().info("Backup %s: %d tables, %d rows, %d bytes stored (%d raw) with %s %s in %.1f s",
                          result.id, len(m.tables), m.rows, m.stored_bytes, m.raw_bytes, m.tool.name, m.tool.version,
                          m.duration_seconds)
    return result


@task(name="verify-backup", retries=1, retry_delay_seconds=5, **_COMMON)
def run_verify(url: str, options: bk.VerifyOptions) -> bk.VerifyResult:
    """Restore into a scratch database, compare with the manifest, record the verdict."""
    result = bk.verify_backup(url, options)
    log = get_run_logger()
    if result.ok:
        log.info("Verified %s: %s", result.id, "; ".join(result.verification.checks))
    else:
        log.error("Verification of %s FAILED: %s", result.id, "; ".join(result.verification.problems))
    return result


@task(name="restore-backup", retries=0, **_COMMON)
def run_restore(from_url: str, to_db_url: str, options: bk.RestoreOptions) -> bk.RestoreResult:
    """Download and check every object, restore, compare with the manifest (not retried: it changes the target)."""
    result = bk.restore_backup(from_url, to_db_url, options)
    get_run_logger().info("Restored %s into %s: %s", result.id, result.target, "; ".join(result.checks + result.problems))
    return result


@task(name="prune-backups", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2), **_COMMON)
def run_prune(at: str, policy: bk.RetentionPolicy, dry_run: bool, storage: bk.StorageOptions) -> bk.PruneResult:
    """Delete what the policy does not keep (never the newest verified backup)."""
    result = bk.prune_backups(at, policy, dry_run=dry_run, storage=storage)
    get_run_logger().info("Prune %s: %d kept, %d %s", at, len(result.kept), len(result.removed),
                          "would go" if dry_run else "removed")
    return result


@task(name="list-backups", retries=2, retry_delay_seconds=2, **_COMMON)
def run_list(at: str, storage: bk.StorageOptions) -> bk.ListResult:
    return bk.list_backups(at, storage)

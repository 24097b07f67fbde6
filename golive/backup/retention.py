"""Listing and retention: grandfather-father-son, as restic and kopia keep snapshots.

``keep_daily N`` keeps, for each of the last N days that have backups, the newest backup of that day
(likewise weeks (ISO), months, years); ``keep_last N`` the N newest. A backup kept by any rule stays. The
newest backup that passed verification is always kept, whatever the policy, so pruning can never leave you
without a proven backup. Days are UTC days, from the ID.
"""

from __future__ import annotations

import datetime as dt
import logging

from golive.backup.manifest import Manifest
from golive.backup.naming import id_time, parse_location
from golive.backup.options import BackupInfo, ListResult, PruneResult, RetentionPolicy
from golive.backup.store import BackupStore, StorageOptions
from golive.errors import ConfigError

log = logging.getLogger(__name__)


def info(m: Manifest, store: BackupStore, now: dt.datetime) -> BackupInfo:
    v = m.verification
    return BackupInfo(id=m.id, url=store.url(m.id), engine=m.engine, database=m.database,
                      started_at=m.started_at.isoformat(), stored_bytes=m.stored_bytes, raw_bytes=m.raw_bytes,
                      duration_seconds=m.duration_seconds, rows=m.rows, verified=v.status if v else None,
                      verified_at=v.at.isoformat() if v else None,
                      age_seconds=round((now - m.started_at).total_seconds(), 1))


def list_backups(at: str, storage: StorageOptions | None = None) -> ListResult:
    """Every backup under ``at`` (oldest first); IDs without a manifest are listed apart as incomplete."""
    loc = parse_location(at, want_backup=False)
    store = BackupStore(loc.base, storage)
    listing = store.listing()
    now = dt.datetime.now(dt.timezone.utc)
    return ListResult(at=loc.base, backups=[info(m, store, now) for m in listing.manifests],
                      incomplete=listing.incomplete)


def plan_retention(manifests: list[Manifest], policy: RetentionPolicy) -> tuple[dict[str, list[str]], list[str]]:
    """(kept: ID -> reasons, removed IDs) for ``manifests`` under ``policy``."""
    if not any((policy.keep_last, policy.keep_daily, policy.keep_weekly, policy.keep_monthly, policy.keep_yearly)):
        raise ConfigError("the retention policy keeps nothing: give at least one --keep-* option above 0")
    newest_first = sorted(manifests, key=lambda m: m.id, reverse=True)
    kept: dict[str, list[str]] = {}
    for m in newest_first[:policy.keep_last]:
        kept.setdefault(m.id, []).append("last")
    rules = [("daily", policy.keep_daily, lambda t: t.date()),
             ("weekly", policy.keep_weekly, lambda t: tuple(t.isocalendar())[:2]),
             ("monthly", policy.keep_monthly, lambda t: (t.year, t.month)),
             ("yearly", policy.keep_yearly, lambda t: t.year)]
    for label, n, bucket in rules:
        seen = []
        for m in newest_first:
            b = bucket(id_time(m.id))
            if b in seen:
                continue
            if len(seen) >= n:
                break
            seen.append(b)
            kept.setdefault(m.id, []).append(label)
    verified = [m for m in newest_first if m.verification and m.verification.status == "passed"]
    if verified:
        kept.setdefault(verified[0].id, []).append("newest verified")
    removed = [m.id for m in sorted(manifests, key=lambda m: m.id) if m.id not in kept]
    return kept, removed


def prune_backups(at: str, policy: RetentionPolicy, dry_run: bool = False,
                  storage: StorageOptions | None = None) -> PruneResult:
    """Delete the backups under ``at`` that ``policy`` does not keep (``dry_run``: only say which).

    Each backup goes manifest first, so a prune stopped half-way leaves objects without a manifest (listed as
    incomplete), never a listed backup with missing objects.
    """
    loc = parse_location(at, want_backup=False)
    store = BackupStore(loc.base, storage)
    kept, removed = plan_retention(store.listing().manifests, policy)
    deleted = 0
    if not dry_run:
        for backup_id in removed:
            deleted += store.delete(backup_id)
            log.info("pruned %s", backup_id)
    return PruneResult(at=loc.base, dry_run=dry_run, kept=kept, removed=removed, objects_deleted=deleted)

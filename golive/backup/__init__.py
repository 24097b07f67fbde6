"""Backups that are proven by restoring: PostgreSQL, MySQL/MariaDB and SQLite, to S3 or a directory.

The public API (plain Python, no Prefect; the ``backup-database``, ``restore-database``, ``verify-backup``
and ``prune-backups`` flows and the ``golive backup`` / ``restore`` / ``backups`` commands call these, and so
do the release and go-live features)::

    backup_database(db_url, to, BackupOptions(...)) -> BackupResult      # to: s3://bucket/prefix | file:///dir
    restore_backup(from_url, to_db_url, RestoreOptions(force=...)) -> RestoreResult   # from: .../<ID> | .../latest
    verify_backup(url, VerifyOptions(...)) -> VerifyResult
    list_backups(at, storage) -> ListResult
    prune_backups(at, RetentionPolicy(...), dry_run=..., storage=...) -> PruneResult

Layout of one backup (``<base>/<ID>/``): its objects (``db.dump.zst`` for PostgreSQL, ``database.sqlite.zst``
for SQLite, ``schema.sql.zst`` + ``tables/NNNN.tsv.zst`` + ``post-schema.sql.zst`` for MySQL; ``.aes`` when
encrypted) and ``manifest.json``, written last. Modules: ``naming`` (IDs, URLs), ``manifest``, ``store``,
``stream`` (dump -> zstd -> upload), ``crypto``, ``create``, ``restore``, ``checks``, ``verify``, ``retention``.
No engine here: each engine's dump, restore, counts, fingerprint and scratch database are its dialect's
``Backup`` concern (``golive/dialects/<engine>/backup.py``, declared in ``golive.dialects.base``), reached by
``dialect_of(url).backup``; the models both sides share (manifest, sink, errors) are in ``golive.model.backup``.
"""

from golive.backup.create import backup_database
from golive.backup.manifest import Manifest
from golive.backup.options import (BackupInfo, BackupOptions, BackupResult, ListResult, PruneResult, RestoreOptions,
                                   RestoreResult, RetentionPolicy, VerifyOptions, VerifyResult)
from golive.backup.restore import restore_backup
from golive.backup.retention import list_backups, prune_backups
from golive.backup.store import StorageOptions
from golive.backup.verify import verify_backup

__all__ = ["backup_database", "restore_backup", "verify_backup", "list_backups", "prune_backups", "BackupOptions",
           "BackupResult", "RestoreOptions", "RestoreResult", "VerifyOptions", "VerifyResult", "RetentionPolicy",
           "PruneResult", "ListResult", "BackupInfo", "StorageOptions", "Manifest"]

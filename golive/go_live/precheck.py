"""Step 1 of a go-live: everything that can be known before anything is written.

- the source database reads (it is planned: tables, rows, types), the target answers and is empty, or holds
  this go-live's interrupted migration (resumable);
- every ``[[rewrite]]`` names a table and column the migration creates, with a one-column primary key;
- the uploads folder exists and is readable (files and bytes counted);
- the bucket answers, accepts the keys and takes a write (a small probe object, removed again);
- the backup's destination answers (or its folder can be made), and local disk space is enough for what goes
  to local disk (backups to file://, uploads to file://, an embedded target).

Each check is one line (``ok``, ``warning`` or ``error``); any error fails the step before the backup starts.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr

from golive.dialects import dialect_of
from golive.errors import GoliveError
from golive.go_live.config import GoLiveConfig
from golive.units import human_bytes
from golive.urls import mask

#: local space always kept free (manifests, reports, the journal)
MIN_FREE = 64 << 20


class Check(BaseModel):
    name: str
    level: Literal["ok", "warning", "error"]
    detail: str

    def line(self) -> str:
        return f"{self.level:7} {self.name}: {self.detail}"


@dataclass
class Resolved:
    """A go-live's configuration with its credentials loaded (by the flow or the CLI: blocks are Prefect's).

    Never serialized: the URLs are ``SecretStr`` and the keys stay in ``bucket_storage`` / ``backup_storage``.
    """

    config: GoLiveConfig
    source: SecretStr
    target: SecretStr
    state_dir: Path
    bucket: str | None = None  # s3://bucket/prefix or file:///dir (a bucket block's, when one was named)
    bucket_storage: object | None = None  # golive.storage.StorageConfig of the bucket
    backup_to: str | None = None
    backup_storage: object | None = None  # golive.backup.StorageOptions
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.config.key()

    def migrate_options(self, dry_run: bool = False):
        """The migration's options, the same for the pre-check's plan and the migrate-db step (so that step
        takes the pre-check's plan instead of reading the source again); validation is its own step."""
        return self.config.migrate_options(validate_after=False, dry_run=dry_run,
                                           report=None if dry_run else str(self.run_dir() / "migration.json"))

    def run_dir(self) -> Path:
        """Where this go-live's reports go: ``<state_dir>/go-live/<key>/``."""
        return self.state_dir / "go-live" / self.key


class PrecheckResult(BaseModel):
    checks: list[Check] = []
    tables: int = 0
    rows: int = 0
    resumable: bool = False
    files: int = 0
    file_bytes: int = 0
    source_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not any(c.level == "error" for c in self.checks)

    def errors(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.level == "error"]

    def summary(self) -> dict:
        return {"ok": self.ok, "tables": self.tables, "rows": self.rows, "resumable": self.resumable,
                "files": self.files, "file_bytes": self.file_bytes, "source_bytes": self.source_bytes,
                "checks": [c.model_dump() for c in self.checks]}


def precheck(r: Resolved, *, dry_run: bool = False):
    """Run every check; returns ``(PrecheckResult, plan or None)``. ``dry_run``: write nothing (no probe
    object, no bucket or folder created) and plan deeply (the values that would be rejected)."""
    out = PrecheckResult()
    plan = _database(r, out, dry_run)
    if plan is not None:
        _rewrites(r, plan, out)
    _uploads(r, out)
    _bucket(r, out, dry_run)
    _backup(r, out, dry_run)
    _disk(r, out)
    return out, plan


def _add(out: PrecheckResult, name: str, level: str, detail: str) -> None:
    out.checks.append(Check(name=name, level=level, detail=mask(detail)))


# ---------------------------------------------------------------- databases


def _database(r: Resolved, out: PrecheckResult, dry_run: bool):
    from golive import commands
    from golive.migrate import target as tgt

    options = r.migrate_options(dry_run)
    try:
        src, dst = commands.database_urls(r.source, r.target, start=not dry_run)  # a dry run starts no server
    except GoliveError as exc:
        _add(out, "databases", "error", str(exc))
        return None
    try:
        if dry_run:
            plan = commands.plan_migration(src.raw, dst.raw, options)
            existing = tgt.check_target(dst, plan, options)
            if existing and not options.drop_existing:
                raise tgt.refusal(dst, plan, existing)
        else:  # the plan is kept for the migrate-db step in this process (no second read of the source)
            plan = commands.prefetch_plan(src.raw, dst.raw, options)
    except GoliveError as exc:
        _add(out, "databases", "error", in_config_words(str(exc)))
        return None
    out.tables, out.rows, out.resumable = len(plan.tables), plan.total_rows, plan.resumed
    out.source_bytes = _source_bytes(src)
    _add(out, "source", "ok", f"{plan.source_dialect} {src.masked}: {len(plan.tables)} tables, {plan.total_rows} rows"
         + (f", {human_bytes(out.source_bytes)}" if out.source_bytes else ""))
    state = "resumable (an interrupted migration of this source)" if plan.resumed else "empty"
    if options.drop_existing and not plan.resumed:
        state = "tables of the same names will be replaced (drop_existing)"
    where = f" (schema {plan.target_schema})" if dialect_of(dst).has_schemas else ""
    _add(out, "target", "ok", f"{plan.target_dialect} {dst.masked}{where}: {state}")
    predicted = sum(c.predicted_rejects for tp in plan.tables for c in tp.columns)
    if predicted and predicted > options.max_rejects:
        _add(out, "rejects", "error" if dry_run else "warning",
             f"about {predicted} values would be rejected and [migrate] max_rejects is {options.max_rejects}: "
             "the migration would fail; fix them in the source or raise max_rejects (each reject is listed in the "
             "rejects file)" + ("" if dry_run else "; golive go-live --dry-run shows them"))
    for w in plan.warnings[:5]:
        _add(out, "plan", "warning", w)
    return plan


#: the migration's CLI options, as golive.toml spells them
_CONFIG_WORDS = (("add --drop-existing", "set [migrate] drop_existing = true"),
                 ("with --drop-existing", "with [migrate] drop_existing = true"),
                 ("another --schema", "another [target] schema"), ("--max-rejects", "[migrate] max_rejects"),
                 ("--tables/--exclude", "[migrate] tables / exclude"), ("pass --create-bucket",
                                                                        "set [files] create_bucket = true"))


def in_config_words(message: str) -> str:
    """A message of golive's commands with its option names as the go-live's configuration has them."""
    for cli, toml in _CONFIG_WORDS:
        message = message.replace(cli, toml)
    return message


def _source_bytes(src) -> int:
    """About how big the source is (its file, or the server's table and index sizes); 0 when unknown."""
    try:
        return dialect_of(src).source.size(src)
    except Exception:  # noqa: BLE001 - a size is a hint for the disk check, never a reason to fail
        return 0


def _rewrites(r: Resolved, plan, out: PrecheckResult) -> None:
    tables = {tp.target: tp for tp in plan.tables}
    for rw in r.config.rewrite:
        name = f"rewrite {rw.table}.{rw.column}"
        tp = tables.get(rw.table)
        if tp is None:
            import difflib

            near = [t for t in tables if t.lower() == rw.table.lower()] or \
                difflib.get_close_matches(rw.table, list(tables), n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (tables: {', '.join(sorted(tables)[:12])})"
            _add(out, name, "error", f"the migration creates no table {rw.table}{hint}")
            continue
        cols = {c.target for c in tp.columns}
        if rw.column not in cols:
            _add(out, name, "error", f"table {rw.table} has no column {rw.column} (columns: {', '.join(sorted(cols))})")
        else:
            pk = next((ix.columns for ix in tp.indexes if ix.kind == "primary"), [])
            if len(pk) != 1:
                _add(out, name, "error", f"table {rw.table} needs a one-column primary key to be rewritten in "
                     f"batches (it has {', '.join(pk) or 'none'})")
            else:
                _add(out, name, "ok", f"{tp.rows} rows, key {pk[0]}")


# ---------------------------------------------------------------- files


def _uploads(r: Resolved, out: PrecheckResult) -> None:
    folder = r.config.source.uploads
    if not folder:
        return
    p = Path(folder)
    if not p.is_dir():
        _add(out, "uploads", "error", f"{folder} {'is not a folder' if p.exists() else 'does not exist'}")
        return
    if not os.access(p, os.R_OK | os.X_OK):
        _add(out, "uploads", "error", f"{folder} is not readable by this user")
        return
    files = size = 0
    for root, _dirs, names in os.walk(p):
        for n in names:
            try:
                size += os.lstat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                pass
    out.files, out.file_bytes = files, size
    _add(out, "uploads", "ok" if files else "warning", f"{folder}: {files} files, {human_bytes(size)}"
         + ("" if files else " (nothing to upload)"))


def _bucket(r: Resolved, out: PrecheckResult, dry_run: bool) -> None:
    if not r.bucket_storage:
        return
    from golive.storage import open_storage

    name = "bucket"
    create = r.config.files.create_bucket
    try:
        storage = open_storage(r.bucket_storage)
        try:
            storage.check(create=create and not dry_run, creatable=True)
        except GoliveError as exc:
            if dry_run and create and "does not exist" in str(exc):
                _add(out, name, "ok", f"{storage.describe()} answers; the bucket will be created (create_bucket)")
                return
            raise
        if dry_run:
            _add(out, name, "ok", f"{storage.describe()} answers (a dry run does not try a write)")
            return
        probe = storage.dest.key(f".golive-precheck-{uuid.uuid4().hex[:12]}")
        storage.put_bytes(probe, b"golive precheck\n", "text/plain")
        storage.delete_keys([probe])
        _add(out, name, "ok", f"{storage.describe()} answers and takes a write")
    except GoliveError as exc:
        _add(out, name, "error", in_config_words(str(exc)))


def _backup(r: Resolved, out: PrecheckResult, dry_run: bool) -> None:
    if not r.config.backup.enabled or not r.backup_to:
        return
    if r.backup_to.startswith("file://"):
        folder = Path(r.backup_to[len("file://"):])
        parent = next((q for q in [folder, *folder.parents] if q.exists()), None)
        if parent is None or not os.access(parent, os.W_OK):
            _add(out, "backup", "error", f"cannot write backups under {folder} ({parent or '/'} is not writable)")
        else:
            _add(out, "backup", "ok", f"backups go to {r.backup_to}")
        return
    from golive.backup.store import BackupStore

    try:
        store = BackupStore(r.backup_to, r.backup_storage)
        store.check(create=r.config.files.create_bucket and not dry_run)
        _add(out, "backup", "ok", f"backups go to {store.describe()}")
    except GoliveError as exc:
        _add(out, "backup", "error", in_config_words(str(exc)))


def _disk(r: Resolved, out: PrecheckResult) -> None:
    """Free space where this go-live writes locally: the state folder, file:// backups and uploads."""
    needs: dict[Path, list[tuple[int, str]]] = {}

    def need(path: Path, n: int, what: str) -> None:
        anchor = next((q for q in [path, *path.parents] if q.exists()), Path("/"))
        needs.setdefault(anchor, []).append((n, what))

    need(r.state_dir, MIN_FREE, "manifests and reports")
    if r.config.backup.enabled and r.backup_to and r.backup_to.startswith("file://"):
        # a compressed dump is typically a third of the data or less; ask for half to leave room
        need(Path(r.backup_to[len("file://"):]), out.source_bytes // 2, "the backup")
    if r.bucket and r.bucket.startswith("file://"):
        need(Path(r.bucket[len("file://"):]), out.file_bytes, "the uploaded files")
    if r.config.target.database.get_secret_value().startswith("embedded://"):
        need(Path(r.config.target.database.get_secret_value()[len("embedded://"):]), out.source_bytes * 2,
             "the embedded PostgreSQL")
    by_device: dict[int, tuple[Path, int, list[str]]] = {}
    for anchor, items in needs.items():
        dev = anchor.stat().st_dev
        _, total, whats = by_device.get(dev, (anchor, 0, []))
        by_device[dev] = (anchor, total + sum(n for n, _ in items), whats + [w for _, w in items])
    for anchor, total, whats in by_device.values():
        free = shutil.disk_usage(anchor).free
        detail = f"{human_bytes(free)} free at {anchor}, about {human_bytes(total)} needed ({', '.join(whats)})"
        _add(out, "disk", "ok" if free >= total else "error", detail if free >= total else detail + ": free some space "
             "or point state_dir / backup.to elsewhere")

"""``backup_database``: dump a database into ``<base>/<ID>/``, then write its manifest (last)."""

from __future__ import annotations

import datetime as dt
import logging
import time

from golive import __version__
from golive.backup.crypto import key_id, parse_key
from golive.backup.manifest import Encryption, Manifest
from golive.backup.naming import new_id, parse_location
from golive.backup.options import BackupOptions, BackupResult
from golive.backup.store import RUNNING, BackupStore
from golive.backup.stream import Compression, ObjectWriter, parse_compression
from golive.dialects import dialect_of, resolve
from golive.errors import GoliveError
from golive.urls import DatabaseURL, as_url

log = logging.getLogger(__name__)


class Sink:
    """Opens the object writers of one backup and remembers them, so a failure removes every one (the
    ``golive.model.backup.ObjectSink`` an engine's ``Backup.backup`` dumps into)."""

    def __init__(self, store: BackupStore, backup_id: str, compression: Compression, key: bytes | None,
                 part_size: int):
        self.store, self.backup_id, self.compression, self.key, self.part_size = store, backup_id, compression, key, part_size
        self.writers: list[ObjectWriter] = []

    def open(self, name: str, kind: str, table: str | None = None) -> ObjectWriter:
        stored_as = name + self.compression.suffix + (".aes" if self.key else "")
        w = ObjectWriter(self.store.storage, self.store.key(self.backup_id, stored_as), name, stored_as, kind,
                         self.compression, self.key, part_size=self.part_size, table=table)
        self.writers.append(w)
        return w

    def discard(self) -> None:
        """Remove whatever this backup stored so far (best effort; it has no manifest either way)."""
        for w in self.writers:
            if not w.closed:
                try:
                    w.abort()
                except Exception:  # noqa: BLE001
                    pass
        try:  # multipart uploads the writers never learnt of (a lost answer), then the objects, the marker last
            prefix = self.store.key(self.backup_id, "")
            for key, upload_id in self.store.storage.open_uploads(prefix):
                self.store.storage.abort_multipart(key, upload_id)
            keys = self.store.object_keys(self.backup_id)
            rest = [k for k in keys if not k.endswith("/" + RUNNING)]
            self.store.storage.delete_keys(rest)
            self.store.storage.delete_keys([k for k in keys if k not in rest])
        except GoliveError as exc:  # the next backup's sweep removes the rest (the marker says whose it was)
            log.warning("could not remove the objects of the failed backup %s: %s", self.backup_id, exc)


def database_url(db_url) -> DatabaseURL:
    """The URL of the running database (parsed once; ``embedded://`` starts its server)."""
    return resolve(as_url(db_url, role="database"))


def backup_database(db_url, to: str, options: BackupOptions | None = None) -> BackupResult:
    """Back up ``db_url`` (PostgreSQL, MySQL/MariaDB or SQLite) to ``to`` (``s3://bucket/prefix`` or
    ``file:///dir``) as ``<to>/<ID>``; the manifest is written last, so a failed backup is never listed.

    Raises ``GoliveError`` (one line, passwords masked) when anything fails; nothing is left that
    ``list_backups`` would call a backup.
    """
    options = options or BackupOptions()
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    url = database_url(db_url)
    dialect = dialect_of(url)
    engine = dialect.backup
    loc = parse_location(to, want_backup=False)
    compression = parse_compression(options.compress)
    key = parse_key(options.encryption_key.get_secret_value()) if options.encryption_key else None
    engine.check_connects(url, "database")
    store = BackupStore(loc.base, options.storage)
    store.check(create=options.create_bucket)
    store.sweep()  # what killed or failed backups left here
    name = options.name or engine.default_name(url) or "db"
    backup_id = new_id(name, started)
    sink = Sink(store, backup_id, compression, key, options.part_size_mb << 20)
    t_dump = time.perf_counter()
    try:
        store.mark_running(backup_id)
        fields = engine.backup(url, sink, scratch_dir=options.scratch_dir)
    except BaseException:
        sink.discard()
        store.unmark_running(backup_id, finished=False)
        raise
    dump_seconds = time.perf_counter() - t_dump
    finished = dt.datetime.now(dt.timezone.utc)
    objects = fields.pop("objects")
    manifest = Manifest(
        id=backup_id, name=name, engine=dialect.name, source=url.masked, started_at=started, finished_at=finished,
        duration_seconds=round(time.perf_counter() - t0, 3), raw_bytes=sum(o.raw_size for o in objects),
        stored_bytes=sum(o.size for o in objects), compression=str(compression),
        encryption=Encryption(key_id=key_id(key), frame_bytes=1 << 20) if key else None, objects=objects,
        golive_version=__version__, **fields)
    try:
        store.write_manifest(manifest)  # from now on it is a backup
    except BaseException:
        sink.discard()
        store.unmark_running(backup_id, finished=False)
        raise
    store.unmark_running(backup_id, finished=True)
    log.info("backup %s: %d objects, %d bytes stored", backup_id, len(objects), manifest.stored_bytes)
    return BackupResult(id=backup_id, url=store.url(backup_id), manifest=manifest,
                        timings={"dump_and_upload": round(dump_seconds, 3), "total": round(time.perf_counter() - t0, 3)})


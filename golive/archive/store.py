"""Where an archive lives: ``<to>/archive/<name>/`` in a bucket or directory (layout in ``golive.model.archive``).

The archiver is the only writer of ``archive.json``; drills write their own objects (``drills/``), so a drill never
races the archiver. A lock object (``archiver.lock``: host, process, heartbeat) keeps a second archiver of the same
database from running beside the first: the second refuses while the heartbeat is fresh.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path

from golive.backup.naming import clean_name
from golive.backup.store import StorageOptions
from golive.backup.stream import Compression, ObjectWriter, fetch, parse_compression
from golive.errors import ConfigError, TerminalError
from golive.model.backup import alive as _alive
from golive.model.archive import ArchiveManifest, BaseEntry, Drill, PartialPiece, SegmentEntry
from golive.storage import open_storage

MANIFEST = "archive.json"
LOCK = "archiver.lock"
#: an archiver whose heartbeat is older than this is taken for dead
LOCK_STALE = dt.timedelta(seconds=120)


def archive_url(to: str, name: str) -> str:
    """``<to>/archive/<name>``, unless ``to`` already names an archive."""
    to = to.rstrip("/")
    if "/archive/" in to + "/" and to.rsplit("/", 2)[-2] == "archive":
        return to
    return f"{to}/archive/{clean_name(name)}"


def split_archive_url(url: str) -> tuple[str, str]:
    """``s3://b/p/archive/app`` -> (``s3://b/p``, ``app``); a clear error for anything else."""
    if not url or "://" not in url:
        raise ConfigError(f"{url!r} is not an archive URL (expected s3://bucket/prefix/archive/<name> or "
                          "file:///dir/archive/<name>)")
    head, _, name = url.rstrip("/").rpartition("/")
    base, _, word = head.rpartition("/")
    if word != "archive" or not name:
        raise ConfigError(f"{url!r} names no archive: expected …/archive/<name> (golive archive status --at "
                          f"{url.rstrip('/')} lists them)")
    return base, name


class ArchiveStore:
    def __init__(self, url: str, storage: StorageOptions | None = None):
        self.url = url.rstrip("/")
        self.storage = open_storage((storage or StorageOptions()).config(self.url))

    def describe(self) -> str:
        return self.storage.describe()

    def check(self, create: bool = False) -> None:
        self.storage.check(create=create, creatable=True)

    def key(self, rel: str) -> str:
        return self.storage.dest.key(rel)

    # -- the manifest
    def load(self) -> ArchiveManifest | None:
        data = self.storage.get_bytes(self.key(MANIFEST))
        if data is None:
            return None
        try:
            return ArchiveManifest.model_validate_json(data)
        except ValueError as exc:
            raise TerminalError(f"{self.url}/{MANIFEST} is not an archive manifest ({str(exc).splitlines()[0]})") from None

    def require(self) -> ArchiveManifest:
        m = self.load()
        if m is None:
            raise TerminalError(f"no archive at {self.url} (no {MANIFEST}: start one with golive archive start)")
        return m

    def save(self, manifest: ArchiveManifest) -> None:
        self.storage.put_bytes(self.key(MANIFEST), manifest.model_dump_json(indent=1).encode())

    # -- objects
    def writer(self, rel: str, name: str, kind: str, compression: Compression, key: bytes | None) -> ObjectWriter:
        stored_as = rel + compression.suffix + (".aes" if key else "")
        return ObjectWriter(self.storage, self.key(stored_as), name, stored_as, kind, compression, key,
                            part_size=8 << 20)

    def put(self, rel: str, name: str, kind: str, data_or_path, compression: Compression,
            key: bytes | None):
        """Store bytes or a file's content as ``rel`` (+ suffixes); returns the writer's ``ObjectEntry``."""
        w = self.writer(rel, name, kind, compression, key)
        try:
            if isinstance(data_or_path, (bytes, bytearray, memoryview)):
                w.write(bytes(data_or_path))
            else:
                with open(data_or_path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        w.write(chunk)
            return w.close()
        except BaseException:
            w.abort()
            raise

    def put_segment(self, path: Path, closed_at: dt.datetime, compression: Compression,
                    key: bytes | None) -> SegmentEntry:
        e = self.put(f"segments/{path.name}", path.name, "segment", path, compression, key)
        return SegmentEntry(name=path.name, stored_as=e.stored_as, size=e.size, raw_size=e.raw_size,
                            sha256=e.sha256, closed_at=closed_at)

    def put_piece(self, name: str, offset: int, data: bytes, compression: Compression,
                  key: bytes | None) -> PartialPiece:
        """The bytes of the partial segment ``name`` from ``offset`` on, as one more piece of it."""
        e = self.put(f"partial/{name}.{offset:012d}", f"{name}@{offset}", "partial", data, compression, key)
        return PartialPiece(name=e.name, offset=offset, stored_as=e.stored_as, size=e.size, raw_size=e.raw_size,
                            sha256=e.sha256)

    def fetch(self, entry, dest: Path, manifest: ArchiveManifest, key: bytes | None) -> Path:
        """Download one stored object (segment, partial or base object) into ``dest``: checked, decrypted,
        decompressed. ``BackupCorrupt`` names the object when its bytes are not the manifest's."""
        return fetch(self.storage, self.key(entry.stored_as), entry, dest, parse_compression(manifest.compression),
                     key)

    def delete(self, rels: list[str]) -> None:
        if rels:
            self.storage.delete_keys([self.key(r) for r in rels])

    def bases(self) -> list[BaseEntry]:
        """The base backups stored (``bases/<ID>/base.json``, written last), oldest first: the truth, whoever took
        them (the archiver, or ``golive archive base`` beside it)."""
        out = []
        for info in self.storage.list_under("bases/"):
            if info.key.endswith("/base.json"):
                data = self.storage.get_bytes(info.key)
                if data:
                    out.append(BaseEntry.model_validate_json(data))
        return sorted(out, key=lambda b: b.id)

    # -- drills
    def save_drill(self, drill: Drill) -> str:
        rel = f"drills/{drill.at.strftime('%Y%m%dT%H%M%S.%f')}.json"
        self.storage.put_bytes(self.key(rel), drill.model_dump_json(indent=1).encode())
        return rel

    def drills(self, last: int = 20) -> list[Drill]:
        keys = sorted(i.key for i in self.storage.list_under("drills/") if i.key.endswith(".json"))[-last:]
        out = []
        for k in keys:
            data = self.storage.get_bytes(k)
            if data:
                out.append(Drill.model_validate_json(data))
        return out

    # -- the archiver's lock
    def lock(self, *, force: bool = False) -> dict:
        """Take the archiver lock (or refresh it): refuses while another archiver's heartbeat is fresh."""
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        data = self.storage.get_bytes(self.key(LOCK))
        if data and not force:
            try:
                held = json.loads(data)
                beat = dt.datetime.fromisoformat(held["heartbeat"])
            except (ValueError, KeyError):
                held, beat = {}, dt.datetime.min.replace(tzinfo=dt.timezone.utc)
            mine = held.get("host") == me["host"] and held.get("pid") == me["pid"]
            alive_here = held.get("host") == me["host"] and _alive(held.get("pid"))
            fresh = dt.datetime.now(dt.timezone.utc) - beat < LOCK_STALE
            if not mine and fresh and (alive_here or held.get("host") != me["host"]):
                raise ConfigError(f"another archiver is running for {self.url} (host {held.get('host')}, process "
                                  f"{held.get('pid')}, heartbeat {beat:%H:%M:%S} UTC): stop it first, or wait "
                                  f"{int(LOCK_STALE.total_seconds())} s if it died")
        me["heartbeat"] = dt.datetime.now(dt.timezone.utc).isoformat()
        self.storage.put_bytes(self.key(LOCK), json.dumps(me).encode())
        return me

    def unlock(self) -> None:
        data = self.storage.get_bytes(self.key(LOCK))
        if data:
            held = json.loads(data)
            if held.get("host") == socket.gethostname() and held.get("pid") == os.getpid():
                self.storage.delete_keys([self.key(LOCK)])


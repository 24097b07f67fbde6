"""golive's record of what it uploaded and verified: one SQLite file per (source folder, destination).

Why a manifest: re-runs must skip what is already there without a HEAD request per object, and a run
killed with ``kill -9`` must resume. Each verified upload is committed as it completes (WAL journal), so
after a crash at most the files in flight are uploaded again (a PUT of the same bytes is harmless).

Where: ``<state_dir>/files/<bucket>-<hash>.sqlite`` (``state_dir`` defaults to ``./golive-runs``), never
inside the source folder. When it is missing, golive rebuilds it from a bucket listing: objects whose
size and ETag match the local file are recorded as verified (see ``sync.plan_upload``).

Tables::

    meta(k PRIMARY KEY, v)       source, dest, endpoint, created_at, reconciled_at
    files(rel PRIMARY KEY, key, size, mtime_ns, md5, etag, parts, verified_at)
        one row per verified object; ``rel`` is the path under the source folder
    pending(key PRIMARY KEY, upload_id, started_at)
        multipart uploads in flight; a resumed run aborts the ones a crash left behind

``rewrite-paths`` reads ``files`` to know which paths were uploaded and verified.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, NamedTuple

from golive.errors import ConfigError, DiskFull, is_disk_full

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS files (
  rel TEXT PRIMARY KEY, key TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  md5 TEXT NOT NULL, etag TEXT NOT NULL, parts INTEGER NOT NULL DEFAULT 0, verified_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending (key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, started_at REAL NOT NULL);
"""
VERSION = "1"


class Entry(NamedTuple):
    """One verified object."""

    rel: str
    key: str
    size: int
    mtime_ns: int
    md5: str
    etag: str
    parts: int = 0


def manifest_path(state_dir: str | os.PathLike, source: str | os.PathLike, dest: str,
                  endpoint_url: str | None) -> Path:
    """Where the manifest for ``source`` → ``dest`` lives (the same inputs always give the same file)."""
    ident = "\0".join([os.path.realpath(source), dest.rstrip("/"), (endpoint_url or "").rstrip("/")])
    digest = hashlib.sha1(ident.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    bucket = dest.split("://", 1)[-1].split("/", 1)[0] if dest.startswith("s3") else "local"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in bucket)[:40]
    return Path(state_dir) / "files" / f"{safe}-{digest}.sqlite"


def _disk_full_is_one_line(fn):
    """A full disk under the manifest is one line naming it (SQLite rolls the write back: what was recorded
    stays, and the object whose record failed is uploaded again by the next run)."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            if not is_disk_full(exc):
                raise
            raise DiskFull(f"no space left on the device of {self.path.parent} for the upload manifest "
                           f"{self.path.name}: free some space there (or give --state-dir on another disk) and run "
                           "the same command again; what was recorded is kept", path=str(self.path)) from None

    return wrapper


class Manifest:
    """A manifest file, safe to use from many threads (one SQLite connection per thread)."""

    @_disk_full_is_one_line
    def __init__(self, path: str | os.PathLike, *, create: bool = True, **meta: str | None):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise ConfigError(f"no upload manifest at {self.path}")
        self.existed = self.path.exists()
        self._local = threading.local()
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        conn.executescript(SCHEMA)
        if create and not self.existed:
            now = str(time.time())
            with conn:
                conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                 [("version", VERSION), ("created_at", now),
                                  *((k, v) for k, v in meta.items() if v is not None)])

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable against process crashes (kill -9)
            self._local.conn = conn  # freed (and closed) with its thread: task runner threads come and go
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads' close when those threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta
    def meta(self) -> dict[str, str]:
        return dict(self._conn().execute("SELECT k, v FROM meta"))

    @_disk_full_is_one_line
    def set_meta(self, key: str, value: str) -> None:
        self._conn().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def reconciled(self) -> bool:
        """True once the manifest has been checked against a listing of the destination."""
        return "reconciled_at" in self.meta()

    # -- files
    def load(self) -> dict[str, Entry]:
        rows = self._conn().execute("SELECT rel, key, size, mtime_ns, md5, etag, parts FROM files")
        return {r[0]: Entry(*r) for r in rows}

    def get_many(self, rels: Iterable[str]) -> dict[str, Entry]:
        rels = list(rels)
        out: dict[str, Entry] = {}
        conn = self._conn()
        for i in range(0, len(rels), 500):
            chunk = rels[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for r in conn.execute(f"SELECT rel, key, size, mtime_ns, md5, etag, parts FROM files WHERE rel IN ({marks})", chunk):
                out[r[0]] = Entry(*r)
        return out

    def count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM files").fetchone()[0]

    @_disk_full_is_one_line
    def record(self, entry: Entry) -> None:
        """Record one verified object (committed at once: a crash right after keeps it)."""
        self._conn().execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*entry, time.time()))

    @_disk_full_is_one_line
    def record_many(self, entries: Iterable[Entry]) -> None:
        now = time.time()
        conn = self._conn()
        with conn:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [(*e, now) for e in entries])

    @_disk_full_is_one_line
    def forget(self, rel: str) -> None:
        self._conn().execute("DELETE FROM files WHERE rel = ?", (rel,))

    # -- multipart uploads in flight
    @_disk_full_is_one_line
    def add_pending(self, key: str, upload_id: str) -> None:
        self._conn().execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?)", (key, upload_id, time.time()))

    @_disk_full_is_one_line
    def remove_pending(self, key: str) -> None:
        self._conn().execute("DELETE FROM pending WHERE key = ?", (key,))

    def pending(self) -> list[tuple[str, str]]:
        return list(self._conn().execute("SELECT key, upload_id FROM pending"))


def find_manifests(state_dir: str | os.PathLike) -> list[tuple[Path, dict[str, str]]]:
    """Every manifest under ``state_dir`` with its meta (source, dest, endpoint), newest first."""
    folder = Path(state_dir) / "files"
    found = []
    for path in sorted(folder.glob("*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                found.append((path, dict(conn.execute("SELECT k, v FROM meta"))))
            finally:
                conn.close()
        except sqlite3.Error:
            continue
    return found

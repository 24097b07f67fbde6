"""SQLite: the online backup API (consistent while the app writes), then the copy streamed through zstd.

The backup API copies every page in one step while holding a read lock, so writers in WAL mode carry on
and the copy is one consistent snapshot; row counts and the fingerprint are taken on that copy (the same
snapshot by construction). The copy lives in the scratch directory only while it is compressed and uploaded.
A restore goes the other way through the backup API *into* the target, which is safe while other
connections have the file open (they see the restored content; a WAL file is handled by SQLite itself).
A verification checks the downloaded file with ``PRAGMA integrity_check`` and restores it into a file in its
scratch directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sqlite3
from pathlib import Path

from golive.dialects.base import Backup
from golive.dialects.sqlite.session import qi
from golive.errors import SourceError, TargetNotEmpty, TerminalError, is_disk_full
from golive.model.backup import BackupCorrupt, ScratchFull, TableEntry, Tool, make_scratch, pump
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)

DB_OBJECT = "database.sqlite"


def _open(path: Path, *, readonly: bool) -> sqlite3.Connection:
    uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + ("?mode=ro" if readonly else "")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: {exc}") from None
    return conn


def list_tables(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                       "'sqlite\\_%' ESCAPE '\\' ORDER BY name")]


def count_rows(conn) -> list[TableEntry]:
    out = []
    for t in list_tables(conn):
        try:
            n = conn.execute(f"SELECT count(*) FROM {qi(t)}").fetchone()[0]
        except sqlite3.OperationalError:  # a virtual table whose module is not loaded: not counted
            continue
        out.append(TableEntry(name=t, table=t, rows=n))
    return out


_FINGERPRINT_SQL = ("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
                    "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name")


def fingerprint(conn) -> str:
    h = hashlib.sha256()
    for row in conn.execute(_FINGERPRINT_SQL):
        h.update(("\x1f".join(row) + "\n").encode("utf-8"))
    return h.hexdigest()


def inspect(url: DatabaseURL, counts: bool = True) -> tuple[list[TableEntry], str]:
    """Tables (with row counts unless ``counts`` is False: then -1) and the fingerprint of a database now."""
    conn = _open(url.path, readonly=True)
    try:
        tables = count_rows(conn) if counts else [TableEntry(name=t, table=t, rows=-1) for t in list_tables(conn)]
        return tables, fingerprint(conn)
    finally:
        conn.close()


def integrity(path: Path) -> list[str]:
    """``PRAGMA integrity_check``: [] when the file is sound, else its complaints (at most 10)."""
    conn = _open(path, readonly=True)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(10)")]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


def backup(url: DatabaseURL, sink, scratch_dir: str | None = None) -> dict:
    path = url.path
    if path is None or not path.exists():
        raise SourceError(f"source {path}: no such file")
    src = _open(path, readonly=True)
    tmpdir = make_scratch(scratch_dir, "gbk-sqlite-")
    copy = Path(tmpdir) / "copy.db"
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
        except sqlite3.Error as exc:
            if is_disk_full(exc):
                raise ScratchFull(f"no space left in the scratch directory {Path(tmpdir).parent} for the snapshot "
                                  f"copy of {path.name} (it needs {path.stat().st_size / (1 << 20):.1f} MiB there; "
                                  "--scratch-dir elsewhere): nothing was stored, the copy was removed") from None
            raise TerminalError(f"SQLite backup of {path} failed: {exc}") from None
        finally:
            dst.close()
        version = sqlite3.sqlite_version
        conn = _open(copy, readonly=True)
        try:
            tables, fp = count_rows(conn), fingerprint(conn)
        finally:
            conn.close()
        writer = sink.open(DB_OBJECT, "sqlite")
        try:
            with open(copy, "rb") as fh:
                pump(fh, writer)
            entry = writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        src.close()
        shutil.rmtree(tmpdir, ignore_errors=True)  # the copy and its -wal/-shm
    return {"server_version": version, "database": path.name, "objects": [entry], "tables": tables,
            "schema_fingerprint": fp, "tool": Tool(name="sqlite3 online backup API", version=version),
            "details": {"path": str(path.resolve())}}


def restore(url: DatabaseURL, files: dict[str, Path], manifest, *, force: bool) -> dict:
    src_path = files[DB_OBJECT]
    problems = integrity(src_path)
    if problems:
        raise TerminalError(f"{DB_OBJECT}: PRAGMA integrity_check failed: {problems[0]}")
    target = url.path
    target.parent.mkdir(parents=True, exist_ok=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        existing = list_tables(dst) + [r[0] for r in dst.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('view', 'trigger') LIMIT 5")]
        if existing and not force:
            raise TargetNotEmpty(f"target {target} is not empty (it has {', '.join(existing[:5])}): restore into a "
                                 "new file, or pass --force to replace its content")
        src = _open(src_path, readonly=True)
        try:
            src.backup(dst)  # replaces every page of the target, through its own locking
        except sqlite3.Error as exc:
            raise TerminalError(f"restore into {target} failed: {exc}") from None
        finally:
            src.close()
    finally:
        dst.close()
    return {}


# ---------------------------------------------------------------- the concern


class SQLiteBackup(Backup):
    """The online backup API both ways; a file is checked by ``PRAGMA integrity_check``."""

    def check_connects(self, url: DatabaseURL, role: str = "database") -> None:
        """Nothing to log in to: the backup opens the file itself (saying so when it is missing), and a restore
        target may not exist yet."""

    def default_name(self, url: DatabaseURL) -> str | None:
        return url.path.stem

    def backup(self, url: DatabaseURL, sink, *, scratch_dir: str | None = None) -> dict:
        return backup(url, sink, scratch_dir=scratch_dir)

    def restore(self, url: DatabaseURL, files: dict[str, Path], manifest, *, force: bool, jobs: int = 2,
                no_owner: bool = False) -> dict:
        return restore(url, files, manifest, force=force)  # one file, copied page by page: no workers, no owners

    def check_objects(self, files: dict[str, Path]) -> list[str]:
        bad = integrity(files[DB_OBJECT])
        if bad:
            raise BackupCorrupt(f"{DB_OBJECT}: PRAGMA integrity_check: {bad[0]}")
        return ["PRAGMA integrity_check: ok"]

    def inspect(self, url: DatabaseURL, *, counts: bool = True) -> tuple[list[TableEntry], str]:
        return inspect(url, counts=counts)

    def schema_rows(self, url: DatabaseURL) -> list[tuple]:
        conn = _open(url.path, readonly=True)
        try:
            return [tuple(r) for r in conn.execute(_FINGERPRINT_SQL)]
        finally:
            conn.close()

    @contextlib.contextmanager
    def scratch_database(self, manifest, *, name: str, server: DatabaseURL | None, workdir: Path,
                         notes: list[str], own: DatabaseURL | None = None):
        yield parse_url(f"sqlite:///{workdir / 'verify.sqlite'}")  # a file in the scratch directory, removed with it

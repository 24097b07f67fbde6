"""SQLite sessions: open a file read-only (a migration source, a backup), or for writing (path rewrites)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

from golive.dialects.base import Session, StatementFailure
from golive.errors import ConfigError, ConnectionFailed, GoliveError, SourceError, TerminalError, TransientError
from golive.urls import DatabaseURL

SQLITE_HEADER = b"SQLite format 3\x00"


def qi(name: str) -> str:
    """Quote an SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


def check(url: DatabaseURL) -> Path:
    """Check that ``url`` names a readable SQLite file; return its path. Raises ``SourceError``."""
    path = url.path
    assert path is not None
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SourceError(f"source {path}: no such file") from None
    except OSError as exc:
        raise SourceError(f"source {path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise SourceError(f"source {path}: is a directory, not a SQLite database file")
    if not stat.S_ISREG(mode):  # opening a FIFO would wait for a writer forever
        raise SourceError(f"source {path}: not a regular file (a FIFO, socket or device), not a SQLite database "
                          "file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise SourceError(f"source {path}: cannot read ({exc.strerror})") from None
    if head != SQLITE_HEADER:
        what = "an empty file" if not head else "not a SQLite database (wrong file header)"
        raise SourceError(f"source {path}: {what}")
    return path

def connect(url: DatabaseURL, *, raw_text: bool = False, **_ignored) -> sqlite3.Connection:
    """Open the database read-only. With ``raw_text`` text comes back as bytes (no decoding)."""
    path = check(url)
    uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"source {path}: {exc}") from None
    # Scans read each page once: a small page cache is enough, and memory stays flat per worker.
    # (No mmap: mapped pages would count in the process's RSS.)
    conn.execute("PRAGMA cache_size = -8192")
    if raw_text:
        conn.text_factory = bytes
    return conn


#: idle read-only connections kept per database file (``borrow``/``give_back``). Opening one parses the whole
#: schema on its first query (200 ms for 10,000 tables here), and a migration opened one per table to profile
#: it and one per chunk to copy it: tables x tables (issue 22, "Scale").
IDLE_PER_FILE = 8
_idle: dict[tuple, list[sqlite3.Connection]] = {}
_keys: dict[int, tuple] = {}
_idle_lock = threading.Lock()


def _wal(path) -> bool:
    """Is the file in WAL mode (its header's read and write versions are 2)? Idle read-only connections kept open
    while another process writes a WAL database were seen to leave it unreadable to the next connection
    ("database disk image is malformed": a 20 s app writer, then the online catch-up's first read): a WAL file
    (the app may be writing: an online migration) gets a connection per use, as before the pool."""
    try:
        with open(path, "rb") as fh:
            fh.seek(18)
            return fh.read(2) == b"\x02\x02"
    except OSError:
        return True


def _pool_key(url: DatabaseURL, raw_text: bool) -> tuple:
    st = os.stat(url.path)  # the same file, not only the same name (a replaced file is another database)
    return (str(url.path.resolve()), st.st_dev, st.st_ino, raw_text)


def borrow(url: DatabaseURL, *, raw_text: bool = False) -> sqlite3.Connection:
    """A read-only connection (``connect``), an idle one of the same file when there is one. Hand it back with
    ``give_back`` once no statement of it is running (its cursors closed or done), or close it."""
    path = check(url)
    key = _pool_key(url, raw_text) if path and not _wal(path) else None
    with _idle_lock:
        free = _idle.get(key)
        if free:
            return free.pop()
    conn = connect(url, raw_text=raw_text)
    with _idle_lock:
        _keys[id(conn)] = key
    return conn


def give_back(conn: sqlite3.Connection) -> None:
    """Keep ``conn`` (from ``borrow``) for the next ``borrow`` of its file, or close it when enough are idle."""
    with _idle_lock:
        key = _keys.get(id(conn))
        free = _idle.setdefault(key, []) if key is not None else None
        if free is not None and len(free) < IDLE_PER_FILE and not conn.in_transaction:
            free.append(conn)
            return
        _keys.pop(id(conn), None)
    conn.close()


def close_idle() -> None:
    """Close every idle connection (end of a migration; tests)."""
    with _idle_lock:
        conns = [c for free in _idle.values() for c in free]
        _idle.clear()
        for c in conns:
            _keys.pop(id(c), None)
    for c in conns:
        c.close()


class SQLiteSession(Session):
    """Read-only connections (``connect``), and writable ones whose transactions golive manages
    (``connect_for_update``: BEGIN IMMEDIATE takes the write lock)."""

    def connect(self, url: DatabaseURL, *, raw_text: bool = False, **kwargs) -> sqlite3.Connection:
        return connect(url, raw_text=raw_text)

    def connect_for_update(self, url: DatabaseURL) -> sqlite3.Connection:
        if url.path is None or not url.path.exists():
            raise ConfigError(f"SQLite database {url.path} does not exist")
        try:
            return sqlite3.connect(url.path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise ConnectionFailed(f"cannot open {url.path}: {exc}") from None

    def begin(self, conn) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self, conn) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _info(self, conn, schema: str | None, table: str) -> list[tuple]:
        prefix = f"{qi(schema)}." if schema else ""
        return list(conn.execute(f"PRAGMA {prefix}table_info({qi(table)})"))

    def columns(self, conn, schema: str | None, table: str) -> list[str]:
        return [r[1] for r in self._info(conn, schema, table)]

    def primary_key(self, conn, schema: str | None, table: str) -> list[str]:
        pk = [r[1] for r in sorted(self._info(conn, schema, table), key=lambda r: r[5]) if r[5]]
        return pk or ["rowid"]  # a rowid table without a declared key still has one

    def has_table(self, conn, schema: str | None, table: str) -> bool:
        master = f"{qi(schema)}.sqlite_master" if schema else "sqlite_master"
        return conn.execute(f"SELECT 1 FROM {master} WHERE type='table' AND name=?", (table,)).fetchone() is not None

    def open(self, url: DatabaseURL, *, application: str = "golive", autocommit: bool = True,
             lock_timeout_s: float | None = None, statement_timeout_s: float | None = None, read_only: bool = False,
             role: str = "database") -> sqlite3.Connection:
        """The file opened for work: read-only when asked; a lock wait is SQLite's busy timeout (the file's write lock
        is its only lock), a statement timeout a progress handler that interrupts it."""
        if read_only:
            conn = connect(url)
        else:
            conn = self.connect_for_update(url)
            if not autocommit:
                conn.isolation_level = "DEFERRED"
        conn.execute(f"PRAGMA busy_timeout = {int((lock_timeout_s if lock_timeout_s else 30) * 1000)}")
        if statement_timeout_s:
            self.set_statement_timeout(conn, statement_timeout_s)
        return conn

    def set_statement_timeout(self, conn, seconds: float | None) -> None:
        import time

        if not seconds:
            conn.set_progress_handler(None, 0)
            return
        deadline = time.monotonic() + seconds  # for the statements from now on, as a server's timeout would be
        conn.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)

    def classify(self, exc: BaseException) -> StatementFailure:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in first or "busy" in first):
            return StatementFailure("lock", first)
        if isinstance(exc, sqlite3.OperationalError) and "interrupted" in first:
            return StatementFailure("timeout", first)
        return StatementFailure("error", first)

    def client(self, url: DatabaseURL) -> str:
        return f"sqlite3 '{url.path}'"

    def translate_error(self, exc: BaseException, what: str) -> GoliveError:
        """A locked or busy file is worth a retry (another writer holds it); anything else is about the file."""
        if isinstance(exc, GoliveError):
            return exc
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        busy = isinstance(exc, sqlite3.OperationalError) and ("locked" in first or "busy" in first)
        return (TransientError if busy else TerminalError)(f"{what}: {first}")

"""SQLite sessions: open a file read-only (a migration source, a backup), or for writing (path rewrites)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from golive.dialects.base import Session
from golive.errors import GoliveError, SourceError, TerminalError
from golive.urls import DatabaseURL

SQLITE_HEADER = b"SQLite format 3\x00"


def qi(name: str) -> str:
    """Quote an SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


def check(url: DatabaseURL) -> Path:
    """Check that ``url`` names a readable SQLite file; return its path. Raises ``SourceError``."""
    path = url.path
    assert path is not None
    if not path.exists():
        raise SourceError(f"source {path}: no such file")
    if path.is_dir():
        raise SourceError(f"source {path}: is a directory, not a SQLite database file")
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


class SQLiteSession(Session):
    """Read-only connections (``connect``); SQLite errors are about the file, never worth a retry."""

    def connect(self, url: DatabaseURL, *, raw_text: bool = False, **kwargs) -> sqlite3.Connection:
        return connect(url, raw_text=raw_text)

    def translate_error(self, exc: BaseException, what: str) -> GoliveError:
        if isinstance(exc, GoliveError):
            return exc
        return TerminalError(f"{what}: {exc}")

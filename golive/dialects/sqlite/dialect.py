"""SQLite: settings, and where each concern is implemented."""

from __future__ import annotations

from golive.dialects.base import Dialect, Implementation
from golive.dialects.sqlite.session import check, qi
from golive.urls import DatabaseURL


class SQLiteDialect(Dialect):
    name = "sqlite"
    title = "SQLite"
    url_schemes = ("sqlite",)
    file_based = True
    # https://www.sqlite.org/limits.html: identifiers are not length-limited in practice
    max_identifier_length = 0
    # https://www.sqlite.org/lang_transaction.html: DDL is transactional
    transactional_ddl = True
    sqlglot_name = "sqlite"
    # SQLite CHECKs and views are reported, not translated: they are written for SQLite's typeless values
    translates_checks = False

    # https://docs.python.org/3/library/sqlite3.html#sqlite3-placeholders
    paramstyle = "?"
    # no row locks: BEGIN IMMEDIATE takes the database's write lock (https://www.sqlite.org/lang_transaction.html)
    row_lock_clause = ""

    session = Implementation("golive.dialects.sqlite.session:SQLiteSession")
    source = Implementation("golive.dialects.sqlite.source:SQLiteSource")
    checksums = Implementation("golive.dialects.sqlite.checksums:SQLiteChecksums")
    backup = Implementation("golive.dialects.sqlite.backup:SQLiteBackup")
    capture = Implementation("golive.dialects.sqlite.capture:SQLiteCapture")

    def quote(self, name: str) -> str:
        return qi(name)

    def check(self, url: DatabaseURL) -> None:
        check(url)

    def location(self, url: DatabaseURL) -> str:
        return str(url.path.resolve()) if url.path is not None else url.masked

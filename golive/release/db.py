"""Sessions of a release and the few catalog reads it needs, for PostgreSQL and MySQL/MariaDB.

Migration sessions carry the release's ``lock_timeout`` (MySQL: ``lock_wait_timeout`` and
``innodb_lock_wait_timeout``, whole seconds) and, per statement, the smaller of ``statement_timeout`` and the
time left of the overall timeout (MariaDB: ``max_statement_time``). PostgreSQL 14+ sessions also get
``client_connection_check_interval``, so a killed release does not leave a statement running on the server.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from golive.dialects import dialect_of
from golive.dialects.base import StatementFailure
from golive.errors import GoliveError, TransientError
from golive.release.model import LockTimeout
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

APPLICATION = "golive-release"


class Deadline:
    """The end of the migrations (``time.time()`` seconds), and the statement timeout within it."""

    def __init__(self, at: float, statement_s: float | None, total_s: float) -> None:
        self.at, self.statement_s, self.total_s = at, statement_s, total_s

    @classmethod
    def start(cls, total_s: float, statement_s: float | None = None) -> "Deadline":
        return cls(time.time() + total_s, statement_s, total_s)

    def remaining(self) -> float:
        return self.at - time.time()

    def statement_ms(self) -> int:
        left = max(self.remaining(), 0.001)
        if self.statement_s:
            left = min(left, self.statement_s)
        return max(int(left * 1000), 1)


def connect(url: DatabaseURL, *, lock_timeout_s: float | None = None, autocommit: bool = True,
            application: str = APPLICATION):
    """An autocommit session (``lock_timeout_s`` None: the server's default lock waits)."""
    return dialect_of(url).session.open(url, application=application, autocommit=autocommit,
                                        lock_timeout_s=lock_timeout_s)


def set_statement_timeout(conn, url: DatabaseURL, ms: int | None) -> None:
    """The statement timeout of the next statements (None or 0: none)."""
    dialect_of(url).session.set_statement_timeout(conn, (ms or 0) / 1000)


# ---------------------------------------------------------------- errors

#: a statement's failure, sorted (``lock``, ``timeout``, ``lost``, ``error``)
DbError = StatementFailure


def classify(exc: BaseException, url: DatabaseURL) -> DbError:
    return dialect_of(url).session.classify(exc)


def raise_for(err: DbError, what: str) -> None:
    """Raise the error a caller should see for ``err`` (lock timeouts and lost connections are retried)."""
    if err.kind == "lock":
        raise LockTimeout(f"{what}: could not get its lock within lock_timeout ({err.message})")
    if err.kind == "lost":
        raise TransientError(f"{what}: connection lost ({err.message})")
    raise GoliveError(f"{what}: {err.message}")


# ---------------------------------------------------------------- catalog reads

def server_info(conn, dialect: str) -> dict:
    """Version, database, user, and a few facts the pre-check reports."""
    with conn.cursor() as cur:
        if dialect == "postgresql":
            cur.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
                        "current_database(), current_user, current_schema(), pg_database_size(current_database()), "
                        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
            v, num, db, user, schema, size, superuser = cur.fetchone()
            return {"version": v, "version_num": num, "database": db, "user": user, "schema": schema or "public",
                    "bytes": int(size), "superuser": bool(superuser)}
        cur.execute("SELECT VERSION(), DATABASE(), CURRENT_USER(), (SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) "
                    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE())")
        v, db, user, size = cur.fetchone()
        v = _s(v)
        return {"version": v, "mariadb": "mariadb" in v.lower(), "database": _s(db), "user": _s(user),
                "schema": None, "bytes": int(size or 0)}


def _s(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else ("" if v is None else str(v))


@dataclass
class TableInfo:
    schema: str | None
    name: str
    bytes: int
    rows: int  # the planner's estimate
    has_rows: bool

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def table_info(conn, dialect: str, tables: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], TableInfo]:
    """Size, estimated rows and whether it has any row, of each existing table among ``tables``."""
    out: dict = {}
    with conn.cursor() as cur:
        for schema, name in dict.fromkeys(tables):
            if dialect == "postgresql":
                cur.execute("SELECT pg_total_relation_size(c.oid), c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                            (schema, name))
                row = cur.fetchone()
                if not row:
                    continue
                q = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {q})")
                has = bool(cur.fetchone()[0])
                rows = int(row[1]) if row[1] is not None and row[1] >= 0 else -1
                if rows < 0:  # never analyzed: count, up to a million
                    cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {q} LIMIT 1000000) s")
                    rows = int(cur.fetchone()[0])
                out[(schema, name)] = TableInfo(schema, name, int(row[0]), rows, has)
            else:
                cur.execute("SELECT DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS FROM information_schema.TABLES WHERE "
                            "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND TABLE_TYPE = 'BASE TABLE'", (name,))
                row = cur.fetchone()
                if not row:
                    continue
                q = "`" + name.replace("`", "``") + "`"
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {q})")
                has = bool(cur.fetchone()[0])
                rows = int(row[1] or 0)
                if has and rows == 0:
                    cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {q} LIMIT 1000000) s")
                    rows = int(cur.fetchone()[0])
                out[(None, name)] = TableInfo(None, name, int(row[0] or 0), rows, has)
    return out


def count_rows(conn, dialect: str, tables: list[tuple[str | None, str]]) -> dict[tuple[str | None, str], int]:
    """Exact row counts of the tables that exist among ``tables``."""
    out = {}
    with conn.cursor() as cur:
        for schema, name in dict.fromkeys(tables):
            q = quote(dialect, schema, name)
            try:
                cur.execute(f"SELECT count(*) FROM {q}")
                out[(schema, name)] = int(cur.fetchone()[0])
            except Exception:  # noqa: BLE001 - a table that does not exist (yet) has no count
                _rollback(conn)
    return out


def quote(dialect: str, schema: str | None, name: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    q = '"' + name.replace('"', '""') + '"'
    return ('"' + schema.replace('"', '""') + '".' + q) if schema else q


def _rollback(conn) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001
        pass


def table_exists(conn, dialect: str, schema: str | None, name: str) -> bool:
    with conn.cursor() as cur:
        if dialect == "postgresql":
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (quote(dialect, schema, name),))
        else:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                        (name,))
        return bool(cur.fetchone()[0])


def column_type(conn, dialect: str, schema: str | None, table: str, column: str) -> str | None:
    """The column's current type as the server prints it (``character varying(20)``, ``enum('a','b')``)."""
    with conn.cursor() as cur:
        if dialect == "postgresql":
            cur.execute("SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
                        "AND a.attname = %s AND NOT a.attisdropped", (quote(dialect, schema, table), column))
        else:
            cur.execute("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
                        "TABLE_NAME = %s AND COLUMN_NAME = %s", (table, column))
        row = cur.fetchone()
        return _s(row[0]) if row and row[0] is not None else None

"""A small database adapter for ``rewrite-paths``: read a column by primary-key batches, update it, and
keep the mapping that makes the rewrite reversible.

One class per dialect; differences are class attributes and a few SQL strings (alembic's pattern).
Drivers: ``sqlite3`` (stdlib), psycopg 3, PyMySQL. Each batch is one transaction: the rows are read
(and locked, where the database can) and updated, and their mapping rows are written, together, so a
crash leaves either the whole batch rewritten and recorded or none of it.

The mapping table, created in the database being rewritten (the current schema)::

    _golive_path_map(table_name, column_name, row_pk, old_value, new_value, rewritten_at)
        PRIMARY KEY (table_name, column_name, row_pk); row_pk is the primary key as text

``--reverse`` puts ``old_value`` back wherever the column still holds ``new_value``, and deletes the
mapping rows it used; the table is dropped when it is empty.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, ClassVar, Sequence

from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)

MAP_TABLE = "_golive_path_map"


class PathDB:
    """Base: SQL shared by all dialects, with ``{q}``-quoted identifiers and ``{p}`` placeholders."""

    dialect: ClassVar[str]
    quote_char: ClassVar[str] = '"'
    placeholder: ClassVar[str] = "%s"
    lock_clause: ClassVar[str] = " FOR UPDATE"
    map_ddl: ClassVar[str] = (
        f"CREATE TABLE IF NOT EXISTS {MAP_TABLE} (table_name TEXT NOT NULL, column_name TEXT NOT NULL, "
        "row_pk TEXT NOT NULL, old_value TEXT, new_value TEXT NOT NULL, rewritten_at TEXT NOT NULL, "
        "PRIMARY KEY (table_name, column_name, row_pk))")

    def __init__(self, conn: Any, url: DatabaseURL):
        self.conn = conn
        self.url = url

    # -- identifiers
    def quote(self, name: str) -> str:
        """Quote ``name`` (``schema.table`` is split on the dot)."""
        q = self.quote_char
        return ".".join(q + part.replace(q, q + q) + q for part in name.split("."))

    # -- introspection (dialects fill these in)
    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def primary_key(self, table: str) -> list[str]:
        raise NotImplementedError

    def has_map_table(self) -> bool:
        raise NotImplementedError

    # -- transactions
    def begin(self) -> None:
        pass

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def _exec(self, sql: str, params: Sequence = ()) -> Any:
        cur = self.conn.cursor()
        cur.execute(sql.replace("{p}", self.placeholder), params)
        return cur

    def _many(self, sql: str, rows: list[Sequence]) -> None:
        if rows:
            self.conn.cursor().executemany(sql.replace("{p}", self.placeholder), rows)

    # -- the rows
    def fetch(self, table: str, pk: str, column: str, after: Any, limit: int, lock: bool) -> list[tuple]:
        """Up to ``limit`` ``(pk, value)`` rows with ``pk > after`` in key order (locked if ``lock``)."""
        t, k, c = self.quote(table), self.quote(pk), self.quote(column)
        where = f" WHERE {k} > {{p}}" if after is not None else ""
        params = (after, limit) if after is not None else (limit,)
        sql = f"SELECT {k}, {c} FROM {t}{where} ORDER BY {k} LIMIT {{p}}"
        if lock:
            sql += self.lock_clause
        return list(self._exec(sql, params).fetchall())

    def update(self, table: str, pk: str, column: str, rows: list[tuple[Any, Any]]) -> None:
        """Set ``column`` for each ``(new_value, pk)``."""
        self._many(f"UPDATE {self.quote(table)} SET {self.quote(column)} = {{p}} WHERE {self.quote(pk)} = {{p}}", rows)

    # -- the mapping
    def ensure_map_table(self) -> None:
        self._exec(self.map_ddl)

    def map_get(self, table: str, column: str, pks: list[str]) -> dict[str, tuple[str | None, str]]:
        out: dict[str, tuple[str | None, str]] = {}
        for i in range(0, len(pks), 500):
            chunk = pks[i:i + 500]
            marks = ",".join(["{p}"] * len(chunk))
            cur = self._exec(f"SELECT row_pk, old_value, new_value FROM {MAP_TABLE} WHERE table_name = {{p}} "
                             f"AND column_name = {{p}} AND row_pk IN ({marks})", [table, column, *chunk])
            out.update({r[0]: (r[1], r[2]) for r in cur.fetchall()})
        return out

    def map_put(self, table: str, column: str, rows: list[tuple[str, str | None, str, str]]) -> None:
        """Insert or replace mapping rows ``(row_pk, old_value, new_value, rewritten_at)``."""
        self._many(f"DELETE FROM {MAP_TABLE} WHERE table_name = {{p}} AND column_name = {{p}} AND row_pk = {{p}}",
                   [(table, column, r[0]) for r in rows])
        self._many(f"INSERT INTO {MAP_TABLE} (table_name, column_name, row_pk, old_value, new_value, rewritten_at) "
                   "VALUES ({p}, {p}, {p}, {p}, {p}, {p})", [(table, column, *r) for r in rows])

    def map_delete(self, table: str, column: str, pks: list[str]) -> None:
        self._many(f"DELETE FROM {MAP_TABLE} WHERE table_name = {{p}} AND column_name = {{p}} AND row_pk = {{p}}",
                   [(table, column, pk) for pk in pks])

    def map_count(self, table: str | None = None, column: str | None = None) -> int:
        if not self.has_map_table():
            return 0
        if table is None:
            return self._exec(f"SELECT count(*) FROM {MAP_TABLE}").fetchone()[0]
        return self._exec(f"SELECT count(*) FROM {MAP_TABLE} WHERE table_name = {{p}} AND column_name = {{p}}",
                          (table, column)).fetchone()[0]

    def drop_map_table(self) -> None:
        self._exec(f"DROP TABLE IF EXISTS {MAP_TABLE}")
        self.commit()


class SqliteDB(PathDB):
    dialect = "sqlite"
    placeholder = "?"
    lock_clause = ""  # BEGIN IMMEDIATE takes the write lock instead

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _info(self, table: str) -> list[tuple]:
        if "." in table:
            schema, name = table.split(".", 1)
            return list(self.conn.execute(f"PRAGMA {self.quote(schema)}.table_info({self.quote(name)})"))
        return list(self.conn.execute(f"PRAGMA table_info({self.quote(table)})"))

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self._info(table)]

    def primary_key(self, table: str) -> list[str]:
        pk = [r[1] for r in sorted(self._info(table), key=lambda r: r[5]) if r[5]]
        return pk or ["rowid"]  # a rowid table without a declared key still has one

    def has_map_table(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (MAP_TABLE,)).fetchone() is not None


class PostgresDB(PathDB):
    dialect = "postgresql"

    def _split(self, table: str) -> tuple[str | None, str]:
        return tuple(table.split(".", 1)) if "." in table else (None, table)  # type: ignore[return-value]

    def columns(self, table: str) -> list[str]:
        schema, name = self._split(table)
        cur = self._exec("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                         "coalesce({p}, current_schema()) AND table_name = {p} ORDER BY ordinal_position",
                         (schema, name))
        return [r[0] for r in cur.fetchall()]

    def primary_key(self, table: str) -> list[str]:
        schema, name = self._split(table)
        cur = self._exec(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indisprimary AND c.relname = {p} AND n.nspname = coalesce({p}, current_schema())",
            (name, schema))
        return [r[0] for r in cur.fetchall()]

    def has_map_table(self) -> bool:
        return self._exec("SELECT to_regclass({p}) IS NOT NULL", (MAP_TABLE,)).fetchone()[0]


class MySQLDB(PathDB):
    dialect = "mysql"
    quote_char = "`"
    map_ddl = (
        f"CREATE TABLE IF NOT EXISTS {MAP_TABLE} (table_name VARCHAR(64) NOT NULL, column_name VARCHAR(64) NOT NULL, "
        "row_pk VARCHAR(255) NOT NULL, old_value LONGTEXT, new_value LONGTEXT NOT NULL, rewritten_at VARCHAR(40) NOT NULL, "
        "PRIMARY KEY (table_name, column_name, row_pk)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")

    def begin(self) -> None:
        self.conn.begin()

    def _split(self, table: str) -> tuple[str | None, str]:
        return tuple(table.split(".", 1)) if "." in table else (None, table)  # type: ignore[return-value]

    def columns(self, table: str) -> list[str]:
        schema, name = self._split(table)
        cur = self._exec("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                         "coalesce({p}, DATABASE()) AND TABLE_NAME = {p} ORDER BY ORDINAL_POSITION", (schema, name))
        return [r[0] for r in cur.fetchall()]

    def primary_key(self, table: str) -> list[str]:
        schema, name = self._split(table)
        cur = self._exec("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = "
                         "coalesce({p}, DATABASE()) AND TABLE_NAME = {p} AND CONSTRAINT_NAME = 'PRIMARY' "
                         "ORDER BY ORDINAL_POSITION", (schema, name))
        return [r[0] for r in cur.fetchall()]

    def has_map_table(self) -> bool:
        return self._exec("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                          "AND TABLE_NAME = {p}", (MAP_TABLE,)).fetchone()[0] > 0


DIALECTS: dict[str, type[PathDB]] = {"sqlite": SqliteDB, "postgresql": PostgresDB, "mysql": MySQLDB}


def connect(url: str) -> PathDB:
    """Open ``url`` (sqlite, postgresql or mysql). Raises ``ConfigError``/``ConnectionFailed`` with one line."""
    u = parse_url(url)
    if u.dialect not in DIALECTS:
        raise ConfigError(f"rewrite-paths supports sqlite, postgresql and mysql URLs, not {u.dialect} ({u})")
    try:
        if u.dialect == "sqlite":
            if not u.path.exists():
                raise ConfigError(f"SQLite database {u.path} does not exist")
            conn = sqlite3.connect(u.path, isolation_level=None, timeout=30)
            return SqliteDB(conn, u)
        if u.dialect == "postgresql":
            import psycopg

            return PostgresDB(psycopg.connect(u.libpq(), connect_timeout=10), u)
        import pymysql

        conn = pymysql.connect(host=u.host or "localhost", port=u.port or 3306, user=u.user or "root",
                               password=u.password_text or "", database=u.database, charset="utf8mb4",
                               connect_timeout=10, autocommit=False)
        return MySQLDB(conn, u)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors: one line, password masked by the CLI
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectionFailed(f"cannot connect to {u}: {first}") from None


def translate_error(exc: BaseException, db: PathDB) -> GoliveError:
    """Driver errors to golive's hierarchy, where they arrive: lost connections, lock timeouts, deadlocks
    and a busy SQLite file are transient (a retry may succeed); everything else is terminal."""
    if isinstance(exc, GoliveError):
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    transient = False
    if isinstance(exc, sqlite3.OperationalError):
        transient = "locked" in first or "busy" in first
    elif type(exc).__module__.startswith("psycopg"):
        import psycopg

        transient = isinstance(exc, (psycopg.OperationalError, psycopg.errors.DeadlockDetected,
                                     psycopg.errors.SerializationFailure, psycopg.errors.LockNotAvailable))
    elif type(exc).__module__.startswith("pymysql"):
        import pymysql

        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        transient = isinstance(exc, pymysql.err.OperationalError) and code in (1205, 1213, 2006, 2013)
    cls = TransientError if transient else TerminalError
    return cls(f"{db.url}: {type(exc).__name__}: {first}")

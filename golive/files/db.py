"""A small database adapter for ``rewrite-paths``: read a column by primary-key batches, update it, and
keep the mapping that makes the rewrite reversible.

What differs per engine (a writable session, its transactions, the catalog, placeholders, row locks, the
mapping table's types) is asked of the dialect (``golive.dialects``). Each batch is one transaction: the rows are read
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
from typing import Any, Sequence

from golive.dialects import dialect_of
from golive.errors import GoliveError
from golive.urls import DatabaseURL, as_url

log = logging.getLogger(__name__)

MAP_TABLE = "_golive_path_map"


class PathDB:
    """One database being rewritten: generic SQL with ``{p}`` placeholders, the engine's differences from its
    dialect (writable session, transactions, catalog reads, row locks, the mapping table's column types)."""

    def __init__(self, conn: Any, url: DatabaseURL):
        self.conn = conn
        self.url = url
        self.dialect = dialect_of(url)
        self.session = self.dialect.session
        self.placeholder = self.dialect.paramstyle
        text, key = self.dialect.long_text_type, self.dialect.key_text_type
        self.map_ddl = (
            f"CREATE TABLE IF NOT EXISTS {MAP_TABLE} (table_name {key} NOT NULL, column_name {key} NOT NULL, "
            f"row_pk {key} NOT NULL, old_value {text}, new_value {text} NOT NULL, rewritten_at {key} NOT NULL, "
            f"PRIMARY KEY (table_name, column_name, row_pk)){self.dialect.table_options}")

    # -- identifiers
    def quote(self, name: str) -> str:
        """Quote ``name`` (``schema.table`` is split on the dot)."""
        return ".".join(self.dialect.quote(part) for part in name.split("."))

    def _split(self, table: str) -> tuple[str | None, str]:
        return tuple(table.split(".", 1)) if "." in table else (None, table)  # type: ignore[return-value]

    # -- introspection
    def columns(self, table: str) -> list[str]:
        return self.session.columns(self.conn, *self._split(table))

    def primary_key(self, table: str) -> list[str]:
        return self.session.primary_key(self.conn, *self._split(table))

    def has_map_table(self) -> bool:
        return self.session.has_table(self.conn, None, MAP_TABLE)

    # -- transactions
    def begin(self) -> None:
        self.session.begin(self.conn)

    def commit(self) -> None:
        self.session.commit(self.conn)

    def rollback(self) -> None:
        self.session.rollback(self.conn)

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
            sql += self.dialect.row_lock_clause
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


def connect(url) -> PathDB:
    """Open ``url`` for rewriting. Raises ``ConfigError``/``ConnectionFailed`` with one line."""
    u = as_url(url)
    d = dialect_of(u)
    return PathDB(d.session.connect_for_update(u), u)


def translate_error(exc: BaseException, db: PathDB) -> GoliveError:
    """Driver errors to golive's hierarchy, where they arrive (the dialect's ``translate_error``): lost connections,
    lock timeouts, deadlocks and a busy SQLite file are transient (a retry may succeed); everything else terminal."""
    if isinstance(exc, GoliveError):
        return exc
    return db.session.translate_error(exc, f"{db.url}: {type(exc).__name__}")

"""Sizes over time, kept in the database itself so any machine that reports on it sees the same history.

PostgreSQL: ``_golive.report_history`` (the schema golive's migration bookkeeping also uses).
MySQL/MariaDB: ``_golive_report_history`` in the database (MySQL has no schemas inside a database).
One row per object and report: ``(taken_at, kind, name, bytes, row_count)``, ``kind`` being ``database``,
``table``, ``matview`` or ``index``. Rows older than ``history_days`` are deleted when a report is recorded.
Drop the table to forget the history; a report on a read-only database (a replica, a read-only role)
still works, without growth figures or new points.
"""

from __future__ import annotations

import datetime as dt
import logging

from golive.health.model import History, TableSize

log = logging.getLogger(__name__)

PG_TABLE = "_golive.report_history"
MYSQL_TABLE = "_golive_report_history"

PG_DDL = f"""
CREATE SCHEMA IF NOT EXISTS _golive;
CREATE TABLE IF NOT EXISTS {PG_TABLE} (
  taken_at timestamptz NOT NULL,
  kind text NOT NULL,
  name text NOT NULL,
  bytes bigint NOT NULL,
  row_count bigint,
  PRIMARY KEY (kind, name, taken_at)
)"""

MYSQL_DDL = f"""
CREATE TABLE IF NOT EXISTS {MYSQL_TABLE} (
  taken_at DATETIME(6) NOT NULL COMMENT 'UTC',
  kind VARCHAR(16) NOT NULL,
  name VARCHAR(255) NOT NULL,
  bytes BIGINT NOT NULL,
  row_count BIGINT NULL,
  PRIMARY KEY (kind, name, taken_at)
) ENGINE=InnoDB COMMENT='golive report db: sizes over time'"""


def table_name(engine: str) -> str:
    return PG_TABLE if engine == "postgresql" else MYSQL_TABLE


def _exists(conn, engine: str) -> bool:
    with conn.cursor() as cur:
        if engine == "postgresql":
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (PG_TABLE,))
        else:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                        "AND table_name = %s", (MYSQL_TABLE,))
        return bool(cur.fetchone()[0])


def previous(conn, engine: str) -> tuple[str | None, dict[tuple[str, str], int]]:
    """The latest recorded snapshot: its time and ``{(kind, name): bytes}`` (empty when there is none)."""
    if not _exists(conn, engine):
        return None, {}
    t = table_name(engine)
    with conn.cursor() as cur:
        cur.execute(f"SELECT max(taken_at) FROM {t} WHERE kind = 'database'")
        last = cur.fetchone()[0]
        if last is None:
            return None, {}
        cur.execute(f"SELECT kind, name, bytes FROM {t} WHERE taken_at = %s", (last,))
        return _iso(last), {(k, n): b for k, n, b in cur.fetchall()}


def record(conn, engine: str, taken_at: dt.datetime, database_bytes: int, dbname: str, sizes: list[TableSize],
           keep_days: int) -> int:
    """Insert this report's sizes (one transaction) and forget snapshots older than ``keep_days``."""
    t = table_name(engine)
    stamp = taken_at if engine == "postgresql" else taken_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    rows = [(stamp, "database", dbname, database_bytes, None)] + [
        (stamp, s.kind, s.name, s.bytes, s.row_count) for s in sizes]
    cutoff = stamp - dt.timedelta(days=keep_days)
    exists = _exists(conn, engine)  # CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists
    with conn.cursor() as cur:
        if not exists:
            cur.execute(PG_DDL if engine == "postgresql" else MYSQL_DDL)
        cur.executemany(f"INSERT INTO {t} (taken_at, kind, name, bytes, row_count) VALUES (%s, %s, %s, %s, %s)", rows)
        cur.execute(f"DELETE FROM {t} WHERE taken_at < %s", (cutoff,))
    conn.commit()
    return len(rows)


def series(conn, engine: str, dbname: str, tables: list[str], indexes: list[str], days: int) -> History:
    """Sizes over the last ``days`` of the database, of ``tables`` and of ``indexes``."""
    h = History(kept=True, table=table_name(engine))
    if not _exists(conn, engine):
        return h
    t = table_name(engine)
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    if engine != "postgresql":
        since = since.replace(tzinfo=None)
    names = [("database", dbname)] + [("table", n) for n in tables] + [("index", n) for n in indexes]
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(DISTINCT taken_at) FROM {t} WHERE kind = 'database' AND taken_at >= %s", (since,))
        h.snapshots = cur.fetchone()[0]
        wanted = {n for _, n in names}
        if not wanted:
            return h
        placeholders = ", ".join(["%s"] * len(wanted))
        cur.execute(f"SELECT taken_at, kind, name, bytes FROM {t} WHERE taken_at >= %s AND name IN ({placeholders}) "
                    "ORDER BY taken_at", (since, *sorted(wanted)))
        for taken, kind, name, b in cur.fetchall():
            point = (_iso(taken), int(b))
            if kind == "database" and name == dbname:
                h.database.append(point)
            elif kind in ("table", "matview") and name in tables:
                h.tables.setdefault(name, []).append(point)
            elif kind == "index" and name in indexes:
                h.indexes.setdefault(name, []).append(point)
    return h


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    return str(value)

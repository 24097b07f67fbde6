"""Sizes over time, kept in the database itself so any machine that reports on it sees the same history.

Each engine names the table and how to create it (``Health.history_table``, ``history_ddl``: on PostgreSQL
``_golive.report_history``, in the schema golive's migration bookkeeping also uses; on MySQL/MariaDB
``_golive_report_history`` in the database, which has no schemas inside it). One row per object and report:
``(taken_at, kind, name, bytes, row_count)``, ``kind`` being ``database``, ``table``, ``matview`` or ``index``.
Rows older than ``history_days`` are deleted when a report is recorded. Drop the table to forget the history; a
report on a read-only database (a replica, a read-only role) still works, without growth figures or new points.
"""

from __future__ import annotations

import datetime as dt
import logging

from golive.dialects.base import Health
from golive.health.model import History, TableSize

log = logging.getLogger(__name__)


def previous(conn, health: Health) -> tuple[str | None, dict[tuple[str, str], int]]:
    """The latest recorded snapshot: its time and ``{(kind, name): bytes}`` (empty when there is none)."""
    if not health.history_exists(conn):
        return None, {}
    t = health.history_table
    with conn.cursor() as cur:
        cur.execute(f"SELECT max(taken_at) FROM {t} WHERE kind = 'database'")
        last = cur.fetchone()[0]
        if last is None:
            return None, {}
        cur.execute(f"SELECT kind, name, bytes FROM {t} WHERE taken_at = %s", (last,))
        return _iso(last), {(k, n): b for k, n, b in cur.fetchall()}


def record(conn, health: Health, taken_at: dt.datetime, database_bytes: int, dbname: str, sizes: list[TableSize],
           keep_days: int) -> int:
    """Insert this report's sizes (one transaction) and forget snapshots older than ``keep_days``."""
    t = health.history_table
    stamp = health.history_stamp(taken_at)
    rows = [(stamp, "database", dbname, database_bytes, None)] + [
        (stamp, s.kind, s.name, s.bytes, s.row_count) for s in sizes]
    cutoff = stamp - dt.timedelta(days=keep_days)
    exists = health.history_exists(conn)  # CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists
    with conn.cursor() as cur:
        if not exists:
            cur.execute(health.history_ddl)
        cur.executemany(f"INSERT INTO {t} (taken_at, kind, name, bytes, row_count) VALUES (%s, %s, %s, %s, %s)", rows)
        cur.execute(f"DELETE FROM {t} WHERE taken_at < %s", (cutoff,))
    conn.commit()
    return len(rows)


def series(conn, health: Health, dbname: str, tables: list[str], indexes: list[str], days: int) -> History:
    """Sizes over the last ``days`` of the database, of ``tables`` and of ``indexes``."""
    h = History(kept=True, table=health.history_table)
    if not health.history_exists(conn):
        return h
    t = health.history_table
    since = health.history_stamp(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days))
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

"""The release journal: one row per release in the database's own golive table, updated at every step.

PostgreSQL: ``_golive.releases`` (the schema golive's migrations use too); MySQL/MariaDB: ``_golive_releases``.
The row is written before the backup (so the backup holds it too), moves through the steps (``backup``,
``migrate``, ``validate``, ``health``, ``rollback-*``) with the migration in progress and the ones applied,
and ends with the final state and the report. A release killed in the middle leaves its row at the step it
was in; the next release reads it (and whether anybody holds the release lock) and says what it found.

Each write is its own autocommit statement on the release's control session, so it never holds a lock a
migration or a restore would wait for.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket

from pydantic import BaseModel, Field

from golive import __version__

log = logging.getLogger(__name__)

PG_SCHEMA = "_golive"
PG_TABLE = "_golive.releases"
MY_TABLE = "_golive_releases"

_PG_DDL = [
    "CREATE SCHEMA IF NOT EXISTS _golive",
    """CREATE TABLE IF NOT EXISTS _golive.releases (
        id text PRIMARY KEY, started_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        finished_at timestamptz, state text NOT NULL, step text NOT NULL, detail text,
        kind text NOT NULL, source text NOT NULL, pending jsonb NOT NULL DEFAULT '[]',
        applied jsonb NOT NULL DEFAULT '[]', backup_to text, backup_url text, host text, pid integer,
        golive_version text, statement text, report jsonb)""",
]
_MY_DDL = [
    """CREATE TABLE IF NOT EXISTS _golive_releases (
        id VARCHAR(64) NOT NULL PRIMARY KEY, started_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL,
        finished_at DATETIME(6) NULL, state VARCHAR(32) NOT NULL, step VARCHAR(64) NOT NULL, detail TEXT,
        kind VARCHAR(16) NOT NULL, source TEXT NOT NULL, pending LONGTEXT NOT NULL, applied LONGTEXT NOT NULL,
        backup_to TEXT, backup_url TEXT, host VARCHAR(255), pid INT, golive_version VARCHAR(32), statement TEXT,
        report LONGTEXT) DEFAULT CHARACTER SET utf8mb4""",
]


class JournalRow(BaseModel):
    id: str
    started_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None = None
    state: str
    step: str
    detail: str | None = None
    kind: str
    source: str
    pending: list[str] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list)
    backup_to: str | None = None
    backup_url: str | None = None
    host: str | None = None
    pid: int | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ts(dialect: str, value: dt.datetime | None):
    if value is None or dialect == "postgresql":
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)  # DATETIME holds UTC wall-clock time


def table(dialect: str) -> str:
    return PG_TABLE if dialect == "postgresql" else MY_TABLE


def ensure(conn, dialect: str) -> None:
    """Create the journal table (and PostgreSQL's ``_golive`` schema) when missing."""
    with conn.cursor() as cur:
        for stmt in (_PG_DDL if dialect == "postgresql" else _MY_DDL):
            cur.execute(stmt)


def exists(conn, dialect: str) -> bool:
    from golive.release.db import table_exists

    return table_exists(conn, dialect, PG_SCHEMA, "releases") if dialect == "postgresql" else table_exists(
        conn, dialect, None, MY_TABLE)


def begin(conn, dialect: str, row: JournalRow) -> None:
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table(dialect)} (id, started_at, updated_at, state, step, detail, kind, source, "
                    "pending, applied, backup_to, host, pid, golive_version) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (row.id, _ts(dialect, row.started_at), _ts(dialect, _now()), row.state, row.step, row.detail,
                     row.kind, row.source, json.dumps(row.pending), json.dumps(row.applied), row.backup_to,
                     socket.gethostname()[:255], os.getpid(), __version__))


def update(conn, dialect: str, release_id: str, **fields) -> None:
    """Set the given columns of the release's row (lists as JSON); ``updated_at`` always."""
    fields["updated_at"] = _now()
    sets, values = [], []
    for k, v in fields.items():
        if k in ("pending", "applied", "report"):
            v = None if v is None else json.dumps(v, default=str)
        elif isinstance(v, dt.datetime):
            v = _ts(dialect, v)
        sets.append(f"{k} = %s")
        values.append(v)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {table(dialect)} SET {', '.join(sets)} WHERE id = %s", (*values, release_id))
        if cur.rowcount == 0 and "state" in fields:
            log.warning("release %s has no journal row to update (it was not restored with the backup?)", release_id)


def unfinished(conn, dialect: str) -> list[JournalRow]:
    """Rows of releases that never reached a final state (newest first)."""
    if not exists(conn, dialect):
        return []
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, started_at, updated_at, finished_at, state, step, detail, kind, source, pending, applied, "
                    f"backup_to, backup_url, host, pid FROM {table(dialect)} WHERE state = 'running' "
                    "ORDER BY started_at DESC")
        rows = cur.fetchall()
    out = []
    for r in rows:
        vals = [v.decode() if isinstance(v, (bytes, bytearray)) else v for v in r]
        pending, applied = (json.loads(v) if isinstance(v, str) else (v or []) for v in vals[9:11])
        started, updated = (v.replace(tzinfo=dt.timezone.utc) if v is not None and v.tzinfo is None else v
                            for v in vals[1:3])
        out.append(JournalRow(id=vals[0], started_at=started, updated_at=updated, finished_at=vals[3], state=vals[4],
                              step=vals[5], detail=vals[6], kind=vals[7], source=vals[8], pending=pending,
                              applied=applied, backup_to=vals[11], backup_url=vals[12], host=vals[13], pid=vals[14]))
    return out

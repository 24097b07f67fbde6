"""The release journal: one row per release in the database's own golive table, updated at every step.

The table is the dialect's ``Release.journal_table`` (PostgreSQL: ``_golive.releases``, the schema golive's
migrations use too; MySQL/MariaDB: ``_golive_releases``), created by its ``journal_ddl``.
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
from golive.dialects.base import Dialect

log = logging.getLogger(__name__)


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


def table(dialect: Dialect) -> str:
    """The journal table, quoted for SQL."""
    return dialect.qualified(*dialect.release.journal_table)


def ensure(conn, dialect: Dialect) -> None:
    """Create the journal table (and the schema it lives in) when missing."""
    with conn.cursor() as cur:
        for stmt in dialect.release.journal_ddl:
            cur.execute(stmt)


def exists(conn, dialect: Dialect) -> bool:
    return dialect.release.table_exists(conn, *dialect.release.journal_table)


def begin(conn, dialect: Dialect, row: JournalRow) -> None:
    ts = dialect.release.timestamp
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table(dialect)} (id, started_at, updated_at, state, step, detail, kind, source, "
                    "pending, applied, backup_to, host, pid, golive_version) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (row.id, ts(row.started_at), ts(_now()), row.state, row.step, row.detail,
                     row.kind, row.source, json.dumps(row.pending), json.dumps(row.applied), row.backup_to,
                     socket.gethostname()[:255], os.getpid(), __version__))


def update(conn, dialect: Dialect, release_id: str, **fields) -> None:
    """Set the given columns of the release's row (lists as JSON); ``updated_at`` always."""
    fields["updated_at"] = _now()
    sets, values = [], []
    for k, v in fields.items():
        if k in ("pending", "applied", "report"):
            v = None if v is None else json.dumps(v, default=str)
        elif isinstance(v, dt.datetime):
            v = dialect.release.timestamp(v)
        sets.append(f"{k} = %s")
        values.append(v)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {table(dialect)} SET {', '.join(sets)} WHERE id = %s", (*values, release_id))
        if cur.rowcount == 0 and "state" in fields:
            log.warning("release %s has no journal row to update (it was not restored with the backup?)", release_id)


def unfinished(conn, dialect: Dialect) -> list[JournalRow]:
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

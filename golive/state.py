"""Run bookkeeping in the target database, so an interrupted copy resumes exactly where it stopped.

Each chunk is copied in one transaction that also inserts its row in ``_golive.chunks``: a chunk is
either fully committed *and* recorded, or neither. A re-run skips recorded chunks and copies the rest.
The plan is stored with the run, so a resumed copy uses the same types and names.

Tables (schema ``_golive`` of the target database; drop it with ``DROP SCHEMA _golive CASCADE`` once
you no longer need the history)::

    runs(run_key, target_schema, status, plan, source_fingerprint, started_at, finished_at)
    chunks(run_key, table_name, chunk_no, rows_read, rows_written, rows_rejected, rejects, seconds, done_at)
"""

from __future__ import annotations

import json

STATE_SCHEMA = "_golive"

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.runs (
  run_key text PRIMARY KEY,
  target_schema text NOT NULL,
  status text NOT NULL,
  plan jsonb NOT NULL,
  source_fingerprint text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.chunks (
  run_key text NOT NULL,
  table_name text NOT NULL,
  chunk_no integer NOT NULL,
  rows_read bigint NOT NULL,
  rows_written bigint NOT NULL,
  rows_rejected bigint NOT NULL,
  rejects jsonb NOT NULL DEFAULT '[]',
  seconds double precision,
  done_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_key, table_name, chunk_no)
);
"""


def ensure(conn) -> None:
    """Create the bookkeeping tables if missing (idempotent; safe under concurrency thanks to the lock)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('golive-state'))")
        cur.execute(DDL)


def exists(conn) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{STATE_SCHEMA}.runs",)).fetchone()[0]


def get_run(conn, run_key: str) -> dict | None:
    if not exists(conn):
        return None
    row = conn.execute(
        f"SELECT status, plan, source_fingerprint, started_at, finished_at FROM {STATE_SCHEMA}.runs WHERE run_key = %s",
        (run_key,)).fetchone()
    if row is None:
        return None
    return {"status": row[0], "plan": row[1], "source_fingerprint": row[2], "started_at": row[3], "finished_at": row[4]}


def start_run(conn, run_key: str, schema: str, plan_json: str, fingerprint: str) -> None:
    conn.execute(f"DELETE FROM {STATE_SCHEMA}.chunks WHERE run_key = %s", (run_key,))
    conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.runs (run_key, target_schema, status, plan, source_fingerprint) "
        f"VALUES (%s, %s, 'copying', %s, %s) ON CONFLICT (run_key) DO UPDATE SET status = 'copying', "
        f"plan = EXCLUDED.plan, source_fingerprint = EXCLUDED.source_fingerprint, started_at = now(), finished_at = NULL",
        (run_key, schema, plan_json, fingerprint))


def set_status(conn, run_key: str, status: str) -> None:
    conn.execute(
        f"UPDATE {STATE_SCHEMA}.runs SET status = %s, finished_at = CASE WHEN %s IN ('complete', 'failed') "
        f"THEN now() END WHERE run_key = %s", (status, status, run_key))


def forget_run(conn, run_key: str) -> None:
    if exists(conn):
        conn.execute(f"DELETE FROM {STATE_SCHEMA}.chunks WHERE run_key = %s", (run_key,))
        conn.execute(f"DELETE FROM {STATE_SCHEMA}.runs WHERE run_key = %s", (run_key,))


def chunk_done(conn, run_key: str, table: str, chunk_no: int) -> dict | None:
    row = conn.execute(
        f"SELECT rows_read, rows_written, rows_rejected, rejects, seconds FROM {STATE_SCHEMA}.chunks "
        f"WHERE run_key = %s AND table_name = %s AND chunk_no = %s", (run_key, table, chunk_no)).fetchone()
    if row is None:
        return None
    return {"rows_read": row[0], "rows_written": row[1], "rows_rejected": row[2], "rejects": row[3], "seconds": row[4]}


def record_chunk(conn, run_key: str, table: str, chunk_no: int, rows_read: int, rows_written: int,
                 rejects: list[dict], seconds: float) -> None:
    """Record a committed chunk; must run in the chunk's own transaction."""
    conn.execute(
        f"INSERT INTO {STATE_SCHEMA}.chunks (run_key, table_name, chunk_no, rows_read, rows_written, rows_rejected, "
        f"rejects, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (run_key, table, chunk_no, rows_read, rows_written, len(rejects), json.dumps(rejects), seconds))


def chunks_of_run(conn, run_key: str) -> dict[tuple[str, int], dict]:
    rows = conn.execute(
        f"SELECT table_name, chunk_no, rows_read, rows_written, rows_rejected, rejects, seconds "
        f"FROM {STATE_SCHEMA}.chunks WHERE run_key = %s", (run_key,)).fetchall()
    return {(r[0], r[1]): {"rows_read": r[2], "rows_written": r[3], "rows_rejected": r[4], "rejects": r[5],
                           "seconds": r[6]} for r in rows}

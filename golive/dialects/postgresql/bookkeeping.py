"""PostgreSQL's bookkeeping tables: schema ``_golive`` with ``runs`` and ``chunks``."""

from __future__ import annotations

from golive.dialects.bookkeeping import Bookkeeping

STATE_SCHEMA = "_golive"


class PostgresBookkeeping(Bookkeeping):
    runs = f"{STATE_SCHEMA}.runs"
    chunks = f"{STATE_SCHEMA}.chunks"
    ddl = [
        f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}",
        f"""CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.runs (
  run_key text PRIMARY KEY,
  target_schema text NOT NULL,
  status text NOT NULL,
  plan jsonb NOT NULL,
  source_fingerprint text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
)""",
        f"""CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.chunks (
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
)""",
        # added later: runs recorded by an older golive keep working
        f"ALTER TABLE {STATE_SCHEMA}.chunks ADD COLUMN IF NOT EXISTS converted jsonb NOT NULL DEFAULT '{{}}'",
        f"ALTER TABLE {STATE_SCHEMA}.chunks ADD COLUMN IF NOT EXISTS digest text",
        f"""CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.capture (
  run_key text PRIMARY KEY,
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)""",
    ]
    capture = f"{STATE_SCHEMA}.capture"
    upsert_capture = (f"INSERT INTO {STATE_SCHEMA}.capture (run_key, state) VALUES (%s, %s) ON CONFLICT (run_key) "
                      "DO UPDATE SET state = EXCLUDED.state, updated_at = now()")
    lock = "SELECT pg_advisory_xact_lock(hashtext('golive-state'))"
    upsert_run = ("INSERT INTO {runs} (run_key, target_schema, status, plan, source_fingerprint) "
                  "VALUES (%s, %s, 'copying', %s, %s) ON CONFLICT (run_key) DO UPDATE SET status = 'copying', "
                  "plan = EXCLUDED.plan, source_fingerprint = EXCLUDED.source_fingerprint, started_at = now(), "
                  "finished_at = NULL")
    now = "now()"

    def exists(self) -> bool:
        return self._rows("SELECT to_regclass(%s) IS NOT NULL", (self.runs,))[0][0]

"""Run bookkeeping in the target database (the SQL common to every target; each target names its tables), so an interrupted copy resumes exactly where it stopped.

Each chunk is copied in one transaction that also inserts its row in the chunks table: a chunk is
either fully committed *and* recorded, or neither. A re-run skips recorded chunks and copies the rest.
The plan is stored with the run, so a resumed copy uses the same types and names.

Where (drop them once you no longer need the history):

* PostgreSQL: schema ``_golive`` with ``runs`` and ``chunks`` (``DROP SCHEMA _golive CASCADE``);
* MySQL/MariaDB (no schemas): tables ``_golive_runs`` and ``_golive_chunks`` in the target database.

::

    runs(run_key, target_schema, status, plan, source_fingerprint, started_at, finished_at)
    chunks(run_key, table_name, chunk_no, rows_read, rows_written, rows_rejected, rejects, converted, digest,
           seconds, done_at)
"""

from __future__ import annotations

import json

class Bookkeeping:
    """The SQL of the bookkeeping tables for one target dialect (``%s`` placeholders on both drivers)."""

    #: the tables' names, their DDL (idempotent), a lock serialising the DDL (or None), the run upsert, and "now"
    runs: str = ""
    chunks: str = ""
    #: an online run's capture state (``golive.model.capture.CaptureState`` as JSON), and its upsert
    capture: str = ""
    upsert_capture: str = ""
    ddl: list[str] = []
    lock: str | None = None
    upsert_run: str = ""
    now: str = ""

    def __init__(self, conn):
        self.conn = conn

    def _rows(self, sql: str, args=()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql.format(runs=self.runs, chunks=self.chunks), args)
            return list(cur.fetchall()) if cur.description else []

    def _exec(self, sql: str, args=()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql.format(runs=self.runs, chunks=self.chunks), args)

    @staticmethod
    def _json(v):
        if v is None or isinstance(v, (dict, list)):
            return v
        return json.loads(v)

    def ensure(self) -> None:
        """Create the bookkeeping tables if missing (idempotent; serialised by a lock)."""
        with self.conn.cursor() as cur:
            if self.lock:
                cur.execute(self.lock)
            for stmt in self.ddl:
                cur.execute(stmt)

    def exists(self) -> bool:
        """Do the bookkeeping tables exist?"""
        raise NotImplementedError

    def get_run(self, run_key: str) -> dict | None:
        if not self.exists():
            return None
        rows = self._rows("SELECT status, plan, source_fingerprint, started_at, finished_at FROM {runs} "
                          "WHERE run_key = %s", (run_key,))
        if not rows:
            return None
        r = rows[0]
        return {"status": r[0], "plan": self._json(r[1]), "source_fingerprint": r[2], "started_at": r[3],
                "finished_at": r[4]}

    def runs_in(self, schema: str) -> list[tuple[str, dict]]:
        """``(run_key, plan)`` of the runs into ``schema``, newest first."""
        if not self.exists():
            return []
        return [(k, self._json(p)) for k, p in self._rows(
            "SELECT run_key, plan FROM {runs} WHERE target_schema = %s ORDER BY started_at DESC", (schema,))]

    def start_run(self, run_key: str, schema: str, plan_json: str, fingerprint: str) -> None:
        self._exec("DELETE FROM {chunks} WHERE run_key = %s", (run_key,))
        self._exec(self.upsert_run, (run_key, schema, plan_json, fingerprint))

    def set_status(self, run_key: str, status: str) -> None:
        finished = self.now if status in ("complete", "failed") else "NULL"
        self._exec(f"UPDATE {{runs}} SET status = %s, finished_at = {finished} WHERE run_key = %s", (status, run_key))

    def forget_run(self, run_key: str) -> None:
        if self.exists():
            self._exec("DELETE FROM {chunks} WHERE run_key = %s", (run_key,))
            self._exec("DELETE FROM {runs} WHERE run_key = %s", (run_key,))

    def chunk_done(self, run_key: str, table: str, chunk_no: int) -> dict | None:
        rows = self._rows("SELECT rows_read, rows_written, rows_rejected, rejects, seconds, converted FROM {chunks} "
                          "WHERE run_key = %s AND table_name = %s AND chunk_no = %s", (run_key, table, chunk_no))
        if not rows:
            return None
        r = rows[0]
        return {"rows_read": r[0], "rows_written": r[1], "rows_rejected": r[2], "rejects": self._json(r[3]),
                "seconds": r[4], "converted": self._json(r[5]) or {}}

    def record_chunk(self, run_key: str, table: str, chunk_no: int, rows_read: int, rows_written: int,
                     rejects: list[dict], seconds: float, converted: dict | None = None, digest: str | None = None) -> None:
        """Record a committed chunk; must run in the chunk's own transaction."""
        self._exec("INSERT INTO {chunks} (run_key, table_name, chunk_no, rows_read, rows_written, rows_rejected, "
                   "rejects, seconds, converted, digest) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                   (run_key, table, chunk_no, rows_read, rows_written, len(rejects),
                    json.dumps(rejects, default=str), seconds, json.dumps(converted or {}), digest))

    def get_capture(self, run_key: str) -> dict | None:
        """The online run's capture state, or None."""
        if not self.exists():
            return None
        rows = self._rows(f"SELECT state FROM {self.capture} WHERE run_key = %s", (run_key,))
        return self._json(rows[0][0]) if rows else None

    def captures(self) -> list[dict]:
        """Every online run's capture state recorded in this target (``golive migrate status``)."""
        if not self.exists():
            return []
        return [self._json(r[0]) for r in self._rows(f"SELECT state FROM {self.capture} ORDER BY run_key")]

    def save_capture(self, run_key: str, state_json: str) -> None:
        """Record the capture state (inside the applied batch's transaction, when there is one)."""
        self._exec(self.upsert_capture, (run_key, state_json))

    def rows_by_table(self, run_key: str) -> dict[str, int]:
        """Rows the run's committed chunks wrote, per source table."""
        return {t: int(n or 0) for t, n in self._rows(
            "SELECT table_name, SUM(rows_written) FROM {chunks} WHERE run_key = %s GROUP BY table_name", (run_key,))}

    def forget_table(self, run_key: str, table: str) -> None:
        """Forget the run's committed chunks of one table (its rows are gone: they are copied again)."""
        self._exec("DELETE FROM {chunks} WHERE run_key = %s AND table_name = %s", (run_key, table))

    def chunks_of_run(self, run_key: str) -> dict[tuple[str, int], dict]:
        rows = self._rows("SELECT table_name, chunk_no, rows_read, rows_written, rows_rejected, rejects, seconds, "
                          "converted, digest FROM {chunks} WHERE run_key = %s", (run_key,))
        return {(r[0], r[1]): {"rows_read": r[2], "rows_written": r[3], "rows_rejected": r[4],
                               "rejects": self._json(r[5]), "seconds": r[6], "converted": self._json(r[7]) or {},
                               "digest": r[8]} for r in rows}



def rows_against_record(book: Bookkeeping, plan, name_of, count) -> dict[str, tuple[int, int]]:
    """Per table of ``plan`` with committed chunks: ``(rows its chunks wrote, rows the target holds now)``.

    Args:
        book: the target's bookkeeping.
        name_of: ``TablePlan -> quoted target table name``; count: ``sql -> the single value it selects``.
    """
    recorded = book.rows_by_table(plan.run_key)
    return {tp.source: (recorded[tp.source], int(count(f"SELECT count(*) FROM {name_of(tp)}")))
            for tp in plan.tables if tp.source in recorded}


def recheck_resumed(book: Bookkeeping, plan, name_of, count, execute, commit) -> list[str]:
    """Check the target against what an interrupted run recorded, before resuming it: per table, the rows
    its committed chunks wrote must all still be there. A table that lost rows (or gained some) is emptied
    and its chunks forgotten, so they are copied again instead of being taken as done (and shown Cached).

    Args:
        book: the target's bookkeeping on ``execute``'s session (nothing of this run is being copied).
        name_of: ``TablePlan -> quoted target table name``.
        count: ``sql -> the single value it selects``; execute: ``sql -> None``; commit: ``() -> None``.

    Returns:
        One warning per table copied again, naming what was recorded and what was found.
    """
    warnings = []
    by_source = {tp.source: tp for tp in plan.tables}
    for table, (recorded, found) in rows_against_record(book, plan, name_of, count).items():
        if found == recorded:
            continue
        execute(f"DELETE FROM {name_of(by_source[table])}")
        book.forget_table(plan.run_key, table)
        commit()
        warnings.append(f"{table}: the interrupted run copied {recorded} rows, the target holds {found} now; "
                        "its chunks are copied again")
    return warnings

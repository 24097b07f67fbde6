"""MySQL / MariaDB as the target of an online migration: captured changes applied exactly once, AUTO_INCREMENT at
cut-over.

A batch is one transaction: per table, the changed rows' careful lines are loaded (``LOAD DATA LOCAL``, strict,
warnings as refusals, as the copy loads them) into a temporary copy of the table and upserted by its key
(``INSERT … SELECT … ON DUPLICATE KEY UPDATE``), the deleted keys deleted first (so a key changed only in
letter case, or a unique value moved from a deleted row to a new one, lands), and the capture's position recorded
in ``_golive_capture`` in the same transaction. ``foreign_key_checks = 0`` inside a batch: a batch holds the
source's changes up to a moment, in whatever order its tables come.
"""

from __future__ import annotations

from golive.dialects.mysql.bookkeeping import MySQLBookkeeping
from golive.dialects.mysql.load import ChunkWriter, connect
from golive.dialects.mysql.session import qi, translate_error
from golive.errors import GoliveError
from golive.model.capture import CaptureState
from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
from golive.model.results import Refused
from golive.urls import DatabaseURL


def apply_changes(url: DatabaseURL, plan: MigrationPlan, rows: list[tuple[TablePlan, bytes, list]],
                  state: CaptureState) -> None:
    conn = connect(url, plan, local_infile=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute("BEGIN")
        for tp, lines, gone in rows:
            _apply_table(url, conn, plan, tp, lines, gone)
        MySQLBookkeeping(conn).save_capture(state.run_key, state.model_dump_json())
        conn.commit()
    except Refused:
        conn.rollback()
        raise
    except GoliveError:
        conn.rollback()
        raise
    except Exception as exc:
        conn.rollback()
        raise translate_error(exc, "applying captured changes") from None
    finally:
        conn.close()


def _apply_table(url, conn, plan: MigrationPlan, tp: TablePlan, lines: bytes, gone: list) -> None:
    by_source = {c.source: c for c in tp.columns}
    keys = [by_source[k] for k in tp.key]
    cols = [c for c in tp.columns if not c.generated_sql]
    names = ", ".join(qi(c.target) for c in cols)
    with conn.cursor() as cur:
        if gone:  # first: a key changed in a case-insensitive collation ('abc' to 'ABC') is one row here
            one = "(" + ", ".join("%s" for _ in keys) + ")"
            cur.execute(f"DELETE FROM {qi(tp.target)} WHERE ({', '.join(qi(k.target) for k in keys)}) IN "
                        f"({', '.join(one for _ in gone)})", [v for k in gone for v in k])
        if lines:
            cur.execute("DROP TEMPORARY TABLE IF EXISTS _golive_apply")
            cur.execute(f"CREATE TEMPORARY TABLE _golive_apply LIKE {qi(tp.target)}")
            staged = tp.model_copy(update={"target": "_golive_apply"})
            ChunkWriter(url, plan, staged, ChunkPlan(no=0, rows=0), conn=conn).load(iter([lines]))
            updates = ", ".join(f"{qi(c.target)} = VALUES({qi(c.target)})" for c in cols if c not in keys)
            cur.execute(f"INSERT INTO {qi(tp.target)} ({names}) SELECT {names} FROM _golive_apply "
                        + (f"ON DUPLICATE KEY UPDATE {updates}" if updates else
                           f"ON DUPLICATE KEY UPDATE {qi(keys[0].target)} = {qi(keys[0].target)}"))
            cur.execute("DROP TEMPORARY TABLE _golive_apply")


def capture_state(url: DatabaseURL, run_key: str) -> CaptureState | None:
    conn = connect(url)
    try:
        got = MySQLBookkeeping(conn).get_capture(run_key)
    finally:
        conn.close()
    return CaptureState.model_validate(got) if got else None


def capture_states(url: DatabaseURL) -> list[CaptureState]:
    conn = connect(url)
    try:
        return [CaptureState.model_validate(s) for s in MySQLBookkeeping(conn).captures()]
    finally:
        conn.close()


def save_capture_state(url: DatabaseURL, state: CaptureState) -> None:
    conn = connect(url)
    try:
        book = MySQLBookkeeping(conn)
        book.ensure()
        book.save_capture(state.run_key, state.model_dump_json())
        conn.commit()
    finally:
        conn.close()


def reset_identities(url: DatabaseURL, plan: MigrationPlan) -> list[str]:
    out = []
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            for tp in plan.tables:
                if not tp.identity:
                    continue
                cur.execute(f"SELECT MAX({qi(tp.identity)}) FROM {qi(tp.target)}")
                top = cur.fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                cur.execute(f"ALTER TABLE {qi(tp.target)} AUTO_INCREMENT = {start}")
                out.append(f"{tp.target} AUTO_INCREMENT = {start}")
    finally:
        conn.close()
    return out

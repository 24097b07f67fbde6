"""PostgreSQL as the target of an online migration: captured changes applied exactly once, identities at cut-over.

A batch is one transaction: per table, the changed rows' careful lines are COPYed into a temporary table and
upserted by the table's key (``INSERT … ON CONFLICT … DO UPDATE``, ``OVERRIDING SYSTEM VALUE`` for identities),
the deleted keys deleted, and the capture's position recorded in ``_golive.capture`` in the same transaction.
Foreign keys are not checked inside a batch (``session_replication_role = replica``, when the role may set it):
a batch holds the source's changes up to a moment, in whatever order its tables come; at cut-over the last batch
leaves every reference whole, as the source has it.
"""

from __future__ import annotations

import logging

from golive.dialects.postgresql.bookkeeping import PostgresBookkeeping as Bookkeeping
from golive.dialects.postgresql.session import connect, is_data_error, qi, qn, translate_error
from golive.model.capture import CaptureState
from golive.model.plan import MigrationPlan, TablePlan
from golive.model.results import Refused
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

COPY_CSV = "FORMAT csv, QUOTE '''', NULL 'NULL'"


def _key_targets(tp: TablePlan) -> list:
    by_source = {c.source: c for c in tp.columns}
    return [by_source[k] for k in tp.key]


def apply_changes(url: DatabaseURL, plan: MigrationPlan, rows: list[tuple[TablePlan, bytes, list]],
                  state: CaptureState) -> None:
    import psycopg

    try:
        with connect(url, settings={"TimeZone": "UTC", "DateStyle": "ISO, YMD", "client_encoding": "UTF8",
                                     "synchronous_commit": "on"}) as conn:
            with conn.transaction():
                try:
                    with conn.transaction():
                        conn.execute("SET LOCAL session_replication_role = replica")
                except psycopg.errors.InsufficientPrivilege:
                    pass  # applied in the plan's order, parents first
                for tp, lines, gone in rows:
                    _apply_table(conn, plan, tp, lines, gone)
                Bookkeeping(conn).save_capture(state.run_key, state.model_dump_json())
    except psycopg.Error as exc:
        if is_data_error(exc):  # the row's values, as the copy would have rejected them
            raise Refused((str(exc).strip().splitlines() or ["refused"])[0]) from None
        raise translate_error(exc, "applying captured changes") from None


def _apply_table(conn, plan: MigrationPlan, tp: TablePlan, lines: bytes, gone: list) -> None:
    schema = plan.schema_of(tp)
    rel = qn(schema, tp.target)
    keys = _key_targets(tp)
    cols = [c for c in tp.columns if not c.generated_sql]
    names = ", ".join(qi(c.target) for c in cols)
    if gone:  # first: a row whose key changed keeps its unique values under the new key
        arrays = ", ".join(f"%s::text[]::{k.sql_type}[]" for k in keys)
        cond = (f"({', '.join(qi(k.target) for k in keys)}) IN (SELECT * FROM unnest({arrays}))")
        conn.execute(f"DELETE FROM {rel} WHERE {cond}",
                     [[None if k[i] is None else str(k[i]) for k in gone] for i in range(len(keys))])
    if lines:
        conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS _golive_apply (LIKE {rel}) ON COMMIT DROP")
        conn.execute("TRUNCATE _golive_apply")
        with conn.cursor() as cur:
            with cur.copy(f"COPY _golive_apply ({names}) FROM STDIN ({COPY_CSV})") as cp:
                cp.write(lines)
        updates = ", ".join(f"{qi(c.target)} = EXCLUDED.{qi(c.target)}" for c in cols if c not in keys)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        conn.execute(f"INSERT INTO {rel} ({names}) OVERRIDING SYSTEM VALUE SELECT {names} FROM _golive_apply "
                     f"ON CONFLICT ({', '.join(qi(k.target) for k in keys)}) {conflict}")
        conn.execute("DROP TABLE _golive_apply")


def capture_state(url: DatabaseURL, run_key: str) -> CaptureState | None:
    with connect(url, autocommit=True) as conn:
        got = Bookkeeping(conn).get_capture(run_key)
    return CaptureState.model_validate(got) if got else None


def capture_states(url: DatabaseURL) -> list[CaptureState]:
    with connect(url, autocommit=True) as conn:
        return [CaptureState.model_validate(s) for s in Bookkeeping(conn).captures()]


def save_capture_state(url: DatabaseURL, state: CaptureState) -> None:
    with connect(url) as conn:
        book = Bookkeeping(conn)
        book.ensure()
        book.save_capture(state.run_key, state.model_dump_json())
        conn.commit()


def reset_identities(url: DatabaseURL, plan: MigrationPlan) -> list[str]:
    """Each identity above the highest value the table holds now; for tables made from the source's own DDL
    (PostgreSQL to PostgreSQL), every serial/identity sequence of the table's columns likewise, and every sequence of
    the source at least where the source's stood at the fence (``meta['sequences']`` of its capture)."""
    out = []
    state = capture_state(url, plan.run_key)
    # a PostgreSQL source's sequences as its fence found them: an id it handed out (to a row deleted since, or a
    # rolled back insert) is never handed out again by the target
    floors = (state.meta.get("sequences") or {}) if state is not None and state.engine == "postgresql" else {}
    with connect(url, autocommit=True) as conn:
        for tp in plan.tables:
            rel = qn(plan.schema_of(tp), tp.target)
            if tp.identity:
                col = qi(tp.identity)
                top = conn.execute(f"SELECT max({col}) FROM {rel}").fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                conn.execute(f"ALTER TABLE {rel} ALTER COLUMN {col} RESTART WITH {start}")
                out.append(f"{tp.target}.{tp.identity} restarts at {start}")
            elif tp.native:
                for col, seq in conn.execute(
                        "SELECT a.attname, pg_get_serial_sequence(%s, a.attname) FROM pg_attribute a "
                        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
                        "AND pg_get_serial_sequence(%s, a.attname) IS NOT NULL", (rel, rel, rel)).fetchall():
                    top = conn.execute(f"SELECT max({qi(col)}) FROM {rel}").fetchone()[0]
                    if top is not None:
                        conn.execute("SELECT setval(%s, greatest(%s, (SELECT last_value FROM pg_sequences WHERE "
                                     "schemaname || '.' || sequencename = %s)), true)",
                                     (seq, int(top), seq.replace('"', "")))
                        out.append(f"{tp.target}.{col}: sequence at least {top}")
        if any(tp.native for tp in plan.tables):  # the same sequences, by name, in a copy of the source's schema
            for seq, value in floors.items():
                if conn.execute("SELECT to_regclass(%s)", (seq,)).fetchone()[0] is None:
                    continue
                now = conn.execute(f"SELECT CASE WHEN is_called THEN last_value END FROM {seq}").fetchone()[0]
                if now is None or int(value) > int(now):
                    conn.execute("SELECT setval(%s, %s, true)", (seq, int(value)))
                    out.append(f"{seq}: sequence at least {value} (the source's)")
    return out

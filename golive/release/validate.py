"""Validate a release: the app's own checks and Great Expectations row counts of the tables it touched.

* ``--check-sql FILE``: every query of the file must return no rows (``SELECT id FROM orders WHERE total <
  0``); a query that returns rows, or fails, is a problem naming the query, its line and the first rows.
* Row counts: each table the pending SQL changes (``ALTER``, ``CREATE INDEX``, ``UPDATE``, …) that existed
  before is counted before the migrations and checked afterwards with Great Expectations'
  ``expect_table_row_count_to_equal`` (golive's GX helper process, any engine). Tables whose count the SQL
  changes on purpose (``INSERT``, ``DELETE``, ``TRUNCATE``) or that ``--rows-may-change`` names are declared and
  left out, as are tables the release drops; a renamed table is checked under its new name.

Also here: the comparison of the schema after a rollback with the schema before the release (the rows of
the backup's schema fingerprint, golive's bookkeeping tables left out).
"""

from __future__ import annotations

import logging
from pathlib import Path

from golive.dialects import dialect_of
from golive.dialects.base import Dialect
from golive.model.release import label
from golive.release import db
from golive.release.migrations.base import BOOKKEEPING
from golive.release.model import Touch
from golive.release.sqltext import parse_name, read_sql, split
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

CHECK_TIMEOUT_MS = 60_000


def run_check_sql(url: DatabaseURL, path: str) -> tuple[list[str], list[str]]:
    """(checks passed, problems) of the queries in ``path``."""
    text = read_sql(path)
    queries = split(text, dialect_of(url))
    checks, problems = [], []
    conn = db.connect(url, lock_timeout_s=5)
    try:
        db.set_statement_timeout(conn, url, CHECK_TIMEOUT_MS)
        for q in queries:
            try:
                with conn.cursor() as cur:
                    cur.execute(q.text)
                    rows = cur.fetchmany(3) if cur.description is not None else []
                    more = bool(rows) and cur.fetchone() is not None if len(rows) == 3 else False
            except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check
                db.rollback(conn)
                problems.append(f"check {q.index} (line {q.line}) could not run: {db.classify(exc, url).message}")
                continue
            if rows:
                shown = "; ".join(", ".join(mask(str(v)) for v in r) for r in rows)
                problems.append(f"check {q.index} (line {q.line}, {q.short(80)}) returned rows: {shown}"
                                + (" …" if more else ""))
            else:
                checks.append(f"check {q.index} (line {q.line}) returned no rows")
    finally:
        conn.close()
    return checks, problems


def counted_tables(touch: Touch, existing: set, rows_may_change: list[str], dialect: Dialect,
                   default_schema: str | None) -> tuple[list, list[str]]:
    """(tables to count before the migrations, notes on the ones left out)."""
    declared = {parse_name(t, dialect, default_schema) for t in rows_may_change}
    out, notes = [], []
    for key in touch.changed:
        if key not in existing:
            continue
        if key in touch.dropped:
            notes.append(f"{label(key)}: dropped by the release, not counted")
        elif key in touch.rows_change:
            notes.append(f"{label(key)}: its row count changes on purpose (INSERT/DELETE/TRUNCATE in the migrations)")
        elif key in declared:
            notes.append(f"{label(key)}: --rows-may-change")
        else:
            out.append(key)
    return out, notes


def counted(state) -> tuple[list, list[str]]:
    """``counted_tables`` of a release: the tables its SQL changes that exist, less the declared ones."""
    return counted_tables(state.touch, {t.key for t in state.existing}, state.options.rows_may_change, state.dialect,
                          state.info.schema_name if state.info else None)


def row_counts(url: DatabaseURL, before: dict, touch: Touch, out_dir: Path) -> tuple[list[str], list[str]]:
    """Great Expectations: each counted table has as many rows as before (renamed tables under the new name)."""
    if not before:
        return [], []
    tables = []
    for key, rows in before.items():
        now = touch.now_named(key)
        tables.append({"name": label(now), "schema": now[0], "table": now[1], "rows": rows})
    from golive.validation import gx_worker

    out = gx_worker.take().run({"kind": "row_counts", "target": url.raw, "tables": tables, "out_dir": str(out_dir),
                                "labels": ["after the migrations the table", "before them it had"]})
    bad = [o for o in out["outcomes"] if not o["success"]]
    problems = [f"{o['table']}: row count: {o['detail']}" for o in bad]
    checks = [f"row counts of {len(tables) - len(bad)} of {len(tables)} changed table(s) are as before (Great "
              "Expectations expect_table_row_count_to_equal)"]
    return checks, problems


# ---------------------------------------------------------------- schema before/after

def schema_rows(url: DatabaseURL) -> list[tuple]:
    """The schema as the dialect lists it (the rows of the backup's fingerprint), without golive's and the
    migration tools' bookkeeping."""
    dialect = dialect_of(url)
    conn = dialect.connect(url, autocommit=True)
    try:
        return dialect.release.schema_rows(conn, BOOKKEEPING)
    finally:
        conn.close()


def schema_diff(before: list[tuple], after: list[tuple]) -> list[str]:
    """Objects whose definition differs (at most 10, named)."""
    b, a = set(before), set(after)
    names = []
    for r in sorted((b - a) | (a - b)):
        name = ".".join(str(v) for v in r[:2] if v is not None and not isinstance(v, int)) or str(r[1])
        if name not in names:
            names.append(name)
    return names[:10]

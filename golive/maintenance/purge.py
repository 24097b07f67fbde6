"""``purge-soft-deleted``: delete for good the rows soft-deleted longer ago than ``older_than``.

The plan checks the table and column (a date/time column, NULL meaning "not deleted"), fixes the cutoff
once (the database's ``now()`` minus ``older_than``) and counts the rows older than the cutoff (to go) and
the soft-deleted rows younger than it (kept): that is what a dry run prints.

The run then deletes in batches of ``batch_size`` rows, each its own transaction, in primary-key order
from where the previous batch stopped (one pass over the table, whatever its indexes):

    SELECT <pk> FROM t WHERE deleted_at < :cutoff AND <pk> > :last ORDER BY <pk> LIMIT :n FOR UPDATE SKIP LOCKED
    DELETE FROM t WHERE deleted_at < :cutoff AND <pk> IN (...those keys...)

with a pause between batches so replicas keep up and the app's transactions get their row locks. Rows
another transaction holds are skipped, not waited for; at the end the rows older than the cutoff still
there are counted and reported (the next run takes them). PostgreSQL tables without a primary key are
walked by ``ctid``; MySQL tables without one are refused (row order would not be deterministic, which
statement-based replicas need). The loop is the same on every engine; the engine's ``Maintenance`` names the table,
its key, the cutoff and how a batch's rows are addressed (``purge_target``, ``purge_cutoff``, ``after_key``,
``batch_rows``).
"""

from __future__ import annotations

import time

from golive.dialects.base import Maintenance
from golive.errors import ConfigError
from golive.model.health import esc, query
from golive.model.maintenance import (Action, ActionResult, Deadline, MaintenanceOptions, PlanContext, result_of,
                                      run_sql)
from golive.units import human_count

#: golive runs this task itself on every engine (``golive.maintenance.runner``)
TASK = "purge-soft-deleted"
LOCK = "row locks on one batch at a time (FOR UPDATE SKIP LOCKED: rows the app holds are skipped, never waited for)"


def check(conn, m: Maintenance, ctx: PlanContext) -> None:
    """The cheap part of planning: tables and columns exist and fit (no counting)."""
    if not ctx.options.purge_tables:
        raise ConfigError("purge-soft-deleted needs the tables to purge: --table NAME (repeatable), "
                          "or purge_tables in the deployment's parameters")
    for name in ctx.options.purge_tables:
        m.purge_target(conn, name, ctx.options.purge_column)


def plan_purge(conn, m: Maintenance, ctx: PlanContext) -> list[Action]:
    """One action per table to purge: the cutoff fixed now, the rows it takes and the rows it keeps counted."""
    o = ctx.options
    check(conn, m, ctx)
    seconds = int(o.seconds("older_than"))
    out = []
    for name in o.purge_tables:
        table, col, c, key = m.purge_target(conn, name, o.purge_column)
        cutoff = m.purge_cutoff(conn, seconds)
        ec, et = esc(c), esc(table)
        counts = query(conn, f"SELECT COUNT(CASE WHEN {ec} < %(cut)s THEN 1 END) AS old, "
                             f"COUNT(CASE WHEN {ec} >= %(cut)s THEN 1 END) AS young FROM {et} WHERE {ec} IS NOT NULL",
                       {"cut": cutoff})[0]
        old, young = int(counts["old"]), int(counts["young"])
        cols_sql = ", ".join(key)
        out.append(Action(
            task="purge-soft-deleted", target=table, run=old > 0,
            reason=(f"{human_count(old)} rows soft-deleted before {cutoff.isoformat(timespec='seconds')} (older than "
                    f"{o.older_than}) go, {human_count(young)} younger soft-deleted rows stay; "
                    f"{o.batch_size} per transaction, {o.pause} apart"),
            numbers={"old_rows": old, "young_rows": young, "cutoff": cutoff.isoformat(), "column": col,
                     "batch_size": o.batch_size},
            sql=[f"SELECT {cols_sql} FROM {table} WHERE {c} < :cutoff AND ({cols_sql}) > (:last) ORDER BY {cols_sql} "
                 f"LIMIT {o.batch_size} FOR UPDATE SKIP LOCKED",
                 f"DELETE FROM {table} WHERE {c} < :cutoff AND ({cols_sql}) IN (...)"],
            lock=LOCK, params={"table": table, "column": c, "key": key, "cutoff": cutoff.isoformat(),
                               "skip_locked": m.skip_locked(ctx.version_num)}))
    return out


def execute(conn, m: Maintenance, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Delete in batches (the connection is not in autocommit: one transaction per batch)."""
    import datetime as dt

    t0 = time.perf_counter()
    session = m.dialect.session
    p = action.params
    table, col, key = esc(p["table"]), esc(p["column"]), [esc(k) for k in p["key"]]  # statements with parameters
    # the database's own cutoff, as its driver gave it to the plan: aware from PostgreSQL, naive (the session's
    # time) from MySQL, so it compares as the column does
    cutoff = dt.datetime.fromisoformat(p["cutoff"])
    keys = ", ".join(key)
    lock = " FOR UPDATE SKIP LOCKED" if p.get("skip_locked", True) else " FOR UPDATE"
    pause = options.seconds("pause")
    deleted, batches, after, stopped = 0, 0, None, None
    failed: list = []
    while True:
        if deadline.expired():
            stopped = f"{deadline.reason()} after {batches} batches"
            break
        if after is None:
            sql, args = f"SELECT {keys} FROM {table} WHERE {col} < %s ORDER BY {keys} LIMIT %s{lock}", [cutoff]
        else:
            marks = m.after_key(key)
            sql, args = (f"SELECT {keys} FROM {table} WHERE {col} < %s AND ({keys}) > ({marks}) ORDER BY {keys} "
                         f"LIMIT %s{lock}", [cutoff, *after])
        res, rows = run_sql(conn, session, sql, [*args, options.batch_size], deadline=deadline, fetch=True)
        if res.status != "done":
            failed.append(res)
            break
        if not rows:
            conn.commit()
            break
        where, ids = m.batch_rows(keys, key, rows)
        dsql = f"DELETE FROM {table} WHERE {col} < %s AND {where}"
        res, _ = run_sql(conn, session, dsql, [cutoff, *ids], deadline=deadline)
        if res.status != "done":
            failed.append(res)
            break
        conn.commit()
        deleted += res.rows if res.rows is not None else len(rows)
        batches += 1
        after = list(rows[-1])
        if len(rows) < options.batch_size:
            break
        time.sleep(pause)
    conn.rollback()
    left = query(conn, f"SELECT COUNT(*) AS n FROM {table} WHERE {col} < %(cut)s", {"cut": cutoff})[0]["n"]
    young = query(conn, f"SELECT COUNT(*) AS n FROM {table} WHERE {col} >= %(cut)s", {"cut": cutoff})[0]["n"]
    conn.rollback()
    after_numbers = {"deleted": deleted, "batches": batches, "old_rows_left": int(left), "young_rows_kept": int(young)}
    why = stopped or ""
    if not failed and not stopped and left:
        why = (f"{human_count(left)} rows older than the cutoff are still there (other transactions held them when "
               "their batch ran): the next run purges them")
    out = result_of(action, failed, t0, after=after_numbers, reason=why)
    if out.status == "done" and (stopped or left):
        out.status = "skipped"
    out.reason = "; ".join(x for x in [out.reason, f"{human_count(deleted)} rows deleted in {batches} batches"] if x)
    return out

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
statement-based replicas need).
"""

from __future__ import annotations

import difflib
import time

from golive.dialects.mysql.session import qi as mqi
from golive.dialects.postgresql.session import qi as pqi
from golive.errors import ConfigError
from golive.health.checks import esc, query
from golive.maintenance.common import PlanContext, result_of
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions
from golive.maintenance.safety import Deadline, run_sql
from golive.units import human_count

PG_TIME_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")
MYSQL_TIME_TYPES = ("date", "datetime", "timestamp")
LOCK = "row locks on one batch at a time (FOR UPDATE SKIP LOCKED: rows the app holds are skipped, never waited for)"


def _pg_table(conn, name: str) -> dict:
    schema, _, rel = name.rpartition(".")
    rows = query(conn, """
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (c.relname = %(rel)s OR lower(c.relname) = lower(%(rel)s))
  AND (n.nspname = %(schema)s OR (%(schema)s = '' AND n.nspname = ANY (current_schemas(false))))
ORDER BY c.relname = %(rel)s DESC, array_position(current_schemas(false), n.nspname::name) LIMIT 1""",
                 {"rel": rel, "schema": schema.strip('"')})
    if not rows:
        known = [r["t"] for r in query(conn, "SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON "
                                             "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY "
                                             "(current_schemas(false))")]
        raise ConfigError(f"purge-soft-deleted: table {name!r} not found" + _suggest(rel, known))
    return rows[0]


def _pg_columns(conn, oid: int) -> dict[str, str]:
    return {r["name"]: r["type"] for r in query(conn, "SELECT attname AS name, format_type(atttypid, NULL) AS type "
                                                      "FROM pg_attribute WHERE attrelid = %(oid)s AND attnum > 0 AND "
                                                      "NOT attisdropped ORDER BY attnum", {"oid": oid})}


def _pg_pk(conn, oid: int) -> list[str]:
    return [r["name"] for r in query(conn, """
SELECT a.attname AS name FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
WHERE x.indrelid = %(oid)s AND x.indisprimary ORDER BY array_position(x.indkey::int2[], a.attnum)""", {"oid": oid})]


def _mysql_table(conn, name: str) -> dict:
    rows = query(conn, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() "
                       "AND table_type = 'BASE TABLE'")
    names = [r["name"] for r in rows]
    hit = [n for n in names if n == name] or [n for n in names if n.lower() == name.lower()]
    if not hit:
        raise ConfigError(f"purge-soft-deleted: table {name!r} not found" + _suggest(name, names))
    return {"name": hit[0]}


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _column(cols: dict[str, str], wanted: str, table: str, allowed: tuple[str, ...]) -> str:
    hit = [c for c in cols if c == wanted] or [c for c in cols if c.lower() == wanted.lower()]
    if not hit:
        raise ConfigError(f"purge-soft-deleted: {table} has no column {wanted!r}" + _suggest(wanted, list(cols))
                          + " (set it with --column)")
    col = hit[0]
    if cols[col].lower() not in allowed:
        raise ConfigError(f"purge-soft-deleted: {table}.{col} is {cols[col]}, not a date or timestamp: it cannot say "
                          "when a row was deleted")
    return col


def target(conn, ctx: PlanContext, name: str) -> tuple[str, str, str, list[str]]:
    """(quoted table, column name, quoted column, quoted key columns or ["ctid"]) of a table to purge;
    ConfigError naming what is wrong (no such table or column, not a date/time column, no key on MySQL)."""
    o = ctx.options
    if ctx.engine == "postgresql":
        t = _pg_table(conn, name)
        table, cols = t["name"], _pg_columns(conn, t["oid"])
        col = _column(cols, o.purge_column, table, PG_TIME_TYPES)
        return table, col, pqi(col), [pqi(c) for c in _pg_pk(conn, t["oid"])] or ["ctid"]
    table = _mysql_table(conn, name)["name"]
    cols = {r["name"]: r["type"] for r in query(conn, "SELECT column_name AS name, data_type AS type FROM "
                                                      "information_schema.columns WHERE table_schema = DATABASE() "
                                                      "AND table_name = %(t)s ORDER BY ordinal_position", {"t": table})}
    col = _column(cols, o.purge_column, table, MYSQL_TIME_TYPES)
    pk = [r["name"] for r in query(conn, "SELECT column_name AS name FROM information_schema.statistics WHERE "
                                         "table_schema = DATABASE() AND table_name = %(t)s AND index_name = 'PRIMARY' "
                                         "ORDER BY seq_in_index", {"t": table})]
    if not pk:
        raise ConfigError(f"purge-soft-deleted: {table} has no primary key; golive deletes in key order so "
                          "replicas delete the same rows (add a primary key first)")
    return mqi(table), col, mqi(col), [mqi(c) for c in pk]


def check(conn, ctx: PlanContext) -> None:
    """The cheap part of planning: tables and columns exist and fit (no counting)."""
    if not ctx.options.purge_tables:
        raise ConfigError("purge-soft-deleted needs the tables to purge: --table NAME (repeatable), "
                          "or purge_tables in the deployment's parameters")
    for name in ctx.options.purge_tables:
        target(conn, ctx, name)


def plan_purge(conn, ctx: PlanContext) -> list[Action]:
    o = ctx.options
    check(conn, ctx)
    seconds = int(o.seconds("older_than"))
    out = []
    for name in o.purge_tables:
        table, col, c, key = target(conn, ctx, name)
        cutoff_sql = ("SELECT now() - make_interval(secs => %(s)s) AS cutoff" if ctx.engine == "postgresql"
                      else "SELECT NOW(6) - INTERVAL %(s)s SECOND AS cutoff")
        cutoff = query(conn, cutoff_sql, {"s": seconds})[0]["cutoff"]
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
                               "skip_locked": _skip_locked(ctx)}))
    return out


def _skip_locked(ctx: PlanContext) -> bool:
    if ctx.engine == "postgresql":
        return True
    # MySQL 8.0.1+, MariaDB 10.6+
    return ctx.version_num >= 100600 or 80001 <= ctx.version_num < 100000


def execute(conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Delete in batches (the connection is not in autocommit: one transaction per batch)."""
    import datetime as dt

    t0 = time.perf_counter()
    engine = "postgresql" if type(conn).__module__.startswith("psycopg") else "mysql"
    p = action.params
    table, col, key = esc(p["table"]), esc(p["column"]), [esc(k) for k in p["key"]]  # statements with parameters
    cutoff = dt.datetime.fromisoformat(p["cutoff"])
    if engine == "mysql":
        cutoff = cutoff.replace(tzinfo=None)
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
            marks = "%s::tid" if key == ["ctid"] else ", ".join(["%s"] * len(key))
            sql, args = (f"SELECT {keys} FROM {table} WHERE {col} < %s AND ({keys}) > ({marks}) ORDER BY {keys} "
                         f"LIMIT %s{lock}", [cutoff, *after])
        res, rows = run_sql(conn, engine, sql, [*args, options.batch_size], deadline=deadline, fetch=True)
        if res.status != "done":
            failed.append(res)
            break
        if not rows:
            conn.commit()
            break
        one = "(" + ", ".join(["%s"] * len(key)) + ")" if len(key) > 1 else "%s"
        ids = [v for r in rows for v in r] if len(key) > 1 else [r[0] for r in rows]
        where = f"({keys}) IN ({', '.join([one] * len(rows))})" if key != ["ctid"] else "ctid = ANY(%s::tid[])"
        dsql = f"DELETE FROM {table} WHERE {col} < %s AND {where}"
        res, _ = run_sql(conn, engine, dsql, [cutoff, *ids] if key != ["ctid"] else [cutoff, [r[0] for r in rows]],
                         deadline=deadline)
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


PLANNERS = {"purge-soft-deleted": plan_purge}
EXECUTORS = {"purge-soft-deleted": execute}

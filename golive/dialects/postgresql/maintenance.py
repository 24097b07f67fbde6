"""PostgreSQL's side of ``golive maintenance``: ``vacuum-analyze``, ``analyze``, ``vacuum-full``, ``reindex`` and
``refresh-views``, and what ``purge-soft-deleted`` needs to know of a table.

* ``vacuum-analyze``: ``VACUUM (ANALYZE)`` of each table over the dead-tuple thresholds (``min_dead_tuples``
  and ``dead_ratio``), not the whole database. VACUUM takes a SHARE UPDATE EXCLUSIVE lock: the app reads
  and writes as usual.
* ``analyze``: ``ANALYZE`` of each table whose rows changed since its last ANALYZE over ``min_changes``
  and ``analyze_ratio`` (tables vacuumed in the same run are analyzed by their VACUUM).
* ``vacuum-full``: ``VACUUM (FULL, ANALYZE)`` of tables over the table-bloat thresholds. It rewrites the
  table under an ACCESS EXCLUSIVE lock (the app can neither read nor write it meanwhile), so it is never
  part of the default set and runs only when asked for by name.
* ``reindex``: rebuild bloated B-tree indexes with ``REINDEX INDEX CONCURRENTLY``, one at a time. First, invalid
  leftovers of an earlier, interrupted ``REINDEX CONCURRENTLY`` (``<index>_ccnew``, ``_ccold``, with a number when
  there were several) are dropped (``DROP INDEX CONCURRENTLY``): they cost every write and serve no query. Then
  other invalid indexes (a failed ``CREATE INDEX CONCURRENTLY``) are rebuilt, then valid indexes whose estimated
  bloat (``bloat.py``) is over ``bloat_ratio`` and ``min_bloat_bytes``. ``REINDEX CONCURRENTLY`` (PostgreSQL 12+)
  builds the new index beside the old one and swaps them, taking only SHARE UPDATE EXCLUSIVE locks: writes go on.
  When it stops half-way (lock timeout, the deadline, an error) it leaves an invalid ``_ccnew`` copy; golive drops
  it at once, and if even that fails the next run does. On PostgreSQL < 12 the rebuilds are reported, not done: a
  plain REINDEX blocks writes.
* ``refresh-views``: refresh every materialized view, ``CONCURRENTLY`` when it allows it. That needs a populated
  view with a unique index on plain columns (no expression, no WHERE); it takes an EXCLUSIVE lock, so SELECTs on the
  view go on. Otherwise the plain refresh takes an ACCESS EXCLUSIVE lock on the view for the whole refresh (its
  readers wait), and the plan says so, with the reason CONCURRENTLY was not possible.
"""

from __future__ import annotations

import time

from golive.dialects.base import Maintenance
from golive.dialects.postgresql.bloat import (SYSTEM_SCHEMAS_SQL, TABLE_ACTIVITY_SQL, index_bloat, needs_analyze,
                                              needs_vacuum, table_bloat)
from golive.dialects.postgresql.health import LEFTOVER_RE, MATVIEWS_SQL
from golive.dialects.postgresql.session import qi
from golive.errors import ConfigError
from golive.model.health import pct, query
from golive.model.maintenance import (Action, ActionResult, Deadline, MaintenanceOptions, PlanContext, purge_column,
                                      result_of, run_sql, suggest)
from golive.units import human_bytes, human_count


# ------------------------------------------------------------------ vacuum-analyze, analyze, vacuum-full

LOCK_SUE = "SHARE UPDATE EXCLUSIVE: the app reads and writes as usual"
LOCK_AE = "ACCESS EXCLUSIVE for the whole rewrite: the app can neither read nor write the table meanwhile"

_STATS_SQL = ("SELECT n_live_tup, n_dead_tup, n_mod_since_analyze, pg_relation_size(relid) AS bytes "
              "FROM pg_stat_user_tables WHERE relid = %(oid)s")


def _numbers(r: dict) -> dict:
    dead, live = r["n_dead_tup"] or 0, r["n_live_tup"] or 0
    return {"n_dead_tup": dead, "n_live_tup": live, "dead_ratio": round(dead / (dead + live), 4) if dead + live else 0.0,
            "n_mod_since_analyze": r["n_mod_since_analyze"] or 0, "bytes": r["bytes"]}


def plan_vacuum(conn, ctx: PlanContext) -> list[Action]:
    t = ctx.thresholds
    skip = ctx.planned.get("vacuum-full", set())
    out = []
    for r in query(conn, TABLE_ACTIVITY_SQL, t.model_dump()):
        why = needs_vacuum(r, t)
        n = _numbers(r)
        if r["table"] in skip:
            run, why = False, "VACUUM FULL runs on it in this run"
        elif not why:
            run, why = False, (f"{human_count(n['n_dead_tup'])} dead tuples ({pct(n['dead_ratio'])}): below "
                               f"{human_count(t.min_dead_tuples)} / {pct(t.dead_ratio)}")
        else:
            run = True
        out.append(Action(task="vacuum-analyze", target=r["table"], run=run, reason=why, numbers=n,
                          sql=[f"VACUUM (ANALYZE) {r['table']}"], lock=LOCK_SUE, params={"oid": r["oid"]}))
    return out


def plan_analyze(conn, ctx: PlanContext) -> list[Action]:
    t = ctx.thresholds
    vacuumed = ctx.planned.get("vacuum-analyze", set()) | ctx.planned.get("vacuum-full", set())
    out = []
    for r in query(conn, TABLE_ACTIVITY_SQL, t.model_dump()):
        why = needs_analyze(r, t)
        n = _numbers(r)
        if r["table"] in vacuumed:
            run, why = False, "analyzed by its VACUUM in this run"
        elif not why:
            run, why = False, f"{human_count(n['n_mod_since_analyze'])} rows changed since the last ANALYZE: below thresholds"
        else:
            run = True
        out.append(Action(task="analyze", target=r["table"], run=run, reason=why, numbers=n,
                          sql=[f"ANALYZE {r['table']}"], lock=LOCK_SUE, params={"oid": r["oid"]}))
    return out


def plan_vacuum_full(conn, ctx: PlanContext) -> list[Action]:
    t = ctx.thresholds
    out = []
    for b in table_bloat(conn):
        n = b.model_dump(include={"bytes", "expected_bytes", "wasted_bytes", "ratio", "rows"})
        if not b.estimated:
            run, why = False, f"no estimate: {b.why_not}"
        elif b.ratio >= t.table_bloat_ratio and b.wasted_bytes >= t.min_table_bloat_bytes:
            run, why = True, (f"~{human_bytes(b.wasted_bytes)} of {human_bytes(b.bytes)} wasted ({pct(b.ratio)}; "
                              f"thresholds {pct(t.table_bloat_ratio)} and {human_bytes(t.min_table_bloat_bytes)})")
        else:
            run, why = False, f"~{human_bytes(b.wasted_bytes)} wasted ({pct(b.ratio)}): below thresholds"
        out.append(Action(task="vacuum-full", target=b.name, run=run, reason=why, numbers=n,
                          sql=[f"VACUUM (FULL, ANALYZE) {b.name}"], lock=LOCK_AE, params={"oid": b.oid}))
    return out


def run_vacuum(conn, session, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Run the action's one statement; report the table's statistics before and after."""
    t0 = time.perf_counter()
    res, _ = run_sql(conn, session, action.sql[0], deadline=deadline)
    after = {}
    got = query(conn, _STATS_SQL, {"oid": action.params["oid"]}) if res.status == "done" else []
    if got:
        after = {k: got[0][k] for k in ("n_live_tup", "n_dead_tup", "n_mod_since_analyze", "bytes")}
    return result_of(action, [res], t0, after=after)


# ------------------------------------------------------------------ reindex

LOCK = "SHARE UPDATE EXCLUSIVE on the table and the index: the app reads and writes as usual"

INVALID_SQL = f"""
SELECT x.indexrelid AS oid, format('%%I.%%I', n.nspname, ci.relname) AS "index", ci.relname AS name,
       n.nspname AS schema, format('%%I.%%I', n.nspname, ct.relname) AS "table", x.indrelid AS table_oid,
       pg_relation_size(ci.oid) AS bytes
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE NOT x.indisvalid AND {SYSTEM_SCHEMAS_SQL}
ORDER BY 2
"""


def _leftovers(conn, table_oid: int | None = None) -> dict[str, int]:
    """Invalid REINDEX CONCURRENTLY leftovers (of one table): {quoted name: bytes}."""
    rows = query(conn, INVALID_SQL)
    return {r["index"]: r["bytes"] for r in rows
            if LEFTOVER_RE.search(r["name"]) and (table_oid is None or r["table_oid"] == table_oid)}


def plan_reindex(conn, ctx: PlanContext) -> list[Action]:
    t = ctx.thresholds
    concurrently = ctx.version_num >= 120000
    out = []
    for r in query(conn, INVALID_SQL):
        if LEFTOVER_RE.search(r["name"]):
            out.append(Action(task="reindex", target=r["index"], run=True,
                              reason=f"invalid leftover of an interrupted REINDEX CONCURRENTLY ({human_bytes(r['bytes'])} "
                                     f"on {r['table']}): dropped first",
                              numbers={"bytes": r["bytes"], "valid": False},
                              sql=[f"DROP INDEX CONCURRENTLY IF EXISTS {r['index']}"], lock=LOCK,
                              params={"kind": "drop", "table_oid": r["table_oid"], "oid": r["oid"]}))
    for r in query(conn, INVALID_SQL):
        if not LEFTOVER_RE.search(r["name"]):
            out.append(Action(task="reindex", target=r["index"], run=True,
                              reason="invalid (a CREATE INDEX CONCURRENTLY that failed?): rebuilt",
                              numbers={"bytes": r["bytes"], "valid": False},
                              sql=[f"REINDEX INDEX CONCURRENTLY {r['index']}"], lock=LOCK,
                              params={"kind": "rebuild", "table_oid": r["table_oid"], "oid": r["oid"],
                                      "concurrently": concurrently}))
    for b in index_bloat(conn):
        if not b.valid or LEFTOVER_RE.search(b.index_name):
            continue
        n = b.model_dump(include={"bytes", "expected_bytes", "wasted_bytes", "ratio", "rows"})
        if not b.estimated:
            run, why = False, f"no estimate: {b.why_not}"
        elif b.ratio >= t.bloat_ratio and b.wasted_bytes >= t.min_bloat_bytes:
            run, why = True, (f"~{human_bytes(b.wasted_bytes)} of {human_bytes(b.bytes)} wasted ({pct(b.ratio)}; "
                              f"thresholds {pct(t.bloat_ratio)} and {human_bytes(t.min_bloat_bytes)})")
        else:
            run, why = False, f"~{human_bytes(b.wasted_bytes)} wasted ({pct(b.ratio)}): below thresholds"
        out.append(Action(task="reindex", target=b.name, run=run, reason=why, numbers=n,
                          sql=[f"REINDEX INDEX CONCURRENTLY {b.name}"], lock=LOCK,
                          params={"kind": "rebuild", "oid": b.oid, "table_oid": _table_oid(conn, b.oid),
                                  "concurrently": concurrently}))
    if not concurrently and any(a.run and a.params["kind"] == "rebuild" for a in out):
        ctx.notes.append("PostgreSQL < 12 has no REINDEX CONCURRENTLY: the rebuilds are reported, not done "
                         "(a plain REINDEX blocks the table's writes); run them by hand in a quiet window")
    return out


def _table_oid(conn, index_oid: int) -> int:
    return query(conn, "SELECT indrelid AS t FROM pg_index WHERE indexrelid = %(oid)s", {"oid": index_oid})[0]["t"]


def _size(conn, index: str) -> int | None:
    got = query(conn, "SELECT pg_relation_size(to_regclass(%(n)s)) AS b", {"n": index})
    return got[0]["b"] if got else None


def run_reindex(conn, session, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Drop a leftover, or rebuild one index; an interrupted rebuild's unfinished copy is dropped at once."""
    t0 = time.perf_counter()
    p = action.params
    if p["kind"] == "drop":
        res, _ = run_sql(conn, session, action.sql[0], deadline=deadline)
        return result_of(action, [res], t0, after={"dropped": res.status == "done"})
    if not p.get("concurrently", True):
        return ActionResult(task=action.task, target=action.target, status="skipped", before=dict(action.numbers),
                  reason="PostgreSQL < 12 cannot REINDEX CONCURRENTLY and a plain REINDEX blocks writes: do it by "
                         "hand in a quiet window")
    before = _leftovers(conn, p["table_oid"])
    res, _ = run_sql(conn, session, action.sql[0], deadline=deadline)
    statements = [res]
    note = ""
    if res.status != "done":
        # an interrupted REINDEX CONCURRENTLY leaves its unfinished copy behind: drop it now
        new = [ix for ix in _leftovers(conn, p["table_oid"]) if ix not in before]
        for ix in new:
            drop, _ = run_sql(conn, session, f"DROP INDEX CONCURRENTLY IF EXISTS {ix}", deadline=None)
            statements.append(drop)
        if new:
            kept = [s.sql.split()[-1] for s in statements[1:] if s.status != "done"]
            note = (f"its unfinished copy {', '.join(new)} was dropped" if not kept else
                    f"left invalid index {', '.join(kept)} (the next reindex drops it)")
            statements = [statements[0]] + [s for s in statements[1:] if s.status != "done"]
    out = result_of(action, statements, t0, after={"bytes": _size(conn, action.target)}, reason=note)
    return out


# ------------------------------------------------------------------ refresh-views

_AFTER_SQL = ("SELECT c.relispopulated AS ispopulated, pg_total_relation_size(c.oid) AS bytes "
              "FROM pg_class c WHERE c.oid = to_regclass(%(v)s)")


def plan_views(conn, ctx: PlanContext) -> list[Action]:
    out = []
    for r in query(conn, MATVIEWS_SQL, ctx.thresholds.model_dump()):
        concurrent = r["ispopulated"] and r["concurrent_ok"]
        if concurrent:
            why, lock = ("populated, with a unique index: CONCURRENTLY",
                         "EXCLUSIVE on the view: SELECTs on it go on during the refresh")
        else:
            why = ("not populated yet (CONCURRENTLY needs a populated view)" if not r["ispopulated"]
                   else "no unique index on plain columns, so not CONCURRENTLY")
            lock = "ACCESS EXCLUSIVE on the view for the whole refresh: SELECTs on it wait"
        out.append(Action(task="refresh-views", target=r["view"], run=True, reason=f"{why} ({human_bytes(r['bytes'])})",
                          numbers={"ispopulated": r["ispopulated"], "bytes": r["bytes"], "concurrently": concurrent},
                          sql=[f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrent else ''}{r['view']}"],
                          lock=lock))
    return out


def run_refresh(conn, session, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Refresh one materialized view; report whether it is populated, and its size."""
    t0 = time.perf_counter()
    res, _ = run_sql(conn, session, action.sql[0], deadline=deadline)
    got = query(conn, _AFTER_SQL, {"v": action.target})
    return result_of(action, [res], t0, after=got[0] if got else {})


# ------------------------------------------------------------------ purge-soft-deleted: the table

#: the column types that can say when a row was deleted (``format_type`` names)
TIME_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")


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
        raise ConfigError(f"purge-soft-deleted: table {name!r} not found" + suggest(rel, known))
    return rows[0]


def _pg_columns(conn, oid: int) -> dict[str, str]:
    return {r["name"]: r["type"] for r in query(conn, "SELECT attname AS name, format_type(atttypid, NULL) AS type "
                                                      "FROM pg_attribute WHERE attrelid = %(oid)s AND attnum > 0 AND "
                                                      "NOT attisdropped ORDER BY attnum", {"oid": oid})}


def _pg_pk(conn, oid: int) -> list[str]:
    return [r["name"] for r in query(conn, """
SELECT a.attname AS name FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
WHERE x.indrelid = %(oid)s AND x.indisprimary ORDER BY array_position(x.indkey::int2[], a.attnum)""", {"oid": oid})]


# ------------------------------------------------------------------ the concern

PLANNERS = {"vacuum-analyze": plan_vacuum, "analyze": plan_analyze, "vacuum-full": plan_vacuum_full,
            "reindex": plan_reindex, "refresh-views": plan_views}
EXECUTORS = {"vacuum-analyze": run_vacuum, "analyze": run_vacuum, "vacuum-full": run_vacuum, "reindex": run_reindex,
             "refresh-views": run_refresh}


class PostgresMaintenance(Maintenance):
    tasks = ("purge-soft-deleted", "vacuum-full", "vacuum-analyze", "analyze", "reindex", "refresh-views")
    # purging needs a table named; VACUUM FULL takes an exclusive lock and runs only when asked for by name
    default_tasks = ("vacuum-analyze", "analyze", "reindex", "refresh-views")
    instead = {"optimize": "on PostgreSQL use vacuum-analyze and reindex"}

    def plan(self, conn, task: str, ctx: PlanContext) -> list[Action]:
        return PLANNERS[task](conn, ctx)

    def execute(self, conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
        return EXECUTORS[action.task](conn, self.dialect.session, action, options, deadline)

    def purge_target(self, conn, name: str, column: str) -> tuple[str, str, str, list[str]]:
        t = _pg_table(conn, name)
        table, cols = t["name"], _pg_columns(conn, t["oid"])
        col = purge_column(cols, column, table, TIME_TYPES)
        # a table without a primary key is walked by its rows' physical address
        return table, col, qi(col), [qi(c) for c in _pg_pk(conn, t["oid"])] or ["ctid"]

    def purge_cutoff(self, conn, seconds: int):
        return query(conn, "SELECT now() - make_interval(secs => %(s)s) AS cutoff", {"s": seconds})[0]["cutoff"]

    def after_key(self, key: list[str]) -> str:
        return "%s::tid" if key == ["ctid"] else super().after_key(key)

    def batch_rows(self, keys: str, key: list[str], rows: list[tuple]) -> tuple[str, list]:
        if key == ["ctid"]:
            return "ctid = ANY(%s::tid[])", [[r[0] for r in rows]]
        return super().batch_rows(keys, key, rows)

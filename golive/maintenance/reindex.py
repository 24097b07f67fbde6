"""PostgreSQL ``reindex``: rebuild bloated B-tree indexes with ``REINDEX INDEX CONCURRENTLY``, one at a time.

Order of work:

1. Invalid leftovers of an earlier, interrupted ``REINDEX CONCURRENTLY`` (``<index>_ccnew``, ``_ccold``,
   with a number when there were several) are dropped (``DROP INDEX CONCURRENTLY``): they cost every write
   and serve no query.
2. Other invalid indexes (a failed ``CREATE INDEX CONCURRENTLY``) are rebuilt.
3. Valid indexes whose estimated bloat (``golive.health.bloat``) is over ``bloat_ratio`` and
   ``min_bloat_bytes`` are rebuilt.

``REINDEX CONCURRENTLY`` (PostgreSQL 12+) builds the new index beside the old one and swaps them, taking
only SHARE UPDATE EXCLUSIVE locks: writes go on. When it stops half-way (lock timeout, the deadline,
an error) it leaves an invalid ``_ccnew`` copy; golive drops it at once, and if even that fails the next
run does (step 1). On PostgreSQL < 12 the rebuilds are reported, not done: a plain REINDEX blocks writes.
"""

from __future__ import annotations

import re
import time

from golive.health import bloat
from golive.health.checks import pct, query
from golive.maintenance.common import PlanContext, result_of
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions
from golive.maintenance.safety import Deadline, run_sql
from golive.units import human_bytes

LEFTOVER_RE = re.compile(r"_cc(new|old)\d*$")
LOCK = "SHARE UPDATE EXCLUSIVE on the table and the index: the app reads and writes as usual"

INVALID_SQL = f"""
SELECT x.indexrelid AS oid, format('%%I.%%I', n.nspname, ci.relname) AS "index", ci.relname AS name,
       n.nspname AS schema, format('%%I.%%I', n.nspname, ct.relname) AS "table", x.indrelid AS table_oid,
       pg_relation_size(ci.oid) AS bytes
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE NOT x.indisvalid AND {bloat.SYSTEM_SCHEMAS_SQL}
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
    for b in bloat.index_bloat(conn):
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


def execute(conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    t0 = time.perf_counter()
    p = action.params
    if p["kind"] == "drop":
        res, _ = run_sql(conn, "postgresql", action.sql[0], deadline=deadline)
        return result_of(action, [res], t0, after={"dropped": res.status == "done"})
    if not p.get("concurrently", True):
        return ActionResult(task=action.task, target=action.target, status="skipped", before=dict(action.numbers),
                  reason="PostgreSQL < 12 cannot REINDEX CONCURRENTLY and a plain REINDEX blocks writes: do it by "
                         "hand in a quiet window")
    before = _leftovers(conn, p["table_oid"])
    res, _ = run_sql(conn, "postgresql", action.sql[0], deadline=deadline)
    statements = [res]
    note = ""
    if res.status != "done":
        # an interrupted REINDEX CONCURRENTLY leaves its unfinished copy behind: drop it now
        new = [ix for ix in _leftovers(conn, p["table_oid"]) if ix not in before]
        for ix in new:
            drop, _ = run_sql(conn, "postgresql", f"DROP INDEX CONCURRENTLY IF EXISTS {ix}", deadline=None)
            statements.append(drop)
        if new:
            kept = [s.sql.split()[-1] for s in statements[1:] if s.status != "done"]
            note = (f"its unfinished copy {', '.join(new)} was dropped" if not kept else
                    f"left invalid index {', '.join(kept)} (the next reindex drops it)")
            statements = [statements[0]] + [s for s in statements[1:] if s.status != "done"]
    out = result_of(action, statements, t0, after={"bytes": _size(conn, action.target)}, reason=note)
    return out


PLANNERS = {"reindex": plan_reindex}
EXECUTORS = {"reindex": execute}

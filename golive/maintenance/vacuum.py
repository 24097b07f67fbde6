"""PostgreSQL ``vacuum-analyze``, ``analyze`` and ``vacuum-full``.

* ``vacuum-analyze``: ``VACUUM (ANALYZE)`` of each table over the dead-tuple thresholds (``min_dead_tuples``
  and ``dead_ratio``), not the whole database. VACUUM takes a SHARE UPDATE EXCLUSIVE lock: the app reads
  and writes as usual.
* ``analyze``: ``ANALYZE`` of each table whose rows changed since its last ANALYZE over ``min_changes``
  and ``analyze_ratio`` (tables vacuumed in the same run are analyzed by their VACUUM).
* ``vacuum-full``: ``VACUUM (FULL, ANALYZE)`` of tables over the table-bloat thresholds. It rewrites the
  table under an ACCESS EXCLUSIVE lock (the app can neither read nor write it meanwhile), so it is never
  part of the default set and runs only when asked for by name.
"""

from __future__ import annotations

import time

from golive.health import bloat
from golive.health.checks import query
from golive.health.checks import pct
from golive.health.postgresql import TABLE_ACTIVITY_SQL, needs_analyze, needs_vacuum
from golive.maintenance.common import PlanContext, result_of
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions
from golive.maintenance.safety import Deadline, run_sql
from golive.units import human_bytes, human_count

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
    for b in bloat.table_bloat(conn):
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


def execute(conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Run the action's one statement; report the table's statistics before and after."""
    t0 = time.perf_counter()
    res, _ = run_sql(conn, "postgresql", action.sql[0], deadline=deadline)
    after = {}
    got = query(conn, _STATS_SQL, {"oid": action.params["oid"]}) if res.status == "done" else []
    if got:
        after = {k: got[0][k] for k in ("n_live_tup", "n_dead_tup", "n_mod_since_analyze", "bytes")}
    return result_of(action, [res], t0, after=after)


PLANNERS = {"vacuum-analyze": plan_vacuum, "analyze": plan_analyze, "vacuum-full": plan_vacuum_full}
EXECUTORS = {"vacuum-analyze": execute, "analyze": execute, "vacuum-full": execute}

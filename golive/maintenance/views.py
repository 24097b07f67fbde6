"""PostgreSQL ``refresh-views``: refresh every materialized view, ``CONCURRENTLY`` when it allows it.

``REFRESH MATERIALIZED VIEW CONCURRENTLY`` needs a populated view with a unique index on plain columns
(no expression, no WHERE); it takes an EXCLUSIVE lock, so SELECTs on the view go on. Otherwise the plain
refresh takes an ACCESS EXCLUSIVE lock on the view for the whole refresh (its readers wait), and the
plan says so, with the reason CONCURRENTLY was not possible.
"""

from __future__ import annotations

import time

from golive.health.checks import query
from golive.health.postgresql import MATVIEWS_SQL
from golive.maintenance.common import PlanContext, result_of
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions
from golive.maintenance.safety import Deadline, run_sql
from golive.units import human_bytes

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


def execute(conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    t0 = time.perf_counter()
    res, _ = run_sql(conn, "postgresql", action.sql[0], deadline=deadline)
    got = query(conn, _AFTER_SQL, {"v": action.target})
    return result_of(action, [res], t0, after=got[0] if got else {})


PLANNERS = {"refresh-views": plan_views}
EXECUTORS = {"refresh-views": execute}

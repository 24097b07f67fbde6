"""MySQL / MariaDB ``analyze`` (ANALYZE TABLE) and ``optimize`` (OPTIMIZE TABLE's online equivalent).

* ``analyze``: ``ANALYZE TABLE`` on every base table. MySQL keeps no count of rows changed since the last
  statistics update, so there is no threshold; InnoDB samples a few pages (``innodb_stats_persistent_sample_pages``),
  which is cheap. It takes a brief metadata lock; before MySQL 8.0.24 it also waits for the queries running
  on the table to finish and new ones queue behind it, bounded here by ``lock_wait_timeout``.
* ``optimize``: InnoDB tables whose free space (``data_free``) is over ``fragmentation_ratio`` and
  ``min_free_bytes`` are rebuilt with ``ALTER TABLE t FORCE, ALGORITHM=INPLACE, LOCK=NONE`` (what OPTIMIZE
  TABLE does for InnoDB, but refusing rather than falling back to a locking copy: reads and writes go on,
  with a short exclusive metadata lock at the start and the end), then analyzed. Tables that cannot be
  rebuilt online (FULLTEXT indexes on old servers, non-InnoDB engines) are reported, not locked.
"""

from __future__ import annotations

import time

from golive.dialects.mysql.session import qi
from golive.health.checks import query
from golive.health.mysql import TABLES_SQL, needs_optimize
from golive.maintenance.common import PlanContext, result_of
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions, StatementResult
from golive.maintenance.safety import Deadline, run_sql
from golive.units import human_bytes, human_count

LOCK_ANALYZE = ("a brief metadata lock (before MySQL 8.0.24 it also waits for the table's running queries, "
                "and new ones queue behind it)")
LOCK_ONLINE = "online rebuild: reads and writes go on; short exclusive metadata locks at the start and the end"


def _numbers(r: dict) -> dict:
    return {k: int(r[k] or 0) for k in ("row_count", "data_length", "index_length", "data_free")}


def plan_analyze(conn, ctx: PlanContext) -> list[Action]:
    optimized = ctx.planned.get("optimize", set())
    out = []
    for r in query(conn, TABLES_SQL, ctx.thresholds.model_dump()):
        name = qi(r["name"])
        if name in optimized:
            run, why = False, "analyzed by its rebuild (optimize) in this run"
        elif (r["engine"] or "").lower() not in ("innodb", "myisam", "aria"):
            run, why = False, f"{r['engine']} table: nothing to analyze"
        else:
            run, why = True, f"~{human_count(r['row_count'] or 0)} rows; MySQL counts no changes, so every table is analyzed"
        out.append(Action(task="analyze", target=name, run=run, reason=why, numbers=_numbers(r),
                          sql=[f"ANALYZE TABLE {name}"], lock=LOCK_ANALYZE, params={"name": r["name"]}))
    return out


def plan_optimize(conn, ctx: PlanContext) -> list[Action]:
    t = ctx.thresholds
    out = []
    for r in query(conn, TABLES_SQL, t.model_dump()):
        name = qi(r["name"])
        why = needs_optimize(r, t)
        n = _numbers(r)
        if (r["engine"] or "").lower() != "innodb":
            run, why = False, f"{r['engine']} table: OPTIMIZE TABLE would lock it; not done online"
        elif not why:
            run, why = False, f"{human_bytes(n['data_free'])} free: below thresholds"
        else:
            run = True
        out.append(Action(task="optimize", target=name, run=run, reason=why, numbers=n,
                          sql=[f"ALTER TABLE {name} FORCE, ALGORITHM=INPLACE, LOCK=NONE", f"ANALYZE TABLE {name}"],
                          lock=LOCK_ONLINE, params={"name": r["name"]}))
    return out


def _analyze(conn, sql: str, deadline: Deadline) -> StatementResult:
    """ANALYZE TABLE reports problems as result rows, not errors: read them."""
    res, rows = run_sql(conn, "mysql", sql, deadline=deadline, fetch=True)
    if res.status == "done":
        bad = [r for r in rows if len(r) >= 4 and str(r[2]).lower() == "error"]
        if bad:
            text = str(bad[0][3])
            res.status = "lock-timeout" if "lock wait timeout" in text.lower() else "failed"
            res.message = text
    return res


def _after(conn, name: str) -> dict:
    got = query(conn, "SELECT table_rows AS row_count, data_length, index_length, data_free FROM "
                      "information_schema.tables WHERE table_schema = DATABASE() AND table_name = %(t)s", {"t": name})
    return _numbers(got[0]) if got else {}


def execute(conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    t0 = time.perf_counter()
    statements = []
    for sql in action.sql:
        res = _analyze(conn, sql, deadline) if sql.startswith("ANALYZE") else run_sql(conn, "mysql", sql,
                                                                                        deadline=deadline)[0]
        statements.append(res)
        if res.status != "done":
            if "LOCK=NONE is not supported" in res.message or "ALGORITHM=INPLACE is not supported" in res.message:
                res.status = "lock-timeout"  # skipped, not failed: nothing changed
                res.message = f"cannot be rebuilt online, so not done ({res.message})"
            break
    return result_of(action, statements, t0, after=_after(conn, action.params["name"]))


PLANNERS = {"analyze": plan_analyze, "optimize": plan_optimize}
EXECUTORS = {"analyze": execute, "optimize": execute}

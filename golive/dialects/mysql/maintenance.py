"""MySQL / MariaDB's side of ``golive maintenance``: ``analyze`` (ANALYZE TABLE) and ``optimize`` (OPTIMIZE TABLE's
online equivalent), and what ``purge-soft-deleted`` needs to know of a table.

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

from golive.dialects.base import Maintenance
from golive.dialects.mysql.health import TABLES_SQL, needs_optimize
from golive.dialects.mysql.session import qi
from golive.errors import ConfigError
from golive.model.health import query
from golive.model.maintenance import (Action, ActionResult, Deadline, MaintenanceOptions, PlanContext,
                                      StatementResult, purge_column, result_of, run_sql, suggest)
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


def _analyze(conn, session, sql: str, deadline: Deadline) -> StatementResult:
    """ANALYZE TABLE reports problems as result rows, not errors: read them."""
    res, rows = run_sql(conn, session, sql, deadline=deadline, fetch=True)
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


def execute(conn, session, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
    """Rebuild and/or analyze one table; a table that cannot be rebuilt online is skipped, not locked."""
    t0 = time.perf_counter()
    statements = []
    for sql in action.sql:
        res = (_analyze(conn, session, sql, deadline) if sql.startswith("ANALYZE")
               else run_sql(conn, session, sql, deadline=deadline)[0])
        statements.append(res)
        if res.status != "done":
            if "LOCK=NONE is not supported" in res.message or "ALGORITHM=INPLACE is not supported" in res.message:
                res.status = "lock-timeout"  # skipped, not failed: nothing changed
                res.message = f"cannot be rebuilt online, so not done ({res.message})"
            break
    return result_of(action, statements, t0, after=_after(conn, action.params["name"]))


# ------------------------------------------------------------------ purge-soft-deleted: the table

#: the column types that can say when a row was deleted (``information_schema.columns.data_type``)
TIME_TYPES = ("date", "datetime", "timestamp")


def _mysql_table(conn, name: str) -> dict:
    rows = query(conn, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() "
                       "AND table_type = 'BASE TABLE'")
    names = [r["name"] for r in rows]
    hit = [n for n in names if n == name] or [n for n in names if n.lower() == name.lower()]
    if not hit:
        raise ConfigError(f"purge-soft-deleted: table {name!r} not found" + suggest(name, names))
    return {"name": hit[0]}


def _columns(conn, table: str) -> dict[str, str]:
    return {r["name"]: r["type"] for r in query(conn, "SELECT column_name AS name, data_type AS type FROM "
                                                      "information_schema.columns WHERE table_schema = DATABASE() "
                                                      "AND table_name = %(t)s ORDER BY ordinal_position", {"t": table})}


def _pk(conn, table: str) -> list[str]:
    return [r["name"] for r in query(conn, "SELECT column_name AS name FROM information_schema.statistics WHERE "
                                           "table_schema = DATABASE() AND table_name = %(t)s AND index_name = 'PRIMARY' "
                                           "ORDER BY seq_in_index", {"t": table})]


# ------------------------------------------------------------------ the concern

PLANNERS = {"analyze": plan_analyze, "optimize": plan_optimize}


class MySQLMaintenance(Maintenance):
    tasks = ("purge-soft-deleted", "optimize", "analyze")
    # purging needs a table named
    default_tasks = ("optimize", "analyze")
    instead = {"vacuum-analyze": "on MySQL/MariaDB use analyze and optimize",
               "reindex": "on MySQL/MariaDB use optimize (it rebuilds the table and its indexes online)",
               "refresh-views": "MySQL/MariaDB have no materialized views",
               "vacuum-full": "on MySQL/MariaDB use optimize"}

    def plan(self, conn, task: str, ctx: PlanContext) -> list[Action]:
        return PLANNERS[task](conn, ctx)

    def execute(self, conn, action: Action, options: MaintenanceOptions, deadline: Deadline) -> ActionResult:
        return execute(conn, self.dialect.session, action, options, deadline)

    def purge_target(self, conn, name: str, column: str) -> tuple[str, str, str, list[str]]:
        table = _mysql_table(conn, name)["name"]
        col = purge_column(_columns(conn, table), column, table, TIME_TYPES)
        pk = _pk(conn, table)
        if not pk:
            raise ConfigError(f"purge-soft-deleted: {table} has no primary key; golive deletes in key order so "
                              "replicas delete the same rows (add a primary key first)")
        return qi(table), col, qi(col), [qi(c) for c in pk]

    def purge_cutoff(self, conn, seconds: int):
        return query(conn, "SELECT NOW(6) - INTERVAL %(s)s SECOND AS cutoff", {"s": seconds})[0]["cutoff"]

    def skip_locked(self, version_num: int) -> bool:
        # https://dev.mysql.com/doc/refman/8.0/en/innodb-locking-reads.html (8.0.1+),
        # https://mariadb.com/kb/en/select/#skip-locked (10.6+)
        return version_num >= 100600 or 80001 <= version_num < 100000

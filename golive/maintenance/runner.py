"""Plan maintenance (the numbers behind each decision), run one action, or run it all.

``plan`` decides, task by task, what to do with each object and why; a dry run prints it, a run executes
the actions whose ``run`` is true, one at a time, each on a session of its own (``execute``). ``run`` is
the whole thing without Prefect: the maintenance lock, the plan, every action under the deadline, the
report. The ``maintenance`` flow does the same steps as Prefect tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from golive.errors import ConfigError
from golive.health.checks import query
from golive.health.report import parse_db
from golive.maintenance import mysql as my
from golive.maintenance import purge, reindex, vacuum, views
from golive.maintenance.common import PlanContext, not_started
from golive.maintenance.model import (DEFAULT_TASKS, ENGINE_TASKS, OTHER_ENGINE, Action, ActionResult,
                                      MaintenanceOptions, MaintenancePlan, MaintenanceReport)
from golive.maintenance.safety import Deadline, MaintenanceBusy, MaintenanceLock, connect, holder

log = logging.getLogger(__name__)

PLANNERS = {
    "postgresql": {**purge.PLANNERS, **vacuum.PLANNERS, **reindex.PLANNERS, **views.PLANNERS},
    "mysql": {**purge.PLANNERS, **my.PLANNERS},
}
EXECUTORS = {
    "postgresql": {**purge.EXECUTORS, **vacuum.EXECUTORS, **reindex.EXECUTORS, **views.EXECUTORS},
    "mysql": {**purge.EXECUTORS, **my.EXECUTORS},
}


def resolve_tasks(engine: str, tasks: list[str]) -> list[str]:
    """The tasks to run, in their engine's order; the default set when none is named. ConfigError for a task
    the engine does not have."""
    if not tasks:
        return list(DEFAULT_TASKS[engine])
    known = ENGINE_TASKS[engine]
    for t in tasks:
        if t not in known:
            hint = OTHER_ENGINE.get(t, "")
            name = "MySQL/MariaDB" if engine == "mysql" else "PostgreSQL"
            raise ConfigError(f"{t} is not a {name} task and this database is {name}" + (f": {hint}" if hint else "")
                              + f" (its tasks: {', '.join(known)})")
    return [t for t in known if t in tasks]


def server_facts(conn, engine: str) -> tuple[str, str, int]:
    """(database name, server version, version number)."""
    if engine == "postgresql":
        r = query(conn, "SELECT current_database() AS db, current_setting('server_version') AS v, "
                        "current_setting('server_version_num')::int AS n")[0]
        return r["db"], r["v"], r["n"]
    from golive.health.mysql import version_num

    r = query(conn, "SELECT DATABASE() AS db, VERSION() AS v")[0]
    return r["db"], r["v"], version_num(r["v"])


def preflight(db, options: MaintenanceOptions) -> None:
    """Refuse bad input before anything starts: the URL, the connection, the tasks for this engine, the tables
    and columns to purge. Raises ConfigError / ConnectionFailed; changes nothing."""
    url = parse_db(db)
    tasks = resolve_tasks(url.dialect, list(options.tasks))
    conn = connect(url, options)
    try:
        if "purge-soft-deleted" in tasks:
            dbname, _, num = server_facts(conn, url.dialect)
            purge.check(conn, PlanContext(engine=url.dialect, version_num=num, dbname=dbname, options=options))
        busy = holder(conn, url) if not options.dry_run and not options.seconds("lock_wait") else ""
    finally:
        conn.close()
    if busy:
        raise MaintenanceBusy(f"another golive maintenance run is working on {url.masked} ({busy}): nothing done. "
                              "Runs never overlap; try again later or pass --lock-wait", holder=busy)


def plan(db, options: MaintenanceOptions) -> MaintenancePlan:
    """Decide every action of ``options.tasks`` (or the default set) on the database ``db``."""
    t0 = time.perf_counter()
    url = parse_db(db)
    tasks = resolve_tasks(url.dialect, list(options.tasks))
    conn = connect(url, options)
    try:
        dbname, version, num = server_facts(conn, url.dialect)
        ctx = PlanContext(engine=url.dialect, version_num=num, dbname=dbname, options=options)
        actions: list[Action] = []
        for task in tasks:
            got = PLANNERS[url.dialect][task](conn, ctx)
            ctx.planned[task] = {a.target for a in got if a.run}
            actions += got
        if options.dry_run:
            try:
                busy = holder(conn, url)
            except Exception:
                busy = ""
            if busy:
                ctx.notes.append(f"a maintenance run is working on this database now ({busy}): a real run would "
                                 "wait for it (--lock-wait) or give up")
    finally:
        conn.close()
    return MaintenancePlan(database=url.masked, dbname=dbname, engine=url.dialect, server_version=version,
                           server_version_num=num, tasks=tasks, actions=actions, notes=ctx.notes,
                           planned_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           seconds=round(time.perf_counter() - t0, 3))


def execute(db, action: Action, options: MaintenanceOptions, deadline_at: float) -> ActionResult:
    """Run one planned action on a session of its own, under the lock timeout and the deadline."""
    url = parse_db(db)
    deadline = Deadline(deadline_at, options.seconds("max_duration"))
    if deadline.expired():
        return not_started(action, deadline)
    autocommit = action.task != "purge-soft-deleted"  # VACUUM, REINDEX CONCURRENTLY need autocommit; purge batches not
    conn = connect(url, options, autocommit=autocommit)
    try:
        result = EXECUTORS[url.dialect][action.task](conn, action, options, deadline)
    finally:
        conn.close()
    log.info("%s %s: %s%s", action.task, action.target, result.status, f" ({result.reason})" if result.reason else "")
    return result


def run(db, options: MaintenanceOptions) -> MaintenanceReport:
    """The whole run without Prefect: lock, plan, each action under the deadline, report (written when
    ``options.report_path`` is set). A dry run takes no lock and changes nothing."""
    t0 = time.perf_counter()
    if options.dry_run:
        report = MaintenanceReport(plan=plan(db, options), dry_run=True, options=options_summary(options))
    else:
        url = parse_db(db)
        with MaintenanceLock(url, options):
            deadline = Deadline.start(options.seconds("max_duration"))
            p = plan(db, options)
            results = [execute(db, a, options, deadline.at) for a in p.to_run]
            report = MaintenanceReport(plan=p, dry_run=False, results=results, options=options_summary(options),
                                       lock=f"held the maintenance lock of {p.dbname}")
    report.seconds = round(time.perf_counter() - t0, 3)
    write_report(report, options.report_path)
    return report


def options_summary(options: MaintenanceOptions) -> dict:
    return options.model_dump(mode="json", exclude={"report_path"})


def write_report(report: MaintenanceReport, path: str | None) -> None:
    if path:
        from golive.report import write_json

        write_json(path, report.as_dict())

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

from golive.dialects import dialect_of
from golive.dialects.base import Maintenance
from golive.errors import ConfigError
from golive.health.report import parse_db
from golive.maintenance import purge
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions, MaintenancePlan, MaintenanceReport
from golive.maintenance.safety import MaintenanceBusy, MaintenanceLock, connect, holder
from golive.model.maintenance import Deadline, PlanContext, not_started

log = logging.getLogger(__name__)


def resolve_tasks(m: Maintenance, tasks: list[str]) -> list[str]:
    """The tasks to run, in their engine's order; the default set when none is named. ConfigError for a task
    the engine does not have."""
    if not tasks:
        return list(m.default_tasks)
    known = m.tasks
    for t in tasks:
        if t not in known:
            hint = m.instead.get(t, "")
            name = m.dialect.title
            raise ConfigError(f"{t} is not a {name} task and this database is {name}" + (f": {hint}" if hint else "")
                              + f" (its tasks: {', '.join(known)})")
    return [t for t in known if t in tasks]


def plan_task(conn, m: Maintenance, task: str, ctx: PlanContext) -> list[Action]:
    """One task's actions: purge-soft-deleted is golive's own loop on every engine, the others the engine's."""
    return purge.plan_purge(conn, m, ctx) if task == purge.TASK else m.plan(conn, task, ctx)


def preflight(db, options: MaintenanceOptions) -> None:
    """Refuse bad input before anything starts: the URL, the connection, the tasks for this engine, the tables
    and columns to purge. Raises ConfigError / ConnectionFailed; changes nothing."""
    url = parse_db(db)
    m = dialect_of(url).maintenance
    tasks = resolve_tasks(m, list(options.tasks))
    conn = connect(url, options)
    try:
        if purge.TASK in tasks:
            dbname, _, num = m.facts(conn)
            purge.check(conn, m, PlanContext(engine=m.dialect.name, version_num=num, dbname=dbname, options=options))
        # a dry run is refused as the run would be (another run at work and no --lock-wait to wait for it)
        busy = holder(conn, url) if not options.seconds("lock_wait") else ""
    finally:
        conn.close()
    if busy:
        raise MaintenanceBusy(f"another golive maintenance run is working on {url.masked} ({busy}): nothing done. "
                              "Runs never overlap; try again later or pass --lock-wait", holder=busy)


def plan(db, options: MaintenanceOptions) -> MaintenancePlan:
    """Decide every action of ``options.tasks`` (or the default set) on the database ``db``."""
    t0 = time.perf_counter()
    url = parse_db(db)
    m = dialect_of(url).maintenance
    tasks = resolve_tasks(m, list(options.tasks))
    conn = connect(url, options)
    try:
        dbname, version, num = m.facts(conn)
        ctx = PlanContext(engine=m.dialect.name, version_num=num, dbname=dbname, options=options)
        actions: list[Action] = []
        for task in tasks:
            got = plan_task(conn, m, task, ctx)
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
    return MaintenancePlan(database=url.masked, dbname=dbname, engine=m.dialect.name, server_version=version,
                           server_version_num=num, tasks=tasks, actions=actions, notes=ctx.notes,
                           planned_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           seconds=round(time.perf_counter() - t0, 3))


def execute(db, action: Action, options: MaintenanceOptions, deadline_at: float) -> ActionResult:
    """Run one planned action on a session of its own, under the lock timeout and the deadline."""
    url = parse_db(db)
    deadline = Deadline(deadline_at, options.seconds("max_duration"))
    if deadline.expired():
        return not_started(action, deadline)
    m = dialect_of(url).maintenance
    autocommit = action.task != purge.TASK  # VACUUM, REINDEX CONCURRENTLY need autocommit; purge batches not
    conn = connect(url, options, autocommit=autocommit)
    try:
        result = (purge.execute(conn, m, action, options, deadline) if action.task == purge.TASK
                  else m.execute(conn, action, options, deadline))
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

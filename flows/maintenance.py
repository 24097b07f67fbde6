"""Flow: maintain a live database: vacuum, analyze, reindex, refresh views, purge soft-deleted rows.

Run it with ``golive maintenance`` (CLI) or from its deployments (prefect.yaml: refresh-views hourly,
purge-soft-deleted daily, vacuum-analyze weekly, reindex monthly). Each action is a task run named
after its object; a markdown artifact ``maintenance-<database>`` shows what ran, the numbers behind each
decision, and what was not done and why. The run fails when anything planned was not done.
"""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import BaseModel, Field, SecretStr

from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from golive.health.report import parse_db
from golive.maintenance.model import ActionResult, MaintenanceOptions, MaintenanceReport, markdown
from golive.maintenance.runner import options_summary, write_report
from golive.maintenance.safety import MaintenanceLock
from golive.model.maintenance import Deadline
from golive.urls import mask
from tasks.maintenance import plan_maintenance, run_action


class DatabaseParam(BaseModel):
    """The database a flow works on (first in the Prefect UI form: a base class's fields come first)."""

    db: SecretStr = Field(title="Database", description=(
        "postgresql://… or mysql://… URL, or block:NAME: a Prefect Secret block holding the URL (prefer it for "
        "deployments: parameters are stored as given)"))


class MaintenanceParams(MaintenanceOptions, DatabaseParam):
    """Parameters of ``maintenance``: the database, and the options of ``golive maintenance``."""


def artifact_key(prefix: str, name: str) -> str:
    """``prefix-name`` in the letters Prefect accepts for artifact keys (``flows.artifacts.artifact_key``)."""
    from flows.artifacts import artifact_key as key

    return key(prefix, None, name)


@model_params_flow(name="maintenance", persist_result=False, log_prints=False)
def maintenance(params: MaintenanceParams) -> dict:
    """Run the maintenance tasks of ``params`` on one database, one action at a time, live-safe.

    Args:
        params: The database (a URL or block:NAME), which tasks, and the limits (duration, lock wait, batches).

    Returns the report; when an action was skipped (lock timeout, max duration) or failed, a Failed state
    carrying that report.
    """
    t0 = time.perf_counter()
    db = SecretStr(resolve_secret(params.db))
    options = MaintenanceOptions(**params.model_dump(exclude={"db"}))
    if options.dry_run:
        # 1. Plan only: what would run, and why
        report = MaintenanceReport(plan=plan_maintenance(db, options), dry_run=True, options=options_summary(options))
    else:
        # 1. Take the database's maintenance lock: two runs never overlap
        with MaintenanceLock(parse_db(db), options):
            deadline = Deadline.start(options.seconds("max_duration"))
            # 2. Plan: the numbers behind each decision
            plan = plan_maintenance(db, options)
            # 3. Each action, one at a time, within the lock timeout and the max duration
            results = [_outcome(run_action(db, a, options, deadline.at, return_state=True), a) for a in plan.to_run]
        report = MaintenanceReport(plan=plan, dry_run=False, results=results, options=options_summary(options),
                                   lock=f"held the maintenance lock of {plan.dbname}")
    # 4. Report: JSON file, markdown artifact keyed by the database
    report.seconds = round(time.perf_counter() - t0, 3)
    write_report(report, options.report_path)
    create_markdown_artifact(markdown(report), key=artifact_key("maintenance", report.plan.dbname),
                             description=f"Maintenance of {report.plan.dbname}: {report.summary()}")
    if not report.ok:
        first = report.not_done[0]
        get_run_logger().error("Not done: %s", "; ".join(f"{r.task} {r.target}: {r.reason}" for r in report.not_done[:5]))
        return Failed(message=f"{len(report.not_done)} action(s) not done, e.g. {first.task} {first.target}: "
                              f"{first.reason}", data=report.as_dict())
    return report.as_dict()


def _outcome(state, action) -> ActionResult:
    """The task's result, or a failed result saying why when the task itself failed."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, ActionResult):
        return value
    reason = mask(str(value).strip().splitlines()[0]) if str(value).strip() else type(value).__name__
    return ActionResult(task=action.task, target=action.target, status="failed", reason=reason,
                        before=dict(action.numbers))

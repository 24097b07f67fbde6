"""Tasks of the ``maintenance`` flow: plan once, then one task per action (one table, index or view).

A lock that cannot be had within the lock timeout is not an error a retry should fix: the engine reports
the action as skipped, and the task returns that. Only a lost connection is retried (once: every action
is safe to run again, a purge picks up where it stopped).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive.maintenance import runner as engine
from golive.maintenance.model import Action, ActionResult, MaintenanceOptions, MaintenancePlan
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient)


@task(name="plan-maintenance", retries=2, retry_delay_seconds=[2, 10], **_COMMON)
def plan_maintenance(db, options: MaintenanceOptions) -> MaintenancePlan:
    """Decide each action, with the numbers behind it."""
    plan = engine.plan(db, options)
    get_run_logger().info("%s: %d action(s) to run, %d below thresholds (%s)", plan.dbname, len(plan.to_run),
                          len(plan.actions) - len(plan.to_run), ", ".join(plan.tasks))
    return plan


@task(name="maintenance-action", task_run_name="{action.task}-{action.target}", retries=1, retry_delay_seconds=[5],
      **_COMMON)
def run_action(db, action: Action, options: MaintenanceOptions, deadline_at: float) -> ActionResult:
    """Run one action under the lock timeout and the run's deadline."""
    result = engine.execute(db, action, options, deadline_at)
    log = get_run_logger()
    (log.info if result.status == "done" else log.warning)("%s %s: %s%s (%.2f s)", action.task, action.target,
                                                           result.status, f": {result.reason}" if result.reason else "",
                                                           result.seconds)
    return result

"""Scheduled maintenance that is safe on a live production database (``golive maintenance``).

One module per task family: ``vacuum`` (vacuum-analyze, analyze, vacuum-full), ``reindex``, ``views``
(refresh-views), ``purge`` (purge-soft-deleted) and ``mysql`` (ANALYZE/OPTIMIZE TABLE). Each has a
planner, which decides per object with the numbers behind the decision, and an executor, which runs one
action. ``safety`` holds what makes it live-safe (lock timeout on every statement, skip-and-report,
the deadline, the advisory lock); ``runner`` ties them together::

    from golive.maintenance import MaintenanceOptions, run
    report = run("postgresql://app@db/app", MaintenanceOptions(tasks=["vacuum-analyze"], dry_run=True))
"""

from golive.maintenance.model import DEFAULT_TASKS, ENGINE_TASKS, MaintenanceOptions, MaintenanceReport
from golive.maintenance.runner import execute, plan, run

__all__ = ["DEFAULT_TASKS", "ENGINE_TASKS", "MaintenanceOptions", "MaintenanceReport", "execute", "plan", "run"]

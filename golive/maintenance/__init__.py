"""Scheduled maintenance that is safe on a live production database (``golive maintenance``).

Each engine plans and runs its own tasks (``Maintenance`` in ``golive/dialects/<engine>/maintenance.py``: vacuum,
analyze, reindex, materialized views on PostgreSQL; ANALYZE/OPTIMIZE TABLE on MySQL/MariaDB): a planner decides per
object with the numbers behind the decision, an executor runs one action. ``purge`` (purge-soft-deleted) is the
same batch loop on every engine. ``safety`` holds what makes it live-safe (the session's lock timeout, the advisory
lock; statements run through ``golive.model.maintenance.run_sql``: skip-and-report, the deadline); ``runner`` ties
them together::

    from golive.maintenance import MaintenanceOptions, run
    report = run("postgresql://app@db/app", MaintenanceOptions(tasks=["vacuum-analyze"], dry_run=True))
"""

from golive.maintenance.model import ALL_TASKS, MaintenanceOptions, MaintenanceReport
from golive.maintenance.runner import execute, plan, run

__all__ = ["ALL_TASKS", "MaintenanceOptions", "MaintenanceReport", "execute", "plan", "run"]

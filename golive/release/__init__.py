"""Releases that roll themselves back: pre-check → lint → backup → migrate → validate → health → rollback → notify.

The engine behind ``golive release`` and the ``release`` flow (plain Python, no Prefect)::

    run_release(db_url, ReleaseOptions(migrations="sql:migrations", backup_to="s3://bucket/backups/app",
                                       health_urls=["https://app/health"])) -> ReleaseReport

Modules: ``steps`` (the sequence, declared once: ``STEPS``), ``state`` (``ReleaseState``, the serialisable
state every step takes and returns, and its live sessions), ``runner`` (``run_release``: the steps in this
process), ``migrations/`` (one per kind: ``sql``, ``alembic``, ``prisma``), ``precheck``, ``lint`` (rules as
data), ``health``, ``notify`` (payload shapes), ``rollback``, ``validate``, ``journal`` (the release journal in
the database's own golive table), ``report`` (the final state in words). What each engine knows is its dialect's
``Release`` concern (``golive/dialects/<engine>/release.py``). Exit codes: 0 released (or nothing to release), 1
failed and rolled back cleanly, 2 refused before changing anything, 3 failed and the rollback failed too.
"""

from golive.release.model import ReleaseOptions, ReleaseReport, ReleaseSettings
from golive.release.runner import run_release
from golive.release.state import ReleaseState, start
from golive.release.steps import STEPS, finish

__all__ = ["run_release", "start", "finish", "STEPS", "ReleaseState", "ReleaseOptions", "ReleaseSettings",
           "ReleaseReport"]

"""A release without Prefect: ``run_release`` goes through the declared steps (``golive.release.steps.STEPS``) in
this process, as the ``release`` flow goes through them as tasks and subflows.

Steps never raise for what can go wrong in a release: they record it in the state, and the later steps read it;
a step that raises anyway is recorded as that step's failure (``steps.crashed``), so the release still rolls back
and says what happened. ``finish`` runs whatever happens (an interrupt included): the journal's final state, the
report file, the lock released.
"""

from __future__ import annotations

from golive.release.model import ReleaseOptions, ReleaseReport
from golive.release.state import start
from golive.release.steps import drive, finish


def run_release(db_url, options: ReleaseOptions) -> ReleaseReport:
    """A whole release in this process: pre-check → lint → backup → migrate → validate → health → rollback →
    notify; the report says what state the database is in."""
    state = start(db_url, options)
    try:
        state = drive(state)
    finally:
        report = finish(state)
    return report

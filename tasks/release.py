"""Prefect tasks of the ``release`` flow: one task per step of ``golive.release.steps.STEPS``, made from the step
itself (its name, its task run name), so a new step needs nothing here.

No task is retried by Prefect: a migration is not idempotent, and the engine already retries what a retry
can fix (a statement that only timed out waiting for its lock, with backoff, within the overall timeout).
Each task takes the release's state and returns it; the sessions and the release lock stay in the flow's process.
"""

from __future__ import annotations

import functools
import inspect

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive.release.state import ReleaseState
from golive.release.steps import STEPS, Step

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retries=0)


def _log_prechecks(state: ReleaseState, args: dict) -> None:
    log = get_run_logger()
    for c in state.report.prechecks:
        (log.info if c.status == "pass" else log.warning)("%s %s: %s", c.status.upper(), c.id, c.message)


def _log_findings(state: ReleaseState, args: dict) -> None:
    log = get_run_logger()
    for f in state.report.findings:
        (log.error if f.blocks else log.warning)("%s %s (%s line %d): %s", f.severity, f.rule, f.migration, f.line,
                                                 f.message)


def _log_migration(state: ReleaseState, args: dict) -> None:
    run = next((r for r in reversed(state.report.runs) if r.version == args["migration"].version), None)
    if run is not None:
        get_run_logger().info("%s: %s (%d statements, %d attempts, %.2f s)%s", run.label, run.status, run.statements,
                              run.attempts, run.seconds, f": {run.error}" if run.error else "")


#: what a step's task logs when it is done (the timeline has the rest)
LOGS = {"precheck": _log_prechecks, "lint": _log_findings, "migrate": _log_migration}


def as_task(step: Step):
    """The step as a Prefect task named after it."""
    after = LOGS.get(step.name)
    signature = inspect.signature(step.run)

    @functools.wraps(step.run)  # Prefect reads the step's own parameters (and names task runs by them)
    def run(*args, **kwargs) -> ReleaseState:
        state = step.run(*args, **kwargs)
        if after is not None:
            after(state, signature.bind(*args, **kwargs).arguments)
        return state

    return task(run, name=step.name, task_run_name=step.run_name, **_COMMON)


#: step name -> its task (steps sharing a name, like the two health checks, share their task)
TASKS = {step.name: as_task(step) for step in STEPS}

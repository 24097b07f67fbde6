"""Tasks of online migration (``flows/migrate_online.py``). Each wraps one call of ``golive.migrate.online``."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive import commands, validation
from golive.migrate import online
from golive.model.capture import CaptureState, Lag
from golive.model.plan import MigrationPlan
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="online-check", **_COMMON)
def check_capture(source, plan: MigrationPlan, keyless: bool = False) -> None:
    """What the source's change capture needs (settings, privileges, keys): each missing thing one line."""
    online.check(commands.parse_source(source), plan, keyless=keyless)


@task(name="catch-up", retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_only_transient,
      **_COMMON)
def catch_up(source, target, plan: MigrationPlan, state: CaptureState, seconds: float = 5.0,
             wait: bool = False) -> tuple[CaptureState, Lag]:
    """Apply captured changes for a few seconds (or until caught up; ``wait``: caught up, keep polling for those
    seconds); the position is recorded with each batch."""
    s, d = commands.parse_source(source), commands.parse_target(target)
    fresh = online.load_state(d, plan.run_key) or state  # a retry goes on from what was recorded
    lag = online.catch_up(s, d, plan, fresh, seconds=seconds, wait=wait)
    online.record_lag(d, fresh, lag)  # for `golive migrate status`, from another terminal
    return fresh, lag


@task(name="check-ahead", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_only_transient,
      **_COMMON)
def check_ahead(source, target, plan: MigrationPlan, state: CaptureState) -> tuple[int, int]:
    """Compare the rows the catch-up applied since they were last found equal, while the app writes: the cut-over
    (inside the write freeze) then compares only what changed after. Returns (rows compared, rows left)."""
    s, d = commands.parse_source(source), commands.parse_target(target)
    rejected = online.refused_keys(d, plan, online.load_state(d, plan.run_key) or state)
    return online.check_ahead(plan.run_key, lambda keys: validation.differing_keys(s, d, plan, keys, rejected))


@task(name="cut-over", **_COMMON)
def cut_over(source, target, plan: MigrationPlan, state: CaptureState, command: str = "", full: bool = False,
             workers: int = 4, chunk_rows: int = 250_000, verify: bool = True) -> dict:
    """Fence the source, drain, identities, compare the changed rows (``full``: every row), the cut-over command;
    the write freeze."""
    s, d = commands.parse_source(source), commands.parse_target(target)
    fresh = online.load_state(d, plan.run_key) or state
    rejected = online.refused_keys(d, plan, fresh)

    def check(keys):
        if full:
            return validation.check_all(s, d, plan, rejected, workers=workers, chunk_rows=chunk_rows)
        return validation.check_keys(s, d, plan, keys, rejected)

    return online.cut_over(s, d, plan, fresh, command=command, check=check if verify else None)


@task(name="end-capture", **_COMMON)
def end_capture(source, target, plan: MigrationPlan, state: CaptureState, keep_fence: bool = True) -> list[str]:
    """Remove what capture added to the source (the fence stays after a cut-over: the app moved)."""
    s, d = commands.parse_source(source), commands.parse_target(target)
    removed = online.end(s, d, online.load_state(d, plan.run_key) or state, keep_fence=keep_fence)
    return removed

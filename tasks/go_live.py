"""Prefect tasks of the go-live's own steps (the other steps are the subflows of golive's flows)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive.go_live import precheck as pc
from golive.go_live import preview, recheck
from tasks import cached, retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient)


@task(name="precheck", retries=1, retry_delay_seconds=[5], **_COMMON)
def run_precheck(resolved: pc.Resolved) -> pc.PrecheckResult:
    """Source readable, target empty or resumable, rewrite columns known, uploads readable, bucket writable,
    backup destination and disk space; the migration's plan is kept for the migrate-db step."""
    result, _plan = pc.precheck(resolved)
    logger = get_run_logger()
    for c in result.checks:
        (logger.error if c.level == "error" else logger.warning if c.level == "warning" else logger.info)(c.line())
    return result


@task(name="dry-run", **_COMMON)
def run_dry_run(resolved: pc.Resolved) -> dict:
    """Every step's dry run, as one plan."""
    return preview.dry_run(resolved)


@task(name="go-live-step", task_run_name="{step}", retries=1, retry_delay_seconds=[5], **_COMMON)
def done_step(resolved: pc.Resolved, step: str, entry: dict, reran: list[str]):
    """A step the journal records as done: Cached when what it left is still there (``recheck.gone``) and no
    step it depends on ran again in this run; otherwise returns why not (one line), and the step runs again."""
    why = (f"{', '.join(reran)} ran again in this run" if reran else recheck.gone(resolved, step,
                                                                                   entry.get("summary") or {}))
    if why:
        from prefect.states import Completed

        get_run_logger().warning("Step %s: finished by an earlier run, but %s: it runs again", step, why)
        return Completed(message=f"not taken as done: {why}; the step runs again", data=why)
    return cached(None, resolved.key, step, entry.get("finished_at"), sorted((entry.get("summary") or {}).items()),
                  what="go-live-step", message=f"{step}: finished by an earlier run ({entry.get('finished_at')}) "
                  "and what it left is still there")

"""Tasks of the validation flow. Each wraps one engine call and is one retryable unit (one key range of one table)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive import commands
from golive.model.plan import MigrationPlan
from golive.validation import check_range, prepare as vprepare, report as vreport, run_expectations as run_gx
from golive.model.validation import RangeCheck, TableSpec, ValidationResult
from golive.validation.options import ValidateOptions
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="prepare-validation", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_only_transient,
      **_COMMON)
def prepare_validation(source, target, options: ValidateOptions, plan: MigrationPlan | None = None,
                       run_key: str | None = None) -> vprepare.Setup:
    """Find the migration's plan and rejects, count the source, record its orphans, load the suites."""
    src, dst = commands.database_urls(source, target)
    setup = (vprepare.take_prefetched(src, dst, options) if plan is None else None) \
        or vprepare.prepare(src, dst, options, plan=plan, run_key=run_key)
    get_run_logger().info("Validating %d tables, %d source rows (%d rejected by the copy) in %d key ranges",
                          len(setup.specs), sum(setup.source_rows.values()), sum(setup.rejected_rows.values()),
                          sum(max(1, len(s.ranges)) for s in setup.specs))
    return setup


@task(name="compare-range", task_run_name="compare-{spec.source}-{range_no}", retries=3,
      retry_delay_seconds=[2, 10, 30], retry_condition_fn=retry_only_transient, **_COMMON)
def compare_range(source, target, spec: TableSpec, range_no: int, limit: int = 10) -> RangeCheck:
    """Digest one key range on both sides; narrow a difference down to the differing keys."""
    result = check_range(commands.parse_source(source), commands.parse_target(target), spec, range_no, limit)
    if not result.match:
        get_run_logger().warning("%s range %d: %d differing rows, e.g. %s", spec.source, range_no,
                                 len(result.differences), result.differences[0].message())
    return result


@task(name="run-expectations", retries=1, retry_delay_seconds=[5], retry_condition_fn=retry_only_transient,
      **_COMMON)
def run_expectations(target, setup: vprepare.Setup, data_docs: bool = True) -> dict:
    """Run every table's Great Expectations suite against the target; keep results; build Data Docs."""
    out = run_gx(commands.parse_target(target), setup, data_docs=data_docs)
    failed = [o for o in out["outcomes"] if not o.success]
    get_run_logger().info("%d expectations met, %d failed", len(out["outcomes"]) - len(failed), len(failed))
    return out


@task(name="validation-report", **_COMMON)
def build_report(setup: vprepare.Setup, checks: list[RangeCheck], gx: dict | None, source: str, target: str,
                 seconds: float, options: ValidateOptions, timings: dict) -> ValidationResult:
    """Assemble the result and write it (``<output>/validation.json`` and ``--report``)."""
    result = vreport.build(setup, checks, gx, source=source, target=target, seconds=seconds, timings=timings,
                           max_differences=options.max_differences)
    vreport.write(result, options.report)
    return result

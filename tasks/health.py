"""Tasks of the ``database-report`` flow: run the checks, keep the history, write the files."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive.health import render
from golive.health import report as engine
from golive.health.model import DbReport, ReportOptions
from tasks import retry_only_transient

_COMMON = dict(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_only_transient)


@task(name="run-checks", retries=2, retry_delay_seconds=[2, 10], **_COMMON)
def run_checks(db, options: ReportOptions) -> DbReport:
    """Sizes, growth since the previous report, and every check of the database's engine."""
    report = engine.collect(db, options)
    get_run_logger().info("%s: %s (%d checks, %.1f s)", report.dbname, report.summary(), len(report.checks),
                          report.seconds)
    return report


@task(name="record-history", retries=2, retry_delay_seconds=[2, 10], **_COMMON)
def record_history(db, report: DbReport, options: ReportOptions) -> DbReport:
    """Record this report's sizes in the database's history table; attach the sizes over time."""
    report = engine.keep_history(db, report, options)
    get_run_logger().info("History: %s (%d snapshots)", report.history.note, report.history.snapshots)
    return report


@task(name="write-report", **_COMMON)
def write_report(report: DbReport, paths: list[str]) -> list[str]:
    """Write the report to each path, in the format its extension names (.html, .md, .json)."""
    return [render.write(report, p) for p in paths]

"""Flow: migrate a SQLite database into PostgreSQL, chunk by chunk, with keys, validation and a report.

Run it with ``golive migrate db`` (CLI), from the Prefect UI (deployment ``migrate-database``), or in CI
with ``prefect deployment run migrate-database/migrate-database --param source=... --param target=...``.
"""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.states import Failed
from pydantic import SecretStr

from flows.artifacts import artifact_key
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from golive import progress
from golive.config import MigrateOptions
from golive.model.plan import MigrationPlan
from golive.migrate.schedule import run_schedule
from tasks.migrate import (copy_chunk, count_source_rows, create_views, final_statements, finish_table, link_table,
                           plan_migration, prepare_target, write_report)


@model_params_flow(name="migrate-database", persist_result=False, log_prints=False)
def migrate_database(source: SecretStr, target: SecretStr, options: MigrateOptions = MigrateOptions()) -> dict:
    """Migrate a database (SQLite, MySQL/MariaDB or PostgreSQL) into PostgreSQL or MySQL/MariaDB.

    Args:
        source: source URL (``sqlite:///app.db``, ``mysql://…``, ``postgresql://…``), or block:NAME (a
            Prefect Secret block holding the URL).
        target: target URL (``postgresql://user@host/db``, ``mysql://…``), or block:NAME (a Secret block
            holding the URL, so no password is stored with the run).
        options: what to copy and how (tables, schema, dry run, workers, ...).
    """
    if options.online:  # the app keeps writing: capture, copy, catch up, cut over (flows/migrate_online.py)
        from flows.migrate_online import migrate_online

        return migrate_online(source=source, target=target, options=options)
    t0 = time.perf_counter()
    source, target = resolve_url(source, "source"), resolve_url(target, "target")  # block:NAME: its URL, here only
    # 1. Plan: schema, value profile, type decisions, chunks (or the interrupted run's plan)
    plan = plan_migration(source, target, options)
    if options.dry_run:  # it ends as the run would: refused (tables exist) or failed (rejects beyond max_rejects)
        from golive.commands import dry_run_outcome

        outcome = dry_run_outcome(target, plan, options)
        report = {"ok": not outcome["exit_code"], "dry_run": True, "exit_code": outcome["exit_code"],
                  "problem": outcome["problem"], "existing_tables": outcome["existing"], "plan": plan.model_dump()}
        return Failed(message=outcome["problem"], data=report) if outcome["problem"] else report

    # 2. Prepare the target: tables without keys, registered as a run (or check the resumed one)
    prepared = prepare_target(target, plan, options)
    plan.warnings.extend(prepared.warnings)

    # 3. Copy every chunk, all readers in one snapshot of the source; as soon as a table is in, build its keys
    #    and indexes; as soon as a table and its parents have keys, add and validate its foreign keys (all
    #    while other tables still copy)
    with source_snapshot(source, plan, options) as snapshot:
        chunks, steps = copy_and_link(source, target, plan, options.workers, snapshot)

    # 4. Views (and what comes last: triggers, sequences); meanwhile count the source again
    counted = count_source_rows.submit(source, [t.source for t in plan.tables], plan.source_fingerprint,
                                       plan.context())
    steps.append(create_views(target, plan, final_statements(source, plan)))

    # 5. Report: invariants per table, rejects file, run marked complete or failed
    counts = counted.result()
    # 6. Validate (content checksums per key range, Great Expectations suites); the report counts it
    validation = None
    if options.validate_after:
        from flows.validate import validate_copy  # imported when used: --no-validate runs start sooner

        validation = validate_copy(source, target, plan, options)
    report = write_report(target, plan, options, chunks, steps, counts, time.perf_counter() - t0, validation)
    publish(report)
    if not report["ok"]:  # a failed run for the UI and for `prefect deployment run --watch` in CI
        return Failed(message="; ".join(report["errors"][:3]) or "migration failed", data=report)
    return report


def source_snapshot(source, plan: MigrationPlan, options):
    """One moment of the source for every chunk reader (``golive.dialects.<source>``): a context manager
    yielding a snapshot name (PostgreSQL) or None (SQLite; MySQL keeps its readers in this process)."""
    from golive import commands
    from golive.dialects import get_dialect

    return get_dialect(plan.source_dialect).source.snapshot(commands.parse_source(source), plan,
                                                            workers=options.workers)


def copy_and_link(source, target, plan: MigrationPlan, workers: int, snapshot: str | None = None):
    """Chunks, keys and foreign keys as tasks, in golive's schedule (see ``golive.migrate.schedule``)."""
    logger = get_run_logger()
    schema = plan.target_schema
    context = plan.context()
    bar = create_progress_artifact(progress=0.0, key=artifact_key("migration-progress", target, schema=schema),
                                   description="chunks copied")
    shown = {"at": 0.0}

    def on_chunk(tp, result, done: int, total: int) -> None:
        progress.emit("chunk", table=tp.source, rows=result.rows_read, rejected=result.rows_rejected)
        if result.rows_rejected:
            logger.warning("%s chunk %d: %d rows rejected", tp.source, result.chunk, result.rows_rejected)
        if done == total or time.monotonic() - shown["at"] >= 2:  # one API call every 2 s at most
            shown["at"] = time.monotonic()
            update_progress_artifact(bar, progress=100.0 * done / total)

    return run_schedule(
        plan, workers,
        copy=lambda tp, ch: copy_chunk.submit(source, target, context, tp, ch, snapshot),
        keys=lambda tp: finish_table.submit(target, schema, tp),
        link=lambda tp: link_table.submit(target, plan.schema_of(tp), tp.target, tp.foreign_keys),
        first_done=lambda futures: next(as_completed(futures)),
        on_chunk=on_chunk)


def on_dask(address: str | None = None, workers: int = 4):
    """This flow with its tasks on Dask: a running scheduler at ``address``, or a local cluster of processes.

    Point the Dask workers at a real Prefect server (PREFECT_API_URL); in ephemeral mode each worker
    would start its own temporary one.
    """
    from prefect_dask import DaskTaskRunner

    kwargs = {"address": address} if address else {
        "cluster_kwargs": {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}}
    return migrate_database.with_options(task_runner=DaskTaskRunner(**kwargs))


def publish(report: dict) -> None:
    """Table artifact for the Prefect UI: per table rows, rejects, seconds, rows/s."""
    rows = [{"table": t["source"], "rows": t["rows_written"], "rejected": t["rows_rejected"],
             "seconds": t["seconds"], "rows/s": t["rows_per_second"]} for t in report["tables"]]
    create_table_artifact(table=rows,
                          key=artifact_key("migration-tables", report["target"], schema=report.get("schema")),
                          description=f"{'OK' if report['ok'] else 'FAILED'}: {report['rows_written']} rows written, "
                                      f"{report['rows_rejected']} rejected")

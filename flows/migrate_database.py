"""Flow: migrate a SQLite database into PostgreSQL, chunk by chunk, with keys, validation and a report.

Run it with ``golive migrate db`` (CLI), from the Prefect UI (deployment ``migrate-database``), or in CI
with ``prefect deployment run migrate-database/migrate-database --param source=... --param target=...``.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import as_completed
from pydantic import SecretStr

from golive import progress
from golive.config import MigrateOptions
from golive.plan import MigrationPlan
from flows.validate import validate_copy
from tasks.migrate import (add_foreign_keys, copy_chunk, count_source_rows, create_views, finish_table,
                           plan_migration, prepare_target, validate_foreign_keys, write_report)


@flow(name="migrate-database", persist_result=False, log_prints=False)
def migrate_database(source: SecretStr, target: SecretStr, options: MigrateOptions = MigrateOptions()) -> dict:
    """Migrate a SQLite database to PostgreSQL.

    Args:
        source: SQLite URL or path (``sqlite:///app.db``).
        target: PostgreSQL URL (``postgresql://user:pass@host/db``); stored masked by Prefect.
        options: what to copy and how (tables, schema, dry run, workers, ...).
    """
    t0 = time.perf_counter()
    # 1. Plan: schema, value profile, type decisions, chunks (or the interrupted run's plan)
    plan = plan_migration(source, target, options)
    if options.dry_run:
        return {"ok": True, "dry_run": True, "exit_code": 0, "plan": plan.model_dump()}

    # 2. Prepare the target: tables without keys, registered as a run (or check the resumed one)
    prepare_target(target, plan, options)

    # 3. Copy every chunk; build a table's keys and indexes as soon as its last chunk is in
    chunks, steps = copy_and_index(source, target, plan, options.workers)

    # 4. Foreign keys (added NOT VALID, validated per child table in parallel) and views
    steps += link_tables(target, plan)
    steps.append(create_views(target, plan))

    # 5. Report: invariants per table, rejects file, run marked complete or failed
    counts = count_source_rows(source, [t.source for t in plan.tables])
    # 6. Validate (content checksums per key range, Great Expectations suites); the report counts it
    validation = validate_copy(source, target, plan, options) if options.validate_after else None
    report = write_report(target, plan, options, chunks, steps, counts, time.perf_counter() - t0, validation)
    publish(report)
    return report


def copy_and_index(source, target, plan: MigrationPlan, workers: int):
    """At most ``workers`` tasks in flight; a table's keys are built while other tables still copy."""
    logger = get_run_logger()
    # biggest tables first, so the last table to finish (whose index build is not overlapped) is small
    queue = [(tp, ch) for tp in sorted(plan.tables, key=lambda t: -t.rows) for ch in tp.chunks]
    remaining = {tp.source: len(tp.chunks) for tp in plan.tables}
    total = max(1, len(queue))
    bar = create_progress_artifact(progress=0.0, key="migration-progress", description="chunks copied")
    running: dict = {}
    chunks, steps, done = [], [], 0
    for tp in plan.tables:  # empty plans still build keys
        if not tp.chunks:
            running[finish_table.submit(target, plan.target_schema, tp)] = ("keys", tp)
    while queue or running:
        while queue and len(running) < workers:
            tp, ch = queue.pop(0)
            running[copy_chunk.submit(source, target, plan.run_key, plan.target_schema, tp, ch)] = ("copy", tp)
        for fut in [next(as_completed(list(running)))]:
            kind, tp = running.pop(fut)
            result = fut.result()  # raises if the task failed after its retries: the run stops, resumable
            if kind == "keys":
                steps.append(result)
                continue
            chunks.append(result)
            done += 1
            remaining[tp.source] -= 1
            progress.emit("chunk", table=tp.source, rejected=result.rows_rejected)
            if result.rows_rejected:
                logger.warning("%s chunk %d: %d rows rejected", tp.source, result.chunk, result.rows_rejected)
            if remaining[tp.source] == 0:
                progress.emit("table", table=tp.source)
                running[finish_table.submit(target, plan.target_schema, tp)] = ("keys", tp)
            update_progress_artifact(bar, progress=100.0 * done / total)
    return chunks, steps


def link_tables(target, plan: MigrationPlan) -> list:
    """Foreign keys: add them all NOT VALID (instant), then validate each child table's keys in parallel."""
    fks = [fk for tp in plan.tables for fk in tp.foreign_keys]
    if not fks:
        return []
    progress.emit("phase", name="foreign keys")
    added = add_foreign_keys(target, plan.target_schema, fks)
    by_table: dict[str, list] = {}
    for fk in fks:
        by_table.setdefault(fk.table, []).append(fk)
    futures = [validate_foreign_keys.submit(target, plan.target_schema, table, group)
               for table, group in by_table.items()]
    return [added] + [f.result() for f in futures]


def publish(report: dict) -> None:
    """Table artifact for the Prefect UI: per table rows, rejects, seconds, rows/s."""
    rows = [{"table": t["source"], "rows": t["rows_written"], "rejected": t["rows_rejected"],
             "seconds": t["seconds"], "rows/s": t["rows_per_second"]} for t in report["tables"]]
    create_table_artifact(table=rows, key="migration-tables",
                          description=f"{'OK' if report['ok'] else 'FAILED'}: {report['rows_written']} rows written, "
                                      f"{report['rows_rejected']} rejected")

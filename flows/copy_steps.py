"""The copy's steps shared by the offline and the online migration flows (``migrate_database``,
``migrate_online``): one snapshot of the source, the schedule of chunk, key and foreign-key tasks, the table
artifact."""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import as_completed

from flows.artifacts import artifact_key
from golive import progress
from golive.migrate.schedule import run_schedule
from golive.model.plan import MigrationPlan
from tasks.migrate import copy_chunk, copy_tables, finish_table, group_label, link_table


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
        group=lambda tables: copy_tables.submit(source, target, context, schema, tables, group_label(tables),
                                                snapshot),
        link=lambda tp: link_table.submit(target, plan.schema_of(tp), tp.target, tp.foreign_keys),
        first_done=lambda futures: next(as_completed(futures)),
        on_chunk=on_chunk)


def publish(report: dict) -> None:
    """Table artifact for the Prefect UI: per table rows, rejects, seconds, rows/s."""
    rows = [{"table": t["source"], "rows": t["rows_written"], "rejected": t["rows_rejected"],
             "seconds": t["seconds"], "rows/s": t["rows_per_second"]} for t in report["tables"]]
    create_table_artifact(table=rows,
                          key=artifact_key("migration-tables", report["target"], schema=report.get("schema")),
                          description=f"{'OK' if report['ok'] else 'FAILED'}: {report['rows_written']} rows written, "
                                      f"{report['rows_rejected']} rejected")

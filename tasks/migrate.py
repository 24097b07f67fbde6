"""Tasks of the database migration flow. Each wraps one engine call."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from golive import commands
from golive.config import MigrateOptions
from golive.migrate import copy as copying, report as reports, target
from golive.model.plan import ChunkPlan, ForeignKeyPlan, MigrationPlan, TablePlan
from tasks import cached, retry_only_transient

# Results stay in memory: resume is golive's own (per-chunk rows in the target), not Prefect's cache; a chunk
# an interrupted run committed shows as a Cached task run (``tasks.cached``).
_COMMON = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="plan", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_only_transient, **_COMMON)
def plan_migration(source, target_url, options: MigrateOptions) -> MigrationPlan:
    """Read and profile the source; decide types, names and chunks (or reuse an interrupted run's plan)."""
    plan = commands.plan_migration(source, target_url, options)
    get_run_logger().info("%s %d tables, %d rows in %d chunks (planned in %.1f s)",
                          "Resuming" if plan.resumed else "Planned", len(plan.tables), plan.total_rows,
                          plan.chunk_count, plan.planned_seconds)
    return plan


@task(name="prepare-target", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_only_transient, **_COMMON)
def prepare_target(target_url, plan: MigrationPlan, options: MigrateOptions) -> target.PrepareResult:
    """Create the tables (keys come after the data) and register the run, or check the resumed one."""
    return target.prepare(commands.parse_target(target_url), plan, options)


@task(name="copy-chunk", task_run_name="copy-{tp.source}-{chunk.no}", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_only_transient, **_COMMON)
def copy_chunk(source, target_url, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan,
               snapshot: str | None = None) -> copying.ChunkResult:
    """Copy one key range of one table with the target's bulk loader; rejects are recorded, never dropped.

    ``plan`` is the run's plan without its tables (``golive.model.plan.MigrationPlan.context``)."""
    result = copying.copy_chunk(commands.parse_source(source), commands.parse_target(target_url), plan, tp, chunk,
                                snapshot=snapshot)
    if result.resumed:  # recorded by the interrupted run, its table's rows checked in the target on resume
        return cached(result, plan.run_key, plan.source_fingerprint, tp.source, chunk.no, chunk.lo, chunk.hi,
                      what="chunk", message=f"{tp.source} chunk {chunk.no} ({_range(chunk)}): copied by an "
                      f"earlier run of this migration ({result.rows_written} rows, still in the target)")
    return result


@task(name="copy-tables", task_run_name="copy-{label}", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_only_transient, **_COMMON)
def copy_tables(source, target_url, plan: MigrationPlan, schema: str, tables: list[TablePlan], label: str,
                snapshot: str | None = None) -> copying.GroupResult:
    """Copy a group of small tables (a chunk each, or none) and build each one's keys: one task run for many
    tables (``golive.migrate.schedule.group_tables``). ``label`` names the group (its first and last table).

    A retry copies only what is not committed yet; when an earlier run committed every chunk of the group, the
    task run shows as Cached."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()  # the same task run id for each retry: what an attempt did is kept for the next
    result = copying.copy_tables(commands.parse_source(source), commands.parse_target(target_url), plan, schema,
                                 tables, snapshot=snapshot, attempt_key=str(ctx.task_run.id) if ctx else None)
    if result.chunks and all(c.resumed for c in result.chunks):
        return cached(result, plan.run_key, plan.source_fingerprint, *[(c.table, c.chunk) for c in result.chunks],
                      what="tables", message=f"{label}: copied by an earlier run of this migration "
                      f"({sum(c.rows_written for c in result.chunks)} rows, still in the target)")
    return result


def group_label(tables: list[TablePlan]) -> str:
    """``t00001..t00050 (50 tables)``: a group's task run name, at most about 100 characters."""
    first, last = tables[0].source[:40], tables[-1].source[:40]
    return first if len(tables) == 1 else f"{first}..{last} ({len(tables)} tables)"


def _range(chunk: ChunkPlan) -> str:
    if chunk.lo is None and chunk.hi is None:
        return "the whole table"
    text = f"keys {'start' if chunk.lo is None else chunk.lo}..{'end' if chunk.hi is None else chunk.hi}"
    return text if len(text) <= 80 else text[:79] + "…"


@task(name="build-keys", task_run_name="keys-{tp.source}", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_only_transient, **_COMMON)
def finish_table(target_url, schema: str, tp: TablePlan) -> target.StepResult:
    """Primary key, unique constraints, indexes, identity restart, ANALYZE."""
    return target.finish_table(commands.parse_target(target_url), schema, tp)


@task(name="foreign-keys", task_run_name="fk-{table}", retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=retry_only_transient, **_COMMON)
def link_table(target_url, schema: str, table: str, fks: list[ForeignKeyPlan]) -> target.StepResult:
    """Add (NOT VALID) and validate the foreign keys of one child table."""
    return target.link_table(commands.parse_target(target_url), schema, table, fks)


@task(name="create-views", retries=1, retry_condition_fn=retry_only_transient, **_COMMON)
def create_views(target_url, plan: MigrationPlan, finals: list[str] | None = None) -> target.StepResult:
    """Views, then what runs last (sequence values, triggers, materialized views' data)."""
    return target.create_views(commands.parse_target(target_url), plan, finals)


@task(name="final-statements", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_only_transient,
      **_COMMON)
def final_statements(source, plan: MigrationPlan) -> list[str]:
    """Read from the source, after the copy, what the target runs last (PostgreSQL: sequences read now)."""
    return target.final_statements(commands.parse_source(source), plan)


@task(name="count-source-rows", **_COMMON)
def count_source_rows(source, tables: list[str], fingerprint: str | None = None,
                      plan: MigrationPlan | None = None) -> dict[str, int]:
    """Rows per source table now ({} when the source is unchanged since planning, or was read in one snapshot)."""
    return commands.count_source_rows(source, tables, fingerprint, plan)


@task(name="report", **_COMMON)
def write_report(target_url, plan: MigrationPlan, options: MigrateOptions, chunks: list, steps: list,
                 source_counts: dict, seconds: float, validation: dict | None = None) -> dict:
    """Build the JSON report (and rejects file) and mark the run complete or failed in the target."""
    rep = reports.build_report(plan, options, chunks, steps, source_counts=source_counts, seconds=seconds,
                               validation=validation)
    target.complete(commands.parse_target(target_url), plan.run_key, rep["ok"])
    return rep

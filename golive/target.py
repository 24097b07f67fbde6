"""Everything done to the target around the copy: prepare (or resume), keys and indexes, foreign keys, views.

Each step is idempotent (it checks what already exists), so a run interrupted anywhere can be re-run.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, Field

from golive import state
from golive.config import MigrateOptions
from golive.dialects.postgresql import BUILD_SETTINGS, PostgresDialect, qi, qn, translate_error
from golive.errors import PlanError, TargetNotEmpty
from golive.plan import ForeignKeyPlan, MigrationPlan, TablePlan
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


class PrepareResult(BaseModel):
    resumed: bool = False
    created_tables: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    done_chunks: int = 0


class StepResult(BaseModel):
    """Outcome of a post-load step on one table (or one group of foreign keys)."""

    table: str
    seconds: float = 0.0
    created: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Failures that make the run fail (exit 1).")
    warnings: list[str] = Field(default_factory=list)
    skipped: list[dict] = Field(default_factory=list)


# ---------------------------------------------------------------------- before the copy


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    """The stored run for ``run_key`` if it was interrupted (status 'copying' or 'building')."""
    pg = PostgresDialect()
    with pg.connect(target, autocommit=True) as conn:
        run = state.get_run(conn, run_key)
    if run and run["status"] in ("copying", "building"):
        return run
    return None


def existing_relations(conn, schema: str, names: list[str]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema, names)).fetchall()
    return sorted(r[0] for r in rows)


def check_target(target: DatabaseURL, plan: MigrationPlan, options: MigrateOptions) -> list[str]:
    """Connect and list the planned tables that already exist. Raises ``ConnectionFailed`` if unreachable."""
    pg = PostgresDialect()
    with pg.connect(target, autocommit=True) as conn:
        return existing_relations(conn, plan.target_schema, [t.target for t in plan.tables])


def target_not_empty(target: DatabaseURL, plan: MigrationPlan, existing: list[str], conn=None) -> TargetNotEmpty:
    """The refusal for planned tables that already exist, saying what to do."""
    pg = PostgresDialect()
    own = conn or pg.connect(target, autocommit=True)
    try:
        run = state.get_run(own, plan.run_key)
    finally:
        if conn is None:
            own.close()
    schema = plan.target_schema
    if run and run["status"] == "complete":
        return TargetNotEmpty(
            f"the target already holds this migration (completed {run['finished_at']:%Y-%m-%d %H:%M} UTC); "
            f"add --drop-existing to copy it again")
    shown = ", ".join(existing[:8]) + (f" and {len(existing) - 8} more" if len(existing) > 8 else "")
    return TargetNotEmpty(
        f"target schema {schema!r} already has {shown}; add --drop-existing to replace "
        f"{'them' if len(existing) > 1 else 'it'}, or migrate into another --schema")


def prepare(target: DatabaseURL, plan: MigrationPlan, options: MigrateOptions) -> PrepareResult:
    """Create the target tables (no keys yet) and register the run; or, when resuming, check what is there.

    Raises:
        TargetNotEmpty: planned tables exist and neither ``--drop-existing`` nor a resumable run allows it.
    """
    pg = PostgresDialect()
    schema = plan.target_schema
    with pg.connect(target) as conn:
        try:
            state.ensure(conn)
            conn.commit()
            names = [t.target for t in plan.tables]
            existing = existing_relations(conn, schema, names)
            if plan.resumed:
                missing = sorted(set(names) - set(existing))
                if missing:
                    raise PlanError(f"cannot resume: tables {', '.join(missing)} of the interrupted run are gone "
                                    f"from schema {schema}; re-run with --drop-existing to start over")
                done = state.chunks_of_run(conn, plan.run_key)
                return PrepareResult(resumed=True, done_chunks=len(done))
            if existing and not options.drop_existing:
                raise target_not_empty(target, plan, existing, conn)
            result = PrepareResult()
            with conn.transaction():
                if schema != "public":
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(schema)}")
                if options.drop_existing:
                    views = existing_relations(conn, schema, [v.target for v in plan.views])
                    for v in views:
                        conn.execute(f"DROP VIEW IF EXISTS {qn(schema, v)} CASCADE")
                    for name in existing:
                        if name in names:
                            conn.execute(f"DROP TABLE IF EXISTS {qn(schema, name)} CASCADE")
                    result.dropped = views + [n for n in existing if n in names]
                    state.forget_run(conn, plan.run_key)
                for t in plan.tables:
                    conn.execute(pg.create_table_sql(schema, t))
                    result.created_tables.append(t.target)
                state.start_run(conn, plan.run_key, schema, plan.model_dump_json(), plan.source_fingerprint)
            return result
        except Exception as exc:
            raise translate_error(exc, f"preparing target schema {schema}") from None


# ---------------------------------------------------------------------- after the copy


def _existing_names(conn, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "UNION SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
        (qn(schema, table), schema, table)).fetchall()
    return {r[0] for r in rows}


def finish_table(target: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
    """Primary key, unique constraints, indexes, identity restart and ANALYZE for one loaded table."""
    import psycopg

    pg = PostgresDialect()
    t0 = time.perf_counter()
    res = StepResult(table=tp.source)
    try:
        with pg.connect(target, autocommit=True, settings=BUILD_SETTINGS) as conn:
            have = _existing_names(conn, schema, tp.target)
            for ix in sorted(tp.indexes, key=lambda i: {"primary": 0, "unique": 1, "index": 2}[i.kind]):
                if ix.name in have:
                    continue
                try:
                    conn.execute(pg.index_sql(schema, tp.target, ix))
                    res.created.append(ix.name)
                except psycopg.errors.UniqueViolation as exc:
                    detail = exc.diag.message_detail or ""
                    what = "primary key" if ix.kind == "primary" else f"unique {'constraint' if ix.constraint else 'index'}"
                    res.errors.append(f"{tp.source}: {what} {ix.name} not created: duplicate values after "
                                      f"conversion ({detail})")
                except psycopg.errors.NotNullViolation as exc:
                    res.errors.append(f"{tp.source}: primary key {ix.name} not created: {exc.diag.message_primary}")
                except (psycopg.errors.SyntaxError, psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedColumn,
                        psycopg.errors.DatatypeMismatch, psycopg.errors.InvalidObjectDefinition,
                        psycopg.errors.UndefinedObject, psycopg.errors.ProgramLimitExceeded) as exc:
                    res.skipped.append({"kind": "index", "name": ix.source_name or ix.name,
                                        "reason": f"does not translate to PostgreSQL: {exc.diag.message_primary}"})
            if tp.identity:
                col = qi(tp.identity)
                top = conn.execute(f"SELECT max({col}) FROM {qn(schema, tp.target)}").fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                conn.execute(f"ALTER TABLE {qn(schema, tp.target)} ALTER COLUMN {col} RESTART WITH {start}")
                res.created.append(f"identity {tp.identity} restarts at {start}")
            conn.execute(f"ANALYZE {qn(schema, tp.target)}")
    except psycopg.Error as exc:
        raise translate_error(exc, f"building keys and indexes of {tp.target}") from None
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def link_table(target: DatabaseURL, schema: str, table: str, fks: list[ForeignKeyPlan]) -> StepResult:
    """Foreign keys of one child table: add them NOT VALID (instant), then VALIDATE them.

    Validation takes a lock that does not block other tables' validations, so children are linked in
    parallel, each as soon as it and its parents have their keys. Rows referencing missing parents
    leave the key NOT VALID (new rows are still checked) and are reported with their count.
    """
    import psycopg

    pg = PostgresDialect()
    t0 = time.perf_counter()
    res = StepResult(table=table)
    try:
        with pg.connect(target, autocommit=True, settings=BUILD_SETTINGS) as conn:
            for fk in fks:
                row = conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s "
                                   "AND conrelid = to_regclass(%s)", (fk.name, qn(schema, fk.table))).fetchone()
                if row is None:
                    try:
                        conn.execute(pg.foreign_key_sql(schema, fk, not_valid=True))
                    except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable,
                            psycopg.OperationalError):
                        raise
                    except psycopg.Error as exc:
                        res.skipped.append({"kind": "foreign key", "name": fk.name,
                                            "reason": exc.diag.message_primary or str(exc).splitlines()[0]})
                        continue
                elif row[0]:
                    continue
                try:
                    conn.execute(f"ALTER TABLE {qn(schema, fk.table)} VALIDATE CONSTRAINT {qi(fk.name)}")
                    res.created.append(fk.name)
                except psycopg.errors.ForeignKeyViolation:
                    n = orphan_count(conn, schema, fk)
                    res.warnings.append(
                        f"foreign key {fk.name}: {n} rows of {fk.source_table} reference missing "
                        f"{fk.source_ref_table} rows; the key is kept NOT VALID (new rows are checked). Fix the rows, "
                        f"then run ALTER TABLE {qn(schema, fk.table)} VALIDATE CONSTRAINT {qi(fk.name)}")
    except psycopg.Error as exc:
        raise translate_error(exc, f"adding the foreign keys of {table}") from None
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def orphan_count(conn, schema: str, fk: ForeignKeyPlan) -> int:
    on = " AND ".join(f"p.{qi(r)} = c.{qi(col)}" for col, r in zip(fk.columns, fk.ref_columns))
    notnull = " AND ".join(f"c.{qi(col)} IS NOT NULL" for col in fk.columns)
    return conn.execute(
        f"SELECT count(*) FROM {qn(schema, fk.table)} c WHERE {notnull} AND NOT EXISTS "
        f"(SELECT 1 FROM {qn(schema, fk.ref_table)} p WHERE {on})").fetchone()[0]


def create_views(target: DatabaseURL, plan: MigrationPlan) -> StepResult:
    """Create the SQLite views whose SQL also runs on PostgreSQL; report the others with the reason."""
    import psycopg

    pg = PostgresDialect()
    schema = plan.target_schema
    res = StepResult(table="views")
    t0 = time.perf_counter()
    pending = list(plan.views)
    errors: dict[str, str] = {}
    with pg.connect(target) as conn:
        conn.execute(f"SET search_path TO {qi(schema)}, public")
        existing = set(existing_relations(conn, schema, [v.target for v in pending]))
        pending = [v for v in pending if v.target not in existing]
        progress_made = True
        while pending and progress_made:  # views may depend on views defined later
            progress_made = False
            for v in list(pending):
                try:
                    with conn.transaction():
                        conn.execute(f"CREATE VIEW {qn(schema, v.target)} AS {v.select}")
                    res.created.append(v.target)
                    pending.remove(v)
                    progress_made = True
                except psycopg.Error as exc:
                    errors[v.source] = exc.diag.message_primary or str(exc).splitlines()[0]
        conn.commit()
    for v in pending:
        res.skipped.append({"kind": "view", "name": v.source,
                            "reason": f"its SQL does not run on PostgreSQL: {errors.get(v.source, 'unknown error')}"})
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    pg = PostgresDialect()
    with pg.connect(target, autocommit=True) as conn:
        state.set_status(conn, run_key, "complete" if ok else "failed")

"""PostgreSQL as a target: prepare (or resume), bulk-load chunks with COPY, then keys, foreign keys and views.

Each step is idempotent (it checks what already exists), so a run interrupted anywhere can be re-run.
``golive.migrate.target`` calls these through ``PostgresTarget`` (the dialect's ``target``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import contextmanager

from golive.dialects.base import Target, fit_table_ddl, target_not_empty
from golive.dialects import bookkeeping
from golive.dialects.bookkeeping import recheck_resumed
from golive.dialects.postgresql import types as pt
from golive.dialects.postgresql.bookkeeping import PostgresBookkeeping as Bookkeeping
from golive.dialects.postgresql.session import connect, is_data_error, qi, qn, translate_error
from golive.errors import PlanError, TerminalError
from golive.model.plan import ChunkPlan, ColumnPlan, ForeignKeyPlan, IndexPlan, MigrationPlan, TablePlan
from golive.model.results import ChunkResult, PrepareResult, Refused, StepResult
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: how COPY reads the wire format (golive.dialects.base)
COPY_OPTIONS = "FORMAT csv, QUOTE '''', NULL 'NULL'"

#: settings for the sessions that bulk-load (per session, nothing global changes)
LOAD_SETTINGS = {
    "synchronous_commit": "off",  # a crash loses at most the last moments; chunks are re-copied on resume
    "TimeZone": "UTC",  # text timestamps without an offset are UTC
    "DateStyle": "ISO, YMD",
    "client_encoding": "UTF8",
    "statement_timeout": "0",
}

#: settings for the sessions that build indexes and constraints
BUILD_SETTINGS = {
    "maintenance_work_mem": "256MB",
    "synchronous_commit": "off",
    "statement_timeout": "0",
}


# ---------------------------------------------------------------------- loading chunks

# the COPY line of an error context ("COPY t, line 3, column c: ..."); other lines (e.g. "JSON data,
# line 1: ...") come from the type's own parser
_LINE_RE = re.compile(r"^COPY .*?, line (\d+)(?:,|$)", re.M)
_COLUMN_RE = re.compile(r"^COPY .*?, line \d+, column (.+?): ", re.M)


class ChunkWriter:
    """One chunk's session: bookkeeping, COPY in one transaction, refusals as ``Refused``."""

    def __init__(self, target: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan):
        self.plan, self.tp, self.chunk = plan, tp, chunk
        self.what = f"copying {tp.source} chunk {chunk.no}"
        self.conn = connect(target, settings=LOAD_SETTINGS)
        self.book = Bookkeeping(self.conn)
        self.binary = plan.source_dialect == "postgresql" and tp.native
        self.copy_sql = copy_sql(plan.schema_of(tp), tp)
        self.copy_binary = copy_sql(plan.schema_of(tp), tp, binary=True)
        self._depth = 0

    def done(self) -> dict | None:
        import psycopg

        try:
            prev = self.book.chunk_done(self.plan.run_key, self.tp.source, self.chunk.no)
            self.conn.commit()
        except psycopg.Error as exc:
            raise translate_error(exc, self.what) from None
        return prev

    @contextmanager
    def transaction(self):
        import psycopg

        self._depth += 1
        try:
            with self.conn.transaction():
                yield
        except psycopg.Error as exc:
            if is_data_error(exc):
                raise _refused(exc) from None
            raise translate_error(exc, self.what) from None
        finally:
            self._depth -= 1

    def load(self, batches) -> int:
        """COPY the lines; binary for the fast path of PostgreSQL to PostgreSQL (the outermost load)."""
        import psycopg

        sql = self.copy_binary if (self.binary and self._depth == 1) else self.copy_sql
        try:
            with self.conn.cursor() as cur:
                with cur.copy(sql) as cp:
                    for blob in batches:
                        cp.write(blob)
                return cur.rowcount
        except psycopg.Error as exc:
            if is_data_error(exc):
                raise _refused(exc) from None
            raise translate_error(exc, self.what) from None

    def record(self, result: ChunkResult, digest: str) -> None:
        self.book.record_chunk(self.plan.run_key, self.tp.source, self.chunk.no, result.rows_read,
                               result.rows_written, result.rejects, result.seconds, result.converted, digest)

    def close(self) -> None:
        self.conn.close()


def _refused(exc) -> Refused:
    diag = getattr(exc, "diag", None)
    ctx = getattr(diag, "context", None) or ""
    m = _LINE_RE.search(ctx)
    column = getattr(diag, "column_name", None)
    if column is None:
        cm = _COLUMN_RE.search(ctx)
        column = cm.group(1) if cm else None
    reason = getattr(diag, "message_primary", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return Refused(reason, line=int(m.group(1)) if m else None, column=column)


# ---------------------------------------------------------------------- before the copy


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    """The stored run for ``run_key`` if it was interrupted (status 'copying' or 'building')."""
    with connect(target, autocommit=True) as conn:
        book = Bookkeeping(conn)
        run = book.get_run(run_key)
        if run and run["status"] in ("copying", "building"):
            run["chunks"] = book.chunks_of_run(run_key)
            return run
    return None


def existing_relations(conn, schema: str, names: list[str]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema, names)).fetchall()
    return sorted(r[0] for r in rows)


def _planned_by_schema(plan: MigrationPlan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in plan.tables:
        out.setdefault(plan.schema_of(t), []).append(t.target)
    return out


def check_target(target: DatabaseURL, plan: MigrationPlan, options) -> list[str]:
    """Connect and list the planned tables that already exist. Raises ``ConnectionFailed`` if unreachable."""
    with connect(target, autocommit=True) as conn:
        out = []
        for schema, names in _planned_by_schema(plan).items():
            found = existing_relations(conn, schema, names)
            out += found if schema == plan.target_schema else [f"{schema}.{n}" for n in found]
        return out


def run_of(target: DatabaseURL, run_key: str, conn=None) -> dict | None:
    if conn is not None:
        return Bookkeeping(conn).get_run(run_key)
    with connect(target, autocommit=True) as own:
        return Bookkeeping(own).get_run(run_key)


def prepare(target: DatabaseURL, plan: MigrationPlan, options) -> PrepareResult:
    """Create the target tables (no keys yet) and register the run; or, when resuming, check what is there.

    Raises:
        TargetNotEmpty: planned tables exist and neither ``--drop-existing`` nor a resumable run allows it.
    """
    schema = plan.target_schema
    with connect(target) as conn:
        try:
            book = Bookkeeping(conn)
            book.ensure()
            conn.commit()
            planned = _planned_by_schema(plan)
            existing = {s: existing_relations(conn, s, names) for s, names in planned.items()}
            flat = [n if s == schema else f"{s}.{n}" for s, found in existing.items() for n in found]
            if plan.resumed:
                missing = sorted(f"{s}.{n}" for s, names in planned.items() for n in set(names) - set(existing[s]))
                if missing:
                    raise PlanError(f"cannot resume: tables {', '.join(missing)} of the interrupted run are gone "
                                    f"from the target; re-run with --drop-existing to start over")
                warnings = [] if options.online else recheck_resumed(
                    book, plan, lambda tp: qn(plan.schema_of(tp), tp.target),
                    lambda sql: conn.execute(sql).fetchone()[0], conn.execute, conn.commit)
                done = book.chunks_of_run(plan.run_key)
                return PrepareResult(resumed=True, done_chunks=len(done), warnings=warnings)
            if flat and not options.drop_existing:
                raise target_not_empty(plan, flat, run_of(target, plan.run_key, conn), has_schemas=True)
            conn.commit()  # the checks above began a transaction: the batches below must each be their own
            result = PrepareResult()
            batches = [plan.tables[i:i + DDL_BATCH_TABLES] for i in range(0, len(plan.tables), DDL_BATCH_TABLES)]
            committed: list[str] = []  # tables of earlier batches: dropped again if a later batch fails
            try:
                for no, batch in enumerate(batches or [[]]):
                    with conn.transaction():
                        if no == 0:
                            _before_tables(conn, plan, options, existing, flat, book, result)
                        for t in batch:
                            if not t.native:
                                ddl(conn, create_table_sql(plan.schema_of(t), t), f"table {t.source}",
                                    "nothing of this run was kept (the tables are created in one transaction, "
                                    f"or {DDL_BATCH_TABLES} at a time and dropped again)")
                            result.created_tables.append(t.target)
                        if no == len(batches) - 1 or not batches:
                            book.start_run(plan.run_key, schema, plan.model_dump_json(), plan.source_fingerprint)
                    committed += [qn(plan.schema_of(t), t.target) for t in batch if not t.native]
            except Exception:
                _drop_tables(conn, committed)
                raise
            return result
        except Exception as exc:
            raise translate_error(exc, f"preparing target schema {schema}") from None


#: tables created (or tried, ``check_ddl``) per transaction. A new table takes locks (itself, its TOAST table and
#: index) held to the end of its transaction, and the server's whole lock table holds max_locks_per_transaction x
#: (max_connections + max_prepared_transactions) locks (6,400 by default,
#: https://www.postgresql.org/docs/current/runtime-config-locks.html): 10,000 tables in one transaction failed
#: with "out of shared memory" at about 3,100.
DDL_BATCH_TABLES = 500


def _before_tables(conn, plan: MigrationPlan, options, existing: dict, flat: list[str], book, result) -> None:
    """Schemas, ``--drop-existing``'s drops and the source's own pre-data script: in the first batch's transaction."""
    schema = plan.target_schema
    for s in sorted(_planned_by_schema(plan)):
        if s != "public":
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qi(s)}")
    if options.drop_existing:
        views = existing_relations(conn, schema, [v.target for v in plan.views])
        for v in views:
            conn.execute(f"DROP VIEW IF EXISTS {qn(schema, v)} CASCADE")
        for s, found in existing.items():
            for name in found:
                conn.execute(f"DROP TABLE IF EXISTS {qn(s, name)} CASCADE")
        result.dropped = views + flat
        book.forget_run(plan.run_key)
    if plan.pre_data_sql:
        result.warnings = _run_script(conn, plan.pre_data_sql)


def _drop_tables(conn, names: list[str]) -> None:
    """Drop tables an earlier batch of this run created (a later batch failed), ``DDL_BATCH_TABLES`` a transaction."""
    try:
        conn.rollback()
        for i in range(0, len(names), DDL_BATCH_TABLES):
            with conn.transaction():
                for name in names[i:i + DDL_BATCH_TABLES]:
                    conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    except Exception as exc:  # noqa: BLE001 - the first error is the one to report
        log.warning("could not drop the tables this run created before it failed: %s", exc)


def split_sql(script: str) -> list[str]:
    """Split a SQL script into statements at top-level semicolons (quotes, dollar quotes and comments respected);
    psql meta-commands (lines starting with a backslash, such as pg_dump's \\restrict) are left out."""
    text = "\n".join(line for line in script.splitlines() if not line.startswith("\\"))
    out, cur, i, n = [], [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch in "'\"":
            j = i + 1
            while j < n:
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if ch == "$":
            m = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                cur.append(text[i:j])
                i = j
                continue
        if ch == ";":
            stmt = "".join(cur).strip()
            if stmt:
                out.append(stmt)
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    stmt = "".join(cur).strip()
    if stmt:
        out.append(stmt)
    return out


#: SQLSTATEs of "already exists": a type, function, sequence or schema the target had before
_EXISTS = {"42710", "42P07", "42723", "42P06"}


def _run_script(conn, script: str) -> list[str]:
    """Run the source's pre-data script statement by statement in this transaction; an object other than a
    planned table that the target already has is kept (and reported)."""
    import psycopg

    kept = []
    for stmt in split_sql(script):
        try:
            with conn.transaction():
                conn.execute(stmt)
        except psycopg.Error as exc:
            code = getattr(exc.diag, "sqlstate", None)
            if code in _EXISTS and not re.match(r"CREATE TABLE", stmt, re.I):
                kept.append(f"kept the target's existing {exc.diag.message_primary}")
                continue
            raise DDLFailed(exc, "the source's own schema (pg_dump's pre-data)", stmt,
                            "nothing of this run was kept (the schema is created in one transaction)") from None
    return kept


class DDLFailed(TerminalError):
    """A statement of the target's schema failed anyway: which object, which statement, and what to do."""

    def __init__(self, exc: BaseException, what: str, sql: str, state: str) -> None:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        stmt = " ".join(sql.split())
        super().__init__(f"creating {what} failed: {msg}. The statement: {stmt[:300]}{'…' if len(stmt) > 300 else ''}"
                         f". {state}; --dry-run shows the plan, and --exclude leaves an object out")


def ddl(conn, sql: str, what: str, state: str) -> None:
    """Run one statement of the schema; a failure names the object, the statement and the way out."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as exc:
        raise DDLFailed(exc, what, sql, state) from None


# ---------------------------------------------------------------------- after the copy


def _existing_names(conn, schema: str, table: str) -> set[str]:
    """Constraints and indexes the table has already (a resumed run builds only the rest), including those of
    its partitions when it is a partitioned table (the plan builds a partition's own keys too)."""
    rel = qn(schema, table)
    sql = ("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
           "UNION SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s")
    args: tuple = (rel, schema, table)
    if conn.info.server_version >= 120000:  # pg_partition_tree: no rows for a table that is not partitioned
        sql += (" UNION SELECT c.conname FROM pg_partition_tree(to_regclass(%s)) p "
                "JOIN pg_constraint c ON c.conrelid = p.relid "
                "UNION SELECT ic.relname FROM pg_partition_tree(to_regclass(%s)) p "
                "JOIN pg_index i ON i.indrelid = p.relid JOIN pg_class ic ON ic.oid = i.indexrelid")
        args += (rel, rel)
    return {r[0] for r in conn.execute(sql, args).fetchall()}


def finish_table(target: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
    """Primary key, unique constraints, indexes, CHECKs, identity restart, triggers and ANALYZE for one loaded table."""
    import psycopg

    schema = tp.target_schema or schema
    t0 = time.perf_counter()
    res = StepResult(table=tp.source)
    try:
        with connect(target, autocommit=True, settings=BUILD_SETTINGS) as conn:
            have = _existing_names(conn, schema, tp.target)
            for ix in sorted(tp.indexes, key=lambda i: {"primary": 0, "unique": 1, "index": 2}[i.kind]):
                if ix.name in have:
                    continue
                try:
                    conn.execute(index_sql(schema, tp.target, ix))
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
            for ck in tp.checks:
                if ck.name in have:
                    continue
                sql = f"ALTER TABLE {qn(schema, tp.target)} ADD CONSTRAINT {qi(ck.name)} CHECK ({ck.sql})"
                try:
                    conn.execute(sql)
                    res.created.append(ck.name)
                except psycopg.errors.CheckViolation:
                    conn.execute(sql + " NOT VALID")
                    res.warnings.append(f"{tp.source}: CHECK {ck.name} ({ck.sql}) is violated by rows the source "
                                        "holds; kept NOT VALID (new rows are checked)")
                except psycopg.Error as exc:
                    res.skipped.append({"kind": "check", "name": ck.name,
                                        "reason": f"CHECK ({ck.source_sql or ck.sql}) does not run on PostgreSQL: "
                                                  f"{exc.diag.message_primary}"})
            if tp.identity:
                col = qi(tp.identity)
                top = conn.execute(f"SELECT max({col}) FROM {qn(schema, tp.target)}").fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                conn.execute(f"ALTER TABLE {qn(schema, tp.target)} ALTER COLUMN {col} RESTART WITH {start}")
                res.created.append(f"identity {tp.identity} restarts at {start}")
            for c in tp.columns:
                if c.on_update == "now":
                    res.created.append(_touch_trigger(conn, schema, tp.target, c.target))
            conn.execute(analyze_sql(schema, tp))
    except psycopg.Error as exc:
        raise translate_error(exc, f"building keys and indexes of {tp.target}") from None
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


#: tables of more columns get ANALYZE of their key, index and foreign-key columns only. ANALYZE reads each
#: column of each sampled row on its own, and reaching column k of a row with variable-width columns walks the k
#: before it: a 1,000-column table of 20,000 rows took 69 s (100 columns: 0.4 s). Autovacuum's analyze, which
#: follows a bulk load by itself, fills in the other columns' statistics later, in the background.
ANALYZE_ALL_COLUMNS_UP_TO = 200


def analyze_sql(schema: str, tp: TablePlan) -> str:
    """``ANALYZE`` of the table: all its columns, or for a wide table its key, index and foreign-key columns."""
    if len(tp.columns) <= ANALYZE_ALL_COLUMNS_UP_TO:
        return f"ANALYZE {qn(schema, tp.target)}"
    names = {c.target for c in tp.columns}
    keyed = [c for ix in tp.indexes for c in ix.columns] + [c for fk in tp.foreign_keys for c in fk.columns]
    cols = list(dict.fromkeys(c for c in keyed if c in names)) or [tp.columns[0].target]
    return f"ANALYZE {qn(schema, tp.target)} ({', '.join(qi(c) for c in cols)})"


def _touch_trigger(conn, schema: str, table: str, column: str) -> str:
    """MySQL's ON UPDATE CURRENT_TIMESTAMP as a trigger: an UPDATE that changes the row but not this column
    sets it to the current moment (an UPDATE setting it explicitly keeps that value, as in MySQL)."""
    name = f"golive_touch_{table}_{column}"[:63]
    col = qi(column)
    conn.execute(
        f"CREATE OR REPLACE FUNCTION {qn(schema, name)}() RETURNS trigger LANGUAGE plpgsql AS $golive$ BEGIN "
        f"IF NEW.{col} IS NOT DISTINCT FROM OLD.{col} AND NEW IS DISTINCT FROM OLD THEN NEW.{col} := CURRENT_TIMESTAMP; "
        f"END IF; RETURN NEW; END $golive$")
    conn.execute(f"DROP TRIGGER IF EXISTS {qi(name)} ON {qn(schema, table)}")
    conn.execute(f"CREATE TRIGGER {qi(name)} BEFORE UPDATE ON {qn(schema, table)} FOR EACH ROW "
                 f"EXECUTE FUNCTION {qn(schema, name)}()")
    return f"trigger {name} (ON UPDATE CURRENT_TIMESTAMP of {column})"


def link_table(target: DatabaseURL, schema: str, table: str, fks: list[ForeignKeyPlan]) -> StepResult:
    """Foreign keys of one child table: add them NOT VALID (instant), then VALIDATE them.

    Validation takes a lock that does not block other tables' validations, so children are linked in
    parallel, each as soon as it and its parents have their keys. Rows referencing missing parents
    leave the key NOT VALID (new rows are still checked) and are reported with their count.
    """
    import psycopg

    t0 = time.perf_counter()
    res = StepResult(table=table)
    try:
        with connect(target, autocommit=True, settings=BUILD_SETTINGS) as conn:
            for fk in fks:
                row = conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s "
                                   "AND conrelid = to_regclass(%s)", (fk.name, qn(schema, fk.table))).fetchone()
                if row is None:
                    try:
                        conn.execute(foreign_key_sql(schema, fk, not_valid=True))
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
        f"(SELECT 1 FROM {qn(fk.ref_schema or schema, fk.ref_table)} p WHERE {on})").fetchone()[0]


def create_views(target: DatabaseURL, plan: MigrationPlan, finals: list[str] | None = None) -> StepResult:
    """Create the views whose SQL runs on PostgreSQL (report the others with the reason); then the
    statements that come last (``finals`` from the source: sequence values, triggers, materialized views' data)."""
    import psycopg

    schema = plan.target_schema
    res = StepResult(table="views")
    t0 = time.perf_counter()
    pending = [v for v in plan.views if not v.native]
    errors: dict[str, str] = {}
    with connect(target) as conn:
        conn.execute(f"SET search_path TO {qi(schema)}, public")
        existing = set(existing_relations(conn, schema, [v.target for v in pending]))
        pending = [v for v in pending if v.target not in existing]
        progress_made = True
        while pending and progress_made:  # views may depend on views defined later
            progress_made = False
            for v in list(pending):
                try:
                    with conn.transaction():
                        kind = "MATERIALIZED VIEW" if v.materialized else "VIEW"
                        conn.execute(f"CREATE {kind} {qn(schema, v.target)} AS {v.select}")
                    res.created.append(v.target)
                    pending.remove(v)
                    progress_made = True
                except psycopg.Error as exc:
                    errors[v.source] = exc.diag.message_primary or str(exc).splitlines()[0]
        for sql in list(plan.post_data_sql) + list(finals or []):
            try:
                with conn.transaction():
                    conn.execute(sql)
            except psycopg.Error as exc:
                res.warnings.append(f"could not run {sql[:120]!r} on the target: {exc.diag.message_primary}")
        conn.commit()
    for v in pending:
        res.skipped.append({"kind": "view", "name": v.source,
                            "reason": f"its SQL does not run on PostgreSQL: {errors.get(v.source, 'unknown error')}"})
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    with connect(target, autocommit=True) as conn:
        Bookkeeping(conn).set_status(run_key, "complete" if ok else "failed")


def runs_in(target: DatabaseURL, schema: str) -> list[tuple[str, dict]]:
    with connect(target, autocommit=True) as conn:
        return Bookkeeping(conn).runs_in(schema)


def chunks_of_run(target: DatabaseURL, run_key: str) -> dict:
    with connect(target, autocommit=True) as conn:
        return Bookkeeping(conn).chunks_of_run(run_key)


def rows_against_record(target: DatabaseURL, run_key: str) -> dict[str, tuple[int, int]]:
    with connect(target, autocommit=True) as conn:
        book = Bookkeeping(conn)
        run = book.get_run(run_key)
        if not run or not run.get("plan"):
            return {}
        plan = MigrationPlan.model_validate(run["plan"])
        return bookkeeping.rows_against_record(book, plan, lambda tp: qn(plan.schema_of(tp), tp.target),
                                               lambda sql: conn.execute(sql).fetchone()[0])


# ---------------------------------------------------------------------- the plan's DDL, tried before anything is written


def check_ddl(target: DatabaseURL, plan: MigrationPlan) -> None:
    """Every table golive creates itself (not the source's own DDL: PostgreSQL to PostgreSQL) tried in a scratch
    schema of a transaction that is rolled back (PostgreSQL's DDL is transactional: nothing stays), one per
    ``DDL_BATCH_TABLES`` tables."""
    tables = [t for t in plan.tables if not t.native]
    if not tables:
        return
    scratch = f"_golive_check_{uuid.uuid4().hex[:10]}"
    with connect(target, role="target") as conn:
        for i in range(0, len(tables), DDL_BATCH_TABLES):  # a transaction per batch: its locks stay bounded
            _check_ddl_batch(conn, plan, tables[i:i + DDL_BATCH_TABLES], scratch)


def _check_ddl_batch(conn, plan: MigrationPlan, tables: list[TablePlan], scratch: str) -> None:
    """``check_ddl`` for some of the tables, in one transaction rolled back."""
    import psycopg

    with conn.transaction(force_rollback=True):
        conn.execute(f"CREATE SCHEMA {qi(scratch)}")

        def attempt(sql: str) -> str | None:
            try:
                with conn.transaction():  # a savepoint: one failure does not end the others
                    conn.execute(sql)
                return None
            except psycopg.Error as exc:
                return str(exc)

        for tp in tables:
            def table(t: TablePlan) -> str | None:
                conn.execute(f"DROP TABLE IF EXISTS {qn(scratch, t.target)}")
                err = attempt(create_table_sql(scratch, t))
                if err is None:
                    pk = next((ix for ix in t.indexes if ix.kind == "primary"), None)
                    err = attempt(index_sql(scratch, t.target, pk)) if pk else None
                return err

            def column(c: ColumnPlan, with_default: bool) -> str | None:
                one = c if with_default else c.model_copy(update={"default_sql": None})
                return attempt(f"CREATE TEMPORARY TABLE {qi('_golive_column_' + uuid.uuid4().hex[:8])} "
                               f"({column_sql(one)})")

            fit_table_ddl(plan, tp, table=table, column=column,
                          check=lambda t, ck: attempt(f"ALTER TABLE {qn(scratch, t.target)} ADD CONSTRAINT "
                                                      f"{qi(ck.name)} CHECK ({ck.sql})"),
                          index=lambda t, ix: attempt(index_sql(scratch, t.target, ix)))


# ---------------------------------------------------------------------- DDL (plain functions of plan objects: testable without a database)


def column_sql(c: ColumnPlan) -> str:
    parts = [qi(c.target), c.sql_type]
    if c.identity:
        parts.append("GENERATED BY DEFAULT AS IDENTITY")
    elif c.generated_sql:
        parts.append(f"GENERATED ALWAYS AS ({c.generated_sql}) STORED")
    elif c.default_sql is not None:
        parts.append(f"DEFAULT {c.default_sql}")
    if not c.nullable or c.identity:
        parts.append("NOT NULL")
    return " ".join(parts)

def create_table_sql(schema: str, t: TablePlan) -> str:
    """CREATE TABLE without keys or indexes (those come after the data: faster, and rejects stay rows)."""
    cols = ",\n  ".join(column_sql(c) for c in t.columns)
    return f"CREATE TABLE {qn(schema, t.target)} (\n  {cols}\n)"

def index_sql(schema: str, table: str, ix: IndexPlan) -> str:
    if ix.definition_sql:
        return ix.definition_sql
    if ix.expression_sql is not None:
        cols = ix.expression_sql
    else:
        cols = ", ".join(qi(c) + (" DESC" if i < len(ix.descending) and ix.descending[i] else "")
                         for i, c in enumerate(ix.columns))
    if ix.kind == "primary":
        return f"ALTER TABLE {qn(schema, table)} ADD CONSTRAINT {qi(ix.name)} PRIMARY KEY ({cols})"
    if ix.kind == "unique" and ix.constraint and ix.where is None and ix.expression_sql is None:
        return f"ALTER TABLE {qn(schema, table)} ADD CONSTRAINT {qi(ix.name)} UNIQUE ({cols})"
    unique = "UNIQUE " if ix.kind == "unique" else ""
    where = f" WHERE {ix.where}" if ix.where else ""
    return f"CREATE {unique}INDEX {qi(ix.name)} ON {qn(schema, table)} ({cols}){where}"

def foreign_key_sql(schema: str, fk: ForeignKeyPlan, *, not_valid: bool = False) -> str:
    if fk.definition_sql:
        return (f"ALTER TABLE {qn(schema, fk.table)} ADD CONSTRAINT {qi(fk.name)} {fk.definition_sql}"
                + (" NOT VALID" if not_valid and "NOT VALID" not in fk.definition_sql.upper() else ""))
    sql = (f"ALTER TABLE {qn(schema, fk.table)} ADD CONSTRAINT {qi(fk.name)} FOREIGN KEY "
           f"({', '.join(map(qi, fk.columns))}) REFERENCES {qn(fk.ref_schema or schema, fk.ref_table)} "
           f"({', '.join(map(qi, fk.ref_columns))})")
    if fk.on_delete.upper() != "NO ACTION":
        sql += f" ON DELETE {fk.on_delete.upper()}"
    if fk.on_update.upper() != "NO ACTION":
        sql += f" ON UPDATE {fk.on_update.upper()}"
    if fk.deferrable:
        sql += " DEFERRABLE INITIALLY DEFERRED"
    if not_valid:
        sql += " NOT VALID"
    return sql

def copy_sql(schema: str, t: TablePlan, *, binary: bool = False) -> str:
    cols = ", ".join(qi(c.target) for c in t.columns if not c.generated_sql)
    return f"COPY {qn(schema, t.target)} ({cols}) FROM STDIN ({'FORMAT binary' if binary else COPY_OPTIONS})"


# ---------------------------------------------------------------------- the concern


class PostgresTarget(Target):
    """PostgreSQL as a migration target (see the module)."""

    def type_sql(self, t) -> str:
        return pt.type_sql(t)

    def render_default(self, d, t) -> str | None:
        return pt.render_default(d, t)

    def check_ddl(self, url: DatabaseURL, plan: MigrationPlan) -> None:
        check_ddl(url, plan)

    def chunk_writer(self, url: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan) -> ChunkWriter:
        return ChunkWriter(url, plan, tp, chunk)

    def find_resumable(self, url: DatabaseURL, run_key: str) -> dict | None:
        return find_resumable(url, run_key)

    def run_of(self, url: DatabaseURL, run_key: str) -> dict | None:
        return run_of(url, run_key)

    def check_target(self, url: DatabaseURL, plan: MigrationPlan, options) -> list[str]:
        return check_target(url, plan, options)

    def prepare(self, url: DatabaseURL, plan: MigrationPlan, options) -> PrepareResult:
        return prepare(url, plan, options)

    def finish_table(self, url: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
        return finish_table(url, schema, tp)

    def link_table(self, url: DatabaseURL, schema: str, table: str, fks) -> StepResult:
        return link_table(url, schema, table, fks)

    def create_views(self, url: DatabaseURL, plan: MigrationPlan, finals: list[str] | None = None) -> StepResult:
        return create_views(url, plan, finals)

    def complete(self, url: DatabaseURL, run_key: str, ok: bool) -> None:
        complete(url, run_key, ok)

    def runs_in(self, url: DatabaseURL, schema: str) -> list[tuple[str, dict]]:
        return runs_in(url, schema)

    def chunks_of_run(self, url: DatabaseURL, run_key: str) -> dict:
        return chunks_of_run(url, run_key)

    def rows_against_record(self, url: DatabaseURL, run_key: str) -> dict[str, tuple[int, int]]:
        return rows_against_record(url, run_key)

    # --- online migration (postgresql/online.py)

    def apply_changes(self, url: DatabaseURL, plan: MigrationPlan, rows, state) -> None:
        from golive.dialects.postgresql.online import apply_changes

        apply_changes(url, plan, rows, state)

    def capture_state(self, url: DatabaseURL, run_key: str):
        from golive.dialects.postgresql.online import capture_state

        return capture_state(url, run_key)

    def capture_states(self, url: DatabaseURL) -> list:
        from golive.dialects.postgresql.online import capture_states

        return capture_states(url)

    def save_capture_state(self, url: DatabaseURL, state) -> None:
        from golive.dialects.postgresql.online import save_capture_state

        save_capture_state(url, state)

    def reset_identities(self, url: DatabaseURL, plan: MigrationPlan) -> list[str]:
        from golive.dialects.postgresql.online import reset_identities

        return reset_identities(url, plan)

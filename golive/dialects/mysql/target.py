"""MySQL / MariaDB as a target: tables in utf8mb4, chunks bulk-loaded with LOAD DATA LOCAL INFILE, strict.

* **Loading**, strictly: ``load.py`` (LOAD DATA LOCAL INFILE streamed from the source, warnings as refusals).
* **No transactional DDL.** The run is recorded *before* the tables are created (status ``preparing``); a
  crash in between resumes by dropping what this run created and creating it again.
* **Keys after the data**: the primary key is part of CREATE TABLE (InnoDB clusters the rows on it, and the
  chunks arrive in key order); the other indexes and UNIQUE constraints are added in one ALTER TABLE per
  table; foreign keys after them (rows referencing missing parents are counted and reported, and the key is
  added with ``foreign_key_checks = 0`` so new rows are checked); ``AUTO_INCREMENT =`` the next value.
"""

from __future__ import annotations

import logging
import time

from golive.dialects import bookkeeping
from golive.dialects.base import Target, fit_table_ddl, target_not_empty
from golive.dialects.bookkeeping import recheck_resumed
from golive.dialects.mysql import types as mt
from golive.dialects.mysql.bookkeeping import MySQLBookkeeping
from golive.dialects.mysql.ddl import adjust_table, column_sql, create_table_sql, foreign_key_sql, index_clause
from golive.dialects.mysql.load import ChunkWriter, connect
from golive.dialects.mysql.session import connect as open_session, qi, translate_error
from golive.errors import GoliveError, PlanError, TerminalError
from golive.model.plan import ChunkPlan, ForeignKeyPlan, MigrationPlan, TablePlan
from golive.model.results import PrepareResult, StepResult
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- before the copy


def folds_case(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT @@lower_case_table_names")
        return int(cur.fetchone()[0]) != 0


def collation(conn) -> str:
    """A binary, no-pad collation: compares like PostgreSQL and SQLite (case and trailing spaces count)."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN "
                    "('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')")
        names = [r[0] for r in cur.fetchall()]
    return names[0] if names else "utf8mb4_bin"


def existing_tables(conn, names: list[str]) -> list[str]:
    if not names:
        return []
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("
                    + ", ".join(["%s"] * len(names)) + ")", names)
        return sorted(r[0] for r in cur.fetchall())


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    conn = connect(target)
    try:
        book = MySQLBookkeeping(conn)
        run = book.get_run(run_key)
        if run and run["status"] in ("preparing", "copying", "building"):
            run["chunks"] = book.chunks_of_run(run_key)
            return run
        return None
    finally:
        conn.close()


def _one(conn, sql: str):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def _run(conn, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def run_of(target: DatabaseURL, run_key: str, conn=None) -> dict | None:
    own = conn or connect(target)
    try:
        return MySQLBookkeeping(own).get_run(run_key)
    finally:
        if conn is None:
            own.close()


def check_target(target: DatabaseURL, plan: MigrationPlan, options) -> list[str]:
    conn = connect(target)
    try:
        return existing_tables(conn, [t.target for t in plan.tables])
    finally:
        conn.close()


def prepare(target: DatabaseURL, plan: MigrationPlan, options) -> PrepareResult:
    """Record the run, then create the tables (MySQL's DDL commits at once: a crash in between resumes)."""
    conn = connect(target, plan)
    try:
        book = MySQLBookkeeping(conn)
        book.ensure()
        conn.commit()
        names = [t.target for t in plan.tables]
        existing = existing_tables(conn, names)
        run = book.get_run(plan.run_key)
        if plan.resumed and run and run["status"] != "preparing":
            missing = sorted(set(names) - set(existing))
            if missing:
                raise PlanError(f"cannot resume: tables {', '.join(missing)} of the interrupted run are gone; "
                                "re-run with --drop-existing to start over")
            warnings = [] if options.online else recheck_resumed(
                book, plan, lambda tp: qi(tp.target), lambda sql: _one(conn, sql), lambda sql: _run(conn, sql),
                conn.commit)
            return PrepareResult(resumed=True, done_chunks=len(book.chunks_of_run(plan.run_key)), warnings=warnings)
        interrupted = plan.resumed and run and run["status"] == "preparing"
        if existing and not options.drop_existing and not interrupted:
            raise target_not_empty(plan, existing, run, has_schemas=False)
        result = PrepareResult()
        # the run first: a crash before the tables exist is resumable
        book.start_run(plan.run_key, plan.target_schema, plan.model_dump_json(), plan.source_fingerprint)
        book.set_status(plan.run_key, "preparing")
        conn.commit()
        coll = collation(conn)
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            if options.drop_existing or interrupted:
                for v in existing_tables(conn, [v.target for v in plan.views]):
                    cur.execute(f"DROP VIEW IF EXISTS {qi(v)}")
                for name in existing:
                    cur.execute(f"DROP TABLE IF EXISTS {qi(name)}")
                result.dropped = list(existing)
            for t in plan.tables:
                sql = create_table_sql(t, coll)
                try:
                    cur.execute(sql)
                except Exception as exc:  # noqa: BLE001 - the statement and the object named, then the way out
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    stmt = " ".join(sql.split())
                    raise TerminalError(
                        f"creating table {t.source} failed: {msg}. The statement: {stmt[:300]}"
                        f"{'…' if len(stmt) > 300 else ''}. The tables this run created are dropped when the same "
                        "command runs again; --dry-run shows the plan, and --exclude leaves a table out") from None
                result.created_tables.append(t.target)
        book.set_status(plan.run_key, "copying")
        conn.commit()
        return result
    except Exception as exc:
        raise translate_error(exc, "preparing the target database") from None
    finally:
        conn.close()


def check_ddl(target: DatabaseURL, plan: MigrationPlan) -> None:
    """Every planned table tried as a TEMPORARY table of one session (MySQL's DDL commits at once, but temporary
    tables are the session's own and go with it: nothing another session sees, nothing stays)."""
    conn = connect(target, plan)
    try:
        coll = collation(conn)

        def attempt(sql: str) -> str | None:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                return None
            except Exception as exc:  # noqa: BLE001 - the server's refusal, as its message
                return str(exc.args[1]) if len(exc.args) > 1 else str(exc)

        def scratch(t: TablePlan) -> str:
            return "_golive_check_" + str(abs(hash(t.target)))[:12]

        def table(t: TablePlan) -> str | None:
            attempt(f"DROP TEMPORARY TABLE IF EXISTS {qi(scratch(t))}")
            sql = create_table_sql(t, coll).replace(f"CREATE TABLE {qi(t.target)}",
                                                    f"CREATE TEMPORARY TABLE {qi(scratch(t))}", 1)
            return attempt(sql)

        def column(c, with_default: bool) -> str | None:
            one = c if with_default else c.model_copy(update={"default_sql": None})
            attempt("DROP TEMPORARY TABLE IF EXISTS `_golive_check_column`")
            return attempt(f"CREATE TEMPORARY TABLE `_golive_check_column` ({column_sql(one)}"
                           + (", KEY (" + qi(c.target) + "))" if c.identity else ")"))

        def index(t: TablePlan, ix) -> str | None:
            if ix.method or ix.expression_sql:  # FULLTEXT/SPATIAL: not on temporary tables; expressions: the keys
                return None                     # step says what MariaDB lacks (finish_table)
            return attempt(f"ALTER TABLE {qi(scratch(t))} {index_clause(t, ix)}")

        for tp in plan.tables:
            fit_table_ddl(plan, tp, table=table, column=column,
                          check=lambda t, ck: attempt(f"ALTER TABLE {qi(scratch(t))} ADD CONSTRAINT {qi(ck.name)} "
                                                      f"CHECK ({ck.sql})"),
                          index=index)
            attempt(f"DROP TEMPORARY TABLE IF EXISTS {qi(scratch(tp))}")
    finally:
        conn.close()


# ---------------------------------------------------------------------- after the copy


def finish_table(target: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
    """Secondary indexes and UNIQUE in one ALTER TABLE, CHECKs, AUTO_INCREMENT, ANALYZE."""
    t0 = time.perf_counter()
    res = StepResult(table=tp.source)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s", (tp.target,))
            have = {r[0] for r in cur.fetchall()}
            todo = [ix for ix in tp.indexes if ix.kind != "primary" and ix.name not in have]
            if any(ix.expression_sql for ix in todo) and "mariadb" in conn.get_server_info().lower():
                for ix in [ix for ix in todo if ix.expression_sql]:
                    res.skipped.append({"kind": "index", "name": ix.source_name or ix.name, "reason": (
                        f"an index on an expression ({ix.expression_sql}): MariaDB has none (MySQL 8.0.13+ has "
                        "functional indexes); add a generated column and index it if the app needs it")})
                todo = [ix for ix in todo if not ix.expression_sql]
            if todo:
                try:
                    cur.execute(f"ALTER TABLE {qi(tp.target)} " + ", ".join(index_clause(tp, ix) for ix in todo))
                    res.created += [ix.name for ix in todo]
                except Exception:  # one at a time, to name the one that fails
                    for ix in todo:
                        try:
                            cur.execute(f"ALTER TABLE {qi(tp.target)} {index_clause(tp, ix)}")
                            res.created.append(ix.name)
                        except Exception as exc:
                            code = exc.args[0] if exc.args else 0
                            msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                            if code == 1062:
                                res.errors.append(f"{tp.source}: unique index {ix.name} not created: duplicate "
                                                  f"values after conversion ({msg})")
                            else:
                                res.skipped.append({"kind": "index", "name": ix.source_name or ix.name,
                                                    "reason": f"does not translate to MySQL: {msg}"})
            cur.execute("SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s AND CONSTRAINT_TYPE = 'CHECK'", (tp.target,))
            have_checks = {r[0] for r in cur.fetchall()}
            for ck in tp.checks:
                if ck.name in have_checks:
                    continue
                try:
                    cur.execute(f"ALTER TABLE {qi(tp.target)} ADD CONSTRAINT {qi(ck.name)} CHECK ({ck.sql})")
                    res.created.append(ck.name)
                except Exception as exc:
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    res.skipped.append({"kind": "check", "name": ck.name,
                                        "reason": f"CHECK ({ck.source_sql or ck.sql}) not added: {msg}"})
            if tp.identity:
                cur.execute(f"SELECT MAX({qi(tp.identity)}) FROM {qi(tp.target)}")
                top = cur.fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                cur.execute(f"ALTER TABLE {qi(tp.target)} AUTO_INCREMENT = {start}")
                res.created.append(f"AUTO_INCREMENT of {tp.target} = {start}")
            cur.execute(f"ANALYZE TABLE {qi(tp.target)}")
            cur.fetchall()
    except Exception as exc:
        raise translate_error(exc, f"building the indexes of {tp.target}") from None
    finally:
        conn.close()
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def link_table(target: DatabaseURL, schema: str, table: str, fks: list[ForeignKeyPlan]) -> StepResult:
    """Foreign keys of one child table: golive counts the rows referencing missing parents (an anti-join), then
    adds the key in place with foreign_key_checks = 0 (InnoDB would otherwise copy the whole table to check
    it); new rows are checked by MySQL either way, and orphans found are reported with their count."""
    t0 = time.perf_counter()
    res = StepResult(table=table)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
            have = {r[0] for r in cur.fetchall()}
            for fk in fks:
                if fk.name in have:
                    continue
                n = orphan_count(cur, fk)  # golive's own check: InnoDB would rebuild the table to check it
                sql = foreign_key_sql(fk)
                try:
                    # added in place (no table copy); the rows were just checked, new ones are checked by MySQL
                    cur.execute("SET SESSION foreign_key_checks = 0")
                    cur.execute(sql)
                    res.created.append(fk.name)
                except Exception as exc:
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    res.skipped.append({"kind": "foreign key", "name": fk.name, "reason": msg})
                    continue
                if n:
                    res.warnings.append(
                        f"foreign key {fk.name}: {n} rows of {fk.source_table} reference missing {fk.source_ref_table} "
                        "rows; the key was added without checking them (new rows are checked). Fix the rows, then "
                        f"drop and re-add {fk.name} with foreign_key_checks = 1 to have MySQL check them")
    except Exception as exc:
        raise translate_error(exc, f"adding the foreign keys of {table}") from None
    finally:
        conn.close()
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def orphan_count(cur, fk: ForeignKeyPlan) -> int:
    on = " AND ".join(f"p.{qi(r)} = c.{qi(col)}" for col, r in zip(fk.columns, fk.ref_columns))
    notnull = " AND ".join(f"c.{qi(col)} IS NOT NULL" for col in fk.columns)
    cur.execute(f"SELECT COUNT(*) FROM {qi(fk.table)} c WHERE {notnull} AND NOT EXISTS "
                f"(SELECT 1 FROM {qi(fk.ref_table)} p WHERE {on})")
    return int(cur.fetchone()[0])


def create_views(target: DatabaseURL, plan: MigrationPlan, finals: list[str] | None = None) -> StepResult:
    res = StepResult(table="views")
    t0 = time.perf_counter()
    pending = list(plan.views)
    errors: dict[str, str] = {}
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            existing = set(existing_tables(conn, [v.target for v in pending]))
            pending = [v for v in pending if v.target not in existing]
            progress_made = True
            while pending and progress_made:
                progress_made = False
                for v in list(pending):
                    try:
                        cur.execute(f"CREATE VIEW {qi(v.target)} AS {v.select}")
                        res.created.append(v.target)
                        pending.remove(v)
                        progress_made = True
                    except Exception as exc:
                        errors[v.source] = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            for sql in list(plan.post_data_sql) + list(finals or []):
                try:
                    cur.execute(sql)
                except Exception as exc:
                    res.warnings.append(f"could not run {sql[:120]!r} on the target: {exc}")
        conn.commit()
    finally:
        conn.close()
    for v in pending:
        res.skipped.append({"kind": "view", "name": v.source,
                            "reason": f"its SQL does not run on MySQL: {errors.get(v.source, 'unknown error')}"})
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    conn = connect(target)
    try:
        MySQLBookkeeping(conn).set_status(run_key, "complete" if ok else "failed")
        conn.commit()
    finally:
        conn.close()


def runs_in(target: DatabaseURL, schema: str) -> list[tuple[str, dict]]:
    conn = connect(target)
    try:
        return MySQLBookkeeping(conn).runs_in(schema)
    finally:
        conn.close()


def chunks_of_run(target: DatabaseURL, run_key: str) -> dict:
    conn = connect(target)
    try:
        return MySQLBookkeeping(conn).chunks_of_run(run_key)
    finally:
        conn.close()


def rows_against_record(target: DatabaseURL, run_key: str) -> dict[str, tuple[int, int]]:
    conn = connect(target)
    try:
        book = MySQLBookkeeping(conn)
        run = book.get_run(run_key)
        if not run or not run.get("plan"):
            return {}
        plan = MigrationPlan.model_validate(run["plan"])
        return bookkeeping.rows_against_record(book, plan, lambda tp: qi(tp.target), lambda sql: _one(conn, sql))
    finally:
        conn.close()


# ---------------------------------------------------------------------- the concern


class MySQLTarget(Target):
    """MySQL / MariaDB as a migration target (see the module)."""

    def type_sql(self, t) -> str:
        return mt.type_sql(t)

    def render_default(self, d, t) -> str | None:
        return mt.render_default(d, t)

    def folds_case(self, url: DatabaseURL) -> bool:
        """Does the server compare table names case-insensitively (lower_case_table_names = 1 or 2)?"""
        try:
            conn = open_session(url, role="target")
        except GoliveError:
            return False
        try:
            return folds_case(conn)
        finally:
            conn.close()

    def adjust_table(self, tp: TablePlan, plan: MigrationPlan) -> None:
        adjust_table(tp, plan)

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

    # --- online migration (mysql/online.py)

    def apply_changes(self, url: DatabaseURL, plan: MigrationPlan, rows, state) -> None:
        from golive.dialects.mysql.online import apply_changes

        apply_changes(url, plan, rows, state)

    def capture_state(self, url: DatabaseURL, run_key: str):
        from golive.dialects.mysql.online import capture_state

        return capture_state(url, run_key)

    def capture_states(self, url: DatabaseURL) -> list:
        from golive.dialects.mysql.online import capture_states

        return capture_states(url)

    def save_capture_state(self, url: DatabaseURL, state) -> None:
        from golive.dialects.mysql.online import save_capture_state

        save_capture_state(url, state)

    def reset_identities(self, url: DatabaseURL, plan: MigrationPlan) -> list[str]:
        from golive.dialects.mysql.online import reset_identities

        return reset_identities(url, plan)

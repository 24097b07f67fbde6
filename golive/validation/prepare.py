"""Before comparing: find the migration's plan and rejects, count the source, record the source's orphans, load the suites.

The plan comes from the target's ``_golive.runs`` (the run whose key matches this source, target and
schema), so validation compares exactly what the migration decided (types, names, key ranges); a target
without such a record is planned afresh from the source. Rejected rows come from ``_golive.chunks``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field

from golive.config import MigrateOptions
from golive.dialects.postgresql import bookkeeping as state
from golive.migrate import planning
from golive.model.results import key_value
from golive.dialects.postgresql.dialect import PostgresDialect
from golive.dialects.postgresql.session import qi as pqi, qn
from golive.dialects.sqlite.dialect import SQLiteDialect
from golive.dialects.sqlite.session import qi as sqi
from golive.errors import ConfigError, TerminalError
from golive.model.plan import ForeignKeyPlan, MigrationPlan, TablePlan
from golive.urls import DatabaseURL
from golive.validation import suites as gs
from golive.validation.content import INT_MAX, INT_MIN, build_spec, key_ranges
from golive.validation.model import Difference, ExpectationOutcome, TableSpec
from golive.validation.options import ValidateOptions

log = logging.getLogger(__name__)

ORPHANS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {state.STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {gs.SOURCE_ORPHANS} (
  fk text NOT NULL,
  ref jsonb NOT NULL,
  rows bigint NOT NULL,
  PRIMARY KEY (fk, ref)
);
"""


class Setup(BaseModel):
    """Everything the comparisons and the suites need, computed once (small: no rows)."""

    plan: MigrationPlan
    run_key: str | None = None
    specs: list[TableSpec]
    source_rows: dict[str, int]
    rejected_rows: dict[str, int]
    suites: dict[str, dict]
    output_dir: str
    expectations_dir: str
    uncomparable: list[Difference] = Field(default_factory=list)
    stale: list[ExpectationOutcome] = Field(default_factory=list, description=(
        "Hand-written expectations naming columns the table does not have: failures, not run."))
    seconds: float = 0.0

    @property
    def expected_rows(self) -> dict[str, int]:
        return {t: self.source_rows[t] - self.rejected_rows.get(t, 0) for t in self.source_rows}

    def spec(self, table: str) -> TableSpec:
        return next(s for s in self.specs if s.source == table)


_prefetched: dict[str, Setup] = {}


def _key(src: DatabaseURL, dst: DatabaseURL, options: ValidateOptions) -> str:
    return "|".join([src.raw, dst.raw, options.model_dump_json()])


def prefetch(src: DatabaseURL, dst: DatabaseURL, options: ValidateOptions) -> Setup:
    """Prepare now and keep the result for the flow's prepare task in this process.

    The CLI prepares while Prefect starts up (they overlap) and refuses bad input (an unknown table)
    before any flow run exists; the task then takes this setup instead of reading the source again.
    """
    setup = prepare(src, dst, options)
    _prefetched[_key(src, dst, options)] = setup
    return setup


def take_prefetched(src: DatabaseURL, dst: DatabaseURL, options: ValidateOptions) -> Setup | None:
    return _prefetched.pop(_key(src, dst, options), None)


def find_run(src: DatabaseURL, dst: DatabaseURL, schema: str) -> tuple[MigrationPlan, str] | None:
    """The latest golive run of this source into this target schema, from ``_golive.runs``."""
    from golive.dialects import dialect_of

    rows = dialect_of(dst).target.runs_in(dst, schema)
    for run_key, plan_json in rows:
        plan = MigrationPlan.model_validate(plan_json)
        if planning.run_key(src, dst, schema, [t.source for t in plan.tables]) == run_key:
            return plan, run_key
    return None


def rejects_of_run(dst: DatabaseURL, run_key: str) -> dict[str, list[dict]]:
    from golive.dialects import dialect_of

    chunks = dialect_of(dst).target.chunks_of_run(dst, run_key)
    out: dict[str, list[dict]] = {}
    for (table, _), c in sorted(chunks.items()):
        for r in c.get("rejects") or []:
            out.setdefault(table, []).append(r.get("key") or {})
    return out


def prepare(src: DatabaseURL, dst: DatabaseURL, options: ValidateOptions, *, plan: MigrationPlan | None = None,
            run_key: str | None = None) -> Setup:
    """Plan, rejects, source counts, key ranges, the source's orphans and the suites.

    Args:
        plan: the migration's plan when the caller has it (the migration flow); else found or planned.
    """
    t0 = time.perf_counter()
    schema = options.target_schema
    if plan is None:
        found = find_run(src, dst, schema)
        if found is not None:
            plan, run_key = found
        else:
            log.info("no golive run recorded in the target for this source: planning from the source")
            plan = planning.build_plan(src, dst, MigrateOptions(target_schema=schema, identifiers=options.identifiers,
                                                                chunk_rows=options.chunk_rows))
            run_key = None
    tables = _select(plan, options.tables)
    rejects = rejects_of_run(dst, run_key) if run_key else {}
    counts = _count(src, plan, tables)
    specs = [key_ranges(src, build_spec(tp, schema, rejects.get(tp.source, []), plan), options.chunk_rows)
             for tp in tables]
    uncomparable = _odd_keys(src, dst, specs) if src.dialect == "sqlite" and dst.dialect == "postgresql" else []
    if dst.dialect == "postgresql":
        _settle_visibility(dst, specs)
    _record_source_orphans(src, dst, plan, tables, rejects)
    out_dir = Path(options.output_dir or _default_output(dst, schema))
    out_dir.mkdir(parents=True, exist_ok=True)
    suites_dir = expectations_dir(src, options)
    suites = gs.ensure_suites(plan, suites_dir, tables, regenerate=options.regenerate_suites)
    stale = []
    for tp in tables:
        suites[tp.source], left_out = gs.stale_hand_written(suites[tp.source], [c.target for c in tp.columns])
        stale += [ExpectationOutcome(table=tp.source, check="hand-written", expectation=kind, success=False,
                                     detail=message) for kind, message in left_out]
    return Setup(plan=plan, run_key=run_key, specs=specs, source_rows=counts,
                 rejected_rows={t: len(v) for t, v in rejects.items()}, suites=suites,
                 output_dir=str(out_dir.resolve()), expectations_dir=str(suites_dir.resolve()),
                 uncomparable=uncomparable, stale=stale, seconds=round(time.perf_counter() - t0, 3))


def _count(src: DatabaseURL, plan: MigrationPlan, tables: list[TablePlan]) -> dict[str, int]:
    """Rows in each source table now."""
    from golive.dialects import dialect_of

    return dialect_of(src).source.count_tables(src, plan, [tp.source for tp in tables])


def expectations_dir(src: DatabaseURL, options: ValidateOptions) -> Path:
    """The folder of this source database's suites: ``<expectations dir>/<source key>``."""
    return Path(options.expectations_dir or gs.DEFAULT_DIR) / gs.source_key(src)


def _settle_visibility(dst: DatabaseURL, specs: list[TableSpec]) -> None:
    """VACUUM the target tables compared in key order whose pages are not yet all-visible.

    Right after a load, concurrent copies keep VACUUM (and autovacuum) from marking pages all-visible;
    a key range of a table whose physical order is not its key order (a composite key, say) then costs
    a pass over most of the heap plus a sort, once per range. After a VACUUM the key's index answers
    each range alone (an index-only scan), and the app's own queries benefit the same way. VACUUM
    changes no data; without the rights to run it (not the owner) it is skipped with PostgreSQL's warning.
    """
    import psycopg

    wanted = [qn(s.schema_name, s.target) for s in specs if s.kind in ("intkey", "sorted")]
    if not wanted:
        return
    pg = PostgresDialect()
    try:
        with pg.connect(dst, autocommit=True) as conn:
            rows = conn.execute("SELECT t, c.relpages, c.relallvisible FROM unnest(%s::text[]) AS t "
                                "JOIN pg_class c ON c.oid = to_regclass(t)", (wanted,)).fetchall()
            for table, pages, visible in rows:
                if pages > 0 and visible < 0.9 * pages:
                    t0 = time.perf_counter()
                    conn.execute(f"VACUUM {table}")
                    log.info("VACUUM %s (%d pages, %d all-visible): %.2f s", table, pages, visible,
                             time.perf_counter() - t0)
    except psycopg.Error as exc:  # an optimisation only: the comparison works without it
        log.warning("could not VACUUM the target tables before comparing: %s", str(exc).strip().splitlines()[0])


def _select(plan: MigrationPlan, only: list[str] | None) -> list[TablePlan]:
    if not only:
        return list(plan.tables)
    names = [t.source for t in plan.tables]
    for name in only:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"the migration has no table {name!r}{hint}")
    return [t for t in plan.tables if t.source in only]


def _default_output(dst: DatabaseURL, schema: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    db = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in (dst.database or "db"))
    return str(Path("golive-runs") / "validation" / f"{db}-{schema}-{stamp}")


def _odd_keys(src: DatabaseURL, dst: DatabaseURL, specs: list[TableSpec]) -> list[Difference]:
    """Rows the key ranges cannot reach: a NULL or non-integer first key column (intkey tables only)."""
    out = []
    todo = [s for s in specs if s.kind == "intkey"]
    if not todo:
        return out
    sd, pg = SQLiteDialect(), PostgresDialect()
    sq = sd.connect(src)
    try:
        with pg.connect(dst, autocommit=True) as conn:
            for s in todo:
                exprs = {c.source: c.source_expr or sqi(c.source) for c in s.columns}  # as the copy read them
                k = exprs.get(s.key[0].source, sqi(s.key[0].source))
                keys = [k2.source for k2 in s.key]
                rows = sq.execute(f"SELECT {', '.join(exprs.get(x, sqi(x)) for x in keys)} FROM {sqi(s.source)} "
                                  f"WHERE {k} IS NULL OR {k} > {INT_MAX} OR {k} < {INT_MIN} LIMIT 1000").fetchall()
                rejected = {tuple(r.get(x) for x in keys) for r in s.rejected}
                left = [r for r in rows if tuple(key_value(v) for v in r) not in rejected]
                if left:
                    out.append(Difference(table=s.source, kind="uncomparable", key=dict(zip(keys, map(key_value, left[0]))),
                                          detail=f"{len(left)} source rows have a NULL or non-integer {s.key[0].source} "
                                                 f"and were not rejected (e.g. key {dict(zip(keys, map(key_value, left[0])))})"))
                n = conn.execute(f"SELECT count(*) FROM {qn(s.schema_name, s.target)} "
                                 f"WHERE {pqi(s.key[0].target)} IS NULL").fetchone()[0]
                if n:
                    out.append(Difference(table=s.source, kind="uncomparable",
                                          detail=f"{n} target rows have a NULL {s.key[0].target} (part of the key)"))
    finally:
        sq.close()
    return out


# ---------------------------------------------------------------------- orphans


def _record_source_orphans(src: DatabaseURL, dst: DatabaseURL, plan: MigrationPlan, tables: list[TablePlan],
                           rejects: dict[str, list[dict]]) -> None:
    """Record the dangling references the source already had, for the suites' foreign key checks.

    Only foreign keys PostgreSQL has not validated need it (a validated key has no orphans to excuse),
    and those whose parent lost rows to rejects (their children now dangle too, and rightly so).
    """
    schema = plan.target_schema
    fks = [(tp, fk) for tp in tables for fk in tp.foreign_keys]
    if dst.dialect == "mysql":
        return _record_source_orphans_mysql(src, dst, plan, fks, rejects)
    pg = PostgresDialect()
    try:
        with pg.connect(dst, autocommit=True) as conn:
            conn.execute(ORPHANS_DDL)
            validated = {r[0] for r in conn.execute(
                "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE c.contype = 'f' AND c.convalidated AND n.nspname = %s", (schema,))}
            labels = [f"{schema}.{fk.name}" for _, fk in fks]
            conn.execute(f"DELETE FROM {gs.SOURCE_ORPHANS} WHERE fk = ANY(%s)", (labels,))
            need = [(tp, fk) for tp, fk in fks if fk.name not in validated or rejects.get(fk.source_ref_table)]
            if not need:
                return
            side = _OrphanSource(src, plan)
            try:
                rows = []
                for tp, fk in need:
                    parent = plan.table(fk.source_ref_table)
                    for ref, n in side.orphans(tp, parent, fk, rejects.get(fk.source_ref_table, [])):
                        rows.append((f"{schema}.{fk.name}", json.dumps(ref, default=str), n))
            finally:
                side.close()
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO {gs.SOURCE_ORPHANS} (fk, ref, rows) VALUES (%s, %s::jsonb, %s) "
                                    "ON CONFLICT (fk, ref) DO UPDATE SET rows = EXCLUDED.rows", rows)
    except Exception as exc:
        from golive.dialects.postgresql.session import translate_error

        if isinstance(exc, TerminalError):
            raise
        raise translate_error(exc, "recording the source's orphan rows in _golive.source_orphans") from None


MY_ORPHANS_DDL = ("CREATE TABLE IF NOT EXISTS _golive_source_orphans (fk VARCHAR(255) NOT NULL, ref JSON NOT NULL, "
                  "rows_n BIGINT NOT NULL, ref_hash BINARY(32) AS (UNHEX(SHA2(ref, 256))) STORED, "
                  "UNIQUE KEY (fk, ref_hash)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")


def _record_source_orphans_mysql(src, dst, plan, fks, rejects) -> None:
    """The same for a MySQL target: every foreign key (MySQL has no validated/not-validated mark), in
    ``_golive_source_orphans``."""
    from golive.dialects.mysql.dialect import MySQLDialect
    from golive.dialects.mysql.session import translate_error as my_error

    try:
        conn = MySQLDialect().connect(dst, autocommit=True, role="target")
    except Exception:
        raise
    try:
        with conn.cursor() as cur:
            cur.execute(MY_ORPHANS_DDL)
            names = [fk.name for _, fk in fks]
            if names:
                cur.execute("DELETE FROM _golive_source_orphans WHERE fk IN (" + ", ".join(["%s"] * len(names)) + ")",
                            names)
            if not fks:
                return
            side = _OrphanSource(src, plan)
            try:
                rows = []
                for tp, fk in fks:
                    parent = plan.table(fk.source_ref_table)
                    for ref, n in side.orphans(tp, parent, fk, rejects.get(fk.source_ref_table, [])):
                        rows.append((fk.name, json.dumps(ref, default=str, ensure_ascii=False), n))
            finally:
                side.close()
            if rows:  # JSON_ARRAY(...) in the suites' queries builds the same text MariaDB stores for ref
                cur.executemany("INSERT INTO _golive_source_orphans (fk, ref, rows_n) VALUES (%s, JSON_COMPACT(%s), %s) "
                                "ON DUPLICATE KEY UPDATE rows_n = VALUES(rows_n)", rows)
    except Exception as exc:
        if isinstance(exc, TerminalError):
            raise
        raise my_error(exc, "recording the source's orphan rows in _golive_source_orphans") from None
    finally:
        conn.close()


class _OrphanSource:
    """The source's dangling references, in its own SQL (SQLite, MySQL or PostgreSQL)."""

    def __init__(self, src: DatabaseURL, plan: MigrationPlan):
        self.dialect = src.dialect
        if src.dialect == "sqlite":
            self.conn, self.q, self.ph = SQLiteDialect().connect(src), sqi, "?"
        elif src.dialect == "mysql":
            from golive.dialects.mysql import checksums as myc

            self.conn, self.q, self.ph = myc.connect(src), myc.quote, "%s"
        else:
            self.conn, self.q, self.ph = PostgresDialect().connect(src, autocommit=True, role="source"), pqi, "%s"

    def rel(self, tp: TablePlan) -> str:
        if self.dialect == "postgresql":
            return qn(tp.source_schema or "public", tp.source_name or tp.source)
        return self.q(tp.source)

    def run(self, sql: str, args: list):
        if self.dialect == "sqlite":
            return self.conn.execute(sql, args).fetchall()
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def orphans(self, child: TablePlan, parent: TablePlan, fk: ForeignKeyPlan, parent_rejects: list[dict]):
        """``(referenced values, rows)`` of the child's references with no parent row (rejected parents count as missing)."""
        q, ph = self.q, self.ph
        by_target_c = {c.target: c.source for c in child.columns}
        by_target_p = {c.target: c.source for c in parent.columns}
        ccols = [by_target_c[c] for c in fk.columns]
        pcols = [by_target_p[c] for c in fk.ref_columns]
        on = " AND ".join(f"p.{q(r)} = c.{q(c)}" for c, r in zip(ccols, pcols))
        notnull = " AND ".join(f"c.{q(c)} IS NOT NULL" for c in ccols)
        excl, args = "", []
        if parent_rejects:
            names = list(parent_rejects[0].keys())
            if self.dialect == "sqlite" and (names == ["rowid"] or (parent.identity and len(names) == 1)):
                ids = [int(r[names[0]]) for r in parent_rejects if isinstance(r.get(names[0]), (int, float))]
                excl = f" AND p.rowid NOT IN ({', '.join(map(str, ids))})" if ids else ""
            else:
                one = "(" + ", ".join(ph for _ in names) + ")"
                values = ", ".join(one for _ in parent_rejects)
                excl = (f" AND ({', '.join('p.' + q(n) for n in names)}) NOT IN "
                        + (f"(VALUES {values})" if self.dialect == "sqlite" else f"({values})"))
                args = [r.get(n) for r in parent_rejects for n in names]
        cols = ", ".join(f"c.{q(c)}" for c in ccols)
        sql = (f"SELECT {cols}, count(*) FROM {self.rel(child)} c WHERE {notnull} AND NOT EXISTS "
               f"(SELECT 1 FROM {self.rel(parent)} p WHERE {on}{excl}) GROUP BY {cols}")
        for row in self.run(sql, args):
            yield [key_value(v) for v in row[:-1]], row[-1]

    def close(self):
        self.conn.close()

"""Before comparing: find the migration's plan and rejects, count the source, record the source's orphans, load the suites.

The plan comes from the target's bookkeeping (the run whose key matches this source, target and schema), so
validation compares exactly what the migration decided (types, names, key ranges); a target without such a record
is planned afresh from the source. Rejected rows come from the same bookkeeping (the run's chunks).
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field

from golive.config import MigrateOptions
from golive.dialects import dialect_of
from golive.errors import ConfigError
from golive.migrate import planning
from golive.model.plan import ForeignKeyPlan, MigrationPlan, TablePlan
from golive.model.results import key_value
from golive.model.validation import Difference, ExpectationOutcome, TableSpec
from golive.urls import DatabaseURL, as_url
from golive.validation import suites as gs
from golive.validation.options import ValidateOptions
from golive.validation.specs import INT_MAX, INT_MIN, build_spec, key_ranges

log = logging.getLogger(__name__)


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


def _key(src: DatabaseURL | str, dst: DatabaseURL | str, options: ValidateOptions) -> str:
    return "|".join([as_url(src).raw, as_url(dst).raw, options.model_dump_json()])


def prefetch(src: DatabaseURL | str, dst: DatabaseURL | str, options: ValidateOptions) -> Setup:
    """Prepare now and keep the result for the flow's prepare task in this process.

    The CLI prepares while Prefect starts up (they overlap) and refuses bad input (an unknown table)
    before any flow run exists; the task then takes this setup instead of reading the source again.
    """
    setup = prepare(src, dst, options)
    _prefetched[_key(src, dst, options)] = setup
    return setup


def take_prefetched(src: DatabaseURL | str, dst: DatabaseURL | str, options: ValidateOptions) -> Setup | None:
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


def prepare(src: DatabaseURL | str, dst: DatabaseURL | str, options: ValidateOptions, *,
            plan: MigrationPlan | None = None, run_key: str | None = None) -> Setup:
    """Plan, rejects, source counts, key ranges, the source's orphans and the suites.

    Args:
        plan: the migration's plan when the caller has it (the migration flow); else found or planned.
    """
    src, dst = as_url(src, role="source"), as_url(dst, role="target")
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
    uncomparable = _odd_keys(src, dst, specs) if dialect_of(src).checksums.loose_keys else []
    dialect_of(dst).checksums.settle(dst, specs)
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
    """Rows the key ranges cannot reach: a NULL or non-integer first key column (intkey tables only), on a
    source whose columns hold values of any type (``Checksums.loose_keys``)."""
    out = []
    todo = [s for s in specs if s.kind == "intkey"]
    if not todo:
        return out
    source = dialect_of(src).checksums.side(src, None, "source")
    try:
        target = dialect_of(dst).checksums.side(dst, None, "target")
        try:
            for s in todo:
                q = source.quote
                exprs = {c.source: c.source_expr or q(c.source) for c in s.columns}  # as the copy read them
                k = exprs.get(s.key[0].source, q(s.key[0].source))
                keys = [k2.source for k2 in s.key]
                rows = source.run(f"SELECT {', '.join(exprs.get(x, q(x)) for x in keys)} "
                                  f"FROM {source.relation(s.source_schema, s.source_name or s.source)} "
                                  f"WHERE {k} IS NULL OR {k} > {INT_MAX} OR {k} < {INT_MIN} LIMIT 1000", [])
                rejected = {tuple(r.get(x) for x in keys) for r in s.rejected}
                left = [r for r in rows if tuple(key_value(v) for v in r) not in rejected]
                if left:
                    example = dict(zip(keys, map(key_value, left[0])))
                    out.append(Difference(table=s.source, kind="uncomparable", key=example,
                                          detail=f"{len(left)} source rows have a NULL or non-integer {s.key[0].source} "
                                                 f"and were not rejected (e.g. key {example})"))
                n = target.run(f"SELECT count(*) FROM {target.relation(s.schema_name, s.target)} "
                               f"WHERE {target.quote(s.key[0].target)} IS NULL", [])[0][0]
                if n:
                    out.append(Difference(table=s.source, kind="uncomparable",
                                          detail=f"{n} target rows have a NULL {s.key[0].target} (part of the key)"))
        finally:
            target.close()
    finally:
        source.close()
    return out


# ---------------------------------------------------------------------- orphans


def _record_source_orphans(src: DatabaseURL, dst: DatabaseURL, plan: MigrationPlan, tables: list[TablePlan],
                           rejects: dict[str, list[dict]]) -> None:
    """Record the dangling references the source already had, for the suites' foreign key checks.

    The target decides which foreign keys need it (``Checksums.record_source_orphans``: PostgreSQL only those it
    has not validated, and those whose parent lost rows to rejects); the source is read only for those.
    """
    fks = [(tp, fk) for tp in tables for fk in tp.foreign_keys]
    finder = _OrphanFinder(src, plan, rejects)
    try:
        dialect_of(dst).checksums.record_source_orphans(dst, plan.target_schema, fks, rejects, finder.orphans)
    finally:
        finder.close()


class _OrphanFinder:
    """The source's dangling references, in its own SQL (a ``Checksums.Side`` on the source, opened on first use)."""

    def __init__(self, src: DatabaseURL, plan: MigrationPlan, rejects: dict[str, list[dict]]):
        self.src, self.plan, self.rejects = src, plan, rejects
        self.side = None

    def orphans(self, child: TablePlan, fk: ForeignKeyPlan) -> list[tuple[list, int]]:
        """``(referenced values, rows)`` of the child's references with no parent row (rejected parents count as missing)."""
        if self.side is None:
            self.side = dialect_of(self.src).checksums.side(self.src, None, "source")
        side = self.side
        parent = self.plan.table(fk.source_ref_table)
        parent_rejects = self.rejects.get(fk.source_ref_table, [])
        q, ph = side.quote, side.ph
        by_target_c = {c.target: c.source for c in child.columns}
        by_target_p = {c.target: c.source for c in parent.columns}
        ccols = [by_target_c[c] for c in fk.columns]
        pcols = [by_target_p[c] for c in fk.ref_columns]
        on = " AND ".join(f"p.{q(r)} = c.{q(c)}" for c, r in zip(ccols, pcols))
        notnull = " AND ".join(f"c.{q(c)} IS NOT NULL" for c in ccols)
        excl, args = "", []
        if parent_rejects:
            names = list(parent_rejects[0].keys())
            if side.rowid and (names == ["rowid"] or (parent.identity and len(names) == 1)):
                ids = [int(r[names[0]]) for r in parent_rejects if isinstance(r.get(names[0]), (int, float))]
                excl = f" AND p.{side.rowid} NOT IN ({', '.join(map(str, ids))})" if ids else ""
            else:
                one = "(" + ", ".join(ph for _ in names) + ")"
                values = ("VALUES " if side.values_rows else "") + ", ".join(one for _ in parent_rejects)
                excl = f" AND ({', '.join('p.' + q(n) for n in names)}) NOT IN ({values})"
                args = [r.get(n) for r in parent_rejects for n in names]
        cols = ", ".join(f"c.{q(c)}" for c in ccols)

        def rel(tp: TablePlan) -> str:
            return side.relation(tp.source_schema, tp.source_name or tp.source)

        sql = (f"SELECT {cols}, count(*) FROM {rel(child)} c WHERE {notnull} AND NOT EXISTS "
               f"(SELECT 1 FROM {rel(parent)} p WHERE {on}{excl}) GROUP BY {cols}")
        return [([key_value(v) for v in row[:-1]], row[-1]) for row in side.run(sql, args)]

    def close(self) -> None:
        if self.side is not None:
            self.side.close()

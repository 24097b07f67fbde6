"""Plan a migration: read the source schema, profile the values, decide types and names, split into chunks.

``build_plan`` is pure reading: it never writes anywhere. The result (``golive.plan.MigrationPlan``) is
what ``--dry-run`` prints and what the copy executes.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

from golive.config import MigrateOptions
from golive.dialects import sqlite_types as st
from golive.dialects.postgresql import PostgresDialect, fit_identifier
from golive.dialects.sqlite import SQLiteDialect, qi
from golive.errors import ConfigError, PlanError
from golive.plan import (ChunkPlan, ColumnPlan, ForeignKeyPlan, IndexPlan, MigrationPlan, Renamed, Skipped,
                         TablePlan, ViewPlan)
from golive.schema import SourceSchema, Table
from golive.types import CT, TargetType
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


def snake_case(name: str) -> str:
    """``createdAt`` -> ``created_at``, ``InvoiceLine`` -> ``invoice_line``, ``HTTPServer`` -> ``http_server``."""
    s = re.sub(r"[^\w]+", "_", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"_+", "_", s).strip("_").lower()
    return s or name


class Namer:
    """Turns source names into target names: case mode, the 63-byte limit, and no collisions.

    One ``Namer`` per namespace (relations of a schema; columns of a table; constraints of a schema).
    """

    def __init__(self, mode: str, kind: str, renamed: list[Renamed], limit: int = 63):
        self.mode, self.kind, self.renamed, self.limit = mode, kind, renamed, limit
        self.used: dict[str, str] = {}

    def __call__(self, source: str, *, derived: bool = False) -> str:
        want = snake_case(source) if self.mode == "snake" and not derived else source
        name = fit_identifier(want, self.limit)
        reason = []
        if want != source and not derived:
            reason.append("snake_case")
        if name != want:
            reason.append(f"longer than {self.limit} bytes")
        base, n = name, 2
        while name in self.used:
            suffix = f"_{n}"
            name = fit_identifier(base, self.limit - len(suffix)) + suffix
            n += 1
        if name != base:
            reason.append(f"collides with {self.used[base]!r}")
        self.used[name] = source
        if reason and not derived:
            self.renamed.append(Renamed(kind=self.kind, source=source, target=name, reason=", ".join(reason)))
        elif name != want and derived:
            self.renamed.append(Renamed(kind=self.kind, source=want, target=name, reason=", ".join(reason)))
        return name


def select_tables(schema: SourceSchema, only: list[str] | None, exclude: list[str]) -> list[Table]:
    names = [t.name for t in schema.tables]
    for wanted in (only or []) + list(exclude):
        if wanted not in names:
            close = difflib.get_close_matches(wanted, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"source has no table {wanted!r}{hint}")
    chosen = [t for t in schema.tables if (only is None or t.name in only) and t.name not in exclude]
    if not chosen:
        raise ConfigError("no tables to migrate (the source is empty or every table was excluded)")
    return chosen


def dependency_order(tables: list[Table]) -> list[Table]:
    """Parents before children (Kahn's algorithm, stable); cycles keep source order."""
    by_name = {t.name: t for t in tables}
    deps = {t.name: {fk.ref_table for fk in t.foreign_keys if fk.ref_table in by_name and fk.ref_table != t.name}
            for t in tables}
    out, done = [], set()
    while len(out) < len(tables):
        ready = [t for t in tables if t.name not in done and deps[t.name] <= done]
        if not ready:  # a cycle: take the first remaining table
            ready = [next(t for t in tables if t.name not in done)]
        for t in ready:
            out.append(t)
            done.add(t.name)
    return out


def run_key(source: DatabaseURL, target: DatabaseURL, schema: str, tables: list[str]) -> str:
    src = str(source.path.resolve()) if source.path else source.masked
    tgt = f"{target.host}:{target.port}/{target.database}" if target.dialect == "postgresql" else str(target.path)
    raw = "|".join([src, tgt, schema, ",".join(sorted(tables))])
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def source_fingerprint(source: DatabaseURL) -> str:
    """Size and modification time of the SQLite file and its WAL: a changed source is detected on resume."""
    parts = []
    for suffix in ("", "-wal"):
        p = str(source.path) + suffix
        if os.path.exists(p):
            s = os.stat(p)
            parts.append(f"{s.st_size}:{s.st_mtime_ns}")
    return "/".join(parts)


def build_plan(source: DatabaseURL, target: DatabaseURL, options: MigrateOptions, *, deep: bool = False,
               resume=None) -> MigrationPlan:
    """Read and profile the source and decide everything the copy will do.

    Args:
        source: the SQLite database.
        target: the target database (only its identity is used here; nothing is written).
        options: what to migrate and how.
        deep: also predict the values the target will reject and sample them (dry run).
        resume: ``run_key -> stored run or None``; a stored, interrupted run's plan is reused as-is.
    """
    t0 = time.perf_counter()
    if source.dialect != "sqlite":
        raise ConfigError(f"source {source.masked}: only SQLite sources are supported so far")
    sd = SQLiteDialect()
    pg = PostgresDialect()
    conn = sd.connect(source)
    try:
        schema = sd.introspect(conn)
        tables = dependency_order(select_tables(schema, options.tables, options.exclude))
        key = run_key(source, target, options.target_schema, [t.name for t in tables])
        stored = resume(key) if resume else None
        if stored is not None:
            plan = MigrationPlan.model_validate(stored["plan"])
            if stored.get("source_fingerprint") and stored["source_fingerprint"] != source_fingerprint(source):
                raise PlanError(
                    f"the source changed since the interrupted run started ({stored['started_at']:%Y-%m-%d %H:%M} UTC), "
                    "so it cannot be resumed safely; re-run with --drop-existing to start over")
            if plan.identifiers != options.identifiers:
                raise PlanError(
                    f"an interrupted run of this migration used --identifiers {plan.identifiers}; re-run with the same "
                    "options to resume it, or add --drop-existing to start over")
            plan.resumed = True
            plan.planned_seconds = round(time.perf_counter() - t0, 3)
            return plan
        plan = MigrationPlan(
            run_key=key,
            source=source.masked, target=target.masked, target_schema=options.target_schema,
            identifiers=options.identifiers, source_fingerprint=source_fingerprint(source),
        )
        selected = {t.name for t in tables}
        for t in schema.tables:
            if t.name not in selected:
                plan.skipped.append(Skipped(kind="table", name=t.name, reason="excluded by --tables/--exclude"))

        counts, profiles = _profile_all(sd, source, tables, deep=deep, workers=max(2, options.workers))

        relations = Namer(options.identifiers, "table", plan.renamed)
        table_names = {t.name: relations(t.name) for t in tables}
        decided: dict[tuple[str, str], TargetType] = {}
        constraint_names = Namer(options.identifiers, "constraint", plan.renamed)
        constraint_names.used = relations.used  # indexes and tables share one namespace in PostgreSQL
        for t in tables:
            plan.tables.append(_plan_table(t, table_names, counts[t.name], profiles[t.name], decided, options,
                                           relations, constraint_names, plan, pg, sd, conn, deep))
        for t in tables:  # foreign keys need every table planned first
            _plan_foreign_keys(t, plan, table_names, constraint_names)
        view_names = relations
        for v in schema.views:
            plan.views.append(ViewPlan(source=v.name, target=view_names(v.name), select=v.select))
        for tr in schema.triggers:
            if tr.table in selected:
                plan.skipped.append(Skipped(kind="trigger", name=tr.name, reason=(
                    f"triggers are not translated (on {tr.table}); recreate it in PL/pgSQL if the app relies on it")))
    finally:
        conn.close()
    plan.planned_seconds = round(time.perf_counter() - t0, 3)
    return plan


# ---------------------------------------------------------------------- profiling

def _profile_all(sd: SQLiteDialect, source: DatabaseURL, tables: list[Table], *, deep: bool, workers: int):
    """Count rows and profile every table, tables in parallel (SQLite releases the GIL while scanning)."""

    def one(t: Table):
        conn = sd.connect(source)
        try:
            rows = sd.count_rows(conn, t.name)
            return t.name, rows, _profile_table(conn, t, deep=deep, rowid_keyed=rowid_keyed)
        finally:
            conn.close()

    # tables whose single-column key is the rowid: foreign keys to them become bigint
    rowid_keyed = {t.name: t.rowid_alias for t in tables if t.rowid_alias}
    counts, profiles = {}, {}
    order = sorted(tables, key=lambda t: -len(t.columns))
    with ThreadPoolExecutor(max_workers=min(workers, len(tables)) or 1) as ex:
        for name, rows, prof in ex.map(one, order):
            counts[name], profiles[name] = rows, prof
    return counts, profiles


def _profile_table(conn, t: Table, *, deep: bool, rowid_keyed: dict | None = None) -> dict[str, st.ColumnProfile]:
    rowid_keyed = rowid_keyed or {}
    keys, exprs, decls = [], [], {}
    # a column referencing a rowid key takes the key's type (bigint): its own range does not matter
    rowid_children = {fk.columns[0] for fk in t.foreign_keys
                      if len(fk.columns) == 1 and fk.ref_table in rowid_keyed
                      and fk.ref_columns in ([], [rowid_keyed[fk.ref_table]])}
    for c in t.columns:
        d = st.classify(c.declared)
        decls[c.name] = d
        if (c.name == t.rowid_alias or (c.name in rowid_children and d.kind in ("smallint", "int", "bigint"))) \
                and not deep:
            continue
        for key, sql in st.profile_sql(c, d, deep=deep):
            keys.append((c.name, key))
            exprs.append(sql)
    values = {}
    if exprs:
        # SQLite allows up to 2000 result columns by default: split very wide tables
        for start in range(0, len(exprs), 1500):
            row = conn.execute(f"SELECT {', '.join(exprs[start:start + 1500])} FROM {qi(t.name)}").fetchone()
            for (col, key), v in zip(keys[start:start + 1500], row):
                values.setdefault(col, {})[key] = v
    out = {}
    for c in t.columns:
        d = decls[c.name]
        p = st.read_profile(c, d, values.get(c.name, {}))
        if p.has_non_numeric and d.kind in ("smallint", "int", "bigint", "decimal", "float", "bool"):
            # text/blob values sort above numbers: measure the numeric range on its own
            p.num_min, p.num_max = conn.execute(
                f"SELECT min({qi(c.name)}), max({qi(c.name)}) FROM {qi(t.name)} "
                f"WHERE typeof({qi(c.name)}) IN ('integer', 'real')").fetchone()
        if deep and p.predicted_rejects:
            cond = st._bad_value_condition(qi(c.name), d)
            p.samples = [_show(v) for (v,) in conn.execute(
                f"SELECT {qi(c.name)} FROM {qi(t.name)} WHERE {cond} LIMIT 3")]
        out[c.name] = p
    return out


def _show(v) -> str:
    if isinstance(v, bytes):
        try:
            v = v.decode("utf-8")
        except UnicodeDecodeError:
            return "x'" + v[:32].hex() + ("…'" if len(v) > 32 else "'")
    s = "".join(ch if ch >= " " or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in str(v))
    return s if len(s) <= 80 else s[:77] + "…"


# ---------------------------------------------------------------------- tables

def _plan_table(t: Table, table_names, rows, profiles, decided, options, relations: Namer, constraints: Namer,
                plan: MigrationPlan, pg: PostgresDialect, sd: SQLiteDialect, conn, deep: bool) -> TablePlan:
    target = table_names[t.name]
    col_names = Namer(options.identifiers, f"column of {t.name}", plan.renamed)
    parent_of = {}
    for fk in t.foreign_keys:
        for i, col in enumerate(fk.columns):
            parent_of[col] = (fk.ref_table, fk.ref_columns[i] if fk.ref_columns else None)
    cols: list[ColumnPlan] = []
    # the primary key first, so self-references can follow its type
    ordered = sorted(t.columns, key=lambda c: (c.pk_position == 0, c.pk_position))
    planned = {}
    for c in ordered:
        d = st.classify(c.declared)
        p = profiles[c.name]
        parent = None
        if c.name in parent_of:
            ref_table, ref_col = parent_of[c.name]
            if ref_col is None and ref_table == t.name and len(t.primary_key) == 1:
                ref_col = t.primary_key[0]
            parent = decided.get((ref_table, ref_col)) if ref_col else None
            if parent is None and ref_table != t.name:
                parent = _parent_pk_type(decided, ref_table, ref_col)
            if parent is not None and parent.ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT):
                own = st.decide(c, d, p, rowid_pk=False, parent=None).type
                if own.ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT) and _int_rank(own.ct) > _int_rank(parent.ct):
                    parent = own
        dec = st.decide(c, d, p, rowid_pk=(c.name == t.rowid_alias), parent=parent)
        decided[(t.name, c.name)] = dec.type
        default_sql, note = st.translate_default(c.default, dec.type)
        notes = list(dec.notes)
        if note:
            notes.append(note)
            plan.warnings.append(f"{t.name}.{c.name}: {note}")
        if c.generated:
            notes.append("generated column in SQLite: copied as a plain column")
            plan.warnings.append(f"{t.name}.{c.name}: generated column copied as a plain column (values kept)")
        if c.collation == "NOCASE":
            plan.warnings.append(f"{t.name}.{c.name}: COLLATE NOCASE; PostgreSQL compares case-sensitively "
                                 "(use citext or lower() indexes if the app relies on it)")
        if p.predicted_rejects:
            notes.append(f"{p.predicted_rejects} values will likely be rejected"
                         + (f", e.g. {', '.join(repr(s) for s in p.samples)}" if p.samples else ""))
        planned[c.name] = ColumnPlan(
            source=c.name, target="", declared=c.declared, type=dec.type, sql_type=pg.type_sql(dec.type),
            nullable=c.nullable and c.pk_position == 0, default_sql=default_sql,
            identity=c.name == t.rowid_alias, reason=dec.reason, notes=notes,
            predicted_rejects=p.predicted_rejects, values=p.values)
    for c in t.columns:  # names in source column order
        cp = planned[c.name]
        cp.target = col_names(c.name)
        cols.append(cp)
    tcol = {c.source: c.target for c in cols}

    indexes: list[IndexPlan] = []
    if t.primary_key:
        indexes.append(IndexPlan(name=constraints(f"{target}_pkey", derived=True), kind="primary",
                                 columns=[tcol[c] for c in t.primary_key]))
    for ix in t.indexes:
        cols_ok = [c if c != "rowid" else t.rowid_alias for c in ix.columns]
        if any(c is None for c in cols_ok):
            plan.skipped.append(Skipped(kind="index", name=ix.name,
                                        reason="indexes the rowid, which does not exist in PostgreSQL"))
            continue
        if any(ix.collations):
            plan.warnings.append(f"index {ix.name}: collation {', '.join(c for c in ix.collations if c)} dropped "
                                 "(PostgreSQL compares case-sensitively)")
        kind = "unique" if ix.unique else "index"
        if ix.origin == "u":
            name = constraints(f"{target}_{'_'.join(tcol[c] for c in cols_ok)}_key", derived=True)
        else:
            name = constraints(ix.name)
        expr = None
        if ix.expressions:
            expr = _index_expressions(ix.sql or "")
            if expr is None:
                plan.skipped.append(Skipped(kind="index", name=ix.name, reason="expression index that could not be read"))
                continue
        indexes.append(IndexPlan(name=name, kind=kind, columns=[tcol[c] for c in cols_ok] if not expr else [],
                                 descending=ix.descending, where=ix.where, expression_sql=expr,
                                 constraint=ix.origin == "u", source_name=ix.name))
    for check in t.checks:
        plan.warnings.append(f"{t.name}: CHECK ({check}) not translated")

    chunks = [ChunkPlan(no=i, lo=lo, hi=hi, rows=n)
              for i, (lo, hi, n) in enumerate(sd.chunk_ranges(conn, t, rows, options.chunk_rows))]
    key = list(t.primary_key) if t.primary_key else (["rowid"] if t.has_rowid else [c.name for c in t.columns])
    identity = tcol[t.rowid_alias] if t.rowid_alias else None
    return TablePlan(
        source=t.name, target=target, rows=rows, columns=cols, key=key, has_rowid=t.has_rowid, rowid_name=t.rowid_name,
        indexes=indexes, identity=identity, sequence_floor=t.sequence if t.autoincrement else None,
        chunks=chunks, line_sql=st.line_sql([(t.column(c.source), c.type) for c in cols]),
        careful_sql=st.careful_line_sql([(t.column(c.source), c.type) for c in cols]),
    )


def _int_rank(ct: CT) -> int:
    return {CT.SMALLINT: 0, CT.INTEGER: 1, CT.BIGINT: 2}[ct]


def _parent_pk_type(decided, table: str, col: str | None) -> TargetType | None:
    if col is not None:
        return decided.get((table, col))
    return None


def _index_expressions(sql: str) -> str | None:
    m = re.search(r"\bON\s+(?:\"(?:[^\"]|\"\")+\"|`[^`]+`|\[[^\]]+\]|[\w.]+)\s*\(", sql, re.I)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(sql) and depth:
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        i += 1
    return sql[m.end():i - 1].strip() or None


def _plan_foreign_keys(t: Table, plan: MigrationPlan, table_names: dict, constraints: Namer) -> None:
    tp = plan.table(t.name)
    for fk in t.foreign_keys:
        label = f"{t.name}({', '.join(fk.columns)}) -> {fk.ref_table}"
        if fk.ref_table not in table_names:
            plan.skipped.append(Skipped(kind="foreign key", name=label,
                                        reason=f"parent table {fk.ref_table!r} is not migrated or does not exist"))
            continue
        parent = plan.table(fk.ref_table)
        ref_cols = fk.ref_columns
        if not ref_cols:
            pk = next((ix for ix in parent.indexes if ix.kind == "primary"), None)
            if pk is None:
                plan.skipped.append(Skipped(kind="foreign key", name=label,
                                            reason=f"parent table {fk.ref_table!r} has no primary key to reference"))
                continue
            ref_target = pk.columns
        else:
            try:
                ref_target = [parent.column(c).target for c in ref_cols]
            except KeyError as exc:
                plan.skipped.append(Skipped(kind="foreign key", name=label,
                                            reason=f"parent column {exc.args[0]!r} does not exist"))
                continue
            keyed = any(ix.kind in ("primary", "unique") and ix.where is None and ix.expression_sql is None
                        and sorted(ix.columns) == sorted(ref_target) for ix in parent.indexes)
            if not keyed:
                plan.skipped.append(Skipped(kind="foreign key", name=label, reason=(
                    "the referenced columns are not a primary key or unique in the parent "
                    "(PostgreSQL requires it)")))
                continue
        try:
            cols = [tp.column(c).target for c in fk.columns]
        except KeyError as exc:
            plan.skipped.append(Skipped(kind="foreign key", name=label, reason=f"column {exc.args[0]!r} does not exist"))
            continue
        name = constraints(f"{tp.target}_{'_'.join(cols)}_fkey", derived=True)
        tp.foreign_keys.append(ForeignKeyPlan(
            name=name, table=tp.target, columns=cols, ref_table=parent.target, ref_columns=ref_target,
            on_delete=fk.on_delete, on_update=fk.on_update, deferrable=fk.deferrable,
            source_table=t.name, source_ref_table=fk.ref_table))

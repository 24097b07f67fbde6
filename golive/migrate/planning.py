"""Plan a migration: read the source schema, profile the values, decide types and names, split into chunks.

``build_plan`` is pure reading: it never writes anywhere. The result (``golive.model.plan.MigrationPlan``)
is what ``--dry-run`` prints and what the copy executes. The planner itself knows no engine: the source
dialect introspects, profiles and decides each column's neutral type; the target dialect names the type,
renders defaults and limits identifiers.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import time

from golive.config import MigrateOptions
from golive.dialects import dialect_of, not_started
from golive.dialects.base import translate_sql
from golive.errors import ConfigError, PlanError
from golive.migrate.copy import verify_committed
from golive.migrate.defaults import plan_default
from golive.model.names import Namer
from golive.model.plan import (CheckPlan, ColumnPlan, ForeignKeyPlan, IndexPlan, MigrationPlan, Skipped,
                                 TablePlan)
from golive.model.schema import SourceSchema, Table
from golive.model.types import CT, INT_TYPES, TargetType, int_rank
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


def select_tables(schema: SourceSchema, only: list[str] | None, exclude: list[str]) -> list[Table]:
    names = [t.name for t in schema.tables]
    views = {v.name for v in schema.views}
    for wanted in (only or []) + [x for x in exclude if x not in views]:  # --exclude may name a view too
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
    tgt = dialect_of(target).location(target)
    raw = "|".join([src, tgt, schema, ",".join(sorted(tables))])
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def source_fingerprint(source: DatabaseURL) -> str:
    """The source's cheap change fingerprint (SQLite: size and mtime of the file and its WAL)."""
    return dialect_of(source).source.fingerprint(source)


def build_plan(source: DatabaseURL, target: DatabaseURL, options: MigrateOptions, *, deep: bool = False,
               resume=None) -> MigrationPlan:
    """Read and profile the source and decide everything the copy will do.

    Args:
        source: the source database.
        target: the target database (only its identity and dialect are used here; nothing is written).
        options: what to migrate and how.
        deep: also predict the values the target will reject and sample them (dry run).
        resume: ``run_key -> stored run or None``; a stored, interrupted run's plan is reused as-is.
    """
    t0 = time.perf_counter()
    src, dst = dialect_of(source), dialect_of(target)
    if not src.can_read:
        raise ConfigError(f"source {source.masked}: golive cannot read {src.title} databases")
    if not dst.can_write:
        raise ConfigError(f"target {target.masked}: golive cannot write {dst.title} databases")
    src.check(source)
    conn = src.source.connect(source)
    try:
        schema = src.source.introspect(conn, url=source, options=options)
        tables = dependency_order(select_tables(schema, options.tables, options.exclude))
        key = run_key(source, target, options.target_schema, [t.name for t in tables])
        stored = resume(key) if resume else None
        if stored is not None:
            return _resumed(src, source, stored, options, t0)
        plan = MigrationPlan(
            run_key=key, source=source.masked, target=target.masked, source_dialect=src.name,
            target_dialect=dst.name, target_schema=options.target_schema, identifiers=options.identifiers,
            source_fingerprint=src.source.fingerprint(source), options=src.source.copy_options(options, schema),
        )
        plan.consistency = src.source.consistency(source, conn, options)
        selected = {t.name for t in tables}
        for t in schema.tables:
            if t.name not in selected:
                plan.skipped.append(Skipped(kind="table", name=t.name, reason="excluded by --tables/--exclude"))

        counts, profiles = src.source.profile(source, tables, deep=deep, workers=max(2, options.workers), options=options,
                                       lengths=dst.wants_lengths)

        limit, chars = dst.max_identifier_length, dst.identifier_unit == "characters"
        fold = dst.target.folds_case(target)
        relations = Namer(options.identifiers, "table", plan.renamed, limit, chars=chars, fold=fold)
        table_names = {t.name: relations(t.name, **_unqualified(t, tables, dst)) for t in tables}
        decided: dict[tuple[str, str], TargetType] = {}
        constraint_names = Namer(options.identifiers, "constraint", plan.renamed, limit, chars=chars)
        if dst.indexes_share_table_namespace:
            constraint_names.used = relations.used  # indexes are relations of the schema (PostgreSQL)
        ctx = _Context(src, dst, plan, options, relations, constraint_names, table_names, decided, conn, deep)
        ctx.source_url, ctx.target_url = source, target
        for t in tables:
            plan.tables.append(_plan_table(ctx, t, counts[t.name], profiles[t.name]))
        fk_names = _foreign_key_namer(plan, options, limit, chars)
        for t in tables:  # foreign keys need every table planned first
            _plan_foreign_keys(t, plan, table_names, fk_names, src)
        for tp in plan.tables:  # what the target's own limits require (MySQL: key lengths, row size)
            dst.target.adjust_table(tp, plan)
        src.source.plan_objects(ctx, schema, selected)
        generated = {(tp.source, c.source) for tp in plan.tables for c in tp.columns if c.generated_sql}
        if not_started(target):  # a dry run starts no server: nothing to try the DDL on
            plan.warnings.append(f"{target.masked} is not running: planned against an empty database without "
                                 "starting it (a dry run writes nothing); the tables' DDL is tried by the real run")
        else:
            dst.target.check_ddl(target, plan)  # nothing fails later that trying the DDL now would show
        for tp in plan.tables:  # a generated column the target refused is a plain one now: its values are read
            if any((tp.source, c.source) in generated and not c.generated_sql for c in tp.columns):
                tp.line_sql, tp.careful_sql = src.source.render(schema.table(tp.source), tp, dst.wire, plan)
    finally:
        conn.close()
    plan.planned_seconds = round(time.perf_counter() - t0, 3)
    return plan


def _resumed(src, source: DatabaseURL, stored: dict, options: MigrateOptions, t0: float) -> MigrationPlan:
    plan = MigrationPlan.model_validate(stored["plan"])
    if plan.identifiers != options.identifiers:
        raise PlanError(
            f"an interrupted run of this migration used --identifiers {plan.identifiers}; re-run with the same "
            "options to resume it, or add --drop-existing to start over")
    # online, the source keeps changing by design: the capture holds every change since the copy began
    changed = None if options.online else changed_since(src, source, plan, stored)
    if changed:
        raise PlanError(
            f"the source changed since the interrupted run started ({stored['started_at']:%Y-%m-%d %H:%M} UTC): "
            f"{changed}; it cannot be resumed safely: re-run with --drop-existing to start over")
    plan.resumed = True
    plan.planned_seconds = round(time.perf_counter() - t0, 3)
    return plan


def _unqualified(t: Table, tables: list[Table], dst) -> dict:
    """Into a target without schemas (MySQL), a table of a source schema keeps its own name, or
    ``schema_name`` where two schemas hold tables of that name."""
    if dst.has_schemas or not t.local_name or t.local_name == t.name:
        return {}
    twins = sum(1 for x in tables if x.local_name == t.local_name)
    base = t.local_name if twins == 1 else f"{t.schema_name}_{t.local_name}"
    return {"base": base, "why": f"{dst.title} has no schemas"}


def changed_since(src, url: DatabaseURL, plan: MigrationPlan, stored: dict) -> str | None:
    """Why an interrupted run cannot resume because the source changed (None: it did not).

    A source with a cheap fingerprint (SQLite: size and mtime) is unchanged when that is; otherwise (or when the
    fingerprint moved) the committed chunks are re-read and compared by digest (``copy.verify_committed``), so a
    file touched but whose copied rows are the same still resumes.
    """
    chunks = stored.get("chunks") or {}
    if src.source.has_fingerprint:
        before = stored.get("source_fingerprint")
        if not before or before == src.source.fingerprint(url):
            return None
        if not chunks or not all(c.get("digest") for c in chunks.values()):
            return "the source file (or its WAL) has another size or modification time"
    return verify_committed(url, plan, chunks)


def _foreign_key_namer(plan: MigrationPlan, options, limit: int, chars: bool) -> Namer:
    """Foreign keys are named apart from indexes: MySQL names a foreign key's index after it (a source's ``KEY
    fk_x`` beside ``CONSTRAINT fk_x``), and both targets allow the two to share a name; they still may not share
    one with another constraint (a primary key, a unique or a check: PostgreSQL's constraints of a table) or with
    each other (MySQL's foreign keys of a database)."""
    names = Namer(options.identifiers, "constraint", plan.renamed, limit, chars=chars)
    for tp in plan.tables:
        for ix in tp.indexes:
            if ix.kind != "index":
                names.used[names._key(ix.name)] = ix.name
        for ck in tp.checks:
            names.used[names._key(ck.name)] = ck.name
    return names


class _Context:
    """What planning one table needs (a plain bag, to keep signatures short)."""

    def __init__(self, src, dst, plan, options, relations, constraints, table_names, decided, conn, deep):
        self.src, self.dst, self.plan, self.options = src, dst, plan, options
        self.relations, self.constraints, self.table_names = relations, constraints, table_names
        self.decided, self.conn, self.deep = decided, conn, deep

    def translate(self, sql: str, *, kind: str = "expression") -> tuple[str | None, str]:
        return translate_sql(sql, self.src.sqlglot_name, self.dst.sqlglot_name, kind=kind)


# ---------------------------------------------------------------------- tables

def _plan_table(ctx: _Context, t: Table, rows: int, profiles: dict) -> TablePlan:
    src, dst, plan, options = ctx.src, ctx.dst, ctx.plan, ctx.options
    target = ctx.table_names[t.name]
    col_names = Namer(options.identifiers, f"column of {t.name}", plan.renamed, dst.max_identifier_length,
                      chars=dst.identifier_unit == "characters", fold=dst.column_names_fold_case)
    parent_of = {}
    for fk in t.foreign_keys:
        for i, col in enumerate(fk.columns):
            parent_of[col] = (fk.ref_table, fk.ref_columns[i] if fk.ref_columns else None)
    identity, floor = src.source.identity(t)
    # the primary key first, so self-references can follow its type
    ordered = sorted(t.columns, key=lambda c: (c.pk_position == 0, c.pk_position))
    planned = {}
    for c in ordered:
        p = profiles.get(c.name)
        parent = None
        if c.name in parent_of:
            ref_table, ref_col = parent_of[c.name]
            if ref_col is None and ref_table == t.name and len(t.primary_key) == 1:
                ref_col = t.primary_key[0]
            parent = ctx.decided.get((ref_table, ref_col)) if ref_col else None
            if parent is not None and parent.ct in INT_TYPES:
                own = src.source.decide(t, c, p, parent=None, target=dst, options=options, identity=False).type
                if own.ct in INT_TYPES and int_rank(own.ct) > int_rank(parent.ct):
                    parent = own
        dec = src.source.decide(t, c, p, parent=parent, target=dst, options=options, identity=c.name == identity)
        longest = getattr(p, "max_bytes", None) if p is not None else None
        if longest is not None and dec.type.ct in (CT.TEXT, CT.BINARY, CT.JSON) and not dec.type.native:
            dec.type = dec.type.model_copy(update={"length": int(longest)})  # the target sizes the type by it
        ctx.decided[(t.name, c.name)] = dec.type
        notes = list(dec.notes)
        for w in dec.warnings:
            plan.warnings.append(f"{t.name}.{c.name}: {w}")
        default_sql, default_reason = None, ""
        if c.name != identity:
            default_sql, default_reason, note = plan_default(src, dst, t, c, dec.type, options, ctx.translate)
            if note:
                notes.append(note)
                plan.warnings.append(f"{t.name}.{c.name}: {note}")
        generated_sql = None
        if c.generated:
            generated_sql, why = (ctx.translate(c.generated_sql) if c.generated_sql else (None, "no expression"))
            if generated_sql is None or not dst.supports_generated:
                notes.append("generated column in the source: copied as a plain column")
                plan.warnings.append(f"{t.name}.{c.name}: generated column copied as a plain column (values kept)"
                                     + (f": {why}" if why and c.generated_sql else ""))
                generated_sql = None
        if c.collation == "NOCASE":
            plan.warnings.append(f"{t.name}.{c.name}: COLLATE NOCASE; PostgreSQL compares case-sensitively "
                                 "(use citext or lower() indexes if the app relies on it)")
        predicted = getattr(p, "predicted_rejects", 0) if p is not None else 0
        samples = getattr(p, "samples", []) if p is not None else []
        if predicted:
            notes.append(f"{predicted} values will likely be rejected"
                         + (f", e.g. {', '.join(repr(s) for s in samples)}" if samples else ""))
        planned[c.name] = ColumnPlan(
            source=c.name, target="", declared=c.declared, type=dec.type, sql_type=dst.target.type_sql(dec.type),
            nullable=(c.nullable and c.pk_position == 0) if dec.nullable is None else dec.nullable,
            default_sql=default_sql, default_source=c.default if c.name != identity else None,
            default_reason=default_reason, identity=c.name == identity, generated_sql=generated_sql,
            on_update="now" if c.on_update else None,
            source_expr=dec.source_expr, reason=dec.reason, notes=notes, predicted_rejects=predicted,
            values=getattr(p, "values", 0) if p is not None else 0)
    cols = []
    for c in t.columns:  # names in source column order
        cp = planned[c.name]
        cp.target = col_names(c.name)
        cols.append(cp)
    tcol = {c.source: c.target for c in cols}

    indexes: list[IndexPlan] = []
    if t.primary_key:
        indexes.append(IndexPlan(name=ctx.constraints(f"{target}_pkey", derived=True), kind="primary",
                                 columns=[tcol[c] for c in t.primary_key]))
    for ix in t.indexes:
        if ix.origin == "pk":  # planned above, from the primary key
            continue
        ip = _plan_index(ctx, t, ix, target, tcol)
        if ip is not None:
            indexes.append(ip)
    checks = _plan_checks(ctx, t, target, tcol, cols)
    chunking, chunk_key, chunks = src.source.chunks(ctx.conn, t, rows, options.chunk_rows)
    tp = TablePlan(
        source=t.name, target=target, source_schema=t.schema_name, source_name=t.local_name, rows=rows, columns=cols, key=src.source.row_key(t),
        has_rowid=t.has_rowid, rowid_name=t.rowid_name, chunking=chunking, chunk_key=chunk_key, indexes=indexes,
        checks=checks, identity=tcol[identity] if identity else None, sequence_floor=floor, chunks=chunks)
    tp.line_sql, tp.careful_sql = src.source.render(t, tp, dst.wire, plan)
    return tp


def _plan_index(ctx: _Context, t: Table, ix, target: str, tcol: dict) -> IndexPlan | None:
    plan = ctx.plan
    if ix.kind in ctx.dst.keeps_index_methods and ctx.src.name == ctx.dst.name:
        return IndexPlan(name=ctx.constraints(ix.name), kind="index", columns=[tcol[c] for c in ix.columns],
                         method=ix.kind, source_name=ix.name)
    if ix.kind in ("fulltext", "spatial"):
        hint = (" (in PostgreSQL: CREATE INDEX … USING gin (to_tsvector('simple', col)) and query with @@)"
                if ix.kind == "fulltext" else " (PostGIS: a GiST index on a geometry column)")
        plan.skipped.append(Skipped(kind="index", name=ix.name,
                                    reason=f"{ix.kind.upper()} index on {', '.join(ix.columns)} is not translated{hint}"))
        return None
    if any(ix.prefix_lengths) and not ctx.dst.supports_prefix_indexes:
        parts = ", ".join(f"{c}({n})" for c, n in zip(ix.columns, ix.prefix_lengths) if n)
        if ix.unique:
            plan.warnings.append(
                f"index {ix.name}: UNIQUE over a prefix ({parts}) became UNIQUE over the whole values: values that "
                "share the prefix but differ after it, which MySQL refused, are now allowed")
        else:
            plan.warnings.append(f"index {ix.name}: prefix index ({parts}) built over the whole values")
    cols_ok = [ctx.src.source.index_column(t, c) for c in ix.columns]
    if any(c is None for c in cols_ok):
        plan.skipped.append(Skipped(kind="index", name=ix.name,
                                    reason="indexes the rowid, which does not exist in the target"))
        return None
    if any(ix.collations):
        plan.warnings.append(f"index {ix.name}: collation {', '.join(c for c in ix.collations if c)} dropped "
                             "(PostgreSQL compares case-sensitively)")
    kind = "unique" if ix.unique else "index"
    if ix.origin == "u":
        name = ctx.constraints(f"{target}_{'_'.join(tcol[c] for c in cols_ok)}_key", derived=True)
    else:
        name = ctx.constraints(ix.name)
    expr = where = None
    if ix.expressions:
        expr = ctx.src.source.index_expressions(ix)
        if expr is not None and ctx.src.name != ctx.dst.name:
            expr, why = ctx.translate(expr)
        if expr is None:
            plan.skipped.append(Skipped(kind="index", name=ix.name, reason="expression index that could not be read"))
            return None
    if ix.where:
        where, why = ctx.translate(ix.where)
        if where is None:
            plan.skipped.append(Skipped(kind="index", name=ix.name, reason=f"partial index: its WHERE {why}"))
            return None
    return IndexPlan(name=name, kind=kind, columns=[tcol[c] for c in cols_ok] if not expr else [],
                     descending=ix.descending, where=where, expression_sql=expr, constraint=ix.origin == "u",
                     source_name=ix.name, prefix_lengths=getattr(ix, "prefix_lengths", []) or [])


def _plan_checks(ctx: _Context, t: Table, target: str, tcol: dict, cols: list[ColumnPlan]) -> list[CheckPlan]:
    plan, out = ctx.plan, []
    if not ctx.src.translates_checks:
        for check in t.checks:
            plan.warnings.append(f"{t.name}: CHECK ({check}) not translated")
        return out
    names = t.check_names or [None] * len(t.checks)
    for check, name in zip(t.checks, names):
        sql, why = ctx.translate(check)
        if sql is None:
            plan.skipped.append(Skipped(kind="check", name=name or f"{t.name} CHECK ({check})",
                                        reason=f"not translated: {why}"))
            continue
        for s, tg in tcol.items():  # renamed columns (snake_case)
            if s != tg:
                sql = sql.replace(ctx.dst.quote(s), ctx.dst.quote(tg))
        cname = ctx.constraints(name or f"{target}_check", derived=True)
        out.append(CheckPlan(name=cname, sql=sql, source_sql=check))
    for c in cols:  # ENUM columns become text + CHECK in a target without enums of that kind
        if c.type.ct == CT.ENUM and c.sql_type.lower() in ("text", "varchar") and c.type.values is not None:
            labels = ", ".join("'" + v.replace("'", "''") + "'" for v in c.type.values)
            out.append(CheckPlan(name=ctx.constraints(f"{target}_{c.target}_check", derived=True),
                                 sql=f"{ctx.dst.quote(c.target)} IN ({labels})", source_sql=f"ENUM({labels})"))
    return out


def _plan_foreign_keys(t: Table, plan: MigrationPlan, table_names: dict, constraints: Namer, src) -> None:
    tp = plan.table(t.name)
    for fk in t.foreign_keys:
        label = f"{t.name}({', '.join(fk.columns)}) -> {fk.ref_table}"
        if fk.ref_table not in table_names:
            reason = f"parent table {fk.ref_table!r} is not migrated or does not exist"
            meant = re.sub(r"(__old|_old)$", "", fk.ref_table)
            if meant != fk.ref_table and any(x.source == meant for x in plan.tables):
                parent = plan.table(meant)
                pk = next((ix for ix in parent.indexes if ix.kind == "primary"), None)
                q = '"{}"'.format
                cols = ", ".join(q(tp.column(c).target) if c in {x.source for x in tp.columns} else q(c)
                                 for c in fk.columns)
                refs = ", ".join(q(c) for c in (pk.columns if pk else fk.ref_columns or ["id"]))
                reason += (f"; the name shows an interrupted table rebuild (Django and Rails leave "
                           f"REFERENCES \"{fk.ref_table}\"): it almost certainly meant {meant!r}. To add it: "
                           f"ALTER TABLE {q(tp.target)} ADD FOREIGN KEY ({cols}) REFERENCES {q(parent.target)} "
                           f"({refs}) NOT VALID; then ALTER TABLE {q(tp.target)} VALIDATE CONSTRAINT <its name>")
                plan.warnings.append(f"foreign key {label}: {reason}")
            plan.skipped.append(Skipped(kind="foreign key", name=label, reason=reason))
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
                    "(the target requires it)")))
                continue
        try:
            cols = [tp.column(c).target for c in fk.columns]
        except KeyError as exc:
            plan.skipped.append(Skipped(kind="foreign key", name=label, reason=f"column {exc.args[0]!r} does not exist"))
            continue
        name = constraints(fk.name if getattr(fk, "name", None) else f"{tp.target}_{'_'.join(cols)}_fkey", derived=True)
        tp.foreign_keys.append(ForeignKeyPlan(
            name=name, table=tp.target, columns=cols, ref_table=parent.target, ref_columns=ref_target,
            on_delete=fk.on_delete, on_update=fk.on_update, deferrable=fk.deferrable,
            source_table=t.name, source_ref_table=fk.ref_table,
            ref_schema=parent.target_schema))

"""Reading a PostgreSQL source's schema: tables, columns, keys, indexes, foreign keys, views (several schemas);
and, PostgreSQL to PostgreSQL, the source's own DDL (pg_dump's pre-data), partitions' own keys, and the statements
that must run last (sequence values, triggers, materialized views' data)."""

from __future__ import annotations

import logging
import re
import subprocess

from golive.dialects.postgresql.session import _lit, connect_source as connect, qi, qn
from golive.errors import ConfigError, SourceError
from golive.model.schema import BOOKKEEPING_PREFIX, Column, ForeignKey, Index, SourceSchema, Table, Trigger, View
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


#: golive's own bookkeeping (a database golive migrated into): never the app's data
OWN_SCHEMAS = (BOOKKEEPING_PREFIX,)


def schemas_of(options) -> list[str]:
    """The schemas the user named (``--source-schema``), else just public (``user_schemas`` reads them all)."""
    return list(getattr(options, "source_schemas", None) or ["public"])


def user_schemas(conn) -> list[str]:
    """Every schema holding the app's tables, views or sequences, as ``pg_dump`` dumps them: not the system's, not
    an extension's, not golive's own; public when there is nothing at all."""
    rows = conn.execute(
        "SELECT DISTINCT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> ALL(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = n.oid AND d.deptype = 'e') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') "
        "ORDER BY 1", (list(OWN_SCHEMAS),)).fetchall()
    found = [r[0] for r in rows]
    return found or ["public"]


def outside_references(conn, schemas: list[str]) -> list[tuple[str, str, str]]:
    """What in the copied schemas reads a schema that is not copied (views, materialized views, foreign keys,
    sequence defaults): ``(what, object, what it reads)``. Empty when the set is closed."""
    out = []
    for obj, kind, ref in conn.execute(
            "SELECT DISTINCT vn.nspname || '.' || v.relname, v.relkind, rn.nspname || '.' || r.relname "
            "FROM pg_rewrite w JOIN pg_class v ON v.oid = w.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace "
            "JOIN pg_depend d ON d.objid = w.oid AND d.classid = 'pg_rewrite'::regclass "
            "AND d.refclassid = 'pg_class'::regclass JOIN pg_class r ON r.oid = d.refobjid "
            "JOIN pg_namespace rn ON rn.oid = r.relnamespace "
            "WHERE vn.nspname = ANY(%s) AND rn.nspname <> ALL(%s) AND rn.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND r.oid <> v.oid ORDER BY 1, 3", (schemas, schemas)).fetchall():
        out.append(("materialized view" if kind == "m" else "view", obj, ref))
    for obj, ref in conn.execute(
            "SELECT DISTINCT n.nspname || '.' || c.relname, rn.nspname || '.' || r.relname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_class r ON r.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace "
            "WHERE k.contype = 'f' AND n.nspname = ANY(%s) AND rn.nspname <> ALL(%s) ORDER BY 1, 2",
            (schemas, schemas)).fetchall():
        out.append(("a foreign key of", obj, ref))
    for obj, col, ref in conn.execute(
            "SELECT n.nspname || '.' || c.relname, a.attname, sn.nspname || '.' || s.relname FROM pg_attrdef ad "
            "JOIN pg_class c ON c.oid = ad.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
            "JOIN pg_depend d ON d.objid = ad.oid AND d.classid = 'pg_attrdef'::regclass "
            "AND d.refclassid = 'pg_class'::regclass JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' "
            "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
            "WHERE n.nspname = ANY(%s) AND sn.nspname <> ALL(%s) ORDER BY 1, 2", (schemas, schemas)).fetchall():
        out.append((f"the default of column {col} of", obj, ref))
    return out


# ---------------------------------------------------------------------- introspection


def introspect(conn, url: DatabaseURL, options) -> SourceSchema:
    schemas = list(getattr(options, "source_schemas", None) or user_schemas(conn))
    found = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (schemas,))}
    missing = [s for s in schemas if s not in found]
    if missing:
        raise ConfigError(f"source {url.masked} has no schema {', '.join(map(repr, missing))}")
    qualify = len(schemas) > 1
    out = SourceSchema(schemas=schemas)
    rels = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') "
        "ORDER BY n.nspname, c.relname", (schemas,)).fetchall()
    for oid, nsp, name, kind in rels:
        label = f"{nsp}.{name}" if qualify else name
        if kind in ("v", "m"):
            sql = conn.execute("SELECT pg_get_viewdef(%s::oid, true)", (oid,)).fetchone()[0]
            out.views.append(View(name=label, select=sql, sql=sql, materialized=kind == "m", schema_name=nsp))
            continue
        t = _table(conn, oid, nsp, name, label, qualify)
        if kind == "p":  # read and written through the parent: COPY into it routes each row to its partition
            t.partitions = [r[0] for r in conn.execute(
                "WITH RECURSIVE tree(oid) AS (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s UNION ALL "
                "SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid) "
                "SELECT c.oid::regclass::text FROM tree JOIN pg_class c ON c.oid = tree.oid ORDER BY 1",
                (oid,)).fetchall()]
        out.tables.append(t)
    for name, table, nsp in conn.execute(
            "SELECT t.tgname, c.relname, n.nspname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND n.nspname = ANY(%s)",
            (schemas,)).fetchall():
        out.triggers.append(Trigger(name=name, table=f"{nsp}.{table}" if qualify else table, sql=""))
    return out


def _table(conn, oid: int, nsp: str, name: str, label: str, qualify: bool) -> Table:
    cols = []
    domain_checks = []
    for attname, typ, notnull, default, identity, generated, typname, typtype, attnum, base, basetyp, labels, \
            dchecks in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), "
            "a.attidentity, a.attgenerated, t.typname, t.typtype, a.attnum, "
            "CASE WHEN t.typtype = 'd' THEN bt.typname END, "
            "CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, "
            "ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), "
            "ARRAY(SELECT k.conname || chr(31) || pg_get_constraintdef(k.oid) FROM pg_constraint k "
            "WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname) "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall():
        cols.append(Column(name=attname, declared=typ, nullable=not notnull,
                           default=None if generated else default, generated=bool(generated),
                           generated_sql=default if generated else None,
                           native=f"{typname}:{typtype}:{base or ''}:{basetyp or ''}", auto_increment=bool(identity),
                           comment="\x1f".join(labels) if typtype == "e" else None))
        for entry in dchecks or []:  # a domain's CHECK, on this column (another engine has no domains)
            dname, _, definition = entry.partition("\x1f")
            m = re.match(r"CHECK \((.*)\)( NOT VALID)?$", definition, re.S)
            expr = re.sub(r"\bVALUE\b", qi(attname).replace("\\", "\\\\"), m.group(1) if m else definition)
            domain_checks.append((f"{name}_{attname}_{dname}", expr))
    cons = conn.execute(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), "
        "ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = u.n ORDER BY u.i), cf.relname, nf.nspname, "
        "ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
        "ON a.attrelid = c.confrelid AND a.attnum = u.n ORDER BY u.i), c.condeferrable, c.confdeltype, c.confupdtype "
        "FROM pg_constraint c LEFT JOIN pg_class cf ON cf.oid = c.confrelid LEFT JOIN pg_namespace nf "
        "ON nf.oid = cf.relnamespace WHERE c.conrelid = %s ORDER BY c.conname", (oid,)).fetchall()
    pk, indexes, fks, checks, check_names = [], [], [], [], []
    constraint_indexes = set()
    for conname, contype, definition, keycols, ref, refnsp, refcols, deferrable, deltype, updtype in cons:
        if contype == "p":
            pk = list(keycols)
            constraint_indexes.add(conname)
            indexes.append(Index(name=conname, columns=list(keycols), unique=True, origin="pk", sql=definition,
                                 kind="constraint"))
        elif contype in ("u", "x"):
            constraint_indexes.add(conname)
            indexes.append(Index(name=conname, columns=list(keycols), unique=contype == "u", origin="u",
                                 sql=definition, kind="constraint"))
        elif contype == "f":
            fks.append(ForeignKey(name=conname, columns=list(keycols), ref_table=f"{refnsp}.{ref}" if qualify else ref,
                                  ref_columns=list(refcols),
                                  deferrable=deferrable, on_delete=_action(deltype), on_update=_action(updtype),
                                  definition_sql=definition, ref_schema=refnsp))
        elif contype == "c":
            m = re.match(r"CHECK \((.*)\)( NOT VALID)?$", definition, re.S)
            checks.append(m.group(1) if m else definition)
            check_names.append(conname)
    for iname, definition, unique, keycols, has_exprs, pred in conn.execute(
            "SELECT ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, "
            "ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(n, o) JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = u.n ORDER BY u.o), i.indexprs IS NOT NULL, "
            "pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = %s ORDER BY ic.relname", (oid,)).fetchall():
        if iname in constraint_indexes:
            continue
        indexes.append(Index(name=iname, columns=[] if has_exprs else list(keycols), unique=unique, origin="c",
                             sql=definition, kind="index", expressions=has_exprs, where=pred))
    for cname, expr in domain_checks:
        checks.append(expr)
        check_names.append(cname)
    for c in cols:
        if c.name in pk:
            c.pk_position = pk.index(c.name) + 1
    t = Table(name=label, columns=cols, primary_key=pk, indexes=indexes, foreign_keys=fks, has_rowid=False,
              checks=checks, check_names=check_names, schema_name=nsp, local_name=name)
    # identity and serial columns: the next value their sequence hands out (ids already given are never reused)
    for c in cols:
        if c.auto_increment or (c.default or "").startswith("nextval("):
            c.auto_increment = True
            last = conn.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(%s, %s)::regclass)",
                                (qn(nsp, name), c.name)).fetchone()
            t.identity_next = (int(last[0]) + 1) if last and last[0] is not None else None
            break
    return t


def _action(code: str | None) -> str:
    return {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}.get(code or "a",
                                                                                                       "NO ACTION")


def relation(t: Table) -> str:
    """The table's qualified name in the source."""
    return qn(t.schema_name or "public", t.local_name or t.name)


# ---------------------------------------------------------------------- the schema script and what comes last


def server_major(conn) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def pre_data(url: DatabaseURL, conn, schemas: list[str], exclude: list[str] = ()) -> tuple[str, str]:
    """The source's pre-data script (pg_dump) and which pg_dump made it (``exclude``: tables and views left out,
    by their plan names)."""
    from golive.dialects.postgresql import tools as pgtools

    path, version = pgtools.find("pg_dump", server_major(conn))
    args, env = pgtools.env_for(url)
    cmd = [path, "--schema-only", "--section=pre-data", "--no-owner", "--no-privileges", "--no-publications",
           "--no-subscriptions", "--no-security-labels", "--no-tablespaces", "--quote-all-identifiers"]
    for s in schemas:
        cmd += ["-n", s]
    for name in exclude:
        nsp, _, rel = name.rpartition(".") if len(schemas) > 1 else (schemas[0], ".", name)
        cmd += ["-T", '"' + nsp.replace('"', '""') + '"."' + rel.replace('"', '""') + '"']
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode:
        raise SourceError(f"pg_dump --section=pre-data failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    script = proc.stdout
    # the schemas are created by golive (they may exist in the target already)
    script = re.sub(r"^CREATE SCHEMA (\"[^\"]+\"|\w+);$", r"CREATE SCHEMA IF NOT EXISTS \1;", script, flags=re.M)
    return script, f"{path} ({version})"


def final_statements(url: DatabaseURL, plan) -> list[str]:
    """Statements for the target after the copy: sequence values read *now* (never below an id the copy
    holds), triggers (after the data, so they did not fire while loading), materialized views' data."""
    schemas = plan.options.get("source_schemas") or ["public"]
    out = []
    if plan.target_dialect != "postgresql":  # the target's own AUTO_INCREMENT and views cover it
        return out
    with connect(url) as conn:
        for nsp, name, last, called in conn.execute(
                "SELECT schemaname, sequencename, last_value, last_value IS NOT NULL FROM pg_sequences "
                "WHERE schemaname = ANY(%s)", (schemas,)).fetchall():
            if called:
                out.append(f"SELECT setval({_lit(qn(nsp, name))}, {int(last)}, true)")
        for (definition,) in conn.execute(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND n.nspname = ANY(%s) "
                "ORDER BY t.oid", (schemas,)).fetchall():
            out.append(definition)
        for nsp, name in conn.execute(
                "SELECT schemaname, matviewname FROM pg_matviews WHERE schemaname = ANY(%s) AND ispopulated "
                "ORDER BY (SELECT oid FROM pg_class WHERE relname = matviewname LIMIT 1)", (schemas,)).fetchall():
            out.append(f"REFRESH MATERIALIZED VIEW {qn(nsp, name)}")
    return out


def _partition_own_keys(conn, t: Table, plan, tables: dict) -> tuple[list, list]:
    """Keys, indexes and foreign keys that partitions have of their own (not built through the parent): the
    parent's plan builds them too, on their partitions, after the data (the foreign keys with the others)."""
    from golive.model.plan import ForeignKeyPlan, IndexPlan

    out, fks = [], []
    for (name, rel, relname, nsp, definition, contype, cols, ref, refnsp, refcols, deferrable, deltype,
         updtype) in conn.execute(
            "SELECT c.conname, c.conrelid::regclass::text, pc.relname, pn.nspname, pg_get_constraintdef(c.oid), "
            "c.contype, ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = u.n ORDER BY u.i), cf.relname, nf.nspname, "
            "ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a "
            "ON a.attrelid = c.confrelid AND a.attnum = u.n ORDER BY u.i), c.condeferrable, c.confdeltype, "
            "c.confupdtype FROM pg_constraint c JOIN pg_class pc ON pc.oid = c.conrelid "
            "JOIN pg_namespace pn ON pn.oid = pc.relnamespace LEFT JOIN pg_class cf ON cf.oid = c.confrelid "
            "LEFT JOIN pg_namespace nf ON nf.oid = cf.relnamespace "
            "WHERE c.conrelid = ANY(%s::regclass[]) AND c.contype IN ('p', 'u', 'x', 'f') AND c.conparentid = 0 "
            "ORDER BY 2, 1", (t.partitions,)).fetchall():
        if contype == "f":
            parent = tables.get(f"{refnsp}.{ref}") or tables.get(ref)
            if parent is None or nsp != t.schema_name:
                why = "its table is not copied" if parent is None else "the partition is in another schema"
                plan.warnings.append(f"{t.name}: partition {rel} has a foreign key of its own, {name} ({definition}), "
                                     f"which is not created ({why}): add it after the copy")
                continue
            fks.append(ForeignKeyPlan(name=name, table=relname, columns=list(cols),
                                      ref_table=parent.local_name or parent.name, ref_columns=list(refcols),
                                      on_delete=_action(deltype), on_update=_action(updtype), deferrable=deferrable,
                                      source_table=t.name, source_ref_table=parent.name, definition_sql=definition,
                                      ref_schema=refnsp))
            continue
        kind = {"p": "primary", "u": "unique"}.get(contype, "index")
        out.append(IndexPlan(name=name, kind=kind, columns=[], source_name=name,
                             definition_sql=f"ALTER TABLE ONLY {rel} ADD CONSTRAINT {qi(name)} {definition}"))
    for name, definition, unique in conn.execute(
            "SELECT ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i "
            "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = ANY(%s::regclass[]) "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) "
            "ORDER BY 1", (t.partitions,)).fetchall():
        out.append(IndexPlan(name=name, kind="unique" if unique else "index", columns=[], source_name=name,
                             definition_sql=definition))
    return out, fks

"""Great Expectations suites, one per table, generated from the migration plan and kept as JSON files.

Where: ``<expectations dir>/<source key>/<schema>.<table>.json``. The directory defaults to
``golive-runs/expectations`` (golive's state folder, next to the validation results: never a tracked
folder of the project golive runs in); ``--expectations DIR`` puts them elsewhere, e.g. a folder you
commit. The *source key* names the database the suites were made for (``source_key``: the SQLite file's
name plus a hash of its absolute path, or ``<engine>-<host>-<port>-<database>``), so two apps with a
``User`` table never share a suite.

The files are plain GX 1.x ``ExpectationSuite`` JSON (``name``, ``expectations``: ``type`` + ``kwargs``,
``meta``, ...), written without importing Great Expectations. Expectations golive generates carry
``meta.golive`` (which check they are); the suite's ``meta.golive.plan_fingerprint`` records the table
shape they were generated from (target columns with types and nullability, keys, unique indexes, foreign
keys). When the table no longer has that shape (the app's schema changed, or a plan differs), the
generated expectations are regenerated; every other expectation (written by hand) is kept, and one that
names a column the table does not have is reported as such, not run (``stale_hand_written``).

What a suite checks in the target (each maps to a rule of the issue "prove every copy"):

* row count = the source's rows minus the rows the copy rejected (``expect_table_row_count_to_equal``
  with the number passed at run time as the parameter ``expected_row_count``: GX cannot count across
  databases, so golive counts the source);
* primary key columns and NOT NULL-in-source columns hold no NULL (``expect_column_values_to_not_be_null``);
* primary key and UNIQUE columns are unique (``unexpected_rows_expectation`` listing duplicates; answered
  by PostgreSQL's catalog when a valid unique index on exactly those columns exists, because PostgreSQL
  then guarantees it, else by grouping the rows);
* no orphan foreign keys (``unexpected_rows_expectation`` with the anti-join; answered by the catalog
  when PostgreSQL has validated the key and enforces it). SQLite does not enforce foreign keys, so a
  source may already hold orphans; the rule is: *every dangling reference in the target already
  dangled in the source, with no more rows than there*. The source's orphans (and references to rows
  the copy rejected) are recorded by validation in ``_golive.source_orphans``; the query leaves them out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from golive.dialects.mysql.session import qi as myqi
from golive.dialects.postgresql.session import qi, qn
from golive.model.plan import ForeignKeyPlan, MigrationPlan, TablePlan

log = logging.getLogger(__name__)

GX_VERSION = "1.24.1"
#: bumped whenever golive generates different expectations for the same table: old suites are regenerated
SUITE_FORMAT = 3
ROW_COUNT_PARAMETER = "expected_row_count"
SOURCE_ORPHANS = "_golive.source_orphans"
MY_SOURCE_ORPHANS = "_golive_source_orphans"


#: where generated suites go unless ``--expectations DIR`` says otherwise (golive's state folder)
DEFAULT_DIR = "golive-runs/expectations"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "db"


def source_key(source) -> str:
    """The folder naming the database a suite was made for: ``app-1a2b3c4d`` for ``/srv/app/app.db``
    (file name + 8 hex of the absolute path), ``mysql-db.internal-3306-shop`` for a server (no user, no
    password)."""
    if getattr(source, "path", None) is not None and source.dialect == "sqlite":
        path = Path(source.path).resolve()
        return f"{_slug(path.stem)}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    port = source.port or {"postgresql": 5432, "mysql": 3306}.get(source.dialect, 0)
    where = source.query.get("unix_socket") or source.query.get("host") or source.host or "localhost"
    return _slug(f"{source.dialect}-{where}-{port}-{source.database or ''}")


def suite_name(schema: str, table: str) -> str:
    return f"{schema}.{table}"


def suite_path(directory: str | Path, name: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return Path(directory) / f"{safe}.json"


def plan_fingerprint(schema: str, tp: TablePlan) -> str:
    """The table shape a generated suite depends on: columns (name, type, nullability), keys, unique
    indexes, foreign keys. Different shape, different fingerprint: the generated part is regenerated."""
    shape = {
        "generator": SUITE_FORMAT, "schema": schema, "table": tp.target, "key": tp.key,
        "columns": [[c.target, c.sql_type, c.nullable] for c in tp.columns],
        "indexes": sorted([ix.kind, ix.columns, ix.where, ix.expression_sql] for ix in tp.indexes
                          if ix.kind in ("primary", "unique")),
        "foreign_keys": sorted([fk.name, fk.columns, fk.ref_schema or schema, fk.ref_table, fk.ref_columns]
                               for fk in tp.foreign_keys),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: kwargs of GX expectations that name columns
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")


def named_columns(expectation: dict) -> list[str]:
    """The columns an expectation names in its kwargs."""
    kw = expectation.get("kwargs") or {}
    out = [kw[k] for k in _COLUMN_KWARGS if isinstance(kw.get(k), str)]
    for k in _COLUMN_LIST_KWARGS:
        if isinstance(kw.get(k), (list, tuple)):
            out += [c for c in kw[k] if isinstance(c, str)]
    return out


def stale_hand_written(suite: dict, columns: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """Split off the hand-written expectations naming columns the table does not have.

    Returns the suite to run (without them) and ``[(expectation type, message)]`` for each one left out,
    e.g. "hand-written expectation on column X, which the table does not have".
    """
    have = set(columns)
    keep, stale = [], []
    for e in suite.get("expectations", []):
        missing = [c for c in named_columns(e) if c not in have]
        if missing and "golive" not in (e.get("meta") or {}):
            stale.append((e.get("type", "?"), "hand-written expectation on column "
                          + ", ".join(missing) + ", which the table does not have"
                          + (f" (columns: {', '.join(columns[:12])}{', …' if len(columns) > 12 else ''})")))
            continue
        keep.append(e)
    return (dict(suite, expectations=keep) if stale else suite), stale


def _generated(check: str, **extra) -> dict:
    return {"golive": {"check": check, **extra}}


def _expectation(type_: str, kwargs: dict, check: str, description: str, **meta) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": _generated(check, **meta), "description": description,
            "severity": "critical"}


def unique_query(schema: str, table: str, columns: list[str]) -> str:
    """Rows sharing a key, unless a valid unique index on exactly these columns already guarantees none.

    NULLs are left out, as in a unique constraint. The index test is a one-time filter: with the index
    in place PostgreSQL does not scan the table at all.
    """
    cols = ", ".join(qi(c) for c in columns)
    notnull = " AND ".join(f"{qi(c)} IS NOT NULL" for c in columns)
    rel = qn(schema, table).replace("'", "''")
    guaranteed = (
        "SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass('" + rel + "') AND i.indisunique "
        "AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = " + str(len(columns)) +
        " AND ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey::int2[]) ORDER BY a.attname::text) = " + _names(sorted(columns)))
    return (f"SELECT {cols}, count(*) AS copies FROM {{batch}} WHERE {notnull} AND NOT EXISTS ({guaranteed}) "
            f"GROUP BY {cols} HAVING count(*) > 1")


def _names(cols: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + c.replace("'", "''") + "'" for c in cols) + "]::text[]"


def enforced_fk_sql(schema: str, fk: ForeignKeyPlan) -> str:
    """True when PostgreSQL has validated this foreign key and enforces it (its triggers are enabled)."""
    child = qn(schema, fk.table).replace("'", "''")
    parent = qn(fk.ref_schema or schema, fk.ref_table).replace("'", "''")
    return (
        "SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND k.convalidated "
        f"AND k.conrelid = to_regclass('{child}') AND k.confrelid = to_regclass('{parent}') "
        "AND ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i), pg_attribute a "
        f"WHERE a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) = {_names(fk.columns)} "
        "AND ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i), pg_attribute a "
        f"WHERE a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) = {_names(fk.ref_columns)} "
        "AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = k.oid AND t.tgenabled = 'D')")


def orphan_query(schema: str, fk: ForeignKeyPlan, key: list[str]) -> str:
    """Dangling references: values of the child's columns with no parent row, beyond the source's own.

    A foreign key PostgreSQL has validated and enforces has none: the catalog answers and no row is read
    (rows slipped in with triggers off by ``session_replication_role = replica`` are still caught by the
    content checksums, as rows the source does not have).
    """
    child_cols = ", ".join(f"c.{qi(c)}" for c in fk.columns)
    on = " AND ".join(f"p.{qi(r)} = c.{qi(c)}" for c, r in zip(fk.columns, fk.ref_columns))
    notnull = " AND ".join(f"c.{qi(c)} IS NOT NULL" for c in fk.columns)
    ex = qi(f"example_{key[0]}") if len(key) == 1 else ""
    examples = (f", (array_agg(c.{qi(key[0])} ORDER BY c.{qi(key[0])}))[1:5]::text AS {ex}" if ex else "")
    label = f"{schema}.{fk.name}".replace("'", "''")
    outs = ", ".join(f"o.{qi(c)}" for c in fk.columns)
    return (
        f"SELECT {outs}, o.rows_in_target, coalesce(s.rows, 0) AS rows_in_source"
        f"{', o.' + ex if ex else ''} FROM ("
        f"SELECT {child_cols}, count(*) AS rows_in_target{examples} FROM {{batch}} c "
        f"LEFT JOIN {qn(fk.ref_schema or schema, fk.ref_table)} p ON {on} WHERE {notnull} AND p.{qi(fk.ref_columns[0])} IS NULL "
        f"AND NOT EXISTS ({enforced_fk_sql(schema, fk)}) "
        f"GROUP BY {child_cols}) o LEFT JOIN {SOURCE_ORPHANS} s ON s.fk = '{label}' "
        f"AND s.ref = jsonb_build_array({outs}) WHERE o.rows_in_target > coalesce(s.rows, 0)")


def my_unique_query(table: str, columns: list[str]) -> str:
    """MySQL: rows sharing a key (NULLs left out, as in a unique index)."""
    cols = ", ".join(myqi(c) for c in columns)
    notnull = " AND ".join(f"{myqi(c)} IS NOT NULL" for c in columns)
    return f"SELECT {cols}, COUNT(*) AS copies FROM {{batch}} WHERE {notnull} GROUP BY {cols} HAVING COUNT(*) > 1"


def my_orphan_query(fk: ForeignKeyPlan, key: list[str]) -> str:
    """MySQL: dangling references beyond the source's own (``_golive_source_orphans``)."""
    child_cols = ", ".join(f"c.{myqi(c)}" for c in fk.columns)
    on = " AND ".join(f"p.{myqi(r)} = c.{myqi(c)}" for c, r in zip(fk.columns, fk.ref_columns))
    notnull = " AND ".join(f"c.{myqi(c)} IS NOT NULL" for c in fk.columns)
    outs = ", ".join(f"o.{myqi(c)}" for c in fk.columns)
    label = fk.name.replace("'", "''")
    return (f"SELECT {outs}, o.rows_in_target, COALESCE(s.rows_n, 0) AS rows_in_source FROM ("
            f"SELECT {child_cols}, COUNT(*) AS rows_in_target FROM {{batch}} c LEFT JOIN {myqi(fk.ref_table)} p ON {on} "
            f"WHERE {notnull} AND p.{myqi(fk.ref_columns[0])} IS NULL GROUP BY {child_cols}) o "
            f"LEFT JOIN {MY_SOURCE_ORPHANS} s ON s.fk = '{label}' AND CAST(JSON_COMPACT(s.ref) AS BINARY) = CAST(JSON_COMPACT(JSON_ARRAY({outs})) AS BINARY) "
            f"WHERE o.rows_in_target > COALESCE(s.rows_n, 0)")


def generate_suite(plan: MigrationPlan, tp: TablePlan) -> dict:
    """The generated suite of one table (GX ``ExpectationSuite`` JSON), in the target's SQL."""
    schema = plan.schema_of(tp)
    my = plan.target_dialect == "mysql"
    by_source = {c.source: c for c in tp.columns}
    exps: list[dict] = [_expectation(
        "expect_table_row_count_to_equal", {"value": {"$PARAMETER": ROW_COUNT_PARAMETER}}, "row count",
        "rows in the target = rows in the source minus rows the copy rejected (counted at validation time)")]
    pk = next((ix for ix in tp.indexes if ix.kind == "primary"), None)
    pk_cols = pk.columns if pk else []
    for c in tp.columns:
        if c.target in pk_cols:
            exps.append(_expectation("expect_column_values_to_not_be_null", {"column": c.target}, "primary key not null",
                                     f"primary key column {c.target} has no NULL", column=c.source))
        elif not c.nullable:
            exps.append(_expectation("expect_column_values_to_not_be_null", {"column": c.target}, "not null",
                                     f"{c.target} is NOT NULL in the source: no NULL in the target", column=c.source))
    def uq(cols):
        return my_unique_query(tp.target, cols) if my else unique_query(schema, tp.target, cols)

    if pk_cols:
        exps.append(_expectation(
            "unexpected_rows_expectation", {"unexpected_rows_query": uq(pk_cols)},
            "primary key unique", f"primary key ({', '.join(pk_cols)}) is unique", columns=pk_cols))
    for ix in tp.indexes:
        if ix.kind != "unique" or ix.where is not None or ix.expression_sql is not None or not ix.columns:
            continue
        exps.append(_expectation(
            "unexpected_rows_expectation", {"unexpected_rows_query": uq(ix.columns)},
            "unique", f"UNIQUE ({', '.join(ix.columns)}) holds", columns=ix.columns, index=ix.source_name or ix.name))
    key_targets = [by_source[k].target for k in tp.key if k in by_source]
    for fk in tp.foreign_keys:
        exps.append(_expectation(
            "unexpected_rows_expectation", {"unexpected_rows_query": (my_orphan_query(fk, key_targets) if my else
                                                                      orphan_query(schema, fk, key_targets))},
            "foreign key", f"every {', '.join(fk.columns)} value exists in {fk.ref_table} "
                           f"(dangling references allowed only as far as the source already had them)",
            foreign_key=fk.name, parent=fk.ref_table, columns=fk.columns))
    for e in exps:
        if e["type"] == "unexpected_rows_expectation":
            e["kwargs"]["result_format"] = "COMPLETE"  # list the offending rows, not just count them
    return {"name": suite_name(schema, tp.target), "id": None, "expectations": exps,
            "meta": {"great_expectations_version": GX_VERSION,
                     "golive": {"table": tp.source, "target": tp.target, "schema": schema,
                                "plan_fingerprint": plan_fingerprint(schema, tp)}},
            "notes": "Generated by golive from the source schema; expectations without meta.golive are kept "
                     "when it is regenerated (golive expectations generate)."}


def merge(generated: dict, existing: dict | None) -> dict:
    """The generated suite plus every expectation of ``existing`` golive did not generate (added by hand)."""
    if not existing:
        return generated
    kept = [e for e in existing.get("expectations", []) if "golive" not in (e.get("meta") or {})]
    out = dict(generated)
    out["expectations"] = list(generated["expectations"]) + kept
    if existing.get("notes") and existing["notes"] != generated.get("notes"):
        out["notes"] = existing["notes"]
    return out


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        from golive.errors import ConfigError

        raise ConfigError(f"expectation suite {path} cannot be read ({exc}); fix or delete it, then run "
                          "golive expectations generate") from None


def save(path: Path, suite: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _fingerprint_of(suite: dict) -> str | None:
    return ((suite.get("meta") or {}).get("golive") or {}).get("plan_fingerprint")


def ensure_suites(plan: MigrationPlan, directory: str | Path, tables: list[TablePlan], *,
                  regenerate: bool = False) -> dict[str, dict]:
    """Suites for ``tables``: read from ``directory`` (the folder of one source database); generated (and
    written) when missing, when made for another shape of the table, or on request.

    Returns ``{source table: suite}``.
    """
    out = {}
    for tp in tables:
        name = suite_name(plan.schema_of(tp), tp.target)
        path = suite_path(directory, name)
        existing = load(path)
        stale = existing is not None and _fingerprint_of(existing) != plan_fingerprint(plan.schema_of(tp), tp)
        if existing is None or regenerate or stale:
            suite = merge(generate_suite(plan, tp), existing)
            save(path, suite)
            log.info("%s expectation suite %s", "regenerated (the table changed)" if stale else "wrote", path)
        else:
            suite = existing
        out[tp.source] = suite
    return out

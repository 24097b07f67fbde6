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
* primary key and UNIQUE columns are unique (``unexpected_rows_expectation`` listing duplicates; on
  PostgreSQL answered by the catalog when a valid unique index on exactly those columns exists, because
  PostgreSQL then guarantees it, else by grouping the rows);
* no orphan foreign keys (``unexpected_rows_expectation`` with the anti-join; on PostgreSQL answered by the
  catalog when it has validated the key and enforces it). SQLite does not enforce foreign keys, so a
  source may already hold orphans; the rule is: *every dangling reference in the target already
  dangled in the source, with no more rows than there*. The source's orphans (and references to rows
  the copy rejected) are recorded by validation in the target (``Checksums.record_source_orphans``); the
  query leaves them out.

The queries are in the target's SQL: its ``Checksums.unique_query`` / ``orphan_query``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from golive.dialects import dialect_of, get_dialect
from golive.model.plan import MigrationPlan, TablePlan

log = logging.getLogger(__name__)

GX_VERSION = "1.24.1"
#: bumped whenever golive generates different expectations for the same table: old suites are regenerated
SUITE_FORMAT = 3
ROW_COUNT_PARAMETER = "expected_row_count"


#: where generated suites go unless ``--expectations DIR`` says otherwise (golive's state folder)
DEFAULT_DIR = "golive-runs/expectations"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "db"


def source_key(source) -> str:
    """The folder naming the database a suite was made for: ``app-1a2b3c4d`` for ``/srv/app/app.db``
    (file name + 8 hex of the absolute path), ``mysql-db.internal-3306-shop`` for a server (no user, no
    password)."""
    dialect = dialect_of(source)
    if dialect.file_based and source.path is not None:
        path = Path(source.path).resolve()
        return f"{_slug(path.stem)}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    port = source.port or dialect.default_port or 0
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


def _gx_query(sql: str) -> str:
    """An ``unexpected_rows_query`` as GX reads it (``str.format``): the braces of names (a table ``{x}``) doubled,
    ``{batch}`` kept."""
    return sql.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")


def generate_suite(plan: MigrationPlan, tp: TablePlan) -> dict:
    """The generated suite of one table (GX ``ExpectationSuite`` JSON), in the target's SQL."""
    schema = plan.schema_of(tp)
    checksums = get_dialect(plan.target_dialect).checksums
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
        return _gx_query(checksums.unique_query(schema, tp.target, cols))

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
            "unexpected_rows_expectation", {"unexpected_rows_query": _gx_query(checksums.orphan_query(schema, fk, key_targets))},
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

"""Run the expectation suites with Great Expectations against the target; keep the results; build Data Docs.

Great Expectations is imported here only (about 3 s), so only validation pays for it, never ``golive
--help``. It runs offline (``GX_ANALYTICS_ENABLED=false``, set by ``golive.runtime``) with an
*ephemeral* context: nothing is written to a ``gx/`` project; the suites come from ``expectations/``,
the results and the Data Docs site go to the run's output directory:

    <output>/gx/results/<suite>.json     one validation result per table (GX JSON)
    <output>/gx/data_docs/index.html     the Data Docs static site

The datasource is a SQL datasource on the target (its SQLAlchemy URL and engine options from the target's
``Checksums``), one table asset per table, whole-table batches. The connection URL (which may hold a password)
lives only in memory.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import time
import types
import warnings
from pathlib import Path

from golive.dialects import dialect_of
from golive.model.validation import ExpectationOutcome
from golive.urls import DatabaseURL, as_url, mask
from golive.validation.suites import ROW_COUNT_PARAMETER

log = logging.getLogger(__name__)

_GX = {}


#: modules Great Expectations imports at start-up but only uses inside expectations and renderers golive
#: does not generate (distribution statistics, charts, S3 stores), or only for Data Docs (markdown, JSON
#: schema), which are built after the results are out: about 45 % of its import time
DEFERRED_MODULES = ("scipy.stats", "altair", "boto3", "jsonschema", "mistune")


class _Deferred(types.ModuleType):
    """A module placeholder that imports the real module the first time one of its attributes is used."""

    def __getattr__(self, attr):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        parent, _, child = name.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, real)
        return getattr(real, attr)


def _defer(names) -> None:
    for name in names:
        if name in sys.modules:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        module = _Deferred(name)
        module.__spec__, module.__file__ = spec, spec.origin
        sys.modules[name] = module


def import_gx():
    """Import Great Expectations once, deferring the modules it does not need for golive's suites."""
    if "gx" not in _GX:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        t0 = time.perf_counter()
        _defer(DEFERRED_MODULES)
        import great_expectations as gx  # noqa: PLC0415  (heavy: only validation pays)

        _case_sensitive_columns()
        _percent_in_batch_names()
        _GX["gx"] = gx
        _GX["import_seconds"] = time.perf_counter() - t0
    return _GX["gx"]


def _case_sensitive_columns() -> None:
    """Keep a column named e.g. "Name" quoted in GX's SQL.

    GX wraps column names in ``CaseInsensitiveString``, which compares equal to ``"name"``; SQLAlchemy's
    quoting cache, already holding ``name`` (from catalog queries), then hands back the unquoted spelling
    and PostgreSQL looks for a column ``name``. Quoting the plain string instead fixes it and changes
    nothing for ordinary strings.
    """
    from sqlalchemy.sql import compiler

    prep = compiler.IdentifierPreparer
    if getattr(prep.quote, "_golive", False):
        return
    original = prep.quote

    def quote(self, ident, *args, **kwargs):
        if type(ident) is not str and isinstance(ident, str) and not hasattr(ident, "quote"):
            ident = str.__str__(ident)
        return original(self, ident, *args, **kwargs)

    quote._golive = True
    prep.quote = quote


def _percent_in_batch_names() -> None:
    """Keep a ``%`` in a table's name single in GX's SQL expectations (a table named ``100%`` or ``%s``).

    GX compiles the batch (``SELECT * FROM "100%"``) for the driver, which doubles the ``%`` for PyMySQL and
    psycopg, puts it into the expectation's query and hands that to ``text()``, which doubles it again: the
    server then looks for ``100%%``. The compiled batch goes back to single ``%`` signs here; ``text()`` doubles
    them once, as it does the rest of the query.
    """
    from great_expectations.expectations.metrics import query_metric_provider as qmp

    render = qmp.render_derived_table_alias
    if getattr(render, "_golive", False):
        return

    def single(subquery: str, alias: str, dialect_name=None) -> str:
        if dialect_name in ("postgresql", "mysql", "mariadb"):
            subquery = subquery.replace("%%", "%")
        return render(subquery, alias, dialect_name)

    single._golive = True
    qmp.render_derived_table_alias = single


def _table_name(name: str):
    """A table's name for a GX table asset: always quoted, as it is (GX strips quotes it is given without reading
    a doubled one, so ``we"ird`` would become ``we""ird``)."""
    from sqlalchemy import quoted_name

    return quoted_name(name, quote=True)


def run_suites(target: DatabaseURL | str, schema: str, suites: dict[str, dict], tables: dict[str, str],
               expected_rows: dict[str, int], out_dir: Path, *, data_docs: bool = True) -> dict:
    """Validate the suites and build the Data Docs (see ``validate_suites``)."""
    out, ctx = validate_suites(target, schema, suites, tables, expected_rows, out_dir, data_docs=data_docs)
    if data_docs:
        out["seconds"]["gx_docs"] = build_docs(ctx, out)
    return out


def build_docs(ctx, out: dict) -> float:
    """Build the Data Docs site of a finished ``validate_suites``; returns the seconds it took."""
    t0 = time.perf_counter()
    try:
        ctx.build_data_docs(site_names=["golive"])
    except Exception as exc:  # the results are kept either way
        log.warning("building Data Docs failed: %s", _first_line(exc))
        out["data_docs"] = None
    return round(time.perf_counter() - t0, 3)


def validate_suites(target: DatabaseURL | str, schema: str, suites: dict[str, dict], tables: dict[str, str],
                    expected_rows: dict[str, int], out_dir: Path, *, data_docs: bool = True) -> tuple[dict, object]:
    """Validate each table of ``suites`` (source name -> suite JSON) in the target.

    Args:
        tables: source table -> target table.
        expected_rows: source table -> rows the target must hold (source rows minus rejects).
        out_dir: where ``results/`` and ``data_docs/`` go.

    Returns ``{"outcomes": [ExpectationOutcome...], "results": {table: path}, "data_docs": path|None,
    "seconds": {...}}``. Failures to run an expectation are outcomes too (never silent).
    """
    target = as_url(target, role="target")
    gx = import_gx()
    from great_expectations.core import ExpectationSuite

    t0 = time.perf_counter()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    results_dir = out_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    docs_dir = out_dir / "data_docs"
    if data_docs:
        ctx.add_data_docs_site("golive", {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    # a generic SQL datasource: GX's PostgreSQL one refuses URLs without a host (a local socket)
    dialect = dialect_of(target)
    ds = ctx.data_sources.add_sql("target", connection_string=sqlalchemy_url_any(target),
                                  kwargs=dialect.checksums.gx_engine_kwargs())
    outcomes: list[ExpectationOutcome] = []
    paths = {}
    setup = time.perf_counter() - t0
    for source, suite_json in suites.items():
        target_table = tables[source]
        table_schema = schema
        if isinstance(target_table, (list, tuple)):  # [schema, table]: tables in several schemas
            table_schema, target_table = target_table
        name = suite_json.get("name") or target_table
        params = {ROW_COUNT_PARAMETER: expected_rows.get(source, 0)}
        try:
            # quoted, so GX keeps the case (and reserved words such as "order" work); GX 1.24 deprecates
            # schema_name in favour of the connection's search_path, which would not keep names apart
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                extra = {"schema_name": _schema(table_schema)} if dialect.has_schemas else {}
                asset = ds.add_table_asset(name, table_name=_table_name(target_table), **extra)
            batch = asset.add_batch_definition_whole_table("whole table")
            body = {k: v for k, v in suite_json.items() if k != "id"}
            suite = ctx.suites.add(ExpectationSuite(**body))
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            # Pass 1 answers pass/fail only: no sample queries (one scan per column) for what passes.
            result = vd.run(expectation_parameters=params, result_format="BOOLEAN_ONLY")
            data = result.to_json_dict()
            if not data.get("success"):
                data = _details(gx, ctx, ExpectationSuite, batch, name, body, data, params)
        except Exception as exc:  # a suite that does not fit the table (renamed column, ...) is a failure
            outcomes.append(ExpectationOutcome(table=source, check="suite", expectation=name, success=False,
                                               detail=f"could not run suite {name}: {_first_line(exc)} "
                                                      "(regenerate it: golive expectations generate)"))
            continue
        path = results_dir / f"{_safe(name)}.json"
        path.write_text(mask(json.dumps(data, indent=2, default=str)), encoding="utf-8")
        paths[source] = str(path)
        outcomes.extend(_outcomes(source, data))
    run = time.perf_counter() - t0 - setup
    docs = str(docs_dir.resolve() / "index.html") if data_docs else None
    seconds = {"gx_import": round(_GX.get("import_seconds", 0.0), 3), "gx_setup": round(setup, 3),
               "gx_run": round(run, 3)}
    return ({"outcomes": outcomes, "results": paths, "data_docs": docs, "results_dir": str(results_dir),
             "seconds": seconds}, ctx)


def _details(gx, ctx, ExpectationSuite, batch, name: str, body: dict, first: dict, params: dict) -> dict:
    """Re-run a failed suite for the details: counts and samples (SUMMARY), and the offending rows of
    failed SQL expectations (COMPLETE, at most 200 rows each)."""
    vd = ctx.validation_definitions.get(name)
    data = vd.run(expectation_parameters=params, result_format={"result_format": "SUMMARY",
                                                                 "partial_unexpected_count": 5}).to_json_dict()
    # GX reorders results: match expectations by their query
    failed_sql = {(r.get("expectation_config") or {}).get("kwargs", {}).get("unexpected_rows_query")
                  for r in first.get("results", [])
                  if not r.get("success") and (r.get("expectation_config") or {}).get("type") == "unexpected_rows_expectation"}
    failed_sql.discard(None)
    if not failed_sql:
        return data
    rows_body = dict(body, name=f"{name} (offending rows)",
                     expectations=[e for e in body["expectations"]
                                   if (e.get("kwargs") or {}).get("unexpected_rows_query") in failed_sql])
    rows_suite = ctx.suites.add(ExpectationSuite(**rows_body))
    rows_vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=rows_body["name"], data=batch, suite=rows_suite))
    rows = rows_vd.run(expectation_parameters=params, result_format="COMPLETE").to_json_dict()
    by_query = {(r.get("expectation_config") or {}).get("kwargs", {}).get("unexpected_rows_query"): r
                for r in rows.get("results", [])}
    for r in data.get("results", []):
        q = (r.get("expectation_config") or {}).get("kwargs", {}).get("unexpected_rows_query")
        if q in by_query:
            r["result"] = by_query[q].get("result", r.get("result"))
    return data


def _outcomes(table: str, data: dict) -> list[ExpectationOutcome]:
    out = []
    for r in data.get("results", []):
        cfg = r.get("expectation_config") or {}
        meta = (cfg.get("meta") or {}).get("golive") or {}
        check = meta.get("check") or "hand-written"
        kind = cfg.get("type", "?")
        ok = bool(r.get("success"))
        detail = "" if ok else _detail(check, cfg, r)
        out.append(ExpectationOutcome(table=table, check=check, expectation=kind, success=ok, detail=detail))
    return out


def _detail(check: str, cfg: dict, r: dict) -> str:
    """One line saying what is wrong, from a failed expectation's result."""
    exc = r.get("exception_info") or {}
    if exc.get("raised_exception"):
        return f"could not be checked: {_first_line(exc.get('exception_message') or 'error')}"
    res = r.get("result") or {}
    kw = cfg.get("kwargs") or {}
    if cfg.get("type") == "expect_table_row_count_to_equal":
        return f"the target has {res.get('observed_value')} rows, expected {kw.get('value')} (source rows minus rejects)"
    if cfg.get("type") == "expect_column_values_to_not_be_null":
        n = res.get("unexpected_count")
        sample = res.get("partial_unexpected_index_list") or []
        return f"column {kw.get('column')} has {n} NULL values" + (f" (e.g. rows {sample[:5]})" if sample else "")
    if cfg.get("type") == "unexpected_rows_expectation":
        rows = (res.get("details") or {}).get("unexpected_rows") or []
        n = res.get("observed_value")
        shown = "; ".join(_row(x) for x in rows[:5])
        what = {"primary key unique": "duplicate keys", "unique": "duplicate values",
                "foreign key": "dangling references"}.get(check, "unexpected rows")
        meta = (cfg.get("meta") or {}).get("golive") or {}
        where = f" ({meta.get('foreign_key')} -> {meta.get('parent')})" if check == "foreign key" else ""
        return f"{n} {what}{where}" + (f": {shown}" if shown else "")
    return json.dumps(res, default=str)[:300]


def _schema(schema: str) -> str:
    return schema if schema == schema.lower() and schema.isidentifier() else f'"{schema}"'


def _row(x) -> str:
    if isinstance(x, dict):
        return ", ".join(f"{k}={v}" for k, v in x.items())
    return str(x)


def _first_line(exc) -> str:
    text = str(exc).strip()
    return mask(text.splitlines()[0] if text else type(exc).__name__)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


# ---------------------------------------------------------------- row counts on any engine (backups)

def sqlalchemy_url_any(url: DatabaseURL | str) -> str:
    """A SQLAlchemy URL for GX's generic SQL datasource on any engine (its ``Checksums.sqlalchemy_url``)."""
    url = as_url(url)
    return dialect_of(url).checksums.sqlalchemy_url(url)


def validate_row_counts(target: DatabaseURL | str, tables: list[dict], out_dir: Path,
                        labels: tuple[str, str] = ("the restored table", "the backup's manifest")) -> dict:
    """``expect_table_row_count_to_equal`` for each table of ``tables`` (``{"name", "schema", "table", "rows"}``)
    on PostgreSQL, MySQL/MariaDB or SQLite; the results go to ``out_dir/results``. ``labels`` name the observed
    and the expected side in a failure's detail (releases: the table after the migrations, before them).

    A separate, additive path next to ``validate_suites`` (migrations), used by backups to prove
    a restore. Returns ``{"outcomes": [ExpectationOutcome...], "results": {table: path}, "seconds": {...}}``.
    """
    target = as_url(target, role="target")
    gx = import_gx()
    from great_expectations.core import ExpectationSuite

    t0 = time.perf_counter()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False}
    results_dir = out_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    ds = ctx.data_sources.add_sql("restored", connection_string=sqlalchemy_url_any(target),
                                  kwargs=dialect_of(target).checksums.gx_engine_kwargs())
    outcomes: list[ExpectationOutcome] = []
    paths = {}
    for i, t in enumerate(tables):
        name = f"rows-{i:04d}-{_safe(t['name'])}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                extra = {"schema_name": _schema(t["schema"])} if t.get("schema") else {}
                asset = ds.add_table_asset(name, table_name=_table_name(t["table"]), **extra)
            batch = asset.add_batch_definition_whole_table("whole table")
            suite = ctx.suites.add(ExpectationSuite(name=name, expectations=[
                gx.expectations.ExpectTableRowCountToEqual(value=int(t["rows"]),
                                                           meta={"golive": {"check": "row count"}})]))
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            data = vd.run(result_format="SUMMARY").to_json_dict()
        except Exception as exc:  # a table that is missing or unreadable is a failure, never silence
            outcomes.append(ExpectationOutcome(table=t["name"], check="row count", expectation="expect_table_row_count_to_equal",
                                               success=False, detail=f"could not be checked: {_first_line(exc)}"))
            continue
        path = results_dir / f"{name}.json"
        path.write_text(mask(json.dumps(data, indent=2, default=str)), encoding="utf-8")
        paths[t["name"]] = str(path)
        for r in data.get("results", []):
            ok = bool(r.get("success"))
            detail = ""
            if not ok:
                exc = r.get("exception_info") or {}
                if exc.get("raised_exception"):
                    detail = f"could not be checked: {_first_line(exc.get('exception_message') or 'error')}"
                else:
                    detail = (f"{labels[0]} has {(r.get('result') or {}).get('observed_value')} rows, "
                              f"{labels[1]} {t['rows']}")
            outcomes.append(ExpectationOutcome(table=t["name"], check="row count",
                                               expectation="expect_table_row_count_to_equal", success=ok, detail=detail))
    return {"outcomes": outcomes, "results": paths, "results_dir": str(results_dir),
            "seconds": {"gx_import": round(_GX.get("import_seconds", 0.0), 3),
                        "gx_run": round(time.perf_counter() - t0, 3)}}

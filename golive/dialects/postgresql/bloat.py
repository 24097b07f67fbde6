"""What PostgreSQL's tables and indexes weigh and how much of it is waste: sizes, dead tuples, rows changed since the
last ANALYZE, and table and B-tree index bloat estimated from the catalog and ``pg_stats`` (no table is read). These
are the numbers both the report's checks (``health.py``) and maintenance's plans (``maintenance.py``) decide on.

The estimate is the classic one (PgHero, check_postgres, pgexperts): from the average width of the
columns (``pg_stats.avg_width``, ``null_frac``) and the number of live rows, how many pages would the
table or index need when freshly written with its fillfactor; whatever the relation has beyond that is
bloat. It is an estimate: it needs the columns' statistics (``ANALYZE``), it knows nothing of
expression columns, and B-tree deduplication (PostgreSQL 13+) makes indexes with many equal keys smaller
than estimated (bloat is then under-, never over-stated). ``pgstattuple`` gives exact figures by reading
every page; golive does not read every page of a production database for a report.

Rows: ``live_tuples`` is ``pg_stat_user_tables.n_live_tup`` (kept current by every write) when it is
known, ``pg_class.reltuples`` (as of the last VACUUM/ANALYZE) otherwise.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from golive.model.health import Context, Finding, TableSize, pct, query
from golive.units import human_bytes, human_count

#: schemas whose objects are the database's own business, not the app's
SYSTEM_SCHEMAS_SQL = ("n.nspname NOT IN ('pg_catalog', 'information_schema', '_golive') "
                      "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'")

PAGE_HEADER = 24  # PageHeaderData
BTREE_SPECIAL = 16  # BTPageOpaqueData
ITEM_POINTER = 4  # ItemIdData: one line pointer per tuple
HEAP_HEADER = 23  # HeapTupleHeaderData
INDEX_HEADER = 8  # IndexTupleData
MAXALIGN = 8

TABLES_SQL = f"""
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) AS name, c.relkind::text AS relkind,
       pg_relation_size(c.oid) AS bytes, c.reltuples::float8 AS reltuples, coalesce(st.n_live_tup, 0) AS n_live_tup,
       coalesce(st.n_dead_tup, 0) AS n_dead_tup, current_setting('block_size')::int AS block_size,
       coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(c.reloptions) o
                 WHERE o LIKE 'fillfactor=%%'), 100) AS fillfactor,
       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS natts,
       s.nstats, s.data_width, s.has_nulls
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
LEFT JOIN LATERAL (
  SELECT count(*) AS nstats, sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
         coalesce(bool_or(s.null_frac > 0), false) AS has_nulls
  FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited) s ON true
WHERE c.relkind IN ('r', 'm') AND {SYSTEM_SCHEMAS_SQL}
"""

INDEXES_SQL = f"""
SELECT x.indexrelid AS oid, format('%%I.%%I', n.nspname, ci.relname) AS name, ci.relname AS index_name,
       n.nspname AS schema, format('%%I.%%I', n.nspname, ct.relname) AS table_name, am.amname,
       x.indisunique, x.indisprimary, x.indisvalid, x.indpred IS NOT NULL AS partial,
       x.indexprs IS NOT NULL AS expression, x.indnatts, pg_relation_size(x.indexrelid) AS bytes,
       ci.reltuples::float8 AS index_tuples, ct.reltuples::float8 AS table_tuples,
       coalesce(st.n_live_tup, 0) AS n_live_tup, current_setting('block_size')::int AS block_size,
       coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(ci.reloptions) o
                 WHERE o LIKE 'fillfactor=%%'), 90) AS fillfactor,
       s.nstats, s.data_width, s.has_nulls, pg_get_indexdef(x.indexrelid) AS definition
FROM pg_index x
JOIN pg_class ci ON ci.oid = x.indexrelid
JOIN pg_class ct ON ct.oid = x.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_am am ON am.oid = ci.relam
LEFT JOIN pg_stat_user_tables st ON st.relid = ct.oid
LEFT JOIN LATERAL (
  SELECT count(*) AS nstats, sum((1 - s.null_frac) * s.avg_width)::float8 AS data_width,
         coalesce(bool_or(s.null_frac > 0), false) AS has_nulls
  FROM pg_attribute a
  JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = ct.relname AND s.attname = a.attname AND NOT s.inherited
  WHERE a.attrelid = ct.oid AND a.attnum = ANY (x.indkey)) s ON true
WHERE ct.relkind IN ('r', 'm') AND {SYSTEM_SCHEMAS_SQL}
"""


class Bloat(BaseModel):
    """Estimated bloat of one table or index."""

    oid: int
    name: str
    kind: str  # table | matview | index
    table: str | None = None
    bytes: int
    expected_bytes: int | None = None
    wasted_bytes: int = 0
    ratio: float = 0.0
    rows: int = 0
    estimated: bool = True
    why_not: str = ""  # when no estimate could be made
    valid: bool = True
    unique: bool = False
    primary: bool = False
    definition: str = ""
    index_name: str = ""
    schema_name: str = ""


def _align(n: float) -> int:
    return int(math.ceil(n / MAXALIGN) * MAXALIGN)


def _rows(live: int, reltuples: float) -> int:
    return int(live) if live and live > 0 else max(int(reltuples or 0), 0)


def table_bloat(conn) -> list[Bloat]:
    """The estimated bloat of every user table and materialized view."""
    out = []
    for r in _dicts(conn, TABLES_SQL):
        rows = _rows(r["n_live_tup"], r["reltuples"])
        b = Bloat(oid=r["oid"], name=r["name"], kind="matview" if r["relkind"] == "m" else "table",
                  bytes=r["bytes"], rows=rows)
        if r["reltuples"] is not None and r["reltuples"] < 0 and not r["n_live_tup"]:
            b.estimated, b.why_not = False, "never analyzed"
        elif (r["nstats"] or 0) < r["natts"]:
            b.estimated, b.why_not = False, "column statistics missing (run ANALYZE)"
        else:
            bs = r["block_size"]
            header = _align(HEAP_HEADER + (math.ceil(r["natts"] / 8) if r["has_nulls"] else 0))
            tuple_bytes = header + _align(r["data_width"] or 0)
            per_page = max(int((bs - PAGE_HEADER) * r["fillfactor"] / 100 // (tuple_bytes + ITEM_POINTER)), 1)
            _finish(b, math.ceil(rows / per_page) * bs if rows else 0, bs)
        out.append(b)
    return out


def index_bloat(conn) -> list[Bloat]:
    """The estimated bloat of every user B-tree index (other methods and expression indexes: no estimate)."""
    out = []
    for r in _dicts(conn, INDEXES_SQL):
        rows = int(r["index_tuples"]) if r["partial"] else _rows(r["n_live_tup"], r["table_tuples"])
        b = Bloat(oid=r["oid"], name=r["name"], kind="index", table=r["table_name"], bytes=r["bytes"], rows=max(rows, 0),
                  valid=r["indisvalid"], unique=r["indisunique"], primary=r["indisprimary"],
                  definition=r["definition"], index_name=r["index_name"], schema_name=r["schema"])
        if r["amname"] != "btree":
            b.estimated, b.why_not = False, f"{r['amname']} index (estimates are for B-tree only)"
        elif r["expression"]:
            b.estimated, b.why_not = False, "expression index"
        elif (r["nstats"] or 0) < r["indnatts"]:
            b.estimated, b.why_not = False, "column statistics missing (run ANALYZE)"
        elif r["table_tuples"] is not None and r["table_tuples"] < 0 and not r["n_live_tup"]:
            b.estimated, b.why_not = False, "table never analyzed"
        else:
            bs = r["block_size"]
            tuple_bytes = _align(INDEX_HEADER + (4 if r["has_nulls"] else 0) + (r["data_width"] or 0))
            usable = (bs - PAGE_HEADER - BTREE_SPECIAL) * r["fillfactor"] / 100
            per_page = max(int(usable // (tuple_bytes + ITEM_POINTER)), 2)
            leaves = math.ceil(b.rows / per_page) if b.rows else 1
            inner = math.ceil(leaves / per_page) if leaves > 1 else 0
            _finish(b, (leaves + inner + 1) * bs, bs)  # + the metapage
        out.append(b)
    return out


def _finish(b: Bloat, expected: int, bs: int) -> None:
    expected = max(expected, bs) if b.bytes else 0
    b.expected_bytes = expected
    b.wasted_bytes = max(b.bytes - expected, 0)
    b.ratio = round(b.wasted_bytes / b.bytes, 4) if b.bytes else 0.0


def _dicts(conn, sql: str, params: dict | None = None) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(sql, params or {})
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


# ------------------------------------------------------------------ dead tuples and stale statistics

TABLE_ACTIVITY_SQL = """
SELECT s.relid AS oid, format('%%I.%%I', s.schemaname, s.relname) AS "table", s.n_live_tup, s.n_dead_tup,
       s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       c.reltuples::float8 AS reltuples, pg_relation_size(s.relid) AS bytes, c.relkind::text AS relkind
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname <> '_golive' AND s.schemaname NOT LIKE 'pg\\_temp%%' AND c.relkind IN ('r', 'm')
ORDER BY s.n_dead_tup DESC, 2
"""


def needs_vacuum(row: dict, t) -> str | None:
    """Why ``row`` (of ``TABLE_ACTIVITY_SQL``) needs a VACUUM under thresholds ``t``, or None."""
    dead, live = row["n_dead_tup"] or 0, row["n_live_tup"] or 0
    ratio = dead / (dead + live) if dead + live else 0.0
    if dead and dead >= t.min_dead_tuples and ratio >= t.dead_ratio:
        return (f"{human_count(dead)} dead tuples ({pct(ratio)} of {human_count(dead + live)}; thresholds "
                f"{human_count(t.min_dead_tuples)} and {pct(t.dead_ratio)})")
    return None


def needs_analyze(row: dict, t) -> str | None:
    """Why ``row`` needs an ANALYZE (rows changed since the last one), or None."""
    changes = row["n_mod_since_analyze"] or 0
    rows = max(row["n_live_tup"] or 0, int(row["reltuples"] or 0), 0)
    if changes and changes >= t.min_changes and changes >= t.analyze_ratio * rows:
        never = row["last_analyze"] is None and row["last_autoanalyze"] is None
        return (f"{human_count(changes)} rows changed since the last ANALYZE"
                f"{' (never analyzed)' if never else ''}, {pct(changes / rows) if rows else 'all'} of "
                f"{human_count(rows)} (thresholds {human_count(t.min_changes)} and {pct(t.analyze_ratio)})")
    return None


# ------------------------------------------------------------------ sizes, and bloat as findings

SIZES_SQL = f"""
SELECT format('%%I.%%I', n.nspname, c.relname) AS name, CASE c.relkind WHEN 'm' THEN 'matview' ELSE 'table' END AS kind,
       pg_total_relation_size(c.oid) AS bytes, pg_relation_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes, coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast_bytes,
       CASE WHEN coalesce(s.n_live_tup, 0) > 0 THEN s.n_live_tup ELSE greatest(c.reltuples, 0)::bigint END AS row_count
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND {SYSTEM_SCHEMAS_SQL}
UNION ALL
SELECT format('%%I.%%I', n.nspname, ci.relname), 'index', pg_relation_size(ci.oid), 0, 0, 0, NULL
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE {SYSTEM_SCHEMAS_SQL}
"""
INDEX_TABLES_SQL = f"""
SELECT format('%%I.%%I', n.nspname, ci.relname) AS name, format('%%I.%%I', tn.nspname, ct.relname) AS "table"
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_class ct ON ct.oid = x.indrelid JOIN pg_namespace tn ON tn.oid = ct.relnamespace
WHERE {SYSTEM_SCHEMAS_SQL}
"""


def collect_sizes(conn) -> tuple[int, list[TableSize]]:
    """The database's size and that of every user table, materialized view and index."""
    total = query(conn, "SELECT pg_database_size(current_database()) AS b")[0]["b"]
    owner = {r["name"]: r["table"] for r in query(conn, INDEX_TABLES_SQL)}
    return total, [TableSize(**r, table=owner.get(r["name"]) if r["kind"] == "index" else None)
                   for r in query(conn, SIZES_SQL)]


def read_table_sizes(rows, ctx: Context) -> list[Finding]:
    """The largest tables (with their indexes and TOAST) and their growth, from the collected sizes."""
    out = []
    tables = sorted((s for s in ctx.sizes if s.kind != "index"), key=lambda s: -s.bytes)[: ctx.facts.get("top", 10)]
    for s in tables:
        growth = s.growth
        grew = "" if growth is None else f", {'+' if growth >= 0 else '-'}{human_bytes(abs(growth))} since {s.previous_at}"
        out.append(ctx.finding("info", s.name, f"{human_bytes(s.bytes)} (table {human_bytes(s.table_bytes)}, indexes "
                               f"{human_bytes(s.index_bytes)}, TOAST {human_bytes(s.toast_bytes)}), "
                               f"~{human_count(s.row_count or 0)} rows{grew}",
                               {**s.model_dump(), "growth_bytes": growth}))
    return out


def read_table_bloat(rows, ctx: Context) -> list[Finding]:
    """Tables over the table-bloat thresholds (the rule of ``golive maintenance vacuum-full``)."""
    t = ctx.thresholds
    out = []
    for b in table_bloat(ctx.conn):
        if b.estimated and b.ratio >= t.table_bloat_ratio and b.wasted_bytes >= t.min_table_bloat_bytes:
            out.append(ctx.finding("warning", b.name, f"~{human_bytes(b.wasted_bytes)} of {human_bytes(b.bytes)} "
                                   f"wasted ({pct(b.ratio)}, estimated for {human_count(b.rows)} rows)",
                                   {"table": b.name, **b.model_dump(include={"bytes", "expected_bytes", "wasted_bytes",
                                                                             "ratio", "rows"})}))
    return out


def read_index_bloat(rows, ctx: Context) -> list[Finding]:
    """Valid B-tree indexes over the bloat thresholds (the rule of ``golive maintenance reindex``)."""
    t = ctx.thresholds
    out = []
    for b in index_bloat(ctx.conn):
        if b.valid and b.estimated and b.ratio >= t.bloat_ratio and b.wasted_bytes >= t.min_bloat_bytes:
            fix = (f"REINDEX INDEX CONCURRENTLY {b.name};  -- or: golive maintenance reindex" if ctx.version_num >= 120000
                   else f"-- PostgreSQL < 12: CREATE INDEX CONCURRENTLY a copy of {b.name}, then DROP INDEX CONCURRENTLY "
                        "the old one (plain REINDEX blocks writes)")
            out.append(ctx.finding("warning", b.name, f"~{human_bytes(b.wasted_bytes)} of {human_bytes(b.bytes)} wasted "
                                   f"({pct(b.ratio)}, estimated for {human_count(b.rows)} rows) on {b.table}",
                                   {"index": b.name, **b.model_dump(include={"table", "bytes", "expected_bytes",
                                                                             "wasted_bytes", "ratio", "rows"})},
                                   fix=fix))
    return out

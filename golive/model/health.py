"""What the health report and maintenance share with the engines: thresholds, findings, sizes, and checks as data.

A check is an id, an engine, the SQL that gathers its evidence, how to read a severity from the rows, and the SQL
that fixes what it finds. Each engine lists its checks (``Health.checks()`` in ``golive/dialects/<engine>/health.py``);
``golive.health.checks.run_checks`` runs them. The thresholds are shared with ``golive maintenance``: the report
calls a table "needs vacuum" with the very numbers that make maintenance vacuum it.

Adding a check: write its SQL (``%(name)s`` placeholders take the thresholds; a literal ``%`` is written ``%%``), a
``read(rows, ctx)`` function returning ``ctx.finding(...)`` objects, and a ``fix`` template whose ``{placeholders}``
come from each finding's evidence; append it to the engine's ``CHECKS`` and give it a test in ``tests/maintenance/``.
Neutral: no engine here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, NamedTuple

from pydantic import BaseModel, Field

from golive.units import human_bytes, human_count

log = logging.getLogger(__name__)

Severity = Literal["critical", "warning", "info", "ok", "error"]

#: most serious first; ``error`` means the check itself could not run
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "error": 1, "warning": 2, "info": 3, "ok": 4}


def worst(severities) -> str:
    """The most serious severity of ``severities`` (``ok`` when empty)."""
    return min(severities, key=SEVERITY_ORDER.__getitem__, default="ok")


class Thresholds(BaseModel):
    """The numbers behind every decision of the report and of maintenance (all have defaults)."""

    # activity
    long_query_seconds: float = Field(60, ge=0, title="Long query (s)",
                                      description="A query running this long is a warning (PgHero: 60 s).")
    long_query_critical_seconds: float = Field(3600, ge=0, title="Long query, critical (s)",
                                               description="A query running this long is critical.")
    idle_in_transaction_seconds: float = Field(60, ge=0, title="Idle in transaction (s)",
                                               description="A session idle in an open transaction this long is "
                                                           "a warning (it holds locks and blocks vacuum).")
    connections_warning: float = Field(0.8, ge=0, le=1, title="Connections, warning",
                                       description="Share of max_connections in use that is a warning.")
    connections_critical: float = Field(0.95, ge=0, le=1, title="Connections, critical",
                                        description="Share of max_connections in use that is critical.")
    # vacuum / analyze
    min_dead_tuples: int = Field(1000, ge=0, title="Minimum dead tuples",
                                 description="vacuum-analyze: a table needs at least this many dead tuples ...")
    dead_ratio: float = Field(0.1, ge=0, le=1, title="Dead tuple ratio",
                              description="... and at least this share of dead tuples among all its tuples.")
    min_changes: int = Field(1000, ge=0, title="Minimum changed rows",
                             description="analyze: rows inserted/updated/deleted since the last ANALYZE ...")
    analyze_ratio: float = Field(0.1, ge=0, title="Changed rows ratio",
                                 description="... as a share of the table's rows.")
    # bloat
    bloat_ratio: float = Field(0.3, ge=0, le=1, title="Index bloat ratio",
                               description="reindex: estimated wasted share of an index ...")
    min_bloat_bytes: int = Field(10_000_000, ge=0, title="Minimum index bloat (bytes)",
                                 description="... and at least this many wasted bytes.")
    table_bloat_ratio: float = Field(0.5, ge=0, le=1, title="Table bloat ratio",
                                     description="Estimated wasted share of a table (report; vacuum-full) ...")
    min_table_bloat_bytes: int = Field(10_000_000, ge=0, title="Minimum table bloat (bytes)",
                                       description="... and at least this many wasted bytes.")
    # MySQL fragmentation
    fragmentation_ratio: float = Field(0.2, ge=0, le=1, title="Fragmentation ratio (MySQL)",
                                       description="optimize: data_free as a share of the table's whole size ...")
    min_free_bytes: int = Field(32_000_000, ge=0, title="Minimum free space (bytes, MySQL)",
                                description="... and at least this many bytes of data_free (InnoDB keeps a few "
                                            "MB free in every tablespace).")
    # indexes
    unused_max_scans: int = Field(0, ge=0, title="Unused index: max scans",
                                  description="An index scanned at most this often since the statistics were "
                                              "reset is unused (PgHero: 50).")
    unused_min_days: float = Field(7, ge=0, title="Unused index: days of statistics",
                                   description="With statistics younger than this, an unused index is only info "
                                               "(a weekly job may need it).")
    # overflow
    overflow_warning: float = Field(0.75, ge=0, le=1, title="Integer overflow, warning",
                                    description="Share of an integer key type's range used that is a warning.")
    overflow_critical: float = Field(0.9, ge=0, le=1, title="Integer overflow, critical",
                                     description="Share used that is critical (PgHero: 0.9).")
    wraparound_critical_xids: int = Field(10_000_000, ge=0, title="Wraparound: XIDs left",
                                          description="Transactions left before the wraparound shutdown that is "
                                                      "critical (PgHero: 10 million).")
    # caches, queries, replication
    cache_hit_rate: float = Field(0.99, ge=0, le=1, title="Cache hit rate",
                                  description="A table/index/buffer pool hit rate below this is a warning.")
    cache_min_reads: int = Field(10_000, ge=0, title="Cache: minimum block reads",
                                 description="Fewer block requests than this: not enough data to judge.")
    slow_query_ms: float = Field(100, ge=0, title="Slow query (ms)",
                                 description="pg_stat_statements: mean time that makes a query slow.")
    slow_query_min_calls: int = Field(100, ge=0, title="Slow query: minimum calls",
                                      description="... among queries called at least this often.")
    replication_lag_seconds: float = Field(60, ge=0, title="Replication lag (s)",
                                           description="Replica lag that is a warning.")
    slot_retained_bytes: int = Field(1_000_000_000, ge=0, title="Slot WAL retained (bytes)",
                                     description="WAL kept by a replication slot that is critical.")
    soft_delete_days: float = Field(30, ge=0, title="Soft-deleted: days",
                                    description="Rows soft-deleted (deleted_at, archived_at, ...) longer ago than "
                                                "this are listed as waiting for purge-soft-deleted.")
    seq_scan_min_rows: int = Field(10_000, ge=0, title="Sequential scans: minimum rows",
                                   description="Tables at least this big that are mostly read by sequential "
                                               "scans are listed (PgHero: 10,000).")


class Finding(BaseModel):
    """One thing a check found: how serious, on what, why (the evidence), and the SQL that fixes it."""

    check: str
    severity: Severity
    object: str = Field("", description="The table, index, session ... it is about (quoted as SQL names).")
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    fix: str | None = Field(None, description="SQL that fixes it (comments say what it locks or costs).")


class TableSize(BaseModel):
    """Size of one table now, and its growth since the previous report."""

    name: str
    kind: Literal["table", "index", "matview"] = "table"
    table: str | None = Field(None, description="For an index: its table.")
    bytes: int
    table_bytes: int = 0
    index_bytes: int = 0
    toast_bytes: int = 0
    row_count: int | None = None
    previous_bytes: int | None = None
    previous_at: str | None = None

    @property
    def growth(self) -> int | None:
        return None if self.previous_bytes is None else self.bytes - self.previous_bytes


class ServerFacts(NamedTuple):
    """What a report and a maintenance plan record of the server (``Health.facts``)."""

    dbname: str
    version: str
    #: orders versions: PostgreSQL's ``server_version_num`` (150004), MySQL 8.0.36 -> 80036, MariaDB 10.11.9 -> 101109
    version_num: int


@dataclass(frozen=True)
class Check:
    """One check: what it asks the database, and how to read the answer."""

    id: str
    engine: str  # the dialect's registry name
    title: str
    sql: str | None  # None: the check reads what the report already collected (sizes), or asks ``ctx.query``
    read: Callable[[list[dict], "Context"], list[Finding]]
    fix: str | None = None  # template; {placeholders} from the finding's evidence
    doc: str = ""
    ok: str = "nothing found"  # the summary when there is no finding
    min_version: int = 0  # the ``ServerFacts.version_num`` the SQL needs


@dataclass
class Context:
    """What a check's ``read`` may use: the connection, the thresholds, the server, the collected sizes."""

    conn: Any
    engine: str
    thresholds: Thresholds
    version_num: int
    dbname: str
    sizes: list[TableSize] = field(default_factory=list)
    previous_at: str | None = None
    check: Check | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    #: the engine as people read it ("needs PostgreSQL 11 or later")
    title: str = ""

    @property
    def params(self) -> dict:
        return self.thresholds.model_dump()

    def query(self, sql: str, params: dict | None = None) -> list[dict]:
        """Rows of ``sql`` as dicts (``%(threshold)s`` placeholders are filled from the thresholds)."""
        return query(self.conn, sql, {**self.params, **(params or {})})

    def finding(self, severity: str, obj: str, message: str, evidence: dict | None = None, *,
                fix: str | None = None, **fix_args) -> Finding:
        """A finding of the current check; its fix is ``fix``, or the check's template rendered from
        ``evidence`` and ``fix_args``."""
        check = self.check
        evidence = dict(evidence or {})
        if severity == "ok":
            fix = ""  # nothing to fix
        elif fix is None and check is not None and check.fix:
            try:
                fix = check.fix.format(**{**evidence, **fix_args})
            except (KeyError, IndexError, ValueError) as exc:  # a template bug must not hide the finding
                log.warning("fix template of %s: %s", check.id, exc)
        return Finding(check=check.id if check else "", severity=severity, object=obj, message=message,
                       evidence=_jsonable(evidence), fix=fix or None)


def query(conn, sql: str, params: dict | None = None) -> list[dict]:
    """Rows as dicts, on psycopg or PyMySQL connections alike."""
    with conn.cursor() as cur:
        cur.execute(sql, params or {})
        if cur.description is None:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def _jsonable(value):
    import datetime
    import decimal

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def esc(name: str) -> str:
    """A quoted SQL name ready to sit in a statement that also has ``%s`` parameters (a ``%`` in it doubled)."""
    return name.replace("%", "%%")


def pct(x: float) -> str:
    """``12.3 %``."""
    return f"{x * 100:.1f} %"


# ------------------------------------------------------------------ readings every engine shares

def read_index_sizes(rows, ctx: Context) -> list[Finding]:
    """The largest indexes and their growth (from the collected sizes, whatever the engine)."""
    out = []
    for s in sorted((s for s in ctx.sizes if s.kind == "index"), key=lambda s: -s.bytes)[: ctx.facts.get("top", 10)]:
        growth = s.growth
        grew = "" if growth is None else f", {'+' if growth >= 0 else '-'}{human_bytes(abs(growth))} since {s.previous_at}"
        out.append(ctx.finding("info", s.name, f"{human_bytes(s.bytes)}{' on ' + s.table if s.table else ''}{grew}",
                               {**s.model_dump(), "growth_bytes": growth}))
    return out


SOFT_DELETE_CAP = 1_000_000  # counting stops there: a report must not scan a huge table to the end


def soft_delete_finding(ctx: Context, r: dict, old: int, sql_delete: str) -> Finding:
    """The finding of ``old`` rows of ``r["table"]`` soft-deleted (``r["column_name"]``) longer ago than the
    threshold; its fix is golive's batched purge, then ``sql_delete`` (the engine's all-at-once statement)."""
    days = ctx.thresholds.soft_delete_days
    many = f"more than {human_count(SOFT_DELETE_CAP)}" if old > SOFT_DELETE_CAP else human_count(old)
    return ctx.finding("info", r["table"], f"{many} rows soft-deleted ({r['column_name']}) more than {days:g} days ago "
                       "are still stored", {**r, "old_rows": min(old, SOFT_DELETE_CAP), "days": days},
                       fix=f"-- in batches, live-safe:\n-- golive maintenance --db URL purge-soft-deleted --table "
                           f"{r['table']} --column {r['column_name']} --older-than {days:g}d\n{sql_delete}")

"""What a health report is made of: thresholds, findings, check results, the report itself.

The thresholds are shared with ``golive maintenance``: the report calls a table "needs vacuum" with the
very numbers that make maintenance vacuum it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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


class CheckResult(BaseModel):
    """The outcome of one check: its findings, or why it could not run."""

    id: str
    title: str
    engine: str
    severity: Severity
    summary: str
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None
    doc: str = ""
    seconds: float = 0.0


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


class History(BaseModel):
    """Sizes over time, from golive's history table in the database."""

    kept: bool = False
    table: str = ""
    note: str = ""
    snapshots: int = 0
    database: list[tuple[str, int]] = Field(default_factory=list, description="(taken_at, bytes) of the database.")
    tables: dict[str, list[tuple[str, int]]] = Field(default_factory=dict,
                                                     description="(taken_at, bytes) of the largest tables.")
    indexes: dict[str, list[tuple[str, int]]] = Field(default_factory=dict,
                                                      description="(taken_at, bytes) of the largest indexes.")


class DbReport(BaseModel):
    """The whole health report of one database."""

    database: str = Field(description="The database URL, password masked.")
    dbname: str
    engine: Literal["postgresql", "mysql"]
    server_version: str
    taken_at: str
    seconds: float = 0.0
    checks: list[CheckResult] = Field(default_factory=list)
    database_bytes: int = 0
    sizes: list[TableSize] = Field(default_factory=list)
    history: History = Field(default_factory=History)
    notes: list[str] = Field(default_factory=list)
    fail_on: Literal["critical", "warning", "never"] = "critical"

    def counts(self) -> dict[str, int]:
        """Findings per severity (``error`` counts checks that could not run)."""
        out = {k: 0 for k in SEVERITY_ORDER}
        for c in self.checks:
            if c.error:
                out["error"] += 1
            for f in c.findings:
                out[f.severity] += 1
        return out

    def findings(self, check: str | None = None) -> list[Finding]:
        return [f for c in self.checks if check in (None, c.id) for f in c.findings]

    @property
    def severity(self) -> str:
        return worst(c.severity for c in self.checks)

    @property
    def exit_code(self) -> int:
        """1 when a check could not run, or a finding is at least as serious as ``fail_on``; else 0."""
        counts = self.counts()
        if counts["error"]:
            return 1
        if self.fail_on == "never":
            return 0
        if counts["critical"] or (self.fail_on == "warning" and counts["warning"]):
            return 1
        return 0

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[k]} {k}" for k in ("critical", "warning", "info") if c[k]]
        if c["error"]:
            parts.append(f"{c['error']} check(s) could not run")
        return ", ".join(parts) or "nothing to report"


class ReportOptions(BaseModel):
    """How to build the report (the database URL is passed separately, as a secret)."""

    thresholds: Thresholds = Field(default_factory=Thresholds, title="Thresholds",
                                   description="The numbers behind each severity.")
    history: bool = Field(True, title="Keep history",
                          description="Record this report's sizes in the database's history table "
                                      "(_golive.report_history on PostgreSQL, _golive_report_history on MySQL) "
                                      "to chart sizes over time and show growth.")
    history_days: int = Field(400, ge=1, title="History kept (days)",
                              description="Snapshots older than this are deleted from the history table.")
    top: int = Field(10, ge=1, le=100, title="Largest objects",
                     description="How many of the largest tables and indexes to list and chart.")
    fail_on: Literal["critical", "warning", "never"] = Field(
        "critical", title="Fail on", description="Exit 1 (a failed flow run) when a finding is this serious "
                                                 "(a check that could not run always fails).")

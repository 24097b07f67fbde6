"""What a health report is made of: check results, sizes over time, the report itself, its options.

The thresholds, findings and sizes the engines produce are neutral (``golive.model.health``) and re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from golive.model.health import SEVERITY_ORDER, Finding, Severity, TableSize, Thresholds, worst

__all__ = ["SEVERITY_ORDER", "CheckResult", "DbReport", "Finding", "History", "ReportOptions", "Severity",
           "TableSize", "Thresholds", "worst"]

class CheckResult(BaseModel):
    """The outcome of one check: its findings, or why it could not run."""

    id: str
    title: str
    engine: str
    severity: Severity
    summary: str
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None
    needs: str | None = Field(None, description="The grant that would let this check run (it was not run: the "
                                                "role lacks that privilege; a note, not a failure).")
    doc: str = ""
    seconds: float = 0.0


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
    engine: str = Field(description="The dialect's registry name.")
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

"""What maintenance is made of: its options, the plan (one action per object, with the numbers behind
the decision), and the result of each action."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from golive.health.model import Thresholds
from golive.units import human_duration, parse_duration

TaskName = Literal["vacuum-analyze", "analyze", "reindex", "refresh-views", "purge-soft-deleted", "optimize",
                   "vacuum-full"]

#: which tasks each engine has, in the order they run
ENGINE_TASKS: dict[str, tuple[str, ...]] = {
    "postgresql": ("purge-soft-deleted", "vacuum-full", "vacuum-analyze", "analyze", "reindex", "refresh-views"),
    "mysql": ("purge-soft-deleted", "optimize", "analyze"),
}
#: what runs when no task is named: the live-safe, threshold-driven ones (purging needs a table named,
#: VACUUM FULL takes an exclusive lock and runs only when asked for by name)
DEFAULT_TASKS: dict[str, tuple[str, ...]] = {
    "postgresql": ("vacuum-analyze", "analyze", "reindex", "refresh-views"),
    "mysql": ("optimize", "analyze"),
}
#: what to say when a task is asked of the other engine
OTHER_ENGINE = {"vacuum-analyze": "on MySQL/MariaDB use analyze and optimize",
                "reindex": "on MySQL/MariaDB use optimize (it rebuilds the table and its indexes online)",
                "refresh-views": "MySQL/MariaDB have no materialized views",
                "vacuum-full": "on MySQL/MariaDB use optimize",
                "optimize": "on PostgreSQL use vacuum-analyze and reindex"}


class MaintenanceOptions(BaseModel):
    """How to maintain a database (its URL is passed separately, as a secret)."""

    tasks: list[TaskName] = Field(default_factory=list, title="Tasks", description=(
        "What to do, in this order whatever the order given: purge-soft-deleted, vacuum-full, vacuum-analyze, "
        "analyze, reindex, refresh-views (PostgreSQL); purge-soft-deleted, optimize, analyze (MySQL/MariaDB). "
        "Empty: the live-safe default set (PostgreSQL: vacuum-analyze, analyze, reindex, refresh-views; "
        "MySQL/MariaDB: optimize, analyze)."))
    dry_run: bool = Field(False, title="Dry run", description="Plan and print what would run and why; change nothing.")
    lock_timeout: str = Field("5s", title="Lock timeout", description=(
        "Longest wait for a lock, per statement (PostgreSQL lock_timeout; MySQL lock_wait_timeout and "
        "innodb_lock_wait_timeout, in whole seconds). A statement that cannot get its lock in time is skipped "
        "and reported, so the app's queries never queue behind it for longer."))
    max_duration: str = Field("1h", title="Maximum duration", description=(
        "The whole run stops by then: a running statement is cancelled (statement_timeout / max_statement_time) "
        "and what has not started is reported as not done."))
    lock_wait: str = Field("0s", title="Wait for another run", description=(
        "When another maintenance run holds the database's maintenance lock, wait this long for it, then give up."))
    thresholds: Thresholds = Field(default_factory=Thresholds, title="Thresholds",
                                   description="The numbers behind each decision (shared with golive report db).")
    purge_tables: list[str] = Field(default_factory=list, title="Purge: tables", description=(
        "purge-soft-deleted: tables to purge (schema.table or table)."))
    purge_column: str = Field("deleted_at", title="Purge: column",
                              description="The soft-delete timestamp column (NULL = not deleted).")
    older_than: str = Field("30d", title="Purge: older than",
                            description="Rows soft-deleted longer ago than this are deleted for good.")
    batch_size: int = Field(1000, ge=1, le=100_000, title="Purge: rows per batch",
                            description="Rows deleted per transaction.")
    pause: str = Field("100ms", title="Purge: pause", description=(
        "Pause between batches, so replicas keep up and the app's transactions get the row locks in between."))
    report_path: str | None = Field(None, title="Report file", description="Write the JSON report here.")

    @field_validator("lock_timeout", "max_duration", "lock_wait", "older_than", "pause")
    @classmethod
    def _duration(cls, v, info):
        parse_duration(v, name=info.field_name.replace("_", "-"))
        return v

    @field_validator("purge_tables", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            v = [v]
        return [s.strip() for item in v or [] for s in str(item).split(",") if s.strip()]

    def seconds(self, name: str) -> float:
        """A duration option in seconds (``lock_timeout``, ``max_duration``, ``lock_wait``, ``older_than``, ``pause``)."""
        return parse_duration(getattr(self, name), name=name)


class Action(BaseModel):
    """One planned statement (or batch loop) on one object, and why."""

    task: str
    target: str = Field(description="The object, named as SQL.")
    run: bool = Field(description="False: below the thresholds (listed so a dry run shows the numbers).")
    reason: str
    numbers: dict[str, Any] = Field(default_factory=dict)
    sql: list[str] = Field(default_factory=list, description="What it runs.")
    lock: str = Field("", description="What it locks, and what that means for the app.")
    params: dict[str, Any] = Field(default_factory=dict, description="What the executor needs.")

    @property
    def key(self) -> str:
        return f"{self.task}:{self.target}"


class StatementResult(BaseModel):
    sql: str
    status: Literal["done", "lock-timeout", "timeout", "failed"]
    seconds: float
    message: str = ""
    rows: int | None = Field(None, description="Rows the statement affected or returned, where it says.")


class ActionResult(BaseModel):
    """What happened to one action."""

    task: str
    target: str
    status: Literal["done", "skipped", "failed"]
    reason: str = ""
    seconds: float = 0.0
    statements: list[StatementResult] = Field(default_factory=list)
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)


class MaintenancePlan(BaseModel):
    """Every action of a run, decided on the numbers the database gave at ``planned_at``."""

    database: str
    dbname: str
    engine: Literal["postgresql", "mysql"]
    server_version: str
    server_version_num: int
    tasks: list[str]
    actions: list[Action]
    notes: list[str] = Field(default_factory=list)
    planned_at: str
    seconds: float = 0.0

    @property
    def to_run(self) -> list[Action]:
        return [a for a in self.actions if a.run]


class MaintenanceReport(BaseModel):
    """The plan, what each action did, and whether everything planned was done."""

    plan: MaintenancePlan
    dry_run: bool
    results: list[ActionResult] = Field(default_factory=list)
    lock: str = ""
    seconds: float = 0.0
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def not_done(self) -> list[ActionResult]:
        return [r for r in self.results if r.status != "done"]

    @property
    def exit_code(self) -> int:
        """0 when every planned action was done (or, in a dry run, planned); 1 when any was skipped or failed."""
        return 0 if self.dry_run or not self.not_done else 1

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def summary(self) -> str:
        p = self.plan
        if self.dry_run:
            return f"dry run: {len(p.to_run)} action(s) would run, {len(p.actions) - len(p.to_run)} below thresholds"
        done = sum(1 for r in self.results if r.status == "done")
        skipped = sum(1 for r in self.results if r.status == "skipped")
        failed = sum(1 for r in self.results if r.status == "failed")
        return (f"{done} done, {skipped} skipped, {failed} failed of {len(p.to_run)} action(s) in "
                f"{human_duration(self.seconds)}")

    def as_dict(self) -> dict:
        data = self.model_dump(mode="json")
        data.update(ok=self.ok, exit_code=self.exit_code, summary=self.summary())
        return data


def markdown(report: MaintenanceReport, *, max_rows: int = 200) -> str:
    """The report as Markdown (the Prefect artifact): what ran, what it did, what was not done and why."""
    p = report.plan
    lines = [f"# Maintenance of {p.dbname}" + (" (dry run)" if report.dry_run else ""), "",
             f"{p.engine} {p.server_version} · {p.database} · tasks: {', '.join(p.tasks)} · planned {p.planned_at}", "",
             f"**{report.summary()}**", ""]
    results = {f"{r.task}:{r.target}": r for r in report.results}
    rows = [a for a in p.actions if a.run] + [a for a in p.actions if not a.run]
    lines += ["| task | object | result | why (the numbers) | seconds |", "|---|---|---|---|---:|"]
    for a in rows[:max_rows]:
        r = results.get(a.key)
        if r is None:
            result = "would run" if a.run and report.dry_run else ("below thresholds" if not a.run else "not started")
            secs = ""
        else:
            result = r.status + (f": {r.reason}" if r.reason and r.status != "done" else "")
            secs = f"{r.seconds:.2f}"
        lines.append(f"| {a.task} | `{a.target}` | {_md(result)} | {_md(a.reason)} | {secs} |")
    if len(rows) > max_rows:
        lines.append(f"| ... | {len(rows) - max_rows} more | | | |")
    for n in p.notes:
        lines += ["", f"_{n}_"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")

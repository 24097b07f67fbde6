"""What maintenance is made of: its options, the plan (one action per object, with the numbers behind
the decision), the result of each action, and the report. The options, actions and their results are shared with
the engines (``golive.model.maintenance``) and re-exported here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from golive.model.maintenance import (ALL_TASKS, Action, ActionResult, MaintenanceOptions, StatementResult,
                                      TaskName)
from golive.units import human_duration

__all__ = ["ALL_TASKS", "Action", "ActionResult", "MaintenanceOptions", "MaintenancePlan", "MaintenanceReport",
           "StatementResult", "TaskName", "markdown"]

class MaintenancePlan(BaseModel):
    """Every action of a run, decided on the numbers the database gave at ``planned_at``."""

    database: str
    dbname: str
    engine: str = Field(description="The dialect's registry name.")
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

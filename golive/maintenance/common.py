"""What every task module shares: the planning context and turning statement results into an action result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from golive.maintenance.model import Action, ActionResult, MaintenanceOptions, StatementResult
from golive.maintenance.safety import Deadline


@dataclass
class PlanContext:
    """What planners know besides the connection: the server, the options, what earlier tasks planned."""

    engine: str
    version_num: int
    dbname: str
    options: MaintenanceOptions
    planned: dict[str, set[str]] = field(default_factory=dict)  # task -> targets that will run
    notes: list[str] = field(default_factory=list)

    @property
    def thresholds(self):
        return self.options.thresholds


def result_of(action: Action, statements: list[StatementResult], t0: float, *, before: dict | None = None,
              after: dict | None = None, reason: str = "") -> ActionResult:
    """``done`` when every statement was; ``skipped`` when one gave up on a lock or the deadline (nothing
    changed by it); ``failed`` otherwise. The reason is the first statement's message that was not done."""
    bad = [s for s in statements if s.status != "done"]
    if not bad:
        status = "done"
    elif any(s.status == "failed" for s in bad):
        status = "failed"
    else:
        status = "skipped"
    why = "; ".join(x for x in [bad[0].message if bad else "", reason] if x)
    return ActionResult(task=action.task, target=action.target, status=status, reason=why,
                        seconds=round(time.perf_counter() - t0, 3), statements=statements,
                        before=before if before is not None else dict(action.numbers), after=after or {})


def not_started(action: Action, deadline: Deadline) -> ActionResult:
    return ActionResult(task=action.task, target=action.target, status="skipped",
                        reason=f"{deadline.reason()} before it started", before=dict(action.numbers))

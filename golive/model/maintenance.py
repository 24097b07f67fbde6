"""What maintenance shares with the engines that carry it out: the options, one planned action and its result,
the planning context, the deadline, and running one statement live-safe.

An engine's ``Maintenance`` (``golive/dialects/<engine>/maintenance.py``) plans its own tasks into ``Action``s and
executes them with ``run_sql``; ``golive.maintenance`` orders the tasks, holds the lock and the deadline, and
reports. Neutral: no engine here.
"""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, field_validator

from golive.errors import ConfigError, TransientError
from golive.model.health import Thresholds
from golive.units import human_duration, parse_duration

log = logging.getLogger(__name__)

TaskName = Literal["vacuum-analyze", "analyze", "reindex", "refresh-views", "purge-soft-deleted", "optimize",
                   "vacuum-full"]
#: every task of every engine (each engine's own, in their order: ``Maintenance.tasks``)
ALL_TASKS: tuple[str, ...] = get_args(TaskName)


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


class Deadline:
    """The end of the run (``time.time()`` seconds), so it can be handed to a task as a number."""

    def __init__(self, at: float, max_seconds: float) -> None:
        self.at = at
        self.max_seconds = max_seconds

    @classmethod
    def start(cls, max_seconds: float) -> "Deadline":
        return cls(time.time() + max_seconds, max_seconds)

    def remaining(self) -> float:
        return self.at - time.time()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def reason(self) -> str:
        return f"max duration ({human_duration(self.max_seconds)}) reached"


@dataclass
class PlanContext:
    """What planners know besides the connection: the server, the options, what earlier tasks planned."""

    engine: str  # the dialect's registry name
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


def run_sql(conn, session, sql: str, params=None, *, deadline: Deadline | None = None,
            fetch: bool = False) -> tuple[StatementResult, list]:
    """Run one statement under the lock timeout and what is left of the deadline.

    ``session`` is the engine's ``Session`` concern (``dialect.session``): it sets the statement timeout and sorts
    failures.

    Returns its result (``done``, ``lock-timeout``: it could not get its lock in time and gave up,
    ``timeout``: the deadline cancelled it, ``failed``) and, with ``fetch``, its rows. Never raises for
    those; a lost connection raises ``TransientError``.
    """
    t0 = time.perf_counter()
    rows: list = []
    count = None
    if deadline is not None and deadline.expired():
        return StatementResult(sql=sql, status="timeout", seconds=0.0, message=deadline.reason()), rows
    try:
        if deadline is not None:
            session.set_statement_timeout(conn, max(deadline.remaining(), 0.001))
        with conn.cursor() as cur:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            if fetch and cur.description is not None:
                rows = cur.fetchall()
            count = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
        status, message = "done", ""
    except Exception as exc:
        status, message = classify(exc, session, deadline)
        _rollback(conn)
    took = round(time.perf_counter() - t0, 3)
    log.info("%s: %s (%.2f s)%s", status, sql, took, f" {message}" if message else "")
    return StatementResult(sql=sql, status=status, seconds=took, message=message, rows=count), rows


def classify(exc: BaseException, session, deadline: Deadline | None) -> tuple[str, str]:
    """(status, one-line message) of a failed statement (sorted by ``session.classify``); a lost connection is raised
    as TransientError."""
    failure = session.classify(exc)
    if failure.kind == "lock":
        return "lock-timeout", f"could not get its lock within the lock timeout: skipped ({failure.message})"
    if failure.kind == "timeout":  # cancelled: by the deadline (its statement timeout), or by someone else
        if deadline is None:
            return "timeout", "time limit: cancelled"
        if deadline.remaining() <= 0.5:
            return "timeout", f"{deadline.reason()}: cancelled"
        return "failed", failure.message
    if failure.kind == "lost":
        raise TransientError(f"connection lost: {failure.message}") from None
    return "failed", failure.message


def _rollback(conn) -> None:
    try:  # a no-op on an autocommit session
        conn.rollback()
    except Exception:
        pass


# ------------------------------------------------------------------ naming what to purge


def suggest(name: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or ''."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def purge_column(cols: dict[str, str], wanted: str, table: str, allowed: tuple[str, ...]) -> str:
    """The soft-delete column ``wanted`` of ``table`` (``cols``: name -> type; exact name first, then ignoring
    case); ConfigError when it is missing or not one of the ``allowed`` date/time types."""
    hit = [c for c in cols if c == wanted] or [c for c in cols if c.lower() == wanted.lower()]
    if not hit:
        raise ConfigError(f"purge-soft-deleted: {table} has no column {wanted!r}" + suggest(wanted, list(cols))
                          + " (set it with --column)")
    col = hit[0]
    if cols[col].lower() not in allowed:
        raise ConfigError(f"purge-soft-deleted: {table}.{col} is {cols[col]}, not a date or timestamp: it cannot say "
                          "when a row was deleted")
    return col

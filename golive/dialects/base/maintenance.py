"""What maintenance asks of an engine (``golive.maintenance``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern

if TYPE_CHECKING:
    import datetime as dt

    from golive.model.health import ServerFacts
    from golive.model.maintenance import Action, ActionResult, Deadline, MaintenanceOptions, PlanContext


class Maintenance(Concern):
    """Live-safe maintenance tasks on this engine (``golive.maintenance``).

    The engine plans each of its own tasks into actions, one per object, with the numbers behind the decision
    (``plan``), and runs one action on a session of its own (``execute``), every statement through
    ``golive.model.maintenance.run_sql`` (lock timeout, deadline, skip-and-report). ``purge-soft-deleted`` is the same
    batch loop everywhere (``golive.maintenance.purge``): the engine only names the table, its key and the cutoff.
    """

    #: this engine's tasks, in the order they run whatever the order asked
    tasks: tuple[str, ...] = ()
    #: what runs when no task is named: the live-safe, threshold-driven ones
    default_tasks: tuple[str, ...] = ()
    #: what to do here instead of another engine's task (the hint when such a task is asked of this engine)
    instead: dict[str, str] = {}

    def facts(self, conn) -> "ServerFacts":
        """Database name, server version and version number, for the plan (the report's ``Health.facts``)."""
        return self.dialect.health.facts(conn)

    def plan(self, conn, task: str, ctx: "PlanContext") -> list["Action"]:
        """The actions of one of ``tasks`` (not ``purge-soft-deleted``): every object it may apply to, with ``run``
        false and the numbers when it is below the thresholds (a dry run shows them). ``ctx.planned`` holds what the
        earlier tasks of the run will do (a table vacuumed needs no separate ANALYZE)."""
        raise NotImplementedError

    def execute(self, conn, action: "Action", options: "MaintenanceOptions", deadline: "Deadline") -> "ActionResult":
        """Run one action planned by ``plan`` on ``conn`` (autocommit, the lock timeout set), within ``deadline``."""
        raise NotImplementedError

    # --- purge-soft-deleted: golive.maintenance.purge asks for the engine's part

    def purge_target(self, conn, name: str, column: str) -> tuple[str, str, str, list[str]]:
        """``(quoted table, column name, quoted column, quoted key columns)`` of a table to purge, the batches
        walking the key in order; ConfigError naming what is wrong (no such table or column, not a date/time column,
        no key to walk)."""
        raise NotImplementedError

    def purge_cutoff(self, conn, seconds: int) -> "dt.datetime":
        """The database's now minus ``seconds``: rows soft-deleted before it go."""
        raise NotImplementedError

    def skip_locked(self, version_num: int) -> bool:
        """Can ``SELECT … FOR UPDATE`` skip the rows other transactions hold (``SKIP LOCKED``) on this server?"""
        return True

    def after_key(self, key: list[str]) -> str:
        """The placeholders of the last key a batch saw, compared to ``(key) > (…)`` to start the next one."""
        return ", ".join(["%s"] * len(key))

    def batch_rows(self, keys: str, key: list[str], rows: list[tuple]) -> tuple[str, list]:
        """The condition naming one batch's ``rows`` (their key values) in a DELETE, and its parameters."""
        one = "(" + ", ".join(["%s"] * len(key)) + ")" if len(key) > 1 else "%s"
        ids = [v for r in rows for v in r] if len(key) > 1 else [r[0] for r in rows]
        return f"({keys}) IN ({', '.join([one] * len(rows))})", ids

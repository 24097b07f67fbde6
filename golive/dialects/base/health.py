"""What the database report asks of an engine (``golive.health``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern

if TYPE_CHECKING:
    import datetime as dt

    from golive.model.health import Check, ServerFacts, TableSize


class Health(Concern):
    """The checks of ``golive report db`` on this engine (``golive.health``): the server's facts, the size of every
    table and index, the checks as data (``golive.model.health.Check``), and golive's table of sizes over time, kept
    in the reported database itself so every machine reporting on it sees the same history."""

    #: golive's history of sizes in the reported database (``golive.health.history``): one row per object and report,
    #: ``(taken_at, kind, name, bytes, row_count)``
    history_table: str = ""
    #: the statement(s) creating ``history_table`` (run once, by the first report that records its sizes)
    history_ddl: str = ""

    def facts(self, conn) -> "ServerFacts":
        """The session's database name, the server's version, and its version as a number (``Check.min_version``
        compares it)."""
        raise NotImplementedError

    def checks(self) -> list["Check"]:
        """Every check of this engine, in the order the report lists them."""
        raise NotImplementedError

    def collect_sizes(self, conn) -> tuple[int, list["TableSize"]]:
        """The database's size in bytes and that of every user table, materialized view and index (the report's
        sizes, its growth figures and its charts)."""
        raise NotImplementedError

    def history_exists(self, conn) -> bool:
        """Does ``history_table`` exist? (Creating it needs a privilege a read-only role lacks even when it exists.)"""
        raise NotImplementedError

    def missing_privilege(self, exc: BaseException, conn) -> str | None:
        """When a check failed because the session lacks a privilege, the statement that grants it (``GRANT
        pg_read_all_settings TO app``): the report then notes the check as not run, with that fix, and does not
        fail. None for any other failure (the check could not run: an error)."""
        return None

    def history_stamp(self, moment: "dt.datetime") -> "dt.datetime":
        """``moment`` (aware) as ``history_table`` stores and compares it; by default as it is (a time zone aware
        column)."""
        return moment

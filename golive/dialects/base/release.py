"""What a release asks of an engine (``golive.release``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern
# the neutral models this contract speaks in (no engine, no capability)
from golive.model.release import (Check, Hit, LintFacts, LongTransaction, Rule, ServerInfo, SqlSyntax, TableInfo,
                                  TableKey)

if TYPE_CHECKING:
    from golive.urls import DatabaseURL


class Release(Concern):
    """What a release needs of this engine (``golive.release``): the catalog reads of the pre-check, the lint rules
    that know which DDL locks or rewrites a table, golive's journal and history tables, and the few places where a
    migration tool behaves differently per engine. Sessions with lock/statement timeouts are ``Session.open``."""

    #: how migration SQL reads: comments, quotes, statement terminators, the case of unquoted names
    syntax: SqlSyntax = SqlSyntax()
    #: golive's release journal and migration history: (schema, table)
    journal_table: TableKey = (None, "_golive_releases")
    history_table: TableKey = (None, "_golive_migrations")
    #: CREATE statements of the journal and the history table (idempotent: IF NOT EXISTS)
    journal_ddl: tuple[str, ...] = ()
    history_ddl: tuple[str, ...] = ()
    #: the driver sends a script of several statements as one query, which the server runs in one implicit
    #: transaction (PostgreSQL's simple query protocol); else golive runs a script statement by statement
    runs_whole_scripts: bool = False
    #: the engine's lint rules, besides the ones every engine shares (drop-table, rename, unbatched-dml, …)
    lint_rules: tuple[Rule, ...] = ()
    #: Prisma's name of this engine (``provider`` in migration_lock.toml) and its ``_prisma_migrations`` table
    prisma_provider: str = ""
    prisma_table_ddl: str = ""

    # --- the pre-check's catalog reads

    def server_info(self, conn) -> ServerInfo:
        """Version, database, user, the default schema and the database's size."""
        raise NotImplementedError

    def server_version(self, info: ServerInfo) -> Check:
        """The ``server-version`` line: what this version cannot do online (a warning), else pass."""
        from golive.model.release import ok

        return ok("server-version", f"{info.product} {info.version}")

    def table_info(self, conn, tables: list[TableKey]) -> dict[TableKey, TableInfo]:
        """Size, estimated rows and whether it has any row, of each existing table among ``tables``."""
        raise NotImplementedError

    def table_exists(self, conn, schema: str | None, name: str) -> bool:
        """Does the table exist (``schema`` None: where unqualified names resolve)?"""
        raise NotImplementedError

    def column_type(self, conn, schema: str | None, table: str, column: str) -> str | None:
        """The column's type as the server prints it (``character varying(20)``, ``enum('a','b')``), or None."""
        raise NotImplementedError

    def current_schema(self, conn) -> str | None:
        """The schema unqualified names resolve to (None: the engine has no schemas)."""
        return None

    def list_tables(self, conn) -> list[str]:
        """The base tables of the current schema (or database)."""
        raise NotImplementedError

    def extensions(self, conn, wanted: list[str]) -> Check | None:
        """The ``extensions`` line for the extensions the migrations create (None: nothing to say)."""
        return None

    def privileges(self, conn, info: ServerInfo, tables: list[TableKey]) -> list[Check]:
        """The ``privileges`` lines: may the user run the migrations (and a rollback) on ``tables``?"""
        raise NotImplementedError

    def long_transactions(self, conn, threshold_s: float) -> list[LongTransaction]:
        """Transactions of other sessions open longer than ``threshold_s``, with the tables they hold locks on."""
        raise NotImplementedError

    def data_directory(self, conn) -> str | None:
        """Where the server keeps its data (None: it does not say, or the user may not read it)."""
        return None

    def restore_refusal(self, conn) -> str | None:
        """Why this server could not take a rollback by restore (a setting to change), or None."""
        return None

    # --- the lint

    def index_hits(self, table: TableKey, *, concurrently: bool) -> list[Hit]:
        """The rule hits of a CREATE INDEX on ``table`` (``concurrently``: it does not block writes)."""
        return []

    def alter_hits(self, action: str, table: TableKey, statement: str, facts: LintFacts) -> list[Hit]:
        """The rule hits of one action of an ALTER TABLE (which forms lock, rewrite or copy the table here).

        Args:
            action: one action of the ALTER TABLE's list (``ADD COLUMN …``, ``MODIFY …``).
            table: the altered table.
            statement: the whole ALTER TABLE, comment-free (``ALGORITHM=INPLACE`` may sit in another action).
            facts: the live database as the rules may read it (column types, the server's version).
        """
        return []

    def estimate_rows(self, conn, sql: str) -> int | None:
        """Rows the server expects an UPDATE/DELETE to touch, from its plan (nothing runs); None: unknown."""
        return None

    def lock_timeout_setting(self, seconds: float) -> str:
        """The lock timeout in the engine's words, for messages (``lock_timeout = 5 s``)."""
        return f"lock timeout = {seconds:g} s"

    def needs_autocommit(self, statement: str) -> bool:
        """Is ``statement`` (comment-free) one the server refuses inside a transaction block?"""
        return False

    def script_is_atomic(self, statements: list[str]) -> bool:
        """Does a script of ``statements`` (upper-case, comment-free), sent as one query, run in one implicit
        transaction, so that a failure leaves nothing of it (``runs_whole_scripts``)?"""
        return False

    # --- golive's tables

    def timestamp(self, value: dt.datetime, *, digits: int = 6) -> dt.datetime:
        """A moment (zone-aware) as this engine's timestamp columns take it; by default as it is (timestamptz).

        Args:
            digits: the fractional digits of the column, where the engine's columns keep fewer than microseconds.
        """
        return value

    def record_migration(self, conn, kind: str, version: str, name: str, checksum: str, *, success: bool,
                         release_id: str, applied_at: dt.datetime, execution_ms: int | None) -> None:
        """Insert or update a migration's row in golive's history table (``history_table``, key: kind and version).

        Args:
            kind: the migration tool (``sql``, ``alembic``).
            success: False while a migration that commits statement by statement runs (a crash leaves it so).
        """
        raise NotImplementedError

    def schema_rows(self, conn, bookkeeping: tuple[str, ...]) -> list[tuple]:
        """The schema as rows (relations, columns, constraints, indexes, routines…), sorted, without the objects
        whose names start with ``bookkeeping``: a rollback compares them with the rows before the release."""
        raise NotImplementedError

    # --- migration tools

    def try_prisma_lock(self, conn) -> bool:
        """Take Prisma Migrate's own advisory lock on ``conn`` without waiting (False: someone holds it)."""
        raise NotImplementedError

    def sqlalchemy_url(self, url: "DatabaseURL") -> str:
        """The database as a SQLAlchemy URL (driver included), for the app's Alembic env.py (``sqlalchemy.url``)."""
        raise NotImplementedError

    def alembic_session(self, dbapi_conn, *, lock_timeout_ms: int, statement_timeout_ms: int) -> None:
        """Give a DB-API connection Alembic's env.py opened the release's lock and statement timeouts."""
        raise NotImplementedError

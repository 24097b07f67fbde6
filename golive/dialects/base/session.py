"""Sessions: connect, timeouts, read-only, error translation, advisory locks, and the catalog reads every concern
needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern
from golive.errors import ConfigError, GoliveError

if TYPE_CHECKING:
    from golive.urls import DatabaseURL


@dataclass
class StatementFailure:
    """A statement's failure, sorted: ``lock`` (lock timeout), ``timeout`` (statement timeout), ``lost``
    (connection lost), ``error`` (anything else); ``code`` the server's (SQLSTATE or error number)."""

    kind: str
    message: str
    code: str = ""
    position: int | None = None


def lock_key(name: str) -> int:
    """A 64-bit advisory lock key for a golive lock name (``golive-maintenance``, ``golive-release``)."""
    import hashlib

    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big", signed=True)


class Session(Concern):
    """Connections and errors: every other concern connects through here."""

    def connect(self, url: "DatabaseURL", *, autocommit: bool = False, settings: dict | None = None,
                role: str = "database", **kwargs):
        """Connect; any failure becomes a one-line ``ConnectionFailed`` naming the cause (password masked).

        Args:
            settings: session variables set right after connecting.
            role: how messages name the database ("source", "target", "database").
        """
        raise NotImplementedError

    def translate_error(self, exc: BaseException, what: str) -> GoliveError:
        """Sort a driver error by whether a retry can help (``TransientError`` / ``TerminalError``), one line."""
        raise NotImplementedError

    def connect_for_update(self, url: "DatabaseURL"):
        """A connection whose transactions golive manages (``begin``/``commit``/``rollback``), for changing an
        app's rows (``rewrite-paths``)."""
        return self.connect(url, role="database")

    def begin(self, conn) -> None:
        """Start a transaction (drivers that start one with the first statement need nothing)."""

    def commit(self, conn) -> None:
        conn.commit()

    def rollback(self, conn) -> None:
        conn.rollback()

    def columns(self, conn, schema: str | None, table: str) -> list[str]:
        """The table's column names in order (``schema`` None: the session's own)."""
        raise NotImplementedError

    def primary_key(self, conn, schema: str | None, table: str) -> list[str]:
        """The table's primary key columns in order (empty when it has none)."""
        raise NotImplementedError

    def has_table(self, conn, schema: str | None, table: str) -> bool:
        """Does the table exist (``schema`` None: the session's own)?"""
        raise NotImplementedError

    def open(self, url: "DatabaseURL", *, application: str = "golive", autocommit: bool = True,
             lock_timeout_s: float | None = None, statement_timeout_s: float | None = None, read_only: bool = False,
             role: str = "database"):
        """A session for work on a live database (releases, maintenance, reports).

        Args:
            application: how the session names itself to the server (seen in its process list).
            lock_timeout_s: how long a statement may wait for a lock before it fails (None: the server's default;
                0: no limit). Waiting for a lock makes every later query on that table queue behind it.
            statement_timeout_s: how long a statement may run (None: no limit); ``set_statement_timeout`` changes it.
            read_only: refuse writes (a report).
        The server abandons a statement whose client died, where it can (PostgreSQL 14+).
        """
        raise NotImplementedError

    def set_statement_timeout(self, conn, seconds: float | None) -> None:
        """The time limit of the session's next statements (None or 0: none)."""
        raise NotImplementedError

    def classify(self, exc: BaseException) -> StatementFailure:
        """What kind of failure a statement met: a lock timeout, a statement timeout, a lost connection, or else."""
        raise NotImplementedError

    def try_lock(self, conn, name: str, database: str | None) -> bool:
        """Take the advisory lock ``name`` of the database on this session without waiting; it ends with the
        session, so a killed holder never leaves it behind."""
        raise ConfigError(f"{self.dialect.title} has no advisory locks")

    def unlock(self, conn, name: str, database: str | None) -> None:
        """Release the advisory lock ``name``."""
        raise ConfigError(f"{self.dialect.title} has no advisory locks")

    def lock_holder(self, conn, name: str, database: str | None) -> str:
        """Who holds the advisory lock ``name`` (session, application, since when), or ''."""
        raise ConfigError(f"{self.dialect.title} has no advisory locks")

    def client(self, url: "DatabaseURL") -> str:
        """The shell command opening the engine's own client on ``url`` (shown to people; password included only
        where the URL carries one)."""
        raise NotImplementedError

"""What makes maintenance safe on a live production database.

* **Every statement has a lock timeout** (PostgreSQL ``lock_timeout``; MySQL ``lock_wait_timeout`` and
  ``innodb_lock_wait_timeout``). A statement that waits for a lock makes every later query on that table
  queue behind it; with the timeout it gives up instead, and ``golive.model.maintenance.run_sql`` reports it as
  skipped.
* **A global deadline** (``--max-duration``, ``golive.model.maintenance.Deadline``): every statement runs with the
  time left as its ``statement_timeout`` (MariaDB ``max_statement_time``), and nothing starts once it has passed.
* **One run at a time per database**: ``MaintenanceLock`` holds ``pg_try_advisory_lock`` (PostgreSQL) or
  ``GET_LOCK`` (MySQL) on a session of its own for the whole run; the lock ends with that session, so a
  killed run never leaves it behind.
* **No work after the client is gone** (PostgreSQL 14+): ``client_connection_check_interval`` makes the
  server abandon a statement whose client died (``kill -9``), instead of finishing a REINDEX nobody waits for.
"""

from __future__ import annotations

import logging
import time

from golive.dialects import dialect_of
from golive.errors import GoliveError
from golive.model.maintenance import MaintenanceOptions
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: the advisory lock of golive maintenance (``Session.try_lock``: one per database)
LOCK_NAME = "golive-maintenance"
APPLICATION_NAME = "golive-maintenance"


class MaintenanceBusy(GoliveError):
    """Another maintenance run holds this database's maintenance lock."""

    exit_code = 1


def connect(url: DatabaseURL, options: MaintenanceOptions, *, autocommit: bool = True):
    """A maintenance session: the lock timeout for every statement, the application name, and the check that stops
    work once its client is gone (``Session.open``)."""
    return dialect_of(url).session.open(url, application=APPLICATION_NAME, autocommit=autocommit,
                                        lock_timeout_s=options.seconds("lock_timeout"))


class AdvisoryLock:
    """Hold an advisory lock of the database on a session of its own for as long as the ``with`` block runs.

    PostgreSQL: ``pg_try_advisory_lock(key)`` (advisory locks are per database already); MySQL:
    ``GET_LOCK(prefix + database, 0)`` (names are server-wide). The lock ends with its session, so a killed
    holder never leaves it behind. Subclasses name the lock, the session and what "busy" means.
    """

    #: the lock's name (``golive-maintenance``, ``golive-release``)
    name: str = LOCK_NAME

    def __init__(self, url: DatabaseURL, wait_seconds: float = 0.0) -> None:
        self.url = url
        self.wait_seconds = wait_seconds
        self.conn = None

    def connect(self):
        raise NotImplementedError

    def busy(self, holder: str) -> GoliveError:
        raise NotImplementedError

    def __enter__(self):
        self.conn = self.connect()
        give_up = time.monotonic() + self.wait_seconds
        try:
            while not self._try():
                if time.monotonic() >= give_up:
                    raise self.busy(self.describe_holder())
                time.sleep(min(1.0, max(give_up - time.monotonic(), 0.05)))
        except BaseException:
            self.conn.close()
            raise
        return self

    def _try(self) -> bool:
        return dialect_of(self.url).session.try_lock(self.conn, self.name, self.url.database)

    def describe_holder(self) -> str:
        """Who holds the lock: pid/connection id, application, since when (for the message)."""
        try:
            return holder(self.conn, self.url, self.name)
        except Exception:
            return ""

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            dialect_of(self.url).session.unlock(self.conn, self.name, self.url.database)
        except Exception:  # closing the session releases it anyway
            pass
        finally:
            self.conn.close()
            self.conn = None


class MaintenanceLock(AdvisoryLock):
    """Hold the database's maintenance lock for as long as the ``with`` block runs.

    Raises ``MaintenanceBusy`` (naming the session that holds it) when another run has it for longer than
    ``wait`` seconds.
    """

    def __init__(self, url: DatabaseURL, options: MaintenanceOptions) -> None:
        super().__init__(url, options.seconds("lock_wait"))
        self.options = options
        self.holder = ""

    def connect(self):
        return connect(self.url, self.options)

    def busy(self, holder: str) -> GoliveError:
        return MaintenanceBusy(f"another golive maintenance run is working on {self.url.masked}"
                               f"{' (' + holder + ')' if holder else ''}: nothing done. Runs never "
                               "overlap; try again later or pass --lock-wait", holder=holder)

    def __enter__(self) -> "MaintenanceLock":
        return super().__enter__()


def holder(conn, url: DatabaseURL, name: str = LOCK_NAME) -> str:
    """A description of the session holding the advisory lock ``name`` (default: maintenance's), or '' when nobody
    holds it."""
    return dialect_of(url).session.lock_holder(conn, name, url.database)

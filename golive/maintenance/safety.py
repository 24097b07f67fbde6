"""What makes maintenance safe on a live production database.

* **Every statement has a lock timeout** (PostgreSQL ``lock_timeout``; MySQL ``lock_wait_timeout`` and
  ``innodb_lock_wait_timeout``). A statement that waits for a lock makes every later query on that table
  queue behind it; with the timeout it gives up instead, and ``run_sql`` reports it as skipped.
* **A global deadline** (``--max-duration``): every statement runs with the time left as its
  ``statement_timeout`` (MariaDB ``max_statement_time``), and nothing starts once it has passed.
* **One run at a time per database**: ``MaintenanceLock`` holds ``pg_try_advisory_lock`` (PostgreSQL) or
  ``GET_LOCK`` (MySQL) on a session of its own for the whole run; the lock ends with that session, so a
  killed run never leaves it behind.
* **No work after the client is gone** (PostgreSQL 14+): ``client_connection_check_interval`` makes the
  server abandon a statement whose client died (``kill -9``), instead of finishing a REINDEX nobody waits for.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from golive.errors import GoliveError
from golive.maintenance.model import MaintenanceOptions, StatementResult
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

#: the advisory lock key of golive maintenance (PostgreSQL advisory locks are per database already)
PG_LOCK_KEY = int.from_bytes(hashlib.sha1(b"golive-maintenance").digest()[:8], "big", signed=True)  # lock_key(...)
MYSQL_LOCK_PREFIX = "golive-maintenance:"  # + database name (GET_LOCK names are server-wide; 64 characters)
APPLICATION_NAME = "golive-maintenance"


class MaintenanceBusy(GoliveError):
    """Another maintenance run holds this database's maintenance lock."""

    exit_code = 1


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
        from golive.units import human_duration

        return f"max duration ({human_duration(self.max_seconds)}) reached"


def mysql_lock_name(database: str) -> str:
    return (MYSQL_LOCK_PREFIX + database)[:64]


def connect(url: DatabaseURL, options: MaintenanceOptions, *, autocommit: bool = True):
    """A maintenance session: the lock timeout for every statement, the application name, and (PostgreSQL
    14+) the check that stops work once its client is gone."""
    lock_s = options.seconds("lock_timeout")
    if url.dialect == "postgresql":
        from golive.dialects.postgresql.dialect import PostgresDialect

        conn = PostgresDialect().connect(url, autocommit=autocommit, role="database", settings={
            "lock_timeout": f"{max(int(lock_s * 1000), 1)}ms", "application_name": APPLICATION_NAME})
        if conn.info.server_version >= 140000:
            conn.execute("SELECT set_config('client_connection_check_interval', '1s', false)")
            if not autocommit:
                conn.commit()
        return conn
    from golive.dialects.mysql.dialect import MySQLDialect

    whole = max(int(math.ceil(lock_s)), 1)  # MySQL takes whole seconds
    return MySQLDialect().connect(url, autocommit=autocommit, role="database",
                                  settings={"lock_wait_timeout": whole, "innodb_lock_wait_timeout": whole})


def _set_statement_timeout(conn, engine: str, deadline: Deadline | None) -> None:
    if deadline is None:
        return
    left = max(deadline.remaining(), 0.001)
    with conn.cursor() as cur:
        if engine == "postgresql":
            cur.execute("SELECT set_config('statement_timeout', %s, false)", (f"{max(int(left * 1000), 1)}ms",))
        elif getattr(conn, "_golive_mariadb", None) is not False:
            try:  # MariaDB only; MySQL stops between statements
                cur.execute(f"SET SESSION max_statement_time = {left:.3f}")
                conn._golive_mariadb = True
            except Exception:
                conn._golive_mariadb = False


def run_sql(conn, engine: str, sql: str, params=None, *, deadline: Deadline | None = None,
            fetch: bool = False) -> tuple[StatementResult, list]:
    """Run one statement under the lock timeout and what is left of the deadline.

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
        _set_statement_timeout(conn, engine, deadline)
        with conn.cursor() as cur:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            if fetch and cur.description is not None:
                rows = cur.fetchall()
            count = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
        status, message = "done", ""
    except Exception as exc:
        status, message = classify(exc, engine, deadline)
        _rollback(conn)
    took = round(time.perf_counter() - t0, 3)
    log.info("%s: %s (%.2f s)%s", status, sql, took, f" {message}" if message else "")
    return StatementResult(sql=sql, status=status, seconds=took, message=message, rows=count), rows


def classify(exc: BaseException, engine: str, deadline: Deadline | None) -> tuple[str, str]:
    """(status, one-line message) of a failed statement; a lost connection is raised as TransientError."""
    text = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if engine == "postgresql":
        import psycopg

        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return "lock-timeout", f"could not get its lock within lock_timeout: skipped ({text})"
        if isinstance(exc, psycopg.errors.QueryCanceled):
            if deadline is not None and deadline.remaining() <= 0.5:
                return "timeout", f"{deadline.reason()}: cancelled"
            return "failed", text
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and getattr(exc, "sqlstate", None) in (
                None, "57P01", "57P02", "57P03", "08006", "08003"):
            from golive.errors import TransientError

            raise TransientError(f"connection lost: {text}") from None
        return "failed", text
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else 0
    if code == 1205:  # Lock wait timeout exceeded (row locks and metadata locks)
        return "lock-timeout", f"could not get its lock within lock_wait_timeout: skipped ({text})"
    if code in (1969, 3024):  # max_statement_time (MariaDB) / max_execution_time (MySQL) exceeded
        return "timeout", f"{deadline.reason() if deadline else 'time limit'}: cancelled"
    if code in (2006, 2013, 2055):
        from golive.errors import TransientError

        raise TransientError(f"connection lost: {text}") from None
    return "failed", text


def _rollback(conn) -> None:
    try:  # a no-op on an autocommit session
        conn.rollback()
    except Exception:
        pass


def lock_key(name: str) -> int:
    """The 64-bit PostgreSQL advisory lock key of a golive lock name (``golive-maintenance``, ``golive-release``)."""
    return int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big", signed=True)


class AdvisoryLock:
    """Hold an advisory lock of the database on a session of its own for as long as the ``with`` block runs.

    PostgreSQL: ``pg_try_advisory_lock(key)`` (advisory locks are per database already); MySQL:
    ``GET_LOCK(prefix + database, 0)`` (names are server-wide). The lock ends with its session, so a killed
    holder never leaves it behind. Subclasses name the lock, the session and what "busy" means.
    """

    key: int = PG_LOCK_KEY
    mysql_prefix: str = MYSQL_LOCK_PREFIX

    def __init__(self, url: DatabaseURL, wait_seconds: float = 0.0) -> None:
        self.url = url
        self.wait_seconds = wait_seconds
        self.conn = None

    def connect(self):
        raise NotImplementedError

    def busy(self, holder: str) -> GoliveError:
        raise NotImplementedError

    def mysql_name(self) -> str:
        return (self.mysql_prefix + (self.url.database or ""))[:64]

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
        with self.conn.cursor() as cur:
            if self.url.dialect == "postgresql":
                cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            else:
                cur.execute("SELECT GET_LOCK(%s, 0)", (self.mysql_name(),))
            return bool(cur.fetchone()[0])

    def describe_holder(self) -> str:
        """Who holds the lock: pid/connection id, application, since when (for the message)."""
        try:
            return holder(self.conn, self.url, key=self.key, mysql_prefix=self.mysql_prefix)
        except Exception:
            return ""

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            with self.conn.cursor() as cur:
                if self.url.dialect == "postgresql":
                    cur.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                else:
                    cur.execute("SELECT RELEASE_LOCK(%s)", (self.mysql_name(),))
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


def holder(conn, url: DatabaseURL, *, key: int = PG_LOCK_KEY, mysql_prefix: str = MYSQL_LOCK_PREFIX) -> str:
    """A description of the session holding the maintenance lock (or the lock of ``key`` / ``mysql_prefix``),
    or '' when nobody holds it."""
    with conn.cursor() as cur:
        if url.dialect == "postgresql":
            key = key & 0xFFFFFFFFFFFFFFFF
            cur.execute("SELECT a.pid, a.application_name, a.backend_start, a.client_addr::text FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
                        (key >> 32, key & 0xFFFFFFFF))
            row = cur.fetchone()
            if not row:
                return ""
            return (f"pid {row[0]}, {row[1] or 'no application name'}, connected since "
                    f"{row[2].isoformat(timespec='seconds')}" + (f" from {row[3]}" if row[3] else ""))
        cur.execute("SELECT IS_USED_LOCK(%s)", ((mysql_prefix + (url.database or ""))[:64],))
        row = cur.fetchone()
        if not row or row[0] is None:
            return ""
        cur.execute("SELECT id, user, host, time FROM information_schema.processlist WHERE id = %s", (row[0],))
        p = cur.fetchone()
        return f"connection {row[0]}" + (f", {p[1]}@{p[2]}, connected {p[3]} s ago" if p else "")

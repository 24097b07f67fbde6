"""What every kind of migration shares: the source interface, the executor, golive's own history table.

``Executor`` runs a migration's statements under the release's timeouts:

* **Transactional** (an engine with transactional DDL, ``Dialect.transactional_ddl``: PostgreSQL, unless a
  statement cannot run in a transaction block): every statement in one transaction; a lock timeout rolls it back and the whole migration is tried again after a pause
  (1 s, 2 s, 4 s … up to ``lock_retries`` times, within the overall timeout); any other error rolls it back
  and nothing of it is left.
* **Non-transactional** (MySQL/MariaDB, where DDL commits on its own, and PostgreSQL's ``CONCURRENTLY``
  statements): one statement at a time; a lock timeout retries that statement (it gave up before changing
  anything); an error leaves the statements before it applied (``left_nothing`` is False unless it was the
  first).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from pathlib import Path
from typing import Callable

from golive.dialects import dialect_of
from golive.dialects.base import Dialect
from golive.model.release import text_of
from golive.release import db
from golive.release.model import Applied, LockTimeout, Migration, MigrationFailed, MigrationRun, SourceStatus
from golive.release.sqltext import Statement
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: tables the release's own bookkeeping lives in (left out of "the database equals what it was" comparisons)
BOOKKEEPING = ("_golive", "_golive_releases", "_golive_migrations", "_golive_report_history", "alembic_version",
               "_prisma_migrations")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Executor:
    """Runs statements for one release: the sessions, the timeouts, the lock retries."""

    def __init__(self, url: DatabaseURL, *, lock_timeout_s: float, lock_retries: int, deadline: db.Deadline,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.lock_timeout_s = lock_timeout_s
        self.lock_retries = lock_retries
        self.deadline = deadline
        self.on_event = on_event or (lambda status, message: None)
        self.attempts = 0

    def session(self):
        return db.connect(self.url, lock_timeout_s=self.lock_timeout_s)

    def _pause(self, attempt: int, what: str, err: str) -> bool:
        """Wait before retry ``attempt`` (1-based) of ``what``; False when no retry is left or no time."""
        if attempt > self.lock_retries:
            return False
        delay = min(2 ** (attempt - 1), 30)
        if self.deadline.remaining() < delay + 1:
            return False
        self.on_event("retry", f"{what}: lock timeout ({err}); retry {attempt} of {self.lock_retries} in {delay} s")
        time.sleep(delay)
        return True

    def _check_time(self, what: str) -> None:
        if self.deadline.remaining() <= 0:
            raise MigrationFailed(f"{what}: the overall timeout ({self.deadline.total_s:.0f} s) was reached before it "
                                  "started", left_nothing=True, statements_done=0)

    def run(self, statements: list[Statement], *, transactional: bool, what: str,
            after: Callable | None = None) -> int:
        """Run ``statements``; ``after(conn)`` runs last (inside the transaction when transactional).

        Returns the number of statements run. Raises ``MigrationFailed`` (context: ``left_nothing``,
        ``statements_done``, ``statement``) or ``LockTimeout`` when the retries ran out.
        """
        self._check_time(what)
        conn = self.session()
        try:
            if transactional and self.dialect.transactional_ddl:
                return self._run_transaction(conn, statements, what, after)
            return self._run_each(conn, statements, what, after)
        finally:
            conn.close()

    def _run_transaction(self, conn, statements, what, after) -> int:
        attempt = 0
        while True:
            self.attempts += 1
            current = None
            try:
                with conn.transaction():
                    for st in statements:
                        current = st
                        db.set_statement_timeout(conn, self.url, self.deadline.statement_ms())
                        conn.execute(st.text)
                    current = None
                    if after is not None:
                        after(conn)
                return len(statements)
            except Exception as exc:  # noqa: BLE001 - sorted below
                err = db.classify(exc, self.url)
                where = _where(current)
                if err.kind == "lock":
                    attempt += 1
                    if self._pause(attempt, what, err.message):
                        continue
                    raise LockTimeout(f"{what}{where}: could not get its lock within lock_timeout after {attempt} "
                                      f"attempts ({err.message}); its transaction was rolled back", left_nothing=True,
                                      statements_done=0) from None
                if err.kind == "lost":
                    raise MigrationFailed(f"{what}{where}: connection lost ({err.message}); PostgreSQL rolls the "
                                          "transaction back", left_nothing=True, statements_done=0) from None
                timeout = " (statement timeout)" if err.kind == "timeout" else ""
                raise MigrationFailed(f"{what}{where}: {err.message}{timeout}; its transaction was rolled back: "
                                      "nothing of it is left", left_nothing=True, statements_done=0,
                                      statement=current.index if current else None) from None

    def _run_each(self, conn, statements, what, after) -> int:
        done = 0
        for st in statements:
            attempt = 0
            while True:
                self.attempts += 1
                try:
                    db.set_statement_timeout(conn, self.url, self.deadline.statement_ms())
                    with conn.cursor() as cur:
                        cur.execute(st.text)
                    break
                except Exception as exc:  # noqa: BLE001
                    err = db.classify(exc, self.url)
                    if err.kind == "lock":
                        attempt += 1
                        if self._pause(attempt, f"{what}{_where(st)}", err.message):
                            continue
                    left = done == 0
                    state = ("nothing of it was applied" if left else
                             f"the {done} statement(s) before it stay applied (they commit on their own)")
                    kind = {"lock": "could not get its lock within lock_timeout", "timeout": "statement timeout",
                            "lost": "connection lost"}.get(err.kind)
                    msg = f"{what}{_where(st)}: {err.message}" + (f" ({kind})" if kind else "") + f"; {state}"
                    cls = LockTimeout if err.kind == "lock" else MigrationFailed
                    raise cls(msg, left_nothing=left, statements_done=done, statement=st.index) from None
            done += 1
        if after is not None:
            after(conn)
        return done

    def run_script(self, script: str, *, what: str, atomic: bool) -> None:
        """Send ``script`` as one query, as Prisma does where the engine runs it whole (``runs_whole_scripts``:
        several statements in one implicit transaction). ``atomic``: nothing is left when it fails."""
        self._check_time(what)
        conn = self.session()
        attempt = 0
        try:
            while True:
                self.attempts += 1
                try:
                    db.set_statement_timeout(conn, self.url, self.deadline.statement_ms())
                    conn.execute(script)
                    return
                except Exception as exc:  # noqa: BLE001
                    err = db.classify(exc, self.url)
                    line = f" (line {script.count(chr(10), 0, err.position - 1) + 1})" if err.position else ""
                    if err.kind == "lock":
                        attempt += 1
                        if atomic and self._pause(attempt, what, err.message):
                            continue
                    state = ("its implicit transaction was rolled back: nothing of it is left" if atomic else
                             "statements before it may stay applied")
                    cls = LockTimeout if err.kind == "lock" else MigrationFailed
                    raise cls(f"{what}{line}: {err.message}; {state}", left_nothing=atomic, statements_done=0,
                              code=err.code) from None
        finally:
            conn.close()


def _where(st: Statement | None) -> str:
    return f", statement {st.index} (line {st.line})" if st is not None else ""


class MigrationSource:
    """One kind of migration folder (``sql``, ``alembic``, ``prisma``)."""

    kind = ""

    def __init__(self, path: Path, url: DatabaseURL) -> None:
        self.path = path
        self.url = url
        self.dialect: Dialect = dialect_of(url)
        self.release = self.dialect.release

    def describe(self) -> str:
        return f"{self.kind}:{self.path}"

    def load(self) -> list[Migration]:
        """Every migration on disk, in order; ``ConfigError`` when the folder is not what its kind expects."""
        raise NotImplementedError

    def status(self, conn) -> SourceStatus:
        """Applied (from the tool's own history table), pending, drift, failed, missing."""
        raise NotImplementedError

    def prepare(self, conn) -> None:
        """Create the tool's history table when missing (before the backup, so the backup holds it)."""

    def apply(self, ex: Executor, m: Migration, release_id: str) -> int:
        """Apply ``m`` and record it as the tool does; returns the statements run."""
        raise NotImplementedError

    def down(self, ex: Executor, m: Migration) -> int:
        """Run ``m``'s down-migration and record it as not applied."""
        raise NotImplementedError

    def forget_failed(self, conn, m: Migration) -> None:
        """Remove the record of a failed attempt that left nothing in the database."""

    def probe(self, conn, m: Migration) -> str:
        """``applied``, ``failed`` (recorded as started, not finished) or ``absent``."""
        raise NotImplementedError

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- golive's own history table
# The table is the dialect's ``Release.history_table`` (PostgreSQL ``_golive.migrations``, MySQL
# ``_golive_migrations``), created by its ``history_ddl``.


def history_table(dialect: Dialect) -> str:
    """golive's history table, quoted for SQL."""
    return dialect.qualified(*dialect.release.history_table)


def ensure_history(conn, dialect: Dialect) -> None:
    with conn.cursor() as cur:
        for stmt in dialect.release.history_ddl:
            cur.execute(stmt)


def history_exists(conn, dialect: Dialect) -> bool:
    return dialect.release.table_exists(conn, *dialect.release.history_table)


def read_history(conn, dialect: Dialect, kind: str) -> list[tuple[Applied, bool]]:
    """(applied, success) rows of ``kind`` in golive's history table, in version order of application."""
    if not history_exists(conn, dialect):
        return []
    with conn.cursor() as cur:
        cur.execute(f"SELECT version, name, checksum, applied_at, success FROM {history_table(dialect)} WHERE kind = %s "
                    "ORDER BY applied_at, version", (kind,))
        rows = cur.fetchall()
    out = []
    for version, name, checksum, at, success in rows:
        if isinstance(at, dt.datetime) and at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        out.append((Applied(version=text_of(version), name=text_of(name), checksum=text_of(checksum), applied_at=at,
                            finished=bool(success)), bool(success)))
    return out


def record_history(conn, dialect: Dialect, kind: str, m: Migration, *, success: bool, release_id: str,
                   execution_ms: int | None = None) -> None:
    """Insert or update ``m``'s row in golive's history table."""
    dialect.release.record_migration(conn, kind, m.version, m.name, m.checksum, success=success, release_id=release_id,
                                     applied_at=now(), execution_ms=execution_ms)


def delete_history(conn, dialect: Dialect, kind: str, version: str, *, only_failed: bool = False) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {history_table(dialect)} WHERE kind = %s AND version = %s"
                    + (" AND NOT success" if only_failed else ""), (kind, version))


def run_record(m: Migration) -> MigrationRun:
    return MigrationRun(version=m.version, label=m.label, transactional=m.transactional)

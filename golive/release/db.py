"""Sessions of a release (``Session.open`` of the database's dialect) and its overall deadline.

Migration sessions carry the release's lock timeout and, per statement, the smaller of ``statement_timeout`` and
the time left of the overall timeout; the dialect says how its engine spells them (and stops a statement whose
client is gone, where it can). The catalog reads of the pre-check and the lint are the dialect's ``Release``
concern (``golive/dialects/<engine>/release.py``).
"""

from __future__ import annotations

import logging
import time

from golive.dialects import dialect_of
from golive.dialects.base import StatementFailure
from golive.model.release import TableKey
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

APPLICATION = "golive-release"


class Deadline:
    """The end of the migrations (``time.time()`` seconds), and the statement timeout within it."""

    def __init__(self, at: float, statement_s: float | None, total_s: float) -> None:
        self.at, self.statement_s, self.total_s = at, statement_s, total_s

    @classmethod
    def start(cls, total_s: float, statement_s: float | None = None) -> "Deadline":
        return cls(time.time() + total_s, statement_s, total_s)

    def remaining(self) -> float:
        return self.at - time.time()

    def statement_ms(self) -> int:
        left = max(self.remaining(), 0.001)
        if self.statement_s:
            left = min(left, self.statement_s)
        return max(int(left * 1000), 1)


def connect(url: DatabaseURL, *, lock_timeout_s: float | None = None, autocommit: bool = True,
            application: str = APPLICATION):
    """An autocommit session (``lock_timeout_s`` None: the server's default lock waits)."""
    return dialect_of(url).session.open(url, application=application, autocommit=autocommit,
                                        lock_timeout_s=lock_timeout_s)


def set_statement_timeout(conn, url: DatabaseURL, ms: int | None) -> None:
    """The statement timeout of the next statements (None or 0: none)."""
    dialect_of(url).session.set_statement_timeout(conn, (ms or 0) / 1000)


# ---------------------------------------------------------------- errors

#: a statement's failure, sorted (``lock``, ``timeout``, ``lost``, ``error``)
DbError = StatementFailure


def classify(exc: BaseException, url: DatabaseURL) -> DbError:
    return dialect_of(url).session.classify(exc)


# ---------------------------------------------------------------- row counts

def count_rows(conn, url: DatabaseURL, tables: list[TableKey]) -> dict[TableKey, int]:
    """Exact row counts of the tables that exist among ``tables``."""
    dialect = dialect_of(url)
    out = {}
    with conn.cursor() as cur:
        for schema, name in dict.fromkeys(tables):
            try:
                cur.execute(f"SELECT count(*) FROM {dialect.qualified(schema, name)}")
                out[(schema, name)] = int(cur.fetchone()[0])
            except Exception:  # noqa: BLE001 - a table that does not exist (yet) has no count
                rollback(conn)
    return out


def rollback(conn) -> None:
    """End a failed statement's transaction (a no-op on an autocommit session)."""
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001
        pass

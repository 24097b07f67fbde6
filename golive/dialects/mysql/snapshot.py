"""One moment in time for every chunk reader of a MySQL / MariaDB source, and the binlog position of that moment.

``snapshot`` takes a short ``FLUSH TABLES WITH READ LOCK`` (as mydumper does), opens one connection per worker with
``START TRANSACTION WITH CONSISTENT SNAPSHOT``, and releases the lock: every chunk reader borrows one of those
connections, so all of them read the same moment while the app goes on writing.

Online migration (``capture.begin``) asks for the binlog position of that moment too (``binlog={}``), and the same
code fills it in:

* **MySQL**: ``SHOW MASTER STATUS`` (``SHOW BINARY LOG STATUS`` on 8.4) *while the lock is held*: no transaction
  commits between the snapshot and that position, so the copy holds every transaction before it and none after.
* **MariaDB**: each snapshot connection's ``binlog_snapshot_file`` / ``binlog_snapshot_position`` status, the
  exact binlog position of that connection's snapshot (no global lock needed: without the RELOAD privilege each
  connection has its own moment, and capture starts at the earliest of them; a change both in a later snapshot and
  in the stream is applied again, harmlessly, since the catch-up re-reads the row as it is now).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import uuid

from golive.dialects.mysql.session import connect as open_session
from golive.errors import PlanError
from golive.model.capture import CaptureNotReady
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

_pools: dict[str, queue.Queue] = {}
_broken: dict[str, str] = {}  # snapshot name -> why it is gone (a reading connection was lost)
_lock = threading.Lock()


def is_mariadb(conn) -> bool:
    return "mariadb" in conn.get_server_info().lower()


def master_status(conn) -> tuple[str, int, str, str]:
    """``(file, position, Binlog_Do_DB, Binlog_Ignore_DB)`` of the binlog's end now (None: binary logging is off)."""
    with conn.cursor() as cur:
        try:
            cur.execute("SHOW BINARY LOG STATUS")  # MySQL 8.4 (SHOW MASTER STATUS is gone there)
        except Exception:  # noqa: BLE001 - MariaDB and MySQL < 8.2 know only the old name
            cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    if not row:
        return None
    file, pos = (v.decode() if isinstance(v, bytes) else v for v in row[:2])
    extra = [(v.decode() if isinstance(v, bytes) else v) or "" for v in row[2:4]] + ["", ""]
    return file, int(pos), extra[0], extra[1]


def position_key(position: str) -> tuple:
    """A ``file:offset`` position as something that sorts in binlog order (``binlog.000012:4`` → ``(12, 4)``)."""
    file, _, pos = position.rpartition(":")
    m = re.search(r"(\d+)$", file)
    return (int(m.group(1)) if m else 0, file, int(pos or 0))


def _snapshot_position(conn) -> str | None:
    """MariaDB: this connection's snapshot as a binlog position (None elsewhere)."""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        got = {(k.decode() if isinstance(k, bytes) else k).lower(): (v.decode() if isinstance(v, bytes) else v)
               for k, v in cur.fetchall()}
    file, pos = got.get("binlog_snapshot_file"), got.get("binlog_snapshot_position")
    return f"{file}:{int(pos)}" if file and pos not in (None, "") else None


@contextlib.contextmanager
def snapshot(url: DatabaseURL, plan, *, workers: int, settings: dict, binlog: dict | None = None):
    """Open ``workers`` reading connections in one consistent snapshot (see the module docstring).

    Yields the snapshot's name for the chunk readers of this process, or None when each chunk reads its own moment
    (``plan.consistency`` says which, and why).

    Args:
        binlog: online migration: filled with ``position`` (``file:offset``), the binlog position the snapshot is
            consistent with; a snapshot is then always taken (whatever ``--snapshot`` says).
    """
    mode = plan.options.get("snapshot", "auto")
    if mode == "none" and binlog is None:
        yield None
        return
    conns = []
    lock_conn = open_session(url, settings=settings, role="source")
    try:
        mariadb = is_mariadb(lock_conn)
        locked = True
        try:
            with lock_conn.cursor() as cur:
                cur.execute("FLUSH TABLES WITH READ LOCK")
        except Exception as exc:
            locked = False
            if mode == "lock":
                raise PlanError(f"--snapshot lock: the source refused FLUSH TABLES WITH READ LOCK ({exc}); grant "
                                "RELOAD to the user, or use --snapshot auto and keep the source quiet") from None
            if binlog is None:
                log.warning("no consistent snapshot (%s): each chunk reads its own moment", exc)
                yield None
                return
            if not mariadb:  # MySQL has no per-snapshot binlog position: the lock is the only exact moment
                raise CaptureNotReady(f"online migration needs the binlog position of the copy's snapshot, taken "
                                      f"under a short FLUSH TABLES WITH READ LOCK, which the source refused ({exc}): "
                                      f"GRANT RELOAD ON *.* TO the user") from None
        positions = []
        try:
            if binlog is not None and locked and not mariadb:
                status = master_status(lock_conn)
                if status is None:
                    raise CaptureNotReady("the source's binary log is off (log_bin): online migration reads changes "
                                          "from it: set log_bin and server_id in my.cnf and restart the server")
                positions.append(f"{status[0]}:{status[1]}")
            for _ in range(max(1, workers)):
                c = open_session(url, settings=settings, role="source")
                conns.append(c)
                with c.cursor() as cur:
                    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                if binlog is not None and mariadb:
                    at = _snapshot_position(c)
                    if at is None:
                        raise CaptureNotReady("the source's binary log is off (log_bin): online migration reads "
                                              "changes from it: set log_bin and server_id in my.cnf and restart")
                    positions.append(at)
        finally:
            if locked:
                with lock_conn.cursor() as cur:
                    cur.execute("UNLOCK TABLES")
        if binlog is not None:
            binlog["position"] = min(positions, key=position_key)
            binlog["locked"] = locked
        name = uuid.uuid4().hex
        pool: queue.Queue = queue.Queue()
        for c in conns:
            pool.put(c)
        with _lock:
            _pools[name] = pool
        try:
            yield name
        finally:
            with _lock:
                _pools.pop(name, None)
                _broken.pop(name, None)
    finally:
        lock_conn.close()
        for c in conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing read-only connections
                pass

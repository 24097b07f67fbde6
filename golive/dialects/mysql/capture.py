"""MySQL / MariaDB change capture: the binary log, read from the position the copy's snapshot is consistent with.

* **Where capture starts.** ``begin`` opens the copy's snapshot with the same code an offline copy uses
  (``golive.dialects.mysql.snapshot``) and takes its binlog position at that moment: ``SHOW MASTER STATUS`` under
  the snapshot's short ``FLUSH TABLES WITH READ LOCK`` (MySQL), or each snapshot connection's
  ``binlog_snapshot_file``/``_position`` (MariaDB, exact without the lock). A transaction before that position is
  in the copy, one after it is in the stream; nothing is added to the server (no slot, no trigger, no table).
* **Reading** (``golive.dialects.mysql.binlog``): a non-blocking binlog dump from ``file:offset`` with the
  ``mysql-replication`` package, whole transactions only, so the position handed back is always a transaction's
  end; each row event of a copied table gives its key (both keys when an UPDATE changes it), by ordinal position
  from the definition recorded at ``begin``. DDL of a copied table stops the run, naming the table and statement.
* **What the binlog does not show** and golive therefore refuses or handles: rows changed by an ON DELETE
  CASCADE / SET NULL foreign key (refused by ``check``, naming the key); children of an ON UPDATE CASCADE (found in
  the source by the parent's new key); writes logged as statements (``binlog_format = STATEMENT`` in a session:
  the run stops); XA transactions (the run stops); sessions with ``sql_log_bin = 0`` (not detectable: don't).
* **Fence**: ``SET GLOBAL read_only = ON`` (and ``super_read_only`` where it exists, MySQL), then the sessions
  using the database are ended (``KILL``; golive's own session and replication threads are spared) so the app's
  pools reconnect and see the refusal: every later write by a user without READ_ONLY ADMIN (MariaDB 10.11+) or
  SUPER (MySQL without ``super_read_only``, MariaDB before 10.11) fails with *"The MariaDB server is running with
  the --read-only option"*. It is **server-wide**: other databases on the same server are read-only too until
  ``unfence``/``end``. It does not stop a user holding READ_ONLY ADMIN (``ALL PRIVILEGES`` includes it) or, on
  MySQL without ``super_read_only``, SUPER: golive records the binlog position of the fence, and the drain fails
  loudly, naming the table, on any row written after it.
* **Cleanup**: the binlog capture leaves nothing on the server to forget (binlogs expire by themselves); ``end``
  lifts the fence golive set (unless ``keep_fence``), ``unfence`` too; ``leftovers`` names a read-only server
  (a fence left on, by a cut-over or an interrupted one).
"""

from __future__ import annotations

import contextlib
import logging
import re

from golive.dialects.base import Capture
from golive.dialects.mysql import binlog
from golive.dialects.mysql.session import connect as open_session
from golive.dialects.mysql.snapshot import master_status, position_key
from golive.dialects.mysql.source import READ_SETTINGS, snapshot
from golive.errors import TerminalError
from golive.model.capture import CaptureState, ChangeBatch
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: key column types the binlog carries without their meaning unless binlog_row_metadata = FULL
_NEEDS_METADATA = re.compile(r"^(binary|varbinary|tinyblob|blob|mediumblob|longblob|enum|set)\b")
_UTF8 = ("utf8", "utf8mb3", "utf8mb4", "ascii", None)


def _connect(url: DatabaseURL):
    return open_session(url, settings=READ_SETTINGS, role="source", autocommit=True)


def _variables(cur, *names: str) -> dict[str, str]:
    cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ", ".join("%s" for _ in names) + ")", names)
    return {binlog._s(k).lower(): binlog._s(v) for k, v in cur.fetchall()}


def _privileges(cur) -> tuple[set[str], str]:
    """The user's global privileges (``ON *.*``) from SHOW GRANTS, and the user as GRANT names it."""
    cur.execute("SELECT CURRENT_USER()")
    user, _, host = binlog._s(cur.fetchone()[0]).rpartition("@")
    cur.execute("SHOW GRANTS")
    have = set()
    for (line,) in cur.fetchall():
        m = re.match(r"GRANT (.+?) ON \*\.\* TO", binlog._s(line), re.I)
        if m:
            have |= {p.strip().upper() for p in m.group(1).split(",")}
    return have, f"'{user}'@'{host}'"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


class MySQLCapture(Capture):
    method = ("the binlog (ROW format), read from the position of the copy's consistent snapshot with "
              "mysql-replication")
    fence_method = "SET GLOBAL read_only = ON (server-wide) and KILL of the sessions using the database"

    # ------------------------------------------------------------------ check

    def check(self, url: DatabaseURL, plan, *, keyless: bool = False) -> list[str]:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                return self._check(cur, conn, url, plan, keyless)
        finally:
            conn.close()

    def _check(self, cur, conn, url: DatabaseURL, plan, keyless: bool) -> list[str]:
        problems: list[str] = []
        v = _variables(cur, "version", "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
                       "server_id", "expire_logs_days", "binlog_expire_logs_seconds", "log_bin_compress",
                       "binlog_transaction_compression")
        mariadb = "mariadb" in v.get("version", "").lower()
        db = url.database
        if v.get("log_bin", "OFF").upper() not in ("ON", "1"):
            problems.append("log_bin is off: golive reads the app's changes from the binary log: add log_bin = "
                            "mysql-bin, binlog_format = ROW and server_id = 1 under [mysqld] in my.cnf and restart "
                            "the server")
        else:
            if v.get("binlog_format", "").upper() != "ROW":
                problems.append(f"binlog_format is {v.get('binlog_format')}: golive needs the changed rows: set "
                                "binlog_format = ROW under [mysqld] in my.cnf (SET GLOBAL binlog_format = 'ROW' "
                                "applies it to new sessions: restart the app's connections)")
            if v.get("binlog_row_image", "FULL").upper() != "FULL":
                problems.append(f"binlog_row_image is {v.get('binlog_row_image')}: set binlog_row_image = FULL "
                                "under [mysqld] in my.cnf (SET GLOBAL binlog_row_image = 'FULL' for new sessions)")
            for name in ("log_bin_compress", "binlog_transaction_compression"):
                if _on(v.get(name)):
                    problems.append(f"{name} is ON: golive cannot read compressed binlog events (their rows would "
                                    f"be lost): SET GLOBAL {name} = OFF and set {name} = OFF under [mysqld] in my.cnf"
                                    " before the copy")
            if v.get("server_id") in ("0", None):
                problems.append("server_id is 0: a server writing a binlog needs one: set server_id = 1 under "
                                "[mysqld] in my.cnf")
            try:
                status = master_status(conn)
            except Exception:  # noqa: BLE001 - without REPLICATION CLIENT: the grants' line names it
                status = None
            if status is not None:
                do, ignore = [s.split(",") for s in status[2:4]]
                if (any(do) and db not in do) or db in ignore:
                    problems.append(f"the binlog leaves out database {db} (binlog_do_db / binlog_ignore_db in "
                                    "my.cnf): remove those filters and restart the server")
            problems += self._metadata(cur, v, db, plan)
            self._warn_expiry(v)
        have, user = _privileges(cur)
        problems += self._grants(have, user, mariadb, v.get("version", ""))
        keyless_tables = [tp.source for tp in plan.tables if not tp.chunk_key]
        if keyless_tables and not keyless:
            problems.append(f"tables without a primary key: {', '.join(keyless_tables)} (a changed row cannot be "
                            "found again in the target): add a primary key (or a unique NOT NULL index), or "
                            "--exclude them")
        copied = {tp.source for tp in plan.tables}
        for fk in binlog.foreign_keys(conn, db):
            rules = [f"ON {w.upper()} {r}" for w, r in (("delete", fk["on_delete"]), ("update", fk["on_update"]))
                     if r in ("CASCADE", "SET NULL", "SET DEFAULT") and not (w == "update" and r == "CASCADE")]
            if fk["child"] in copied and rules:
                problems.append(f"foreign key {fk['name']} of {fk['child']} ({' '.join(rules)}): MySQL does not "
                                "write the rows a cascade changes to the binlog, so golive would not see them: make "
                                "it ON DELETE RESTRICT while moving (the app deletes the children itself), or "
                                f"--exclude {fk['child']}, or move this database offline")
        return problems

    def _metadata(self, cur, v: dict, db: str, plan) -> list[str]:
        """Keys the binlog carries without their meaning unless ``binlog_row_metadata = FULL``."""
        metadata = v.get("binlog_row_metadata")
        if metadata is not None and metadata.upper() == "FULL":
            return []
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s", (db,))
        types = {(binlog._s(t), binlog._s(c)): (binlog._s(ty).lower(), binlog._s(cs)) for t, c, ty, cs in
                 cur.fetchall()}
        odd = sorted({tp.source for tp in plan.tables for k in tp.key
                      if (t := types.get((tp.source, k))) and (_NEEDS_METADATA.match(t[0]) or t[1] not in _UTF8)})
        if not odd:
            if metadata is not None:
                log.warning("binlog_row_metadata is %s: golive maps the binlog's columns by position and stops on "
                            "any DDL; binlog_row_metadata = FULL in my.cnf also lets it check the columns' names",
                            metadata)
            return []
        if metadata is None:
            return [f"the keys of {', '.join(odd)} are binary, ENUM, SET or not UTF-8, which this server's binlog "
                    "carries without their type (binlog_row_metadata needs MariaDB 10.5 or MySQL 8.0.14): upgrade "
                    "the server, or move this database offline"]
        return [f"binlog_row_metadata is {metadata} and the keys of {', '.join(odd)} are binary, ENUM, SET or not "
                "UTF-8, which the binlog then carries without their type: set binlog_row_metadata = FULL under "
                "[mysqld] in my.cnf (SET GLOBAL binlog_row_metadata = 'FULL' applies it at once)"]

    def _warn_expiry(self, v: dict) -> None:
        seconds = float(v.get("binlog_expire_logs_seconds") or 0) or float(v.get("expire_logs_days") or 0) * 86400
        if 0 < seconds < 86400:
            log.warning("binlogs are purged after %.1f h: a catch-up paused longer cannot resume (the run starts "
                        "again): keep them at least a day (binlog_expire_logs_seconds = 86400 in my.cnf)",
                        seconds / 3600)

    def _grants(self, have: set[str], user: str, mariadb: bool, version: str) -> list[str]:
        def has(*names: str) -> bool:
            return "ALL PRIVILEGES" in have or any(n in have for n in names)

        problems = []
        missing = [p for p, alts in (("REPLICATION SLAVE", ()), ("REPLICATION CLIENT", ("BINLOG MONITOR", "SUPER")))
                   if not has(p, *alts)]
        if missing:
            problems.append(f"the user {user} may not read the binlog: GRANT {', '.join(missing)} ON *.* TO {user}")
        if not mariadb and not has("RELOAD"):
            problems.append(f"the user {user} may not take the copy's snapshot with its binlog position (a short "
                            f"FLUSH TABLES WITH READ LOCK): GRANT RELOAD ON *.* TO {user}")
        if mariadb:
            fence = ("READ_ONLY ADMIN",) if _version(version) >= (10, 11) else ("READ_ONLY ADMIN", "SUPER")
        else:
            fence = ("SUPER", "SYSTEM_VARIABLES_ADMIN")
        if not has(*fence):
            problems.append(f"the user {user} may not fence the source at cut-over (SET GLOBAL read_only): GRANT "
                            f"{fence[0]} ON *.* TO {user}")
        if not has("CONNECTION ADMIN", "CONNECTION_ADMIN", "SUPER") or not has("PROCESS"):
            log.warning("the user %s may not end other users' sessions (KILL needs %s and PROCESS): at cut-over the "
                        "app's open connections are refused by read_only but not closed", user,
                        "CONNECTION ADMIN" if mariadb else "CONNECTION_ADMIN")
        return problems

    # ------------------------------------------------------------------ begin, changes

    @contextlib.contextmanager
    def begin(self, url: DatabaseURL, plan, *, workers: int):
        at: dict = {}
        with snapshot(url, plan, workers=workers, binlog=at) as name:
            conn = _connect(url)
            try:
                meta = binlog.describe(conn, url.database, plan)
            finally:
                conn.close()
            meta["snapshot_lock"] = at["locked"]
            state = CaptureState(run_key=plan.run_key, engine="mysql", started_at=at["position"],
                                 applied=at["position"], objects=[], meta=meta)
            log.info("capturing the binlog from %s (the copy's snapshot)", at["position"])
            yield name, state

    def changes(self, url: DatabaseURL, state: CaptureState, after: str, *, limit: int) -> ChangeBatch:
        return binlog.read_changes(url, state, after, limit=limit)

    def head(self, url: DatabaseURL, state: CaptureState) -> str | None:
        conn = _connect(url)
        try:
            status = master_status(conn)
        finally:
            conn.close()
        return f"{status[0]}:{status[1]}" if status else None

    def position_key(self, position: str) -> tuple:
        return position_key(position)

    # ------------------------------------------------------------------ fence

    def fence(self, url: DatabaseURL, state: CaptureState) -> None:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                v = _variables(cur, "read_only", "super_read_only")
                fence = state.meta.setdefault("fence", {"read_only_was": _on(v.get("read_only")),
                                                        "super_read_only_was": _on(v.get("super_read_only"))})
                cur.execute("SET SESSION lock_wait_timeout = 10")
                try:
                    self._read_only(cur, True, "super_read_only" in v)
                except Exception as exc:  # noqa: BLE001 - MySQL waits for open transactions: end them, once
                    if _code(exc) != 1205:
                        raise _fence_error(exc) from None
                    _kill(cur, url.database)
                    try:
                        self._read_only(cur, True, "super_read_only" in v)
                    except Exception as again:  # noqa: BLE001
                        raise _fence_error(again) from None
                status = master_status(conn)
                state.meta["fenced_pos"] = f"{status[0]}:{status[1]}"
                fence["killed"] = _kill(cur, url.database)
        finally:
            conn.close()

    def _read_only(self, cur, on: bool, super_too: bool, was: dict | None = None) -> None:
        if on:
            cur.execute("SET GLOBAL read_only = ON")
            if super_too:
                cur.execute("SET GLOBAL super_read_only = ON")
            return
        if super_too and not (was or {}).get("super_read_only_was"):
            cur.execute("SET GLOBAL super_read_only = OFF")
        if not (was or {}).get("read_only_was"):
            cur.execute("SET GLOBAL read_only = OFF")

    def unfence(self, url: DatabaseURL, state: CaptureState) -> None:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                v = _variables(cur, "read_only", "super_read_only")
                try:
                    self._read_only(cur, False, "super_read_only" in v, state.meta.get("fence"))
                except Exception as exc:  # noqa: BLE001
                    raise _fence_error(exc, lift=True) from None
        finally:
            conn.close()
        state.meta.pop("fenced_pos", None)

    def end(self, url: DatabaseURL, state: CaptureState, *, keep_fence: bool = False) -> list[str]:
        fence = state.meta.get("fence")
        if keep_fence:
            return []
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                on = _on(_variables(cur, "read_only").get("read_only"))
        finally:
            conn.close()
        if not on:
            return []
        if not state.run_key:  # every leftover, no run recorded (``leftovers`` named the fence): lifted
            fence = {"read_only_was": False, "super_read_only_was": False}
            state.meta["fence"] = fence
        if fence is None or fence.get("read_only_was"):
            log.warning("the source is read-only (read_only = ON) and this run did not set it: left as it is "
                        "(SET GLOBAL read_only = OFF lifts it)")
            return []
        self.unfence(url, state)
        state.meta.pop("fence", None)
        return ["the fence (read_only = ON): lifted, the source takes writes again"]

    def leftovers(self, url: DatabaseURL) -> list[str]:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                on = _on(_variables(cur, "read_only").get("read_only"))
        finally:
            conn.close()
        # the binlog capture adds nothing to the server (no slot, trigger or table): only a fence can be left
        return ["read_only = ON: a fence left on (by a cut-over, or an interrupted one): golive migrate abort (or "
                "SET GLOBAL read_only = OFF) lifts it"] if on else []


def _on(value) -> bool:
    return str(value or "").upper() in ("ON", "1")


def _code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _fence_error(exc: BaseException, *, lift: bool = False) -> TerminalError:
    code = _code(exc)
    msg = binlog._s(exc.args[1]) if len(getattr(exc, "args", ())) > 1 else str(exc)
    what = "lifting the fence (SET GLOBAL read_only = OFF)" if lift else "fencing the source (SET GLOBAL read_only)"
    if code in (1227, 1044, 1045):
        return TerminalError(f"{what}: {msg}: GRANT READ_ONLY ADMIN (MariaDB) or SYSTEM_VARIABLES_ADMIN (MySQL) ON "
                             "*.* to golive's user")
    if code == 1205:
        return TerminalError(f"{what}: still waiting after 10 s for the app's open transactions: end them (or stop "
                             "the app), then run the same command")
    return TerminalError(f"{what}: {msg}")


def _kill(cur, database: str) -> int:
    """End the sessions using ``database`` (not golive's own, nor replication or system threads)."""
    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID() AND "
                "COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Killed') AND "
                "USER NOT IN ('system user', 'event_scheduler')", (database,))
    killed, refused = 0, 0
    for (pid,) in cur.fetchall():
        try:
            cur.execute(f"KILL CONNECTION {int(pid)}")
            killed += 1
        except Exception as exc:  # noqa: BLE001 - gone already (1094), or another user's (1095: no privilege)
            refused += _code(exc) == 1095
    if refused:
        log.warning("%d sessions of other users could not be ended (KILL needs CONNECTION ADMIN): read_only refuses "
                    "their writes all the same", refused)
    return killed

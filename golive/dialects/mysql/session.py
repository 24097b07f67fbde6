"""MySQL / MariaDB sessions (PyMySQL): connecting, and sorting driver errors by whether a retry can help.

URLs: ``mysql://user[:password]@host[:port]/db`` (also ``mariadb://``), with query options
``unix_socket=/run/mysqld/mysqld.sock``, ``ssl_ca=…``, ``ssl_cert=…``, ``ssl_key=…``,
``ssl_verify_cert=true|false``, ``charset=…`` (default utf8mb4), ``connect_timeout=…``.
"""

from __future__ import annotations

import math
import re

from golive.dialects.base import Session, StatementFailure
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.urls import DatabaseURL, mask

#: MySQL / MariaDB server error codes a retry can fix (https://mariadb.com/kb/en/mariadb-error-codes/):
#: lock wait timeout, deadlock, server gone away, lost connection, too many connections, shutdown in progress
TRANSIENT_CODES = {1205, 1213, 2006, 2013, 1040, 1053, 2003, 1927, 4031}


def qi(name: str) -> str:
    """Quote a MySQL identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def connect_kwargs(url: DatabaseURL) -> dict:
    """PyMySQL keyword arguments for ``url`` (password included: never log the result)."""
    if url.dialect != "mysql":
        raise ConfigError(f"{url.masked} is not a MySQL/MariaDB URL")
    q = url.query
    kwargs: dict = {
        "user": url.user or "root",
        "password": url.password_text or "",
        "database": url.database,
        "charset": q.get("charset", "utf8mb4"),
        "connect_timeout": int(q.get("connect_timeout", 10)),
    }
    if q.get("unix_socket"):
        kwargs["unix_socket"] = q["unix_socket"]
    else:
        kwargs["host"] = url.host or "localhost"
        kwargs["port"] = url.port or 3306
    ssl = {k[4:]: v for k, v in q.items() if k in ("ssl_ca", "ssl_cert", "ssl_key")}
    if ssl:
        kwargs["ssl"] = ssl
    if "ssl_verify_cert" in q:
        kwargs["ssl_verify_cert"] = q["ssl_verify_cert"].lower() in ("1", "true", "yes")
    if "ssl_verify_identity" in q:
        kwargs["ssl_verify_identity"] = q["ssl_verify_identity"].lower() in ("1", "true", "yes")
    return kwargs


def connect(url: DatabaseURL, *, autocommit: bool = False, local_infile: bool = False,
            settings: dict | None = None, role: str = "database", cursorclass=None, database: bool = True):
    """Connect with PyMySQL; any failure becomes a one-line ``ConnectionFailed`` (password masked).

    Args:
        settings: session variables set right after connecting (``{"sql_mode": "...", ...}``).
        database: select the URL's database (False: connect to the server only).
    """
    import pymysql

    kwargs = connect_kwargs(url)
    if not database:
        kwargs.pop("database", None)
    kwargs["autocommit"] = autocommit
    kwargs["local_infile"] = local_infile
    if cursorclass is not None:
        kwargs["cursorclass"] = cursorclass
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise connection_error(exc, url, role) from None
    except (OSError, ValueError) as exc:
        raise ConnectionFailed(f"cannot connect to {role} {url.masked}: {mask(str(exc))}") from None
    if settings:
        with conn.cursor() as cur:
            for k, v in settings.items():
                cur.execute(f"SET SESSION {k} = %s", (v,))
    return conn


def _code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    text = str(args[1]) if len(args) > 1 else str(exc)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return mask(text)


def connection_error(exc: BaseException, url: DatabaseURL, role: str) -> GoliveError:
    """A one-line, password-free message for a failed connection."""
    code, text = _code(exc), _message(exc)
    where = url.query.get("unix_socket") or f"{url.host or 'localhost'}:{url.port or 3306}"
    if code in (1045, 1698):
        detail = f"access denied for user {url.user or 'root'} (wrong user or password)"
    elif code == 1049:
        detail = f"database {url.database} does not exist (create it first: CREATE DATABASE `{url.database}`)"
    elif code == 2005 or re.search(r"Name or service not known|getaddrinfo|nodename", text):
        detail = f"unknown host {url.host}"
    elif code == 2003 and re.search(r"timed out", text, re.I):
        detail = "timed out: the host does not answer (firewall, wrong host or port?)"
    elif code in (2003, 2002):
        detail = "connection refused: is MySQL/MariaDB running there and listening on that port?"
    elif code == 1044:
        detail = f"user {url.user or 'root'} may not use database {url.database}"
    else:
        detail = text
    err = ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): {detail}")
    if code in TRANSIENT_CODES and code not in (2003,):
        err.context["transient"] = True
    return err


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a lock timeout, a deadlock: worth retrying."""
    import pymysql

    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) and (
        _code(exc) in TRANSIENT_CODES or _code(exc) == 0)


def translate_error(exc: BaseException, what: str) -> GoliveError:
    """Sort a PyMySQL error by whether a retry can help (dlt's ``_make_database_exception``)."""
    import pymysql

    if isinstance(exc, GoliveError):
        return exc
    msg = _message(exc)
    code = _code(exc)
    if code in (1142, 1227, 1044):
        return TerminalError(f"{what}: {msg} (the user lacks a privilege golive needs)")
    if isinstance(exc, pymysql.err.MySQLError) and is_transient(exc):
        return TransientError(f"{what}: {msg}")
    return TerminalError(f"{what}: {msg}" + (f" (MySQL error {code})" if code else ""))


class MySQLSession(Session):
    """PyMySQL connections; errors sorted by server error code."""

    def connect(self, url: DatabaseURL, **kwargs):
        return connect(url, **kwargs)

    def translate_error(self, exc: BaseException, what: str) -> GoliveError:
        return translate_error(exc, what)

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def begin(self, conn) -> None:
        conn.begin()

    def columns(self, conn, schema: str | None, table: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                        "coalesce(%s, DATABASE()) AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (schema, table))
            return [r[0] for r in cur.fetchall()]

    def primary_key(self, conn, schema: str | None, table: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = "
                        "coalesce(%s, DATABASE()) AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' "
                        "ORDER BY ORDINAL_POSITION", (schema, table))
            return [r[0] for r in cur.fetchall()]

    def has_table(self, conn, schema: str | None, table: str) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = coalesce(%s, DATABASE()) "
                        "AND TABLE_NAME = %s", (schema, table))
            return cur.fetchone()[0] > 0

    def open(self, url: DatabaseURL, *, application: str = "golive", autocommit: bool = True,
             lock_timeout_s: float | None = None, statement_timeout_s: float | None = None, read_only: bool = False,
             role: str = "database"):
        settings = {}
        if lock_timeout_s is not None:  # whole seconds; 0: a year (MySQL has no "no limit")
            whole = max(int(math.ceil(lock_timeout_s)), 1) if lock_timeout_s else 31536000
            settings = {"lock_wait_timeout": whole, "innodb_lock_wait_timeout": min(whole, 1073741824)}
        conn = connect(url, autocommit=autocommit, role=role, settings=settings)
        extra = ["SET SESSION TRANSACTION READ ONLY",
                 "SET SESSION information_schema_stats_expiry = 0"] if read_only else []  # MySQL 8: fresh statistics
        for statement in extra:
            try:
                with conn.cursor() as cur:
                    cur.execute(statement)
            except Exception:  # noqa: BLE001 - the other server's variable
                pass
        if statement_timeout_s:
            self.set_statement_timeout(conn, statement_timeout_s)
        return conn

    def set_statement_timeout(self, conn, seconds: float | None) -> None:
        """MariaDB's ``max_statement_time`` (seconds, any statement); MySQL's ``max_execution_time`` covers SELECTs
        only, so on MySQL statements run to their end (checked once per session, then remembered)."""
        if getattr(conn, "_golive_mariadb", None) is False:
            return
        try:
            with conn.cursor() as cur:
                cur.execute(f"SET SESSION max_statement_time = {(seconds or 0):.3f}")
            conn._golive_mariadb = True
        except Exception:  # noqa: BLE001
            conn._golive_mariadb = False

    def classify(self, exc: BaseException) -> StatementFailure:
        code = _code(exc)
        msg = _message(exc)
        if code == 1205:  # Lock wait timeout exceeded (row locks and metadata locks)
            return StatementFailure("lock", msg, str(code))
        if code in (1969, 3024):  # max_statement_time (MariaDB) / max_execution_time (MySQL) exceeded
            return StatementFailure("timeout", msg, str(code))
        if code in (2006, 2013, 2055):
            return StatementFailure("lost", msg, str(code))
        return StatementFailure("error", msg, str(code) if code else "")

    def try_lock(self, conn, name: str, database: str | None) -> bool:
        with conn.cursor() as cur:  # GET_LOCK names are server-wide: the database is part of the name
            cur.execute("SELECT GET_LOCK(%s, 0)", (_lock_name(name, database),))
            return bool(cur.fetchone()[0])

    def unlock(self, conn, name: str, database: str | None) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (_lock_name(name, database),))

    def lock_holder(self, conn, name: str, database: str | None) -> str:
        with conn.cursor() as cur:
            cur.execute("SELECT IS_USED_LOCK(%s)", (_lock_name(name, database),))
            row = cur.fetchone()
            if not row or row[0] is None:
                return ""
            cur.execute("SELECT id, user, host, time FROM information_schema.processlist WHERE id = %s", (row[0],))
            p = cur.fetchone()
        return f"connection {row[0]}" + (f", {p[1]}@{p[2]}, connected {p[3]} s ago" if p else "")

    def client(self, url: DatabaseURL) -> str:
        where = (f"--socket={url.query['unix_socket']}" if url.query.get("unix_socket")
                 else f"-h {url.host or 'localhost'} -P {url.port or 3306}")
        return f"mariadb {where} -u {url.user or 'root'} {url.database}"


def _lock_name(name: str, database: str | None) -> str:
    """``golive-maintenance:<database>``, at most 64 characters (GET_LOCK's limit)."""
    return f"{name}:{database or ''}"[:64]

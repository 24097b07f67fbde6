"""MySQL / MariaDB sessions (PyMySQL): connecting, and sorting driver errors by whether a retry can help.

URLs: ``mysql://user[:password]@host[:port]/db`` (also ``mariadb://``), with the parameters ``golive.dialects.mysql.
options`` reads: ``unix_socket=…``, ``charset=…`` (default utf8mb4), ``connect_timeout=…``, ``defaults_file=…``
(an option file holding the password), TLS (``ssl_mode=REQUIRED``, ``sslmode=verify-full``, ``ssl_ca=…``…). The
password may also come from ``~/.my.cnf`` or ``MYSQL_PWD``; an unknown parameter is refused.
"""

from __future__ import annotations

import math
import os
import re

from golive.dialects.base import Session, StatementFailure
from golive.dialects.mysql.options import PLAINTEXT, TLS, Params, driver_kwargs, resolve, sqlalchemy_query
from golive.errors import ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.urls import DatabaseURL, mask

#: MySQL / MariaDB server error codes a retry can fix (https://mariadb.com/kb/en/mariadb-error-codes/):
#: lock wait timeout, deadlock, server gone away, lost connection, too many connections, shutdown in progress
TRANSIENT_CODES = {1205, 1213, 2006, 2013, 1040, 1053, 2003, 1927, 4031}
#: CR_SSL_CONNECTION_ERROR: PyMySQL's "SSL is required but the server doesn't support it"
SSL_CONNECTION_ERROR = 2026


def qi(name: str) -> str:
    """Quote a MySQL identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def connect_kwargs(url: DatabaseURL) -> dict:
    """PyMySQL keyword arguments for ``url``, completed from the option file and the environment (password
    included: never log the result)."""
    return driver_kwargs(resolve(url))


def sqlalchemy_url(url: DatabaseURL) -> str:
    """``url`` as SQLAlchemy's ``mysql+pymysql://`` URL (password included: never log it), with its TLS."""
    from urllib.parse import quote, urlencode

    p = resolve(url)
    auth = quote(p.user, safe="") + (":" + quote(p.password, safe="") if p.password else "")
    query = {"charset": p.charset, **sqlalchemy_query(p)}
    if p.unix_socket:
        query["unix_socket"] = p.unix_socket
        hostport = "localhost"
    else:
        hostport = f"{p.host}:{p.port}"
    return f"mysql+pymysql://{auth}@{hostport}/{quote(p.database or '', safe='')}?{urlencode(query)}"


def connect(url: DatabaseURL, *, autocommit: bool = False, local_infile: bool = False,
            settings: dict | None = None, role: str = "database", cursorclass=None, database: bool = True):
    """Connect with PyMySQL; any failure becomes a one-line ``ConnectionFailed`` (password masked). A connection
    that asked for TLS and did not get it is closed and refused.

    Args:
        settings: session variables set right after connecting.
        database: select the URL's database (False: connect to the server only).
    """
    import pymysql

    params = resolve(url)
    kwargs = driver_kwargs(params)
    if not database:
        kwargs.pop("database", None)
    kwargs["autocommit"] = autocommit
    kwargs["local_infile"] = local_infile
    if cursorclass is not None:
        kwargs["cursorclass"] = cursorclass
    preferred = params.tls.mode in (None, "PREFERRED") and not params.unix_socket
    if preferred and "ssl_disabled" not in kwargs:  # PyMySQL's own default (TLS if offered) would make a new
        kwargs["ssl"] = TLS(mode="PREFERRED").context()  # context per connection: the same one, made once
    try:
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.err.OperationalError as exc:
            if not preferred or "ssl" not in kwargs or _code(exc) != SSL_CONNECTION_ERROR:
                raise
            kwargs.pop("ssl")  # PREFERRED: TLS when the server offers it, else without (remembered)
            conn = pymysql.connect(**kwargs, ssl_disabled=True)
            PLAINTEXT.add((params.host, params.port))
    except pymysql.err.MySQLError as exc:
        raise connection_error(exc, url, role, params) from None
    except (OSError, ValueError) as exc:
        raise ConnectionFailed(f"cannot connect to {role} {url.masked} ({_where(params)}): "
                               f"{_tls_failure(exc) or mask(str(exc))}") from None
    if params.tls.required and not params.unix_socket:
        _check_encrypted(conn, url, role, params)
    if settings:
        with conn.cursor() as cur:
            for k, v in settings.items():
                cur.execute(f"SET SESSION {k} = %s", (v,))
    return conn


def _check_encrypted(conn, url: DatabaseURL, role: str, params: Params) -> None:
    """A driver that falls back to plaintext when the server has no TLS (PyMySQL < 1.2) is caught here."""
    import pymysql.cursors

    with conn.cursor(pymysql.cursors.Cursor) as cur:  # tuples, whatever the connection's cursor class
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    if not (row and row[1]):
        conn.close()
        raise ConnectionFailed(f"cannot connect to {role} {url.masked} ({_where(params)}): {_no_tls(params)}")


def _no_tls(params: Params) -> str:
    return (f"ssl_mode={params.tls.mode} asks for TLS and the server does not offer it (have_ssl is off): "
            "configure ssl_cert and ssl_key on the server, or connect with ssl_mode=PREFERRED or DISABLED")


def _tls_failure(exc: BaseException) -> str:
    """A TLS handshake's failure in one line, or ''."""
    import ssl

    if exc is None:
        return ""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the server's certificate failed verification ({exc.verify_message or exc.reason}): give the CA "
                "that signed it with ssl_ca=/path/ca.pem, or use ssl_mode=REQUIRED to encrypt without verifying")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    return ""


def _where(params: Params) -> str:
    return params.unix_socket or f"{params.host}:{params.port}"


def _code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    text = str(args[1]) if len(args) > 1 else str(exc)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return mask(text)


def connection_error(exc: BaseException, url: DatabaseURL, role: str, params: Params | None = None) -> GoliveError:
    """A one-line, password-free message for a failed connection."""
    params = params or resolve(url)
    code, text = _code(exc), _message(exc)
    tls = _tls_failure(getattr(exc, "original_exception", None) or exc.__context__ or exc)
    if tls:  # PyMySQL reports a failed TLS handshake as "can't connect" (2003), keeping the ssl error
        detail = tls
    elif code in (1045, 1698):
        source = (f"the password came from {params.password_from}" if params.password_from else
                  "no password was given: put it in the URL, MYSQL_PWD, ~/.my.cnf (or ?defaults_file=), or use "
                  "block:NAME")
        detail = f"access denied for user {params.user} (wrong user or password; {source})"
    elif code == 1049:
        detail = f"database {url.database} does not exist (create it first: CREATE DATABASE `{url.database}`)"
    elif code == 2005 or re.search(r"Name or service not known|getaddrinfo|nodename", text):
        detail = f"unknown host {params.host}"
    elif code == 2003 and re.search(r"timed out", text, re.I):
        detail = "timed out: the host does not answer (firewall, wrong host or port?)"
    elif code in (2003, 2002):
        detail = "connection refused: is MySQL/MariaDB running there and listening on that port?"
    elif code == 1044:
        detail = f"user {params.user} may not use database {url.database}"
    elif code == SSL_CONNECTION_ERROR and re.search(r"doesn't support|does not support", text):
        detail = _no_tls(params)
    elif code == SSL_CONNECTION_ERROR:
        detail = f"TLS: {text}"
    else:
        detail = text
    err = ConnectionFailed(f"cannot connect to {role} {url.masked} ({_where(params)}): {detail}")
    if code in TRANSIENT_CODES and code not in (2003,):
        err.context["transient"] = True
    return err


def is_transient(exc: BaseException) -> bool:
    """A lost connection, a lock timeout, a deadlock: worth retrying."""
    import pymysql

    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) and (
        _code(exc) in TRANSIENT_CODES or _code(exc) == 0)


def lost_connection(exc: BaseException) -> bool:
    """PyMySQL's ways of saying its connection is gone without a server error: ``InterfaceError(0, '')``, or an
    ``AttributeError`` raised inside PyMySQL on the socket it had already dropped (``'NoneType' object has no
    attribute 'sendall'``: a statement on a connection the server's restart ended)."""
    import pymysql

    if isinstance(exc, pymysql.err.InterfaceError) and _code(exc) == 0:
        return True
    if isinstance(exc, AttributeError):
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is not None and f"{os.sep}pymysql{os.sep}" in tb.tb_frame.f_code.co_filename
    return False


def translate_error(exc: BaseException, what: str) -> GoliveError:
    """Sort a PyMySQL error by whether a retry can help (dlt's ``_make_database_exception``)."""
    import pymysql

    if isinstance(exc, GoliveError):
        return exc
    if lost_connection(exc):
        return TransientError(f"{what}: the connection to the server was lost (the server restarted, or the network "
                              "or a proxy dropped it)")
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
        p = resolve(url)
        where = f"--socket={p.unix_socket}" if p.unix_socket else f"-h {p.host} -P {p.port}"
        return f"mariadb {where} -u {p.user} {url.database}"


def _lock_name(name: str, database: str | None) -> str:
    """``golive-maintenance:<database>``, at most 64 characters (GET_LOCK's limit)."""
    return f"{name}:{database or ''}"[:64]

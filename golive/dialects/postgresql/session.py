"""PostgreSQL sessions (psycopg 3): connecting, quoting, and sorting driver errors by whether a retry can help."""

from __future__ import annotations

import os
import re
import threading

from golive.dialects.base import SNAPSHOT_LOST, Session, StatementFailure, lock_key
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.urls import DatabaseURL, mask


def libpq(url: DatabaseURL) -> str:
    """The URL for psycopg/libpq (SQLAlchemy-style driver suffixes dropped: ``postgresql+psycopg://``)."""
    if url.engine != "postgresql":
        raise ConfigError(f"{url.masked} is not a PostgreSQL URL")
    return re.sub(r"^[a-zA-Z0-9+.-]+://", "postgresql://", url.raw, count=1)


def qi(name: str) -> str:
    """Quote a PostgreSQL identifier (always: keeps case, reserved words work)."""
    return '"' + name.replace('"', '""') + '"'


def qn(schema: str, name: str) -> str:
    return f"{qi(schema)}.{qi(name)}"


def connect(url: DatabaseURL, *, autocommit: bool = False, settings: dict | None = None,
            role: str = "target"):
    """Connect with psycopg 3; any failure becomes a one-line ``ConnectionFailed``."""
    import psycopg

    kwargs = {"autocommit": autocommit, "application_name": "golive"}
    if "connect_timeout" not in url.query:
        kwargs["connect_timeout"] = 10
    try:
        conn = psycopg.connect(libpq(url), **kwargs)
    except psycopg.OperationalError as exc:
        raise connection_error(exc, url, role) from None
    except psycopg.ProgrammingError as exc:  # the URL itself: an unknown parameter, a malformed value
        raise ConfigError(f"{role} URL {url.masked}: {_first_line(exc)} (libpq's parameters: "
                          "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS)") from None
    if settings:
        with conn.cursor() as cur:
            for k, v in settings.items():
                cur.execute(f"SELECT set_config('{k}', %s, false)", (v,))
        if not autocommit:
            conn.commit()
    return conn


#: what libpq says -> one line naming the cause (and the fix); TLS failures keep libpq's own reason
_CONN_PATTERNS = [
    (r"password authentication failed for user \"?([^\"]+)\"?", "password authentication failed for user {0}"),
    (r"no password supplied", "the server asks for a password and none was given (add it to the URL, set PGPASSWORD, "
                              "use ~/.pgpass or block:NAME)"),
    (r"role \"([^\"]+)\" does not exist", "role {0} does not exist"),
    (r"database \"([^\"]+)\" does not exist", "database {0} does not exist (create it first, e.g. createdb {0})"),
    (r"could not translate host name \"([^\"]+)\"", "unknown host {0}"),
    (r"Name or service not known|nodename nor servname|failed to resolve host", "unknown host"),
    (r"Connection refused", "connection refused: is PostgreSQL running there and listening on that port?"),
    (r"timeout expired|timed out", "timed out: the host does not answer (firewall, wrong host or port?)"),
    (r"No route to host|Network is unreachable", "host unreachable"),
]

#: libpq's TLS failures: its own words are kept, and the fix added
_TLS_HINTS = [
    (r"invalid sslmode value", "sslmode is one of disable, allow, prefer, require, verify-ca, verify-full"),
    (r"server does not support SSL", "the server has ssl = off: enable TLS on the server, or connect with "
                                     "sslmode=prefer or disable"),
    (r"root certificate file .* does not exist", "give the CA that signed the server's certificate with "
                                                 "sslrootcert=/path/ca.pem, or use sslmode=require to encrypt "
                                                 "without verifying"),
    (r"certificate verify failed|certificate is not yet valid|certificate has expired",
     "the server's certificate did not verify against sslrootcert: give the CA that signed it"),
    (r"does not match host name|server certificate for .* does not match",
     "the certificate names another host: connect by the name it was issued for, or use sslmode=verify-ca"),
    (r"could not (?:open|load|read) (?:certificate|private key|SSL)", "check the sslcert/sslkey paths and "
                                                                     "permissions (the key must be 0600)"),
]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return mask(text.splitlines()[0] if text else type(exc).__name__)


def _libpq_reason(text: str) -> str:
    """libpq's own reason, without its "connection to server at … failed:" preamble (first line only)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"^connection is bad:\s*", "", re.split(r"\bfailed: ", line)[-1].strip())


def connection_error(exc: Exception, url: DatabaseURL, role: str) -> GoliveError:
    """A one-line, password-free message for a failed connection."""
    text = str(exc)
    where = f"{url.host or 'local socket'}:{url.port or 5432}"
    for pattern, hint in _TLS_HINTS:
        if re.search(pattern, text, re.I):
            return ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): "
                                    f"{mask(_libpq_reason(text))} ({hint})")
    for pattern, msg in _CONN_PATTERNS:
        m = re.search(pattern, text, re.I)
        if m:
            detail = msg.format(*m.groups()) if m.groups() else msg
            err = ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): {detail}")
            if "timed out" in detail:
                err.context["transient"] = True
            return err
    if re.search(r"SSL|TLS|certificate", text):  # any other TLS failure: libpq's reason as it is
        return ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): TLS: {mask(_libpq_reason(text))}")
    return ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): {_first_line(exc)}")


def is_data_error(exc: Exception) -> bool:
    """SQLSTATE class 22 (data exception) or 23 (integrity violation): the row is bad, not the connection."""
    code = getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(exc, "sqlstate", None) or ""
    return code[:2] in ("22", "23")


def translate_error(exc: Exception, what: str) -> GoliveError:
    """Sort a driver error by whether a retry can help (dlt's ``_make_database_exception``)."""
    import psycopg

    msg = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, GoliveError):
        return exc
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return TerminalError(f"{what}: {msg} (golive needs to create tables and its _golive bookkeeping schema: "
                             "run it as the database owner or GRANT CREATE ON DATABASE to this role)")
    if isinstance(exc, (psycopg.OperationalError, psycopg.errors.AdminShutdown,
                        psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected,
                        psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)):
        return TransientError(f"{what}: {msg}")
    return TerminalError(f"{what}: {msg}")


#: the sessions that read a migration source
READ_SETTINGS = {"default_transaction_read_only": "on", "TimeZone": "UTC", "DateStyle": "ISO, YMD",
                 "extra_float_digits": "1", "statement_timeout": "0", "idle_in_transaction_session_timeout": "0"}


def connect_source(url: DatabaseURL, *, snapshot: str | None = None):
    """A read-only session of a migration source, optionally inside the run's exported snapshot."""
    conn = connect(url, settings=READ_SETTINGS, role="source")
    if snapshot:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            conn.execute("SET TRANSACTION SNAPSHOT %s" % _lit(snapshot))
        except Exception as exc:
            conn.close()
            if "invalid snapshot identifier" in str(exc):  # its exporting session is gone
                raise TerminalError(SNAPSHOT_LOST.format(why=str(exc).strip().splitlines()[0])) from None
            raise
    return conn


_KEPT: dict = {}
_KEPT_LOCK = threading.Lock()


def kept(url: DatabaseURL, settings: dict, *, role: str = "source"):
    """An autocommit connection kept open for this process, for many short statements in a row (the online
    catch-up reads the source once per batch: a new connection each time costs more than the reading). A broken
    one is replaced; ``release(url)`` closes them."""
    key = (os.getpid(), url.raw, tuple(sorted(settings.items())))
    with _KEPT_LOCK:
        conn = _KEPT.get(key)
        if conn is not None and not conn.closed and not conn.broken:
            return conn
    conn = connect(url, autocommit=True, settings=settings, role=role)
    with _KEPT_LOCK:
        old = _KEPT.pop(key, None)
        _KEPT[key] = conn
    if old is not None:
        old.close()
    return conn


def release(url: DatabaseURL) -> None:
    """Close the connections kept for ``url``."""
    with _KEPT_LOCK:
        gone = [k for k in _KEPT if k[1] == url.raw]
        conns = [_KEPT.pop(k) for k in gone]
    for conn in conns:
        conn.close()


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class PostgresSession(Session):
    """psycopg connections; errors sorted by SQLSTATE class."""

    def connect(self, url: DatabaseURL, **kwargs):
        return connect(url, **kwargs)

    def translate_error(self, exc: BaseException, what: str) -> GoliveError:
        return translate_error(exc, what)

    def columns(self, conn, schema: str | None, table: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                        "coalesce(%s, current_schema()) AND table_name = %s ORDER BY ordinal_position", (schema, table))
            return [r[0] for r in cur.fetchall()]

    def primary_key(self, conn, schema: str | None, table: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
                        "WHERE i.indisprimary AND c.relname = %s AND n.nspname = coalesce(%s, current_schema())",
                        (table, schema))
            return [r[0] for r in cur.fetchall()]

    def has_table(self, conn, schema: str | None, table: str) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qn(schema, table) if schema else qi(table),))
            return bool(cur.fetchone()[0])

    def open(self, url: DatabaseURL, *, application: str = "golive", autocommit: bool = True,
             lock_timeout_s: float | None = None, statement_timeout_s: float | None = None, read_only: bool = False,
             role: str = "database"):
        settings = {"application_name": application}
        if lock_timeout_s is not None:
            settings["lock_timeout"] = f"{max(int(lock_timeout_s * 1000), 1)}ms" if lock_timeout_s else "0"
        if statement_timeout_s:
            settings["statement_timeout"] = f"{max(int(statement_timeout_s * 1000), 1)}ms"
        if read_only:
            settings["default_transaction_read_only"] = "on"
        conn = connect(url, autocommit=autocommit, settings=settings, role=role)
        if conn.info.server_version >= 140000:  # the server stops a statement whose client is gone
            conn.execute("SELECT set_config('client_connection_check_interval', '1s', false)")
            if not autocommit:
                conn.commit()
        return conn

    def set_statement_timeout(self, conn, seconds: float | None) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('statement_timeout', %s, false)",
                        (f"{max(int(seconds * 1000), 1)}ms" if seconds else "0",))

    def classify(self, exc: BaseException) -> StatementFailure:
        import psycopg

        text = str(exc).strip()
        first = mask(text.splitlines()[0] if text else type(exc).__name__)
        state = getattr(getattr(exc, "diag", None), "sqlstate", None) or getattr(exc, "sqlstate", None) or ""
        pos = getattr(getattr(exc, "diag", None), "statement_position", None)
        pos = int(pos) if pos else None
        if isinstance(exc, psycopg.errors.LockNotAvailable) or state == "55P03":
            return StatementFailure("lock", first, state, pos)
        if isinstance(exc, psycopg.errors.QueryCanceled) or state == "57014":
            return StatementFailure("timeout", first, state, pos)
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and state in (
                "", "57P01", "57P02", "57P03", "08006", "08003"):
            return StatementFailure("lost", first, state)
        return StatementFailure("error", first, state, pos)

    def try_lock(self, conn, name: str, database: str | None) -> bool:
        with conn.cursor() as cur:  # advisory locks are per database already
            cur.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
            return bool(cur.fetchone()[0])

    def unlock(self, conn, name: str, database: str | None) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))

    def lock_holder(self, conn, name: str, database: str | None) -> str:
        key = lock_key(name) & 0xFFFFFFFFFFFFFFFF
        with conn.cursor() as cur:
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

    def client(self, url: DatabaseURL) -> str:
        from golive.dialects.postgresql.tools import find

        try:
            path, _ = find("psql", 0)
        except GoliveError:
            path = "psql"
        return f"{path} '{url.raw}'"

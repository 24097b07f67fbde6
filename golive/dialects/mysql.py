"""MySQL / MariaDB: connections and error translation (PyMySQL), shared by every part of golive.

URLs: ``mysql://user[:password]@host[:port]/db`` (also ``mariadb://``), with query options
``unix_socket=/run/mysqld/mysqld.sock``, ``ssl_ca=…``, ``ssl_cert=…``, ``ssl_key=…``,
``ssl_verify_cert=true|false``, ``charset=…`` (default utf8mb4), ``connect_timeout=…``.
"""

from __future__ import annotations

import logging
import re

from golive.dialects.base import Dialect
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

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
        "password": url.password or "",
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


class MySQLDialect(Dialect):
    name = "mysql"
    can_read = True
    can_write = False  # set by the target side when it exists (golive.dialects.mysql_target)
    # https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html (64 characters)
    max_identifier_length = 64
    # https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html: DDL commits implicitly
    transactional_ddl = False
    sqlglot_name = "mysql"
    translates_checks = True
    supports_generated = True

    def quote(self, name: str) -> str:
        return qi(name)

    # ------------------------------------------------------------------ as a source (mysql_source)

    def check(self, url: DatabaseURL) -> None:
        connect_kwargs(url)  # a MySQL URL naming a database

    def introspect(self, conn, url: DatabaseURL | None = None, options=None):
        from golive.dialects import mysql_source

        return mysql_source.introspect(conn, url)

    def fingerprint(self, url: DatabaseURL) -> str:
        return ""  # resume compares the committed chunks' digests instead (copy.verify_committed)

    def changed_since(self, url: DatabaseURL, plan, stored: dict) -> str | None:
        from golive.migrate.copy import verify_committed

        return verify_committed(url, plan, stored.get("chunks") or {})

    def consistency(self, url: DatabaseURL, conn, options) -> str:
        from golive.dialects import mysql_source

        return mysql_source.consistency(url, conn, options)

    def copy_options(self, options) -> dict:
        return {"snapshot": options.snapshot, "zero_dates": options.zero_dates, "datetime_as": options.datetime_as,
                "source_time_zone": options.source_time_zone, "uuid_binary": options.uuid_binary}

    def profile(self, url, tables, *, deep: bool, workers: int, options=None):
        from golive.dialects import mysql_source

        return mysql_source.profile(url, tables, deep=deep, workers=workers, options=options)

    def decide(self, t, c, p, *, parent, target, options, identity: bool):
        from golive.dialects import mysql_source

        return mysql_source.decide(t, c, p, parent=parent, target=target, options=options, identity=identity)

    def read_default(self, t, c):
        from golive.dialects import mysql_source

        return mysql_source.read_default(t, c)

    def identity(self, t):
        col = next((c.name for c in t.columns if c.auto_increment), None)
        return col, (t.identity_next - 1 if col and t.identity_next else None)

    def index_column(self, t, name: str):
        return name

    def index_expressions(self, ix):
        return None  # functional key parts (MySQL 8) are reported: information_schema shows no expression

    def row_key(self, t) -> list[str]:
        from golive.dialects import mysql_source

        return mysql_source.row_key(t) or [c.name for c in t.columns]

    def chunks(self, conn, t, rows: int, chunk_rows: int):
        from golive.dialects import mysql_source

        return mysql_source.chunks(conn, t, rows, chunk_rows)

    def render(self, t, tp, wire, plan) -> tuple[str, str]:
        from golive.dialects import mysql_types as mt

        by_name = {c.name: c for c in t.columns}
        cols, zero = [], {}
        for cp in tp.columns:
            if cp.generated_sql:
                continue
            c = by_name[cp.source]
            cols.append((c, mt.parse_type(c.declared), cp.type))
            if not any("zero dates" in w for w in cp.notes + [cp.reason]) and not _had_zero(plan, t.name, c.name):
                zero[c.name] = "none"
            else:
                zero[c.name] = "null" if cp.nullable else plan.options.get("zero_dates", "null")
                if zero[c.name] == "null" and not cp.nullable:
                    zero[c.name] = "reject"
        opts = _RenderOptions(plan)
        return (mt.line_sql(cols, wire, options=opts, zero_modes=zero),
                mt.line_sql(cols, wire, options=opts, zero_modes=zero, careful=True))

    def plan_objects(self, ctx, schema, selected: set[str]) -> None:
        from golive.migrate.planning import plan_views_and_others

        plan_views_and_others(ctx, schema, selected)

    def snapshot(self, url: DatabaseURL, plan, *, workers: int):
        from golive.dialects import mysql_source

        return mysql_source.snapshot(url, plan, workers=workers)

    def chunk_reader(self, url: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        from golive.dialects.mysql_source import ChunkReader

        return ChunkReader(url, plan, tp, snapshot=snapshot)

    def count_tables(self, url: DatabaseURL, plan, tables: list[str]) -> dict[str, int]:
        from golive.dialects import mysql_source

        conn = mysql_source.connect(url)
        try:
            with conn.cursor() as cur:
                out = {}
                for t in tables:
                    cur.execute(f"SELECT COUNT(*) FROM {qi(t)}")
                    out[t] = cur.fetchone()[0]
                return out
        finally:
            conn.close()

    def connect(self, url: DatabaseURL, *, autocommit: bool = False, local_infile: bool = False,
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


def _had_zero(plan, table: str, column: str) -> bool:
    """Did the profile find zero dates in this column (the planner's warning says so)?"""
    return any(w.startswith(f"{table}.{column}: ") and "zero dates" in w for w in plan.warnings)


class _RenderOptions:
    """The options the renderings read, from a plan (its ``options``) or MigrateOptions."""

    def __init__(self, plan):
        o = plan.options
        self.datetime_as = o.get("datetime_as", "timestamp")
        self.source_time_zone = o.get("source_time_zone", "UTC")
        self.uuid_binary = o.get("uuid_binary", False)


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

"""MySQL / MariaDB: connections and error translation (PyMySQL), shared by every part of golive.

URLs: ``mysql://user[:password]@host[:port]/db`` (also ``mariadb://``), with query options
``unix_socket=/run/mysqld/mysqld.sock``, ``ssl_ca=…``, ``ssl_cert=…``, ``ssl_key=…``,
``ssl_verify_cert=true|false``, ``charset=…`` (default utf8mb4), ``connect_timeout=…``.
"""

from __future__ import annotations

import logging
import re

from golive.dialects.base import Dialect, Wire
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.types import CT, TargetType
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


#: canonical type -> MySQL type (https://mariadb.com/kb/en/data-types/); sizes by stored lengths in ``type_sql``
WRITE_TYPES = {
    CT.BOOLEAN: "TINYINT(1)",
    CT.SMALLINT: "SMALLINT",
    CT.INTEGER: "INT",
    CT.BIGINT: "BIGINT",
    CT.DECIMAL: "DECIMAL(%d,%d)",
    CT.REAL: "FLOAT",
    CT.DOUBLE: "DOUBLE",
    CT.VARCHAR: "VARCHAR(%d)",
    CT.DATE: "DATE",
    CT.TIME: "TIME(6)",
    CT.TIMESTAMP: "DATETIME(6)",
    CT.TIMESTAMP_TZ: "DATETIME(6)",  # in UTC (TIMESTAMP ends in 2038); reported
    CT.INTERVAL: "TIME(6)",  # within ±838:59:59, else rejected
    CT.JSON: "JSON",
    CT.UUID: "CHAR(36)",
    CT.TEXT_ARRAY: "JSON",
    CT.ARRAY: "JSON",
    CT.BITS: "BIT(%d)",
    CT.GEOMETRY: "LONGBLOB",
}

#: the wire MySQL's LOAD DATA reads: numbers for booleans, plain hex (UNHEX on the way in), timestamps as
#: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, arrays as JSON; text may hold NUL bytes
WIRE = Wire(name="mysql", bool_true="1", bool_false="0", binary="hex", timestamps="plain", arrays="json",
            zone_aware=False, nul_in_text=True)

#: the largest value (bytes) each text/blob type holds
_TEXT_SIZES = ((65_535, "TEXT", "BLOB"), (16_777_215, "MEDIUMTEXT", "MEDIUMBLOB"))


class MySQLDialect(Dialect):
    name = "mysql"
    can_read = True
    can_write = True
    wire = WIRE
    #: the planner gives text, JSON and binary columns their longest stored value (MySQL sizes types by it)
    wants_lengths = True
    # https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html (64 characters)
    max_identifier_length = 64
    # https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html: DDL commits implicitly
    transactional_ddl = False
    sqlglot_name = "mysql"
    translates_checks = True
    supports_generated = True

    def quote(self, name: str) -> str:
        return qi(name)

    # ------------------------------------------------------------------ as a target (mysql_target)

    def type_sql(self, t: TargetType) -> str:
        ct = t.ct
        if ct == CT.NATIVE or t.native:
            return t.native or "LONGTEXT"
        if ct == CT.DECIMAL:
            if t.precision and t.precision <= 65:
                return WRITE_TYPES[CT.DECIMAL] % (t.precision, min(t.scale or 0, 30))
            return "DECIMAL(65,30)"
        if ct == CT.VARCHAR:
            n = t.length or 255
            return WRITE_TYPES[CT.VARCHAR] % n if n <= 16_383 else self.type_sql(TargetType(ct=CT.TEXT, length=n * 4))
        if ct in (CT.TEXT, CT.BINARY):
            size = t.length  # the longest stored value in bytes, when the planner measured it
            for limit, text, blob in _TEXT_SIZES:
                if size is not None and size <= limit:
                    return text if ct == CT.TEXT else blob
            return "LONGTEXT" if ct == CT.TEXT else "LONGBLOB"
        if ct == CT.ENUM:
            labels = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "''") + "'" for v in (t.values or []))
            return f"ENUM({labels})" if labels else "VARCHAR(255)"
        if ct == CT.BITS:
            return WRITE_TYPES[CT.BITS] % min(t.length or 1, 64)
        return WRITE_TYPES[ct]

    def render_default(self, d, t: TargetType) -> str | None:
        """The SQL of a neutral default for a column of type ``t`` (MariaDB 10.2+ / MySQL 8.0.13+ take expressions)."""
        ct = t.ct
        if d.kind == "expr":
            return f"({d.sql})" if d.sql and not d.sql.startswith("(") else d.sql
        if d.kind == "uuid":
            return "(UUID())"
        if d.kind == "epoch_now":
            return "(UNIX_TIMESTAMP())"
        if d.kind in ("now", "today", "time_now"):
            if ct in (CT.TEXT, CT.VARCHAR):
                fmt = {"now": "%Y-%m-%d %H:%i:%s", "today": "%Y-%m-%d", "time_now": "%H:%i:%s"}[d.kind]
                return f"(DATE_FORMAT(UTC_TIMESTAMP(), '{fmt}'))"
            if d.kind == "today" or ct == CT.DATE:
                return "(CURRENT_DATE)"
            if d.kind == "time_now" or ct == CT.TIME:
                return "(CURRENT_TIME)"
            m = re.search(r"\((\d)\)", t.native or "")  # the column's own fractional digits (DATETIME(3))
            p = m.group(1) if m else ("0" if t.native else "6")
            return f"CURRENT_TIMESTAMP({p})" if p != "0" else "CURRENT_TIMESTAMP"
        v = d.value
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, bytes):
            return f"0x{v.hex()}" if v else "''"
        if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL, CT.DOUBLE, CT.REAL):
            return str(v)
        text = "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"
        return f"({text})" if ct in (CT.TEXT, CT.JSON, CT.BINARY) else text

    def folds_case(self, url: DatabaseURL) -> bool:
        """Does the server compare table names case-insensitively (lower_case_table_names = 1 or 2)?"""
        try:
            conn = self.connect(url, role="target")
        except GoliveError:
            return False
        try:
            from golive.dialects.mysql_target import folds_case

            return folds_case(conn)
        finally:
            conn.close()

    def adjust_table(self, tp, plan) -> None:
        from golive.dialects.mysql_target import adjust_table

        adjust_table(tp, plan, self)

    def bookkeeping(self, conn):
        from golive.migrate.state import MySQLBookkeeping

        return MySQLBookkeeping(conn)

    def chunk_writer(self, target: DatabaseURL, plan, tp, chunk):
        from golive.dialects.mysql_target import ChunkWriter

        return ChunkWriter(target, plan, tp, chunk)

    def target_steps(self):
        from golive.dialects import mysql_target

        return mysql_target

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

    def profile(self, url, tables, *, deep: bool, workers: int, options=None, lengths: bool = False):
        from golive.dialects import mysql_source

        return mysql_source.profile(url, tables, deep=deep, workers=workers, options=options, lengths=lengths)

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
            if cp.type.native:
                zero[c.name] = "keep"
            elif not any("zero dates" in w for w in cp.notes + [cp.reason]) and not _had_zero(plan, t.name, c.name):
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

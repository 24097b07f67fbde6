"""PostgreSQL as a target: types, identifiers, DDL, bulk-load sessions and error translation.

DDL is rendered by plain functions from plan objects, so it can be tested without a database.
"""

from __future__ import annotations

import logging
import re

from golive.dialects.base import Dialect, Wire
from golive.errors import ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.migrate.plan import ColumnPlan, ForeignKeyPlan, IndexPlan, TablePlan
from golive.types import CT, TargetType
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

#: canonical type -> PostgreSQL type (https://www.postgresql.org/docs/current/datatype.html)
WRITE_TYPES = {
    CT.BOOLEAN: "boolean",
    CT.SMALLINT: "smallint",
    CT.INTEGER: "integer",
    CT.BIGINT: "bigint",
    CT.DECIMAL: "numeric",
    CT.DOUBLE: "double precision",
    CT.TEXT: "text",
    CT.VARCHAR: "varchar(%d)",
    CT.BINARY: "bytea",
    CT.DATE: "date",
    CT.TIME: "time",
    CT.TIMESTAMP_TZ: "timestamptz",
    CT.JSON: "jsonb",
    CT.UUID: "uuid",
    CT.REAL: "real",
    CT.TIMESTAMP: "timestamp",
    CT.INTERVAL: "interval",
    CT.ENUM: "text",  # + a CHECK listing the labels (golive.migrate.planning)
    CT.TEXT_ARRAY: "text[]",
    CT.BITS: "bit varying(%d)",
    CT.GEOMETRY: "bytea",  # WKB; geometry(…) when the target has PostGIS
}

#: how COPY reads the wire format (golive.dialects.base)
WIRE = Wire(name="postgresql")
COPY_OPTIONS = "FORMAT csv, QUOTE '''', NULL 'NULL'"

#: settings for the sessions that bulk-load (per session, nothing global changes)
LOAD_SETTINGS = {
    "synchronous_commit": "off",  # a crash loses at most the last moments; chunks are re-copied on resume
    "TimeZone": "UTC",  # text timestamps without an offset are UTC
    "DateStyle": "ISO, YMD",
    "client_encoding": "UTF8",
    "statement_timeout": "0",
}

#: settings for the sessions that build indexes and constraints
BUILD_SETTINGS = {
    "maintenance_work_mem": "256MB",
    "synchronous_commit": "off",
    "statement_timeout": "0",
}


def qi(name: str) -> str:
    """Quote a PostgreSQL identifier (always: keeps case, reserved words work)."""
    return '"' + name.replace('"', '""') + '"'


def qn(schema: str, name: str) -> str:
    return f"{qi(schema)}.{qi(name)}"


class PostgresDialect(Dialect):
    name = "postgresql"
    can_write = True
    can_read = True
    # https://www.postgresql.org/docs/current/limits.html (NAMEDATALEN - 1)
    max_identifier_length = 63
    transactional_ddl = True
    wire = WIRE
    sqlglot_name = "postgres"
    translates_checks = True
    supports_generated = True

    def quote(self, name: str) -> str:
        return qi(name)

    def qualified(self, schema: str, name: str) -> str:
        return qn(schema, name)

    def type_sql(self, t: TargetType) -> str:
        if t.ct == CT.VARCHAR:
            return WRITE_TYPES[CT.VARCHAR] % (t.length or 1)
        if t.ct == CT.DECIMAL and t.precision:
            return f"numeric({t.precision},{t.scale or 0})"
        if t.ct == CT.BITS:
            return WRITE_TYPES[CT.BITS] % (t.length or 1)
        if t.ct == CT.ARRAY:
            return (self.type_sql(TargetType(ct=t.element)) if t.element else "text") + "[]"
        if t.ct == CT.NATIVE:
            return t.native or "text"
        if t.ct == CT.GEOMETRY and t.native:
            return t.native  # geometry(…) when PostGIS is installed (decided by the planner)
        return WRITE_TYPES[t.ct]

    def render_default(self, d, t: TargetType) -> str | None:
        """The SQL of a neutral default (``golive.migrate.defaults.Default``) for a column of type ``t``."""
        ct = t.ct
        if d.kind == "expr":
            return d.sql
        if d.kind == "uuid":
            return "gen_random_uuid()"
        if d.kind == "epoch_now":
            return "(extract(epoch from now()))::bigint"
        if d.kind in ("now", "today", "time_now"):
            if ct in (CT.TEXT, CT.VARCHAR):  # SQLite's text form, in UTC
                fmt = {"now": "YYYY-MM-DD HH24:MI:SS", "today": "YYYY-MM-DD", "time_now": "HH24:MI:SS"}[d.kind]
                return f"to_char(now() AT TIME ZONE 'UTC', '{fmt}')"
            if d.kind == "today" or ct == CT.DATE:
                return "CURRENT_DATE"
            if d.kind == "time_now" or ct == CT.TIME:
                return "LOCALTIME"
            return "CURRENT_TIMESTAMP"
        v = d.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, bytes):
            return "'\\x" + (d.sql or v.hex()) + "'::bytea"
        if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL, CT.DOUBLE, CT.REAL):
            return str(v)
        text = "'" + str(v).replace("'", "''") + "'"
        if ct == CT.JSON:
            return text + "::jsonb"
        return text

    # ------------------------------------------------------------------ the target's steps (postgresql_target)

    def bookkeeping(self, conn):
        from golive.migrate.state import Bookkeeping

        return Bookkeeping(conn)

    def chunk_writer(self, target: DatabaseURL, plan, tp: TablePlan, chunk):
        from golive.dialects.postgresql_target import ChunkWriter

        return ChunkWriter(target, plan, tp, chunk)

    def target_steps(self):
        from golive.dialects import postgresql_target

        return postgresql_target

    # ------------------------------------------------------------------ the source's side (postgresql_source)

    def chunk_reader(self, source: DatabaseURL, plan, tp: TablePlan, *, snapshot: str | None = None):
        from golive.dialects.postgresql_source import ChunkReader

        return ChunkReader(source, plan, tp, snapshot=snapshot)

    def check(self, url: DatabaseURL) -> None:
        url.libpq()  # a PostgreSQL URL

    def introspect(self, conn, url: DatabaseURL | None = None, options=None):
        from golive.dialects import postgresql_source as ps

        self._url = url
        return ps.introspect(conn, url, options)

    def fingerprint(self, url: DatabaseURL) -> str:
        return ""  # resume compares the committed chunks' digests instead (copy.verify_committed)

    def changed_since(self, url: DatabaseURL, plan, stored: dict) -> str | None:
        from golive.migrate.copy import verify_committed

        return verify_committed(url, plan, stored.get("chunks") or {})

    def consistency(self, url: DatabaseURL, conn, options) -> str:
        if options.snapshot == "none":
            return "none: each chunk reads its own moment (--snapshot none): the source must be quiet during the copy"
        return "snapshot: every reader starts in one exported snapshot (pg_export_snapshot); the app may keep writing"

    def copy_options(self, options) -> dict:
        from golive.dialects.postgresql_source import schemas_of

        return {"snapshot": options.snapshot, "source_schemas": schemas_of(options)}

    def profile(self, url, tables, *, deep: bool, workers: int, options=None, lengths: bool = False):
        from golive.dialects import postgresql_source as ps

        return ps.profile(url, tables, deep=deep, workers=workers, options=options, lengths=lengths)

    def decide(self, t, c, p, *, parent, target, options, identity: bool):
        from golive.dialects import postgresql_source as ps

        return ps.decide(t, c, p, parent=parent, target=target, options=options, identity=identity)

    def read_default(self, t, c):
        from golive.migrate.defaults import Default

        if c.default is None:
            return None, None
        if re.match(r"nextval\(", c.default):
            return None, None  # a sequence: the target's identity (or its own sequence) takes over
        return Default("expr", sql=c.default), None

    def identity(self, t):
        col = next((c.name for c in t.columns if c.auto_increment), None)
        return col, (t.identity_next - 1 if col and t.identity_next else None)

    def index_column(self, t, name: str):
        return name

    def index_expressions(self, ix):
        from golive.dialects import postgresql_source as ps

        return ps.index_expressions(ix)

    def row_key(self, t) -> list[str]:
        from golive.dialects import postgresql_source as ps

        return ps.row_key(t) or [c.name for c in t.columns]

    def chunks(self, conn, t, rows: int, chunk_rows: int):
        from golive.dialects import postgresql_source as ps

        return ps.chunks(conn, t, rows, chunk_rows)

    def render(self, t, tp, wire, plan) -> tuple[str, str]:
        from golive.dialects import postgresql_source as ps

        return ps.render(t, tp, wire, plan)

    def plan_objects(self, ctx, schema, selected: set[str]) -> None:
        from golive.dialects import postgresql_source as ps

        ps.plan_objects(ctx, schema, selected)

    def snapshot(self, url: DatabaseURL, plan, *, workers: int):
        from golive.dialects import postgresql_source as ps

        return ps.snapshot(url, plan, workers=workers)

    def final_statements(self, url: DatabaseURL, plan) -> list[str]:
        from golive.dialects import postgresql_source as ps

        return ps.final_statements(url, plan)

    def count_tables(self, url: DatabaseURL, plan, tables: list[str]) -> dict[str, int]:
        from golive.dialects import postgresql_source as ps

        by = {t.source: t for t in plan.tables} if plan is not None else {}
        with ps.connect(url) as conn:
            out = {}
            for name in tables:
                tp = by.get(name)
                rel = qn(tp.source_schema or "public", tp.source_name or tp.source) if tp else qi(name)
                out[name] = conn.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
            return out

    # ------------------------------------------------------------------ connections

    def connect(self, url: DatabaseURL, *, autocommit: bool = False, settings: dict | None = None,
                role: str = "target"):
        """Connect with psycopg 3; any failure becomes a one-line ``ConnectionFailed``."""
        import psycopg

        kwargs = {"autocommit": autocommit, "application_name": "golive"}
        if "connect_timeout" not in url.query:
            kwargs["connect_timeout"] = 10
        try:
            conn = psycopg.connect(url.libpq(), **kwargs)
        except psycopg.OperationalError as exc:
            raise connection_error(exc, url, role) from None
        if settings:
            with conn.cursor() as cur:
                for k, v in settings.items():
                    cur.execute(f"SELECT set_config('{k}', %s, false)", (v,))
            if not autocommit:
                conn.commit()
        return conn

    # ------------------------------------------------------------------ DDL

    def column_sql(self, c: ColumnPlan) -> str:
        parts = [qi(c.target), c.sql_type]
        if c.identity:
            parts.append("GENERATED BY DEFAULT AS IDENTITY")
        elif c.generated_sql:
            parts.append(f"GENERATED ALWAYS AS ({c.generated_sql}) STORED")
        elif c.default_sql is not None:
            parts.append(f"DEFAULT {c.default_sql}")
        if not c.nullable or c.identity:
            parts.append("NOT NULL")
        return " ".join(parts)

    def create_table_sql(self, schema: str, t: TablePlan) -> str:
        """CREATE TABLE without keys or indexes (those come after the data: faster, and rejects stay rows)."""
        cols = ",\n  ".join(self.column_sql(c) for c in t.columns)
        return f"CREATE TABLE {qn(schema, t.target)} (\n  {cols}\n)"

    def index_sql(self, schema: str, table: str, ix: IndexPlan) -> str:
        if ix.definition_sql:
            return ix.definition_sql
        if ix.expression_sql is not None:
            cols = ix.expression_sql
        else:
            cols = ", ".join(qi(c) + (" DESC" if i < len(ix.descending) and ix.descending[i] else "")
                             for i, c in enumerate(ix.columns))
        if ix.kind == "primary":
            return f"ALTER TABLE {qn(schema, table)} ADD CONSTRAINT {qi(ix.name)} PRIMARY KEY ({cols})"
        if ix.kind == "unique" and ix.constraint and ix.where is None and ix.expression_sql is None:
            return f"ALTER TABLE {qn(schema, table)} ADD CONSTRAINT {qi(ix.name)} UNIQUE ({cols})"
        unique = "UNIQUE " if ix.kind == "unique" else ""
        where = f" WHERE {ix.where}" if ix.where else ""
        return f"CREATE {unique}INDEX {qi(ix.name)} ON {qn(schema, table)} ({cols}){where}"

    def foreign_key_sql(self, schema: str, fk: ForeignKeyPlan, *, not_valid: bool = False) -> str:
        if fk.definition_sql:
            return (f"ALTER TABLE {qn(schema, fk.table)} ADD CONSTRAINT {qi(fk.name)} {fk.definition_sql}"
                    + (" NOT VALID" if not_valid and "NOT VALID" not in fk.definition_sql.upper() else ""))
        sql = (f"ALTER TABLE {qn(schema, fk.table)} ADD CONSTRAINT {qi(fk.name)} FOREIGN KEY "
               f"({', '.join(map(qi, fk.columns))}) REFERENCES {qn(fk.ref_schema or schema, fk.ref_table)} "
               f"({', '.join(map(qi, fk.ref_columns))})")
        if fk.on_delete.upper() != "NO ACTION":
            sql += f" ON DELETE {fk.on_delete.upper()}"
        if fk.on_update.upper() != "NO ACTION":
            sql += f" ON UPDATE {fk.on_update.upper()}"
        if fk.deferrable:
            sql += " DEFERRABLE INITIALLY DEFERRED"
        if not_valid:
            sql += " NOT VALID"
        return sql

    def copy_sql(self, schema: str, t: TablePlan, *, binary: bool = False) -> str:
        cols = ", ".join(qi(c.target) for c in t.columns if not c.generated_sql)
        return f"COPY {qn(schema, t.target)} ({cols}) FROM STDIN ({'FORMAT binary' if binary else COPY_OPTIONS})"


# ---------------------------------------------------------------------- errors

_CONN_PATTERNS = [
    (r"password authentication failed for user \"?([^\"]+)\"?", "password authentication failed for user {0}"),
    (r"no password supplied", "the server asks for a password and none was given (add it to the URL or set PGPASSWORD)"),
    (r"role \"([^\"]+)\" does not exist", "role {0} does not exist"),
    (r"database \"([^\"]+)\" does not exist", "database {0} does not exist (create it first, e.g. createdb {0})"),
    (r"could not translate host name \"([^\"]+)\"", "unknown host {0}"),
    (r"Name or service not known|nodename nor servname|failed to resolve host", "unknown host"),
    (r"Connection refused", "connection refused: is PostgreSQL running there and listening on that port?"),
    (r"timeout expired|timed out", "timed out: the host does not answer (firewall, wrong host or port?)"),
    (r"No route to host|Network is unreachable", "host unreachable"),
    (r"SSL", "SSL negotiation failed"),
]


def connection_error(exc: Exception, url: DatabaseURL, role: str) -> GoliveError:
    """A one-line, password-free message for a failed connection."""
    text = str(exc)
    where = f"{url.host or 'local socket'}:{url.port or 5432}"
    for pattern, msg in _CONN_PATTERNS:
        m = re.search(pattern, text, re.I)
        if m:
            detail = msg.format(*m.groups()) if m.groups() else msg
            err_cls = TransientError if "timed out" in detail else ConnectionFailed
            err = ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): {detail}")
            if err_cls is TransientError:
                err.context["transient"] = True
            return err
    first = mask(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    return ConnectionFailed(f"cannot connect to {role} {url.masked} ({where}): {first}")


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

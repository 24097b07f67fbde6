"""What a release needs of PostgreSQL: the pre-check's catalog reads, which DDL locks or rewrites a table, golive's
journal and history tables (schema ``_golive``), and how Prisma and Alembic meet PostgreSQL."""

from __future__ import annotations

import json
import re

from golive.dialects.postgresql.session import libpq
from golive.dialects.base import Release
from golive.model.release import (Check, Hit, LongTransaction, Rule, ServerInfo, SqlSyntax, TableInfo, TableKey, fail,
                                  ok, warn)
from golive.urls import DatabaseURL

#: golive's own tables live in a schema of their own
GOLIVE_SCHEMA = "_golive"

#: statements PostgreSQL refuses inside a transaction block
#: (https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY, VACUUM, …)
NON_TRANSACTIONAL = re.compile(r"\b(CONCURRENTLY|VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|"
                               r"CREATE\s+TABLESPACE|DROP\s+TABLESPACE)\b", re.I)

#: Prisma Migrate's advisory lock on PostgreSQL (its schema engine takes ``pg_advisory_lock(72707369)``)
PRISMA_LOCK = 72707369

# https://www.postgresql.org/docs/current/explicit-locking.html: which ALTER TABLE forms take ACCESS EXCLUSIVE,
# and https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES: which rewrite the table
RULES = (
    Rule("index-not-concurrent", "size",
         "CREATE INDEX without CONCURRENTLY blocks every write to {table} for the whole build",
         "CREATE INDEX CONCURRENTLY (golive runs a migration holding it outside a transaction)"),
    Rule("volatile-default", "size",
         "ADD COLUMN {detail} rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock",
         "add the column without a default (or with a constant one), backfill in batches, then SET DEFAULT",
         rewrites=True),
    Rule("set-not-null", "size",
         "SET NOT NULL on {detail} reads every row of {table} under an ACCESS EXCLUSIVE lock",
         "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT; then SET NOT NULL "
         "(PostgreSQL 12+ skips the scan)"),
    Rule("alter-type-rewrite", "size",
         "ALTER COLUMN {detail} rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock",
         "add a new column, backfill it in batches, switch the app over, drop the old column later", rewrites=True),
    Rule("constraint-not-valid", "size",
         "ADD {detail} without NOT VALID checks every row of {table} while holding its lock",
         "ADD … NOT VALID now, VALIDATE CONSTRAINT in a later step (it does not block writes)"),
    Rule("unique-constraint-index", "size",
         "ADD {detail} builds its index under an ACCESS EXCLUSIVE lock on {table}",
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX"),
)

_CONSTRAINT_KINDS = ("FOREIGN", "CHECK", "UNIQUE", "PRIMARY", "EXCLUDE", "CONSTRAINT", "INDEX", "KEY", "FULLTEXT",
                     "SPATIAL")
_VOLATILE = re.compile(r"\b(random|gen_random_uuid|uuid_generate_v[14]m?c?|clock_timestamp|timeofday|nextval|"
                       r"txid_current|gen_random_bytes|uuid)\s*\(", re.I)
_SERIAL = re.compile(r"^\s*(small|big)?serial\b", re.I)
_ALIASES = {"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
            "float8": "double precision", "float4": "real", "timestamptz": "timestamp with time zone",
            "timestamp": "timestamp without time zone", "varchar": "character varying", "char": "character",
            "decimal": "numeric", "time": "time without time zone", "timetz": "time with time zone"}

_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
_NOT_EXT = ("NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND "
            "e.deptype = 'e')")
#: the schema as rows: every relation, its columns (types, NOT NULL, defaults), constraints, indexes (the same rows
#: the backup's schema fingerprint hashes)
_SCHEMA_SQL = f"""
SELECT n.nspname, c.relname, c.relkind::text,
  coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END, ', ' ORDER BY a.attnum)
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
  coalesce((SELECT string_agg(x.conname || ' ' || pg_get_constraintdef(x.oid), ', ' ORDER BY x.conname COLLATE "C")
     FROM pg_constraint x WHERE x.conrelid = c.oid), ''),
  coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid) COLLATE "C")
     FROM pg_index i WHERE i.indrelid = c.oid), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_SYSTEM} AND {_NOT_EXT}
"""


def _rollback(conn) -> None:
    try:  # a no-op on an autocommit session
        conn.rollback()
    except Exception:  # noqa: BLE001
        pass


class PostgresRelease(Release):
    """Releases on PostgreSQL: DDL is transactional, so a migration runs in one transaction unless it holds a
    statement PostgreSQL refuses in one."""

    # https://www.postgresql.org/docs/current/sql-syntax-lexical.html: dollar quoting, unquoted names fold to lower case
    syntax = SqlSyntax(dollar_quotes=True, folds_unquoted=True)
    journal_table = (GOLIVE_SCHEMA, "releases")
    history_table = (GOLIVE_SCHEMA, "migrations")
    journal_ddl = (
        f"CREATE SCHEMA IF NOT EXISTS {GOLIVE_SCHEMA}",
        f"""CREATE TABLE IF NOT EXISTS {GOLIVE_SCHEMA}.releases (
        id text PRIMARY KEY, started_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        finished_at timestamptz, state text NOT NULL, step text NOT NULL, detail text,
        kind text NOT NULL, source text NOT NULL, pending jsonb NOT NULL DEFAULT '[]',
        applied jsonb NOT NULL DEFAULT '[]', backup_to text, backup_url text, host text, pid integer,
        golive_version text, statement text, report jsonb)""",
    )
    history_ddl = (
        f"CREATE SCHEMA IF NOT EXISTS {GOLIVE_SCHEMA}",
        f"CREATE TABLE IF NOT EXISTS {GOLIVE_SCHEMA}.migrations (kind text NOT NULL, version text NOT NULL, "
        "name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
        "execution_ms integer, success boolean NOT NULL, release_id text, "
        "installed_by text NOT NULL DEFAULT current_user, PRIMARY KEY (kind, version))",
    )
    # https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT
    runs_whole_scripts = True
    lint_rules = RULES
    prisma_provider = "postgresql"
    # as Prisma's schema engine creates it (sql_schema_connector, postgres flavour)
    prisma_table_ddl = """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
"""

    # ------------------------------------------------------------ the pre-check

    def server_info(self, conn) -> ServerInfo:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
                        "current_database(), current_user, current_schema(), pg_database_size(current_database()), "
                        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")
            v, num, db, user, schema, size, superuser = cur.fetchone()
        return ServerInfo(product="PostgreSQL", version=v, version_num=num, database=db, user=user,
                          schema_name=schema or "public", bytes=int(size), superuser=bool(superuser))

    def server_version(self, info: ServerInfo) -> Check:
        v, num = info.version, info.version_num
        if num < 110000:
            return warn("server-version", f"PostgreSQL {v}: before 11, ADD COLUMN with any default rewrites the table")
        if num < 120000:
            return warn("server-version", f"PostgreSQL {v}: before 12, REINDEX CONCURRENTLY and SET NOT NULL via a "
                                          "validated CHECK are not available")
        return ok("server-version", f"PostgreSQL {v}")

    def table_info(self, conn, tables: list[TableKey]) -> dict[TableKey, TableInfo]:
        out: dict = {}
        with conn.cursor() as cur:
            for schema, name in dict.fromkeys(tables):
                cur.execute("SELECT pg_total_relation_size(c.oid), c.reltuples::bigint FROM pg_class c JOIN "
                            "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s AND "
                            "c.relkind IN ('r', 'p')", (schema, name))
                row = cur.fetchone()
                if not row:
                    continue
                q = self.dialect.qualified(schema, name)
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {q})")
                has = bool(cur.fetchone()[0])
                rows = int(row[1]) if row[1] is not None and row[1] >= 0 else -1
                if rows < 0:  # never analyzed: count, up to a million
                    cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {q} LIMIT 1000000) s")
                    rows = int(cur.fetchone()[0])
                out[(schema, name)] = TableInfo(schema_name=schema, name=name, bytes=int(row[0]), rows=rows, has_rows=has)
        return out

    def table_exists(self, conn, schema: str | None, name: str) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.dialect.qualified(schema, name),))
            return bool(cur.fetchone()[0])

    def column_type(self, conn, schema: str | None, table: str, column: str) -> str | None:
        with conn.cursor() as cur:
            cur.execute("SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = "
                        "to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
                        (self.dialect.qualified(schema, table), column))
            row = cur.fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def current_schema(self, conn) -> str | None:
        return conn.execute("SELECT current_schema()").fetchone()[0] or "public"

    def list_tables(self, conn) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind = 'r' AND n.nspname = current_schema()")
            return [str(r[0]) for r in cur.fetchall()]

    def extensions(self, conn, wanted: list[str]) -> Check | None:
        if not wanted:
            return None
        with conn.cursor() as cur:
            cur.execute("SELECT name, installed_version FROM pg_available_extensions WHERE name = ANY(%s)", (wanted,))
            found = {r[0]: r[1] for r in cur.fetchall()}
        missing = [e for e in wanted if e not in found]
        if missing:
            return fail("extensions", f"the migrations create extension(s) {', '.join(missing)}, which this server does "
                                      "not have (install the package on the server first)")
        return ok("extensions", "; ".join(f"{e} {'installed ' + found[e] if found[e] else 'available'}" for e in wanted))

    def privileges(self, conn, info: ServerInfo, tables: list[TableKey]) -> list[Check]:
        if info.superuser:
            return [ok("privileges", f"{info.user} is a superuser")]
        with conn.cursor() as cur:
            cur.execute("SELECT has_database_privilege(current_database(), 'CREATE'), "
                        "has_schema_privilege(current_schema(), 'CREATE')")
            db_create, schema_create = cur.fetchone()
            names = [f"{s}.{t}" for s, t in tables]
            cur.execute("SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN "
                        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname || '.' || c.relname = ANY(%s) AND NOT "
                        "pg_has_role(current_user, c.relowner, 'USAGE')", (names,))
            not_owned = cur.fetchall()
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND "
                        "nspname NOT LIKE 'pg\\_%' AND NOT pg_has_role(current_user, nspowner, 'USAGE')")
            other_schemas = [r[0] for r in cur.fetchall()]
        out, problems = [], []
        if not schema_create:
            problems.append(f"no CREATE on schema {info.schema_name}")
        if not_owned:
            problems.append("ALTER needs the owner: " + ", ".join(f"{t} (owned by {o})" for t, o in not_owned))
        if problems:
            out.append(fail("privileges", f"{info.user}: " + "; ".join(problems)))
        else:
            out.append(ok("privileges", f"{info.user} may create in {info.schema_name} and owns the {len(tables)} "
                                        "table(s) the migrations change"
                          + ("" if db_create else f" (no CREATE on the database: the {GOLIVE_SCHEMA} schema must exist)")))
        if other_schemas:
            out.append(warn("privileges", f"a rollback by restore drops every schema; {info.user} does not own "
                                          f"{', '.join(other_schemas)}"))
        return out

    def long_transactions(self, conn, threshold_s: float) -> list[LongTransaction]:
        with conn.cursor() as cur:
            cur.execute("SELECT a.pid, a.usename, a.application_name, a.state, "
                        "extract(epoch FROM now() - a.xact_start)::float8, left(a.query, 120), "
                        "(SELECT array_agg(DISTINCT n.nspname || '.' || c.relname) FROM pg_locks l JOIN pg_class c ON "
                        "c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = a.pid AND "
                        "l.granted) FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> "
                        "pg_backend_pid() AND a.xact_start IS NOT NULL AND a.backend_type = 'client backend' AND "
                        "now() - a.xact_start > make_interval(secs => %s) ORDER BY a.xact_start", (threshold_s,))
            return [LongTransaction(session=r[0], name=f"pid {r[0]}", who=f"{r[1]}/{r[2] or '-'} {r[3]}", seconds=r[4],
                                    query=r[5] or "", tables=set(r[6] or [])) for r in cur.fetchall()]

    def data_directory(self, conn) -> str | None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_setting('data_directory')")
                return str(cur.fetchone()[0])
        except Exception:  # noqa: BLE001 - needs superuser or pg_read_all_settings
            _rollback(conn)
            return None

    # ------------------------------------------------------------ the lint

    def index_hits(self, table: TableKey, *, concurrently: bool) -> list[Hit]:
        return [] if concurrently else [Hit("index-not-concurrent", table)]

    def alter_hits(self, action: str, table: TableKey, statement: str, facts) -> list[Hit]:
        a = action.strip()
        up = a.upper()
        if re.match(r"^RENAME\s+TO\s+", up):
            return [Hit("rename", table, f"TABLE {table[1]} TO {a.split(None, 2)[2]}")]
        m = re.match(r"^RENAME\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)(\S+)\s+TO\s+(\S+)", a, re.I)
        if m:
            return [Hit("rename", table, f"COLUMN {m.group(1)} TO {m.group(2)}")]
        m = re.match(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?(FOREIGN\s+KEY|CHECK|UNIQUE|PRIMARY\s+KEY|EXCLUDE)\b", up)
        if m:
            kind = re.sub(r"\s+", " ", m.group(1))
            if kind in ("FOREIGN KEY", "CHECK") and "NOT VALID" not in up:
                return [Hit("constraint-not-valid", table, kind)]
            if kind in ("UNIQUE", "PRIMARY KEY", "EXCLUDE") and "USING INDEX" not in up:
                return [Hit("unique-constraint-index", table, kind)]
            return []
        m = re.match(r"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s+(.*)$", a, re.I | re.S)
        if m and m.group(1).upper() not in _CONSTRAINT_KINDS:
            return self._add_column(m.group(1), m.group(2), table, facts)
        m = re.match(r"^ALTER\s+(?:COLUMN\s+)?(\S+)\s+SET\s+NOT\s+NULL", a, re.I)
        if m:
            return [Hit("set-not-null", table, m.group(1))]
        m = re.match(r"^ALTER\s+(?:COLUMN\s+)?(\S+)\s+(?:SET\s+DATA\s+)?TYPE\s+(.+?)(?:\s+(?:USING|COLLATE)\b.*)?$", a,
                     re.I | re.S)
        if m:
            old = facts.coltype(table, facts.column(m.group(1)))
            new = m.group(2).strip()
            if old is not None and _safe_type_change(old, new):
                return []
            return [Hit("alter-type-rewrite", table, f"{m.group(1)} TYPE {new}" + (f" (now {old})" if old else ""))]
        m = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)", a, re.I)
        if m and m.group(1).upper() not in ("CONSTRAINT", "DEFAULT", "NOT", "IDENTITY", "EXPRESSION"):
            return [Hit("drop-column", table, m.group(1))]
        return []

    @staticmethod
    def _add_column(column: str, rest: str, table: TableKey, facts) -> list[Hit]:
        """ADD COLUMN: a constant default is metadata only since PostgreSQL 11; anything volatile rewrites."""
        dm = re.search(r"\bDEFAULT\s+(.+?)(?:\s+(?:NOT\s+NULL|NULL|CONSTRAINT|CHECK|REFERENCES|UNIQUE|PRIMARY|GENERATED|"
                       r"COLLATE)\b.*)?$", rest, re.I | re.S)
        if _SERIAL.match(rest):
            return [Hit("volatile-default", table, f"{column} {rest.split()[0]} (a sequence default)")]
        if dm and _VOLATILE.search(dm.group(1)):
            return [Hit("volatile-default", table, f"{column} with the volatile default {dm.group(1).strip()}")]
        if dm and facts.version_num and facts.version_num < 110000:
            return [Hit("volatile-default", table, f"{column} with a default (before PostgreSQL 11 any default)")]
        if re.search(r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*STORED", rest, re.I | re.S):
            return [Hit("volatile-default", table, f"{column} as a stored generated column")]
        return []

    def estimate_rows(self, conn, sql: str) -> int | None:
        try:
            with conn.cursor() as cur:
                cur.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cur.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            return _max_rows(plan[0]["Plan"])
        except Exception:  # noqa: BLE001 - a column or table a pending migration creates first
            _rollback(conn)
            return None

    def lock_timeout_setting(self, seconds: float) -> str:
        return f"lock_timeout = {seconds:g} s"

    def needs_autocommit(self, statement: str) -> bool:
        return NON_TRANSACTIONAL.search(statement) is not None

    def script_is_atomic(self, statements: list[str]) -> bool:
        """A multi-statement simple query runs in one implicit transaction, unless it manages its own; CONCURRENTLY
        refuses to run in one (as the only statement it runs alone)."""
        own = any(re.match(r"^(BEGIN|COMMIT|START TRANSACTION|END|ROLLBACK)\b", s) for s in statements)
        concurrently = any("CONCURRENTLY" in s for s in statements)
        return not own and not (concurrently and len(statements) > 1)

    # ------------------------------------------------------------ golive's tables

    def record_migration(self, conn, kind: str, version: str, name: str, checksum: str, *, success: bool,
                         release_id: str, applied_at, execution_ms: int | None) -> None:
        table = self.dialect.qualified(*self.history_table)
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (kind, version, name, checksum, applied_at, execution_ms, success, "
                        "release_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kind, version) DO UPDATE SET "
                        "name = EXCLUDED.name, checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at, "
                        "execution_ms = EXCLUDED.execution_ms, success = EXCLUDED.success, "
                        "release_id = EXCLUDED.release_id",
                        (kind, version, name, checksum, applied_at, execution_ms, success, release_id))

    def schema_rows(self, conn, bookkeeping: tuple[str, ...]) -> list[tuple]:
        rows = sorted(tuple(r) for r in conn.execute(_SCHEMA_SQL).fetchall())
        return [r for r in rows if r[0] != GOLIVE_SCHEMA and not str(r[1]).startswith(bookkeeping)]

    # ------------------------------------------------------------ migration tools

    def try_prisma_lock(self, conn) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (PRISMA_LOCK,))
            return bool(cur.fetchone()[0])

    def sqlalchemy_url(self, url: DatabaseURL) -> str:
        # psycopg 3 is golive's PostgreSQL driver, so SQLAlchemy gets it too
        return "postgresql+psycopg://" + libpq(url).split("://", 1)[1]

    def alembic_session(self, dbapi_conn, *, lock_timeout_ms: int, statement_timeout_ms: int) -> None:
        # psycopg and psycopg2 alike: set_config outside any transaction, then the connection as env.py made it
        prev = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        cur = dbapi_conn.cursor()
        cur.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false), "
                    "set_config('application_name', 'golive-release-alembic', false)",
                    (f"{lock_timeout_ms}ms", f"{statement_timeout_ms or 0}ms"))
        try:  # the server stops a statement whose client is gone
            cur.execute("SELECT set_config('client_connection_check_interval', '1s', false)")
        except Exception:  # noqa: BLE001 - before PostgreSQL 14
            pass
        cur.close()
        dbapi_conn.autocommit = prev


def _max_rows(node: dict) -> int:
    return max([int(node.get("Plan Rows", 0))] + [_max_rows(c) for c in node.get("Plans", [])])


def _norm(t: str) -> tuple[str, list[int]]:
    t = re.sub(r"\s+", " ", t.strip().lower().strip('"'))
    m = re.match(r"^([a-z ]+?)\s*(?:\(([\d ,]+)\))?(\s*\[\])?$", t)
    if not m:
        return t, []
    base = _ALIASES.get(m.group(1).strip(), m.group(1).strip())
    args = [int(x) for x in (m.group(2) or "").replace(" ", "").split(",") if x]
    return base + (m.group(3) or ""), args


def _safe_type_change(old: str, new: str) -> bool:
    """Changes PostgreSQL makes without rewriting the table (binary-coercible or wider limits)."""
    (ob, oa), (nb, na) = _norm(old), _norm(new)
    if (ob, oa) == (nb, na):
        return True
    if ob == "character varying" and nb == "text":
        return True
    if ob in ("character varying", "text") and nb == "character varying" and not na:
        return True
    if ob == nb == "character varying" and oa and na and na[0] >= oa[0]:
        return True
    if ob == nb == "numeric" and (not na or (oa and na[0] >= oa[0] and (na[1:] or [0]) == (oa[1:] or [0]))):
        return True
    return ob == "cidr" and nb == "inet"

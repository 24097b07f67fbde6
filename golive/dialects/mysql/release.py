"""What a release needs of MySQL/MariaDB: the pre-check's catalog reads (SHOW GRANTS, InnoDB transactions,
metadata locks), which ALTER TABLE forms copy a table, golive's journal and history tables (``_golive_*``), and
how Prisma and Alembic meet MySQL. DDL commits on its own here, so a migration runs statement by statement."""

from __future__ import annotations

import datetime as dt
import re

from golive.dialects.base import Release
from golive.dialects.mysql.session import sqlalchemy_url
from golive.model.release import (Check, Hit, LongTransaction, Rule, ServerInfo, SqlSyntax, TableInfo, TableKey, fail,
                                  ok, text_of, utc)
from golive.urls import DatabaseURL

#: what the migrations and a rollback by restore need on the database
DDL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES")

#: Prisma Migrate's lock on MySQL (its schema engine takes ``GET_LOCK('prisma_migrate', …)``)
PRISMA_LOCK = "prisma_migrate"

# https://dev.mysql.com/doc/refman/8.0/en/innodb-online-ddl-operations.html: which ALTER TABLE forms are INSTANT or
# INPLACE, and which copy the table (blocking its writes)
RULES = (
    Rule("mysql-copy-alter", "size",
         "{detail}: not possible INSTANT or INPLACE, so ALGORITHM=COPY rebuilds {table} and blocks its writes",
         "add ALGORITHM=INPLACE, LOCK=NONE (the server then refuses instead of copying), or use an online schema "
         "change tool (gh-ost, pt-online-schema-change)", rewrites=True),
    Rule("mysql-enum-reorder", "rows",
         "{detail}: an ENUM changed other than by appending values rebuilds {table} (COPY), and values removed from "
         "the list turn stored ones into ''",
         "only append new values at the end of the list", rewrites=True),
)

_COL_END = re.compile(r"\s+(NOT|NULL|DEFAULT|AUTO_INCREMENT|COMMENT|COLLATE|CHARACTER|CHARSET|FIRST|AFTER|PRIMARY|"
                      r"UNIQUE|KEY|ON|GENERATED|AS|REFERENCES|CHECK|INVISIBLE|VISIBLE|UNSIGNED|ZEROFILL|SIGNED)\b.*$",
                      re.I | re.S)

#: the schema as rows, one query per kind of object (the same rows the backup's schema fingerprint hashes)
_SCHEMA_QUERIES = [
    "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
    "CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE "
    "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()",
    "SELECT r.TABLE_NAME, r.CONSTRAINT_NAME, r.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE, k.COLUMN_NAME, "
    "k.REFERENCED_COLUMN_NAME, k.ORDINAL_POSITION FROM information_schema.REFERENTIAL_CONSTRAINTS r "
    "JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND "
    "k.CONSTRAINT_NAME = r.CONSTRAINT_NAME AND k.TABLE_NAME = r.TABLE_NAME WHERE r.CONSTRAINT_SCHEMA = DATABASE()",
    "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()",
    "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION FROM information_schema.TRIGGERS "
    "WHERE TRIGGER_SCHEMA = DATABASE()",
    "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()",
]


class MySQLRelease(Release):
    """Releases on MySQL/MariaDB: every DDL statement commits on its own (no transactional DDL), lock waits are
    ``lock_wait_timeout`` / ``innodb_lock_wait_timeout`` in whole seconds."""

    # https://dev.mysql.com/doc/refman/8.0/en/comments.html, /string-literals.html; the mysql client's DELIMITER
    syntax = SqlSyntax(hash_comments=True, backslash_escapes=True, delimiter_directive=True)
    # no schemas: golive's tables sit in the database, prefixed
    journal_table = (None, "_golive_releases")
    history_table = (None, "_golive_migrations")
    journal_ddl = (
        """CREATE TABLE IF NOT EXISTS _golive_releases (
        id VARCHAR(64) NOT NULL PRIMARY KEY, started_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL,
        finished_at DATETIME(6) NULL, state VARCHAR(32) NOT NULL, step VARCHAR(64) NOT NULL, detail TEXT,
        kind VARCHAR(16) NOT NULL, source TEXT NOT NULL, pending LONGTEXT NOT NULL, applied LONGTEXT NOT NULL,
        backup_to TEXT, backup_url TEXT, host VARCHAR(255), pid INT, golive_version VARCHAR(32), statement TEXT,
        report LONGTEXT) DEFAULT CHARACTER SET utf8mb4""",
    )
    history_ddl = (
        "CREATE TABLE IF NOT EXISTS _golive_migrations (kind VARCHAR(16) NOT NULL, version VARCHAR(191) NOT NULL, "
        "name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL, applied_at DATETIME(6) NOT NULL, "
        "execution_ms INT, success BOOLEAN NOT NULL, release_id VARCHAR(64), installed_by VARCHAR(255) NOT NULL "
        "DEFAULT '', PRIMARY KEY (kind, version)) DEFAULT CHARACTER SET utf8mb4",
    )
    lint_rules = RULES
    prisma_provider = "mysql"
    # as Prisma's schema engine creates it (sql_schema_connector, mysql flavour)
    prisma_table_ddl = """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
"""

    # ------------------------------------------------------------ the pre-check

    def server_info(self, conn) -> ServerInfo:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), DATABASE(), CURRENT_USER(), (SELECT COALESCE(SUM(DATA_LENGTH + "
                        "INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE())")
            v, db, user, size = cur.fetchone()
        v = text_of(v)
        return ServerInfo(product="MariaDB" if "mariadb" in v.lower() else "MySQL", version=v, database=text_of(db),
                          user=text_of(user), bytes=int(size or 0))

    def server_version(self, info: ServerInfo) -> Check:
        return ok("server-version", f"{info.product} {info.version.split('-')[0]}")

    def table_info(self, conn, tables: list[TableKey]) -> dict[TableKey, TableInfo]:
        out: dict = {}
        with conn.cursor() as cur:
            for _, name in dict.fromkeys(tables):
                cur.execute("SELECT DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS FROM information_schema.TABLES WHERE "
                            "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND TABLE_TYPE = 'BASE TABLE'", (name,))
                row = cur.fetchone()
                if not row:
                    continue
                q = self.dialect.quote(name)
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM {q})")
                has = bool(cur.fetchone()[0])
                rows = int(row[1] or 0)
                if has and rows == 0:  # InnoDB's estimate can say 0 for a table with rows
                    cur.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {q} LIMIT 1000000) s")
                    rows = int(cur.fetchone()[0])
                out[(None, name)] = TableInfo(schema_name=None, name=name, bytes=int(row[0] or 0), rows=rows,
                                              has_rows=has)
        return out

    def table_exists(self, conn, schema: str | None, name: str) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
                        "TABLE_NAME = %s", (name,))
            return bool(cur.fetchone()[0])

    def column_type(self, conn, schema: str | None, table: str, column: str) -> str | None:
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND "
                        "TABLE_NAME = %s AND COLUMN_NAME = %s", (table, column))
            row = cur.fetchone()
        return text_of(row[0]) if row and row[0] is not None else None

    def list_tables(self, conn) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_TYPE = 'BASE TABLE'")
            return [text_of(r[0]) for r in cur.fetchall()]

    def privileges(self, conn, info: ServerInfo, tables: list[TableKey]) -> list[Check]:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS FOR CURRENT_USER()")
            grants = [str(r[0]) for r in cur.fetchall()]
        have = set()
        db = info.database
        for g in grants:
            m = re.match(r"GRANT (.+?) ON (\S+) TO", g, re.I)
            if not m:
                continue
            target = m.group(2).replace("`", "")
            if target not in ("*.*", f"{db}.*"):
                continue
            privs = m.group(1).upper()
            if privs.startswith("ALL"):
                have.update(DDL_PRIVILEGES)
            have.update(p.strip() for p in privs.split(","))
        missing = [p for p in DDL_PRIVILEGES if p not in have]
        if missing:
            return [fail("privileges", f"{info.user} lacks {', '.join(missing)} on {db}.* (the migrations and the "
                                       "rollback need them)")]
        return [ok("privileges", f"{info.user} has {', '.join(DDL_PRIVILEGES)} on {db}")]

    def long_transactions(self, conn, threshold_s: float) -> list[LongTransaction]:
        with conn.cursor() as cur:
            cur.execute("SELECT t.trx_mysql_thread_id, p.USER, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), "
                        "LEFT(COALESCE(t.trx_query, p.INFO, ''), 120) FROM information_schema.INNODB_TRX t LEFT JOIN "
                        "information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE t.trx_started < NOW() - "
                        "INTERVAL %s SECOND AND t.trx_mysql_thread_id <> CONNECTION_ID()", (int(threshold_s),))
            rows = [LongTransaction(session=r[0], name=f"connection {r[0]}", who=str(r[1]), seconds=float(r[2] or 0),
                                    query=str(r[3] or "")) for r in cur.fetchall()]
            try:  # who holds metadata locks on the tables (performance_schema, when enabled)
                cur.execute("SELECT t.PROCESSLIST_ID, m.OBJECT_NAME FROM performance_schema.metadata_locks m JOIN "
                            "performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID WHERE m.OBJECT_SCHEMA = "
                            "DATABASE() AND m.LOCK_STATUS = 'GRANTED'")
                held: dict = {}
                for pid, obj in cur.fetchall():
                    held.setdefault(pid, set()).add(str(obj))
                for r in rows:
                    r.tables = held.get(r.session, set())
            except Exception:  # noqa: BLE001 - performance_schema off
                pass
        return rows

    def data_directory(self, conn) -> str | None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@datadir")
                return str(cur.fetchone()[0])
        except Exception:  # noqa: BLE001
            return None

    def restore_refusal(self, conn) -> str | None:
        # golive restores MySQL tables with LOAD DATA LOCAL INFILE (https://dev.mysql.com/doc/refman/8.0/en/load-data-local-security.html)
        with conn.cursor() as cur:
            cur.execute("SELECT @@local_infile")
            if not int(cur.fetchone()[0] or 0):
                return ("the server has local_infile=OFF, so the backup could not be restored (golive loads tables "
                        "with LOAD DATA LOCAL INFILE): SET GLOBAL local_infile = 1")
        return None

    # ------------------------------------------------------------ the lint

    def alter_hits(self, action: str, table: TableKey, statement: str, facts) -> list[Hit]:
        a = action.strip()
        up = a.upper()
        online = re.search(r"\bALGORITHM\s*=?\s*(INSTANT|INPLACE|NOCOPY)\b", statement, re.I) is not None
        m = re.match(r"^RENAME\s+(?:TO|AS)\s+(\S+)", a, re.I)
        if m:
            return [Hit("rename", table, f"TABLE {table[1]} TO {m.group(1)}")]
        m = re.match(r"^RENAME\s+COLUMN\s+(\S+)\s+TO\s+(\S+)", a, re.I)
        if m:
            return [Hit("rename", table, f"COLUMN {m.group(1)} TO {m.group(2)}")]
        m = re.match(r"^(MODIFY|CHANGE)\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)\s+(?:(\S+)\s+)?(.*)$", a, re.I | re.S)
        if m:
            return self._modify(m, table, facts, online)
        if re.match(r"^CONVERT\s+TO\s+(CHARACTER\s+SET|CHARSET)\b", up) and not online:
            return [Hit("mysql-copy-alter", table, "CONVERT TO CHARACTER SET")]
        if re.match(r"^ENGINE\s*=", up) and not online:
            return [Hit("mysql-copy-alter", table, a)]
        if re.match(r"^DROP\s+PRIMARY\s+KEY", up) and "ADD PRIMARY KEY" not in statement.upper() and not online:
            return [Hit("mysql-copy-alter", table, "DROP PRIMARY KEY")]
        if re.match(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?FOREIGN\s+KEY", up) and not online:
            return [Hit("mysql-copy-alter", table, "ADD FOREIGN KEY (with foreign_key_checks on)")]
        if re.match(r"^ADD\s+(FULLTEXT|SPATIAL)\b", up) and not online:
            return [Hit("mysql-copy-alter", table, f"ADD {up.split()[1]} INDEX (blocks writes: LOCK=SHARED)")]
        if re.match(r"^ORDER\s+BY\b", up):
            return [Hit("mysql-copy-alter", table, "ORDER BY")]
        m = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)", a, re.I)
        if m and m.group(1).upper() not in ("INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION",
                                            "DEFAULT"):
            return [Hit("drop-column", table, m.group(1))]
        return []

    @staticmethod
    def _modify(m, table: TableKey, facts, online: bool) -> list[Hit]:
        """MODIFY/CHANGE of a column: a type change copies the table unless it is one InnoDB does in place."""
        hits: list[Hit] = []
        kind, col = m.group(1).upper(), facts.column(m.group(2))
        if kind == "CHANGE":
            new_name = facts.column(m.group(3) or "")
            newdef = m.group(4)
            if new_name and new_name != col:
                hits.append(Hit("rename", table, f"COLUMN {col} TO {new_name}"))
        else:
            newdef = ((m.group(3) or "") + " " + m.group(4)).strip()
        new_type = _COL_END.sub("", newdef.strip()).strip()
        old = facts.coltype(table, col)
        if old is None or not new_type:
            return hits
        o, n = _norm(old), _norm(new_type)
        if o.startswith(("enum(", "set(")) and n.startswith(("enum(", "set(")):
            if not _appended(o, n):
                hits.append(Hit("mysql-enum-reorder", table, f"{col} {old} -> {new_type}"))
            return hits
        if o != n and not _varchar_extension(o, n) and not online:
            hits.append(Hit("mysql-copy-alter", table, f"{kind} {col} {old} -> {new_type}"))
        return hits

    def estimate_rows(self, conn, sql: str) -> int | None:
        try:
            with conn.cursor() as cur:
                cur.execute("EXPLAIN " + sql)
                cols = [c[0].lower() for c in cur.description]
                return max(int(r[cols.index("rows")] or 0) for r in cur.fetchall())
        except Exception:  # noqa: BLE001 - a column or table a pending migration creates first
            return None

    def lock_timeout_setting(self, seconds: float) -> str:
        return f"lock_wait_timeout = {max(1, int(-(-seconds // 1)))} s"  # whole seconds, rounded up

    # ------------------------------------------------------------ golive's tables

    def timestamp(self, value: dt.datetime, *, digits: int = 6) -> dt.datetime:
        """DATETIME holds UTC wall-clock time without a zone, with ``digits`` fractional digits."""
        value = utc(value)
        cut = 10 ** (6 - digits)
        return value.replace(microsecond=value.microsecond // cut * cut)

    def record_migration(self, conn, kind: str, version: str, name: str, checksum: str, *, success: bool,
                         release_id: str, applied_at, execution_ms: int | None) -> None:
        table = self.dialect.qualified(*self.history_table)
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (kind, version, name, checksum, applied_at, execution_ms, success, "
                        "release_id, installed_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CURRENT_USER()) ON DUPLICATE "
                        "KEY UPDATE name = VALUES(name), checksum = VALUES(checksum), applied_at = VALUES(applied_at), "
                        "execution_ms = VALUES(execution_ms), success = VALUES(success), release_id = VALUES(release_id)",
                        (kind, version, name, checksum, self.timestamp(applied_at), execution_ms, success, release_id))

    def schema_rows(self, conn, bookkeeping: tuple[str, ...]) -> list[tuple]:
        out = []
        with conn.cursor() as cur:
            for i, q in enumerate(_SCHEMA_QUERIES):
                cur.execute(q)
                out += sorted((i, *(text_of(v) for v in r)) for r in cur.fetchall())
        return [r for r in out if not any(str(v).startswith(bookkeeping) for v in r[1:3])]

    # ------------------------------------------------------------ migration tools

    def try_prisma_lock(self, conn) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (PRISMA_LOCK,))
            return bool(cur.fetchone()[0])

    def sqlalchemy_url(self, url: DatabaseURL) -> str:
        return sqlalchemy_url(url)

    def alembic_session(self, dbapi_conn, *, lock_timeout_ms: int, statement_timeout_ms: int) -> None:
        cur = dbapi_conn.cursor()
        whole = max(1, -(-int(lock_timeout_ms) // 1000))  # whole seconds, rounded up
        cur.execute(f"SET SESSION lock_wait_timeout = {whole}")
        cur.execute(f"SET SESSION innodb_lock_wait_timeout = {whole}")
        if statement_timeout_ms:
            try:
                cur.execute(f"SET SESSION max_statement_time = {statement_timeout_ms / 1000:.3f}")
            except Exception:  # noqa: BLE001 - MySQL has no max_statement_time
                pass
        cur.close()


def _norm(t: str) -> str:
    t = re.sub(r"\s+", "", t.strip().lower())
    t = re.sub(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", t)  # display widths mean nothing
    return {"integer": "int", "bool": "tinyint(1)", "boolean": "tinyint(1)"}.get(t, t)


def _appended(old: str, new: str) -> bool:
    ov = re.findall(r"'((?:[^']|'')*)'", old)
    nv = re.findall(r"'((?:[^']|'')*)'", new)
    return old.split("(")[0] == new.split("(")[0] and nv[: len(ov)] == ov and len(nv) <= 255


def _varchar_extension(old: str, new: str) -> bool:
    """VARCHAR(n) -> VARCHAR(m >= n) within the same length-prefix size is INPLACE (utf8mb4: 4 bytes a character)."""
    mo, mn = re.match(r"^varchar\((\d+)\)", old), re.match(r"^varchar\((\d+)\)", new)
    if not (mo and mn and old[mo.end():] == new[mn.end():]):
        return False
    o, n = int(mo.group(1)), int(mn.group(1))
    return n >= o and (o * 4 <= 255) == (n * 4 <= 255)

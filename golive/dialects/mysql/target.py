"""MySQL / MariaDB as a target: tables in utf8mb4, chunks bulk-loaded with LOAD DATA LOCAL INFILE, strict.

* **Loading.** Each chunk is streamed into ``LOAD DATA LOCAL INFILE`` straight from the source's batches
  (PyMySQL asks golive for the "file" by name; no file, no FIFO, nothing on disk), inside one transaction
  that also records the chunk in ``_golive_chunks``, so a chunk lands exactly once. Values that need a
  conversion are read into user variables and set (``SET c = UNHEX(@c)``). A server without
  ``local_infile`` is said so and loaded with multi-row INSERTs instead.
* **Strict.** The session's ``sql_mode`` is strict, and because LOAD DATA LOCAL behaves as IGNORE (errors
  become warnings and values change silently), the warnings are read after every load: any warning is a
  refusal, the chunk is redone row by row, and the row is rejected with the server's reason.
* **No transactional DDL.** The run is recorded *before* the tables are created (status ``preparing``); a
  crash in between resumes by dropping what this run created and creating it again.
* **Keys after the data**: the primary key is part of CREATE TABLE (InnoDB clusters the rows on it, and the
  chunks arrive in key order); the other indexes and UNIQUE constraints are added in one ALTER TABLE per
  table; foreign keys after them (rows referencing missing parents are counted and reported, and the key is
  added with ``foreign_key_checks = 0`` so new rows are checked); ``AUTO_INCREMENT =`` the next value.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from contextlib import contextmanager

from golive.dialects.base import Target, fit_table_ddl, target_not_empty
from golive.dialects.mysql import types as mt
from golive.dialects.mysql.bookkeeping import MySQLBookkeeping
from golive.dialects.mysql.ddl import adjust_table, column_sql, create_table_sql, foreign_key_sql, index_clause
from golive.dialects.mysql.session import connect as open_session, qi, translate_error
from golive.errors import GoliveError, PlanError, TerminalError
from golive.model.plan import ChunkPlan, ForeignKeyPlan, MigrationPlan, TablePlan
from golive.model.results import ChunkResult, PrepareResult, Refused, StepResult
from golive.model.types import CT
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: strict: nothing is truncated or converted silently (MySQL's non-strict mode does both)
STRICT = ("STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO,"
          "NO_ENGINE_SUBSTITUTION")
#: MySQL to MySQL keeps zero dates as the source has them
STRICT_KEEP_ZERO = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
LOAD_SETTINGS = {"time_zone": "+00:00", "foreign_key_checks": 0, "unique_checks": 1, "max_error_count": 64,
                 "character_set_client": "utf8mb4"}


def _settings(plan: MigrationPlan) -> dict:
    return dict(LOAD_SETTINGS, sql_mode=STRICT_KEEP_ZERO if plan.source_dialect == "mysql" else STRICT)


def connect(url: DatabaseURL, plan: MigrationPlan | None = None, **kw):
    """A session of the target: a chunk's load in the plan's strict mode; the DDL sessions after the load (keys,
    foreign keys, views) keep zero dates, so an ALTER TABLE of a table with a zero-date default (MySQL to MySQL)
    is not refused (no row is written in them)."""
    settings = _settings(plan) if plan is not None else {"time_zone": "+00:00", "sql_mode": STRICT_KEEP_ZERO}
    return open_session(url, settings=settings, role="target", **kw)


# ---------------------------------------------------------------------- streaming LOAD DATA LOCAL INFILE

_streams: dict[str, object] = {}
_streams_lock = threading.Lock()


def _install_stream_loader() -> None:
    """Teach PyMySQL to answer a LOAD DATA LOCAL request for ``golive-stream:<id>`` from an iterator of bytes
    (PyMySQL reads the file the server names back in ``connections._send_local_file``; others pass through)."""
    import pymysql.connections as pc

    if getattr(pc._send_local_file, "_golive", False):
        return
    original = pc._send_local_file

    def send(filename, conn):
        name = filename.decode() if isinstance(filename, bytes) else filename
        with _streams_lock:
            source = _streams.pop(name, None)
        if source is None:
            return original(filename, conn)
        for blob in source:  # the caller sends the empty packet that ends the file
            for i in range(0, len(blob), 1 << 20):
                conn.write_packet(blob[i:i + (1 << 20)])

    send._golive = True
    pc._send_local_file = send


def column_list(tp: TablePlan) -> tuple[str, str]:
    """The LOAD DATA column list and its SET clause (values that need a conversion go through @variables)."""
    cols, sets = [], []
    for i, c in enumerate(x for x in tp.columns if not x.generated_sql):
        conv = _conversion(c)
        if conv is None:
            cols.append(qi(c.target))
        else:
            var = f"@v{i}"
            cols.append(var)
            sets.append(f"{qi(c.target)} = {conv % var}")
    return ", ".join(cols), (" SET " + ", ".join(sets)) if sets else ""


def _conversion(c) -> str | None:
    ct = c.type.ct
    st = c.sql_type.upper()
    if st.startswith("BIT"):
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.BINARY or (ct == CT.GEOMETRY and "BLOB" in st):
        return "UNHEX(%s)"
    if ct == CT.GEOMETRY:
        return "ST_GeomFromWKB(UNHEX(%s))"
    if ct == CT.BITS:
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.NATIVE and st.startswith(("BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB")):
        return "UNHEX(%s)"
    if ct == CT.NATIVE and st.startswith("BIT"):
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.NATIVE and st.split("(")[0] in ("GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT",
                                                 "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"):
        return "ST_GeomFromWKB(UNHEX(%s))"
    return None


_ROW_RE = re.compile(r"\bat row (\d+)", re.I)
_COL_RE = re.compile(r"column [`'\"]?(?:[^`'\"]+[`'\"]?\.[`'\"]?)*([^`'\".]+)[`'\"]? at row", re.I)


class ChunkWriter:
    """One chunk's session on MySQL: bookkeeping, LOAD DATA in one transaction, warnings as refusals."""

    def __init__(self, target: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan):
        self.plan, self.tp, self.chunk = plan, tp, chunk
        self.what = f"copying {tp.source} chunk {chunk.no}"
        self.conn = connect(target, plan, local_infile=True)
        self.book = MySQLBookkeeping(self.conn)
        self.cols, self.sets = column_list(tp)
        # MySQL to MySQL, an ENUM keeps its labels: the only value the load can truncate in it is the ENUM's ''
        # error value (stored by an app in non-strict mode), which the load stores as the same '' (code 1265)
        self.error_value_cols = ({c.target.lower() for c in tp.columns if c.sql_type.upper().startswith("ENUM(")}
                                 if plan.source_dialect == "mysql" else set())
        self._depth = 0
        self._n = 0
        with self.conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            self.infile = bool(int(cur.fetchone()[0]))
        _install_stream_loader()

    def done(self) -> dict | None:
        try:
            prev = self.book.chunk_done(self.plan.run_key, self.tp.source, self.chunk.no)
            self.conn.commit()
        except Exception as exc:
            raise translate_error(exc, self.what) from None
        return prev

    @contextmanager
    def transaction(self):
        self._depth += 1
        self._n += 1
        savepoint = f"golive_{self._n}"
        try:
            with self.conn.cursor() as cur:
                cur.execute("BEGIN" if self._depth == 1 else f"SAVEPOINT {savepoint}")
            try:
                yield
            except BaseException:
                with self.conn.cursor() as cur:
                    cur.execute("ROLLBACK" if self._depth == 1 else f"ROLLBACK TO SAVEPOINT {savepoint}")
                raise
            if self._depth == 1:
                self.conn.commit()
            else:
                with self.conn.cursor() as cur:
                    cur.execute(f"RELEASE SAVEPOINT {savepoint}")
        except Refused:
            raise
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        finally:
            self._depth -= 1

    def load(self, batches) -> int:
        """LOAD DATA the lines (streamed); any warning is a refusal naming the row."""
        if not self.infile:
            return self._insert(batches)
        name = f"golive-stream:{uuid.uuid4().hex}"
        with _streams_lock:
            _streams[name] = batches
        sql = (f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE {qi(self.tp.target)} CHARACTER SET utf8mb4 "
               f"FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '''' ESCAPED BY '' LINES TERMINATED BY '\\n' "
               f"({self.cols}){self.sets}")
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                n = cur.rowcount
                warnings = self._warnings(cur)
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        finally:
            with _streams_lock:
                _streams.pop(name, None)
        if warnings:
            level, code, message = warnings[0]
            raise _refusal(message)
        return n

    def _warnings(self, cur) -> list[tuple]:
        """The load's warnings, but for the ENUM error value copied as itself; every warning when some went
        unshown (over ``max_error_count``), so the row-by-row path decides."""
        cur.execute("SHOW WARNINGS")
        shown = [tuple(r) for r in cur.fetchall()]
        if not shown or not self.error_value_cols:
            return shown
        left = [w for w in shown if not (w[1] == 1265 and (m := _COL_RE.search(w[2] or ""))
                                         and m.group(1).lower() in self.error_value_cols)]
        if left:
            return left
        cur.execute("SHOW COUNT(*) WARNINGS")
        total = int(cur.fetchone()[0])
        return shown if total > len(shown) else []

    def _insert(self, batches) -> int:
        """Without local_infile: the wire lines parsed and inserted in multi-row INSERTs (slower, as strict)."""
        rows = [r for blob in batches for r in parse_wire(blob)]
        if not rows:
            return 0
        placeholders = []
        for c in (x for x in self.tp.columns if not x.generated_sql):
            conv = _conversion(c)
            placeholders.append(conv % "%s" if conv else "%s")
        names = ", ".join(qi(c.target) for c in self.tp.columns if not c.generated_sql)
        sql = f"INSERT INTO {qi(self.tp.target)} ({names}) VALUES ({', '.join(placeholders)})"
        n = 0
        try:
            with self.conn.cursor() as cur:
                for i in range(0, len(rows), 500):
                    try:
                        n += cur.executemany(sql, rows[i:i + 500]) or 0
                    except Exception as exc:
                        refusal = _refused_or(exc, self.what)
                        if isinstance(refusal, Refused) and len(rows) == 1:
                            raise refusal
                        raise Refused(getattr(refusal, "reason", str(refusal)), line=None) from None
                    warnings = self._warnings(cur)
                    if warnings:
                        raise _refusal(warnings[0][2], offset=i)
        except Refused:
            raise
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        return n

    def record(self, result: ChunkResult, digest: str) -> None:
        self.book.record_chunk(self.plan.run_key, self.tp.source, self.chunk.no, result.rows_read,
                               result.rows_written, result.rejects, result.seconds, result.converted, digest)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _refusal(message: str, offset: int = 0) -> Refused:
    m = _ROW_RE.search(message or "")
    col = _COL_RE.search(message or "")
    return Refused(message, row=(int(m.group(1)) + offset) if m else None, column=col.group(1) if col else None)


#: MySQL error codes that mean "this row's data": the chunk is redone row by row
_DATA_CODES = {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1416, 1452, 3140, 4025, 1690, 1105, 1300,
               1301, 3819, 4078}


def _refused_or(exc: BaseException, what: str):
    args = getattr(exc, "args", ())
    code = args[0] if args and isinstance(args[0], int) else 0
    if code in _DATA_CODES:
        return _refusal(str(args[1]) if len(args) > 1 else str(exc))
    return translate_error(exc, what)


def parse_wire(blob: bytes) -> list[tuple]:
    """The wire format's rows (quoted fields, '' for a quote, bare NULL) as tuples of str/None."""
    out, row, i, n = [], [], 0, len(blob)
    text = blob.decode("utf-8")
    n = len(text)
    while i < n:
        if text[i] == "'":
            j = i + 1
            buf = []
            while True:
                k = text.index("'", j)
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == "'":
                    buf.append("'")
                    j = k + 2
                    continue
                i = k + 1
                break
            row.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in ",\n":
                j += 1
            word = text[i:j]
            row.append(None if word == "NULL" else word)
            i = j
        if i < n and text[i] == ",":
            i += 1
        elif i < n and text[i] == "\n":
            out.append(tuple(row))
            row = []
            i += 1
    if row:
        out.append(tuple(row))
    return out


# ---------------------------------------------------------------------- before the copy


def folds_case(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT @@lower_case_table_names")
        return int(cur.fetchone()[0]) != 0


def collation(conn) -> str:
    """A binary, no-pad collation: compares like PostgreSQL and SQLite (case and trailing spaces count)."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN "
                    "('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')")
        names = [r[0] for r in cur.fetchall()]
    return names[0] if names else "utf8mb4_bin"


def existing_tables(conn, names: list[str]) -> list[str]:
    if not names:
        return []
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("
                    + ", ".join(["%s"] * len(names)) + ")", names)
        return sorted(r[0] for r in cur.fetchall())


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    conn = connect(target)
    try:
        book = MySQLBookkeeping(conn)
        run = book.get_run(run_key)
        if run and run["status"] in ("preparing", "copying", "building"):
            run["chunks"] = book.chunks_of_run(run_key)
            return run
        return None
    finally:
        conn.close()


def run_of(target: DatabaseURL, run_key: str, conn=None) -> dict | None:
    own = conn or connect(target)
    try:
        return MySQLBookkeeping(own).get_run(run_key)
    finally:
        if conn is None:
            own.close()


def check_target(target: DatabaseURL, plan: MigrationPlan, options) -> list[str]:
    conn = connect(target)
    try:
        return existing_tables(conn, [t.target for t in plan.tables])
    finally:
        conn.close()


def prepare(target: DatabaseURL, plan: MigrationPlan, options) -> PrepareResult:
    """Record the run, then create the tables (MySQL's DDL commits at once: a crash in between resumes)."""
    conn = connect(target, plan)
    try:
        book = MySQLBookkeeping(conn)
        book.ensure()
        conn.commit()
        names = [t.target for t in plan.tables]
        existing = existing_tables(conn, names)
        run = book.get_run(plan.run_key)
        if plan.resumed and run and run["status"] != "preparing":
            missing = sorted(set(names) - set(existing))
            if missing:
                raise PlanError(f"cannot resume: tables {', '.join(missing)} of the interrupted run are gone; "
                                "re-run with --drop-existing to start over")
            return PrepareResult(resumed=True, done_chunks=len(book.chunks_of_run(plan.run_key)))
        interrupted = plan.resumed and run and run["status"] == "preparing"
        if existing and not options.drop_existing and not interrupted:
            raise target_not_empty(plan, existing, run, has_schemas=False)
        result = PrepareResult()
        # the run first: a crash before the tables exist is resumable
        book.start_run(plan.run_key, plan.target_schema, plan.model_dump_json(), plan.source_fingerprint)
        book.set_status(plan.run_key, "preparing")
        conn.commit()
        coll = collation(conn)
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            if options.drop_existing or interrupted:
                for v in existing_tables(conn, [v.target for v in plan.views]):
                    cur.execute(f"DROP VIEW IF EXISTS {qi(v)}")
                for name in existing:
                    cur.execute(f"DROP TABLE IF EXISTS {qi(name)}")
                result.dropped = list(existing)
            for t in plan.tables:
                sql = create_table_sql(t, coll)
                try:
                    cur.execute(sql)
                except Exception as exc:  # noqa: BLE001 - the statement and the object named, then the way out
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    stmt = " ".join(sql.split())
                    raise TerminalError(
                        f"creating table {t.source} failed: {msg}. The statement: {stmt[:300]}"
                        f"{'…' if len(stmt) > 300 else ''}. The tables this run created are dropped when the same "
                        "command runs again; --dry-run shows the plan, and --exclude leaves a table out") from None
                result.created_tables.append(t.target)
        book.set_status(plan.run_key, "copying")
        conn.commit()
        return result
    except Exception as exc:
        raise translate_error(exc, "preparing the target database") from None
    finally:
        conn.close()


def check_ddl(target: DatabaseURL, plan: MigrationPlan) -> None:
    """Every planned table tried as a TEMPORARY table of one session (MySQL's DDL commits at once, but temporary
    tables are the session's own and go with it: nothing another session sees, nothing stays)."""
    conn = connect(target, plan)
    try:
        coll = collation(conn)

        def attempt(sql: str) -> str | None:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                return None
            except Exception as exc:  # noqa: BLE001 - the server's refusal, as its message
                return str(exc.args[1]) if len(exc.args) > 1 else str(exc)

        def scratch(t: TablePlan) -> str:
            return "_golive_check_" + str(abs(hash(t.target)))[:12]

        def table(t: TablePlan) -> str | None:
            attempt(f"DROP TEMPORARY TABLE IF EXISTS {qi(scratch(t))}")
            sql = create_table_sql(t, coll).replace(f"CREATE TABLE {qi(t.target)}",
                                                    f"CREATE TEMPORARY TABLE {qi(scratch(t))}", 1)
            return attempt(sql)

        def column(c, with_default: bool) -> str | None:
            one = c if with_default else c.model_copy(update={"default_sql": None})
            attempt("DROP TEMPORARY TABLE IF EXISTS `_golive_check_column`")
            return attempt(f"CREATE TEMPORARY TABLE `_golive_check_column` ({column_sql(one)}"
                           + (", KEY (" + qi(c.target) + "))" if c.identity else ")"))

        def index(t: TablePlan, ix) -> str | None:
            if ix.method or ix.expression_sql:  # FULLTEXT/SPATIAL: not on temporary tables; expressions: the keys
                return None                     # step says what MariaDB lacks (finish_table)
            return attempt(f"ALTER TABLE {qi(scratch(t))} {index_clause(t, ix)}")

        for tp in plan.tables:
            fit_table_ddl(plan, tp, table=table, column=column,
                          check=lambda t, ck: attempt(f"ALTER TABLE {qi(scratch(t))} ADD CONSTRAINT {qi(ck.name)} "
                                                      f"CHECK ({ck.sql})"),
                          index=index)
            attempt(f"DROP TEMPORARY TABLE IF EXISTS {qi(scratch(tp))}")
    finally:
        conn.close()


# ---------------------------------------------------------------------- after the copy


def finish_table(target: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
    """Secondary indexes and UNIQUE in one ALTER TABLE, CHECKs, AUTO_INCREMENT, ANALYZE."""
    t0 = time.perf_counter()
    res = StepResult(table=tp.source)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s", (tp.target,))
            have = {r[0] for r in cur.fetchall()}
            todo = [ix for ix in tp.indexes if ix.kind != "primary" and ix.name not in have]
            if any(ix.expression_sql for ix in todo) and "mariadb" in conn.get_server_info().lower():
                for ix in [ix for ix in todo if ix.expression_sql]:
                    res.skipped.append({"kind": "index", "name": ix.source_name or ix.name, "reason": (
                        f"an index on an expression ({ix.expression_sql}): MariaDB has none (MySQL 8.0.13+ has "
                        "functional indexes); add a generated column and index it if the app needs it")})
                todo = [ix for ix in todo if not ix.expression_sql]
            if todo:
                try:
                    cur.execute(f"ALTER TABLE {qi(tp.target)} " + ", ".join(index_clause(tp, ix) for ix in todo))
                    res.created += [ix.name for ix in todo]
                except Exception:  # one at a time, to name the one that fails
                    for ix in todo:
                        try:
                            cur.execute(f"ALTER TABLE {qi(tp.target)} {index_clause(tp, ix)}")
                            res.created.append(ix.name)
                        except Exception as exc:
                            code = exc.args[0] if exc.args else 0
                            msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                            if code == 1062:
                                res.errors.append(f"{tp.source}: unique index {ix.name} not created: duplicate "
                                                  f"values after conversion ({msg})")
                            else:
                                res.skipped.append({"kind": "index", "name": ix.source_name or ix.name,
                                                    "reason": f"does not translate to MySQL: {msg}"})
            cur.execute("SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = %s AND CONSTRAINT_TYPE = 'CHECK'", (tp.target,))
            have_checks = {r[0] for r in cur.fetchall()}
            for ck in tp.checks:
                if ck.name in have_checks:
                    continue
                try:
                    cur.execute(f"ALTER TABLE {qi(tp.target)} ADD CONSTRAINT {qi(ck.name)} CHECK ({ck.sql})")
                    res.created.append(ck.name)
                except Exception as exc:
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    res.skipped.append({"kind": "check", "name": ck.name,
                                        "reason": f"CHECK ({ck.source_sql or ck.sql}) not added: {msg}"})
            if tp.identity:
                cur.execute(f"SELECT MAX({qi(tp.identity)}) FROM {qi(tp.target)}")
                top = cur.fetchone()[0] or 0
                start = max(int(top), int(tp.sequence_floor or 0)) + 1
                cur.execute(f"ALTER TABLE {qi(tp.target)} AUTO_INCREMENT = {start}")
                res.created.append(f"AUTO_INCREMENT of {tp.target} = {start}")
            cur.execute(f"ANALYZE TABLE {qi(tp.target)}")
            cur.fetchall()
    except Exception as exc:
        raise translate_error(exc, f"building the indexes of {tp.target}") from None
    finally:
        conn.close()
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def link_table(target: DatabaseURL, schema: str, table: str, fks: list[ForeignKeyPlan]) -> StepResult:
    """Foreign keys of one child table: golive counts the rows referencing missing parents (an anti-join), then
    adds the key in place with foreign_key_checks = 0 (InnoDB would otherwise copy the whole table to check
    it); new rows are checked by MySQL either way, and orphans found are reported with their count."""
    t0 = time.perf_counter()
    res = StepResult(table=table)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                        "WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
            have = {r[0] for r in cur.fetchall()}
            for fk in fks:
                if fk.name in have:
                    continue
                n = orphan_count(cur, fk)  # golive's own check: InnoDB would rebuild the table to check it
                sql = foreign_key_sql(fk)
                try:
                    # added in place (no table copy); the rows were just checked, new ones are checked by MySQL
                    cur.execute("SET SESSION foreign_key_checks = 0")
                    cur.execute(sql)
                    res.created.append(fk.name)
                except Exception as exc:
                    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                    res.skipped.append({"kind": "foreign key", "name": fk.name, "reason": msg})
                    continue
                if n:
                    res.warnings.append(
                        f"foreign key {fk.name}: {n} rows of {fk.source_table} reference missing {fk.source_ref_table} "
                        "rows; the key was added without checking them (new rows are checked). Fix the rows, then "
                        f"drop and re-add {fk.name} with foreign_key_checks = 1 to have MySQL check them")
    except Exception as exc:
        raise translate_error(exc, f"adding the foreign keys of {table}") from None
    finally:
        conn.close()
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def orphan_count(cur, fk: ForeignKeyPlan) -> int:
    on = " AND ".join(f"p.{qi(r)} = c.{qi(col)}" for col, r in zip(fk.columns, fk.ref_columns))
    notnull = " AND ".join(f"c.{qi(col)} IS NOT NULL" for col in fk.columns)
    cur.execute(f"SELECT COUNT(*) FROM {qi(fk.table)} c WHERE {notnull} AND NOT EXISTS "
                f"(SELECT 1 FROM {qi(fk.ref_table)} p WHERE {on})")
    return int(cur.fetchone()[0])


def create_views(target: DatabaseURL, plan: MigrationPlan, finals: list[str] | None = None) -> StepResult:
    res = StepResult(table="views")
    t0 = time.perf_counter()
    pending = list(plan.views)
    errors: dict[str, str] = {}
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            existing = set(existing_tables(conn, [v.target for v in pending]))
            pending = [v for v in pending if v.target not in existing]
            progress_made = True
            while pending and progress_made:
                progress_made = False
                for v in list(pending):
                    try:
                        cur.execute(f"CREATE VIEW {qi(v.target)} AS {v.select}")
                        res.created.append(v.target)
                        pending.remove(v)
                        progress_made = True
                    except Exception as exc:
                        errors[v.source] = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            for sql in list(plan.post_data_sql) + list(finals or []):
                try:
                    cur.execute(sql)
                except Exception as exc:
                    res.warnings.append(f"could not run {sql[:120]!r} on the target: {exc}")
        conn.commit()
    finally:
        conn.close()
    for v in pending:
        res.skipped.append({"kind": "view", "name": v.source,
                            "reason": f"its SQL does not run on MySQL: {errors.get(v.source, 'unknown error')}"})
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    conn = connect(target)
    try:
        MySQLBookkeeping(conn).set_status(run_key, "complete" if ok else "failed")
        conn.commit()
    finally:
        conn.close()


def runs_in(target: DatabaseURL, schema: str) -> list[tuple[str, dict]]:
    conn = connect(target)
    try:
        return MySQLBookkeeping(conn).runs_in(schema)
    finally:
        conn.close()


def chunks_of_run(target: DatabaseURL, run_key: str) -> dict:
    conn = connect(target)
    try:
        return MySQLBookkeeping(conn).chunks_of_run(run_key)
    finally:
        conn.close()


# ---------------------------------------------------------------------- the concern


class MySQLTarget(Target):
    """MySQL / MariaDB as a migration target (see the module)."""

    def type_sql(self, t) -> str:
        return mt.type_sql(t)

    def render_default(self, d, t) -> str | None:
        return mt.render_default(d, t)

    def folds_case(self, url: DatabaseURL) -> bool:
        """Does the server compare table names case-insensitively (lower_case_table_names = 1 or 2)?"""
        try:
            conn = open_session(url, role="target")
        except GoliveError:
            return False
        try:
            return folds_case(conn)
        finally:
            conn.close()

    def adjust_table(self, tp: TablePlan, plan: MigrationPlan) -> None:
        adjust_table(tp, plan)

    def check_ddl(self, url: DatabaseURL, plan: MigrationPlan) -> None:
        check_ddl(url, plan)

    def chunk_writer(self, url: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan) -> ChunkWriter:
        return ChunkWriter(url, plan, tp, chunk)

    def find_resumable(self, url: DatabaseURL, run_key: str) -> dict | None:
        return find_resumable(url, run_key)

    def run_of(self, url: DatabaseURL, run_key: str) -> dict | None:
        return run_of(url, run_key)

    def check_target(self, url: DatabaseURL, plan: MigrationPlan, options) -> list[str]:
        return check_target(url, plan, options)

    def prepare(self, url: DatabaseURL, plan: MigrationPlan, options) -> PrepareResult:
        return prepare(url, plan, options)

    def finish_table(self, url: DatabaseURL, schema: str, tp: TablePlan) -> StepResult:
        return finish_table(url, schema, tp)

    def link_table(self, url: DatabaseURL, schema: str, table: str, fks) -> StepResult:
        return link_table(url, schema, table, fks)

    def create_views(self, url: DatabaseURL, plan: MigrationPlan, finals: list[str] | None = None) -> StepResult:
        return create_views(url, plan, finals)

    def complete(self, url: DatabaseURL, run_key: str, ok: bool) -> None:
        complete(url, run_key, ok)

    def runs_in(self, url: DatabaseURL, schema: str) -> list[tuple[str, dict]]:
        return runs_in(url, schema)

    def chunks_of_run(self, url: DatabaseURL, run_key: str) -> dict:
        return chunks_of_run(url, run_key)

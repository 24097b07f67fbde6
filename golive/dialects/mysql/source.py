"""MySQL / MariaDB as a source: introspection, value profile, chunks, one snapshot, rows rendered on the server.

* **One moment in time.** ``snapshot`` takes a short ``FLUSH TABLES WITH READ LOCK`` (as mydumper does),
  opens one connection per worker with ``START TRANSACTION WITH CONSISTENT SNAPSHOT``, and releases the
  lock: every chunk reader borrows one of those connections, so all of them read the same moment while
  the app goes on writing. Without the RELOAD privilege (or with ``--snapshot none``) each chunk reads
  its own moment and the report says plainly that the source must be quiet.
* **Chunks** are primary-key ranges: integer keys by value ranges (equal spans, or row quantiles when
  sparse), other keys by key tuples (keyset); tables without a key (or a unique NOT NULL index) are one
  chunk, reported.
* **The fast path** renders each row in the target's wire format on the server (``mysql_types.line_sql``)
  and concatenates a few megabytes of rows per query (``GROUP_CONCAT``), returned as bytes: Python moves
  megabytes, never fields (measured: 10× less client CPU than fetching one rendered line per row, 50×
  less than fetching the values).
* **Resume** refuses a source whose already-copied chunks changed: each committed chunk's SHA-256 (of
  the bytes copied) is recorded, and a resumed run re-reads those chunks and compares.
"""

from __future__ import annotations

import logging
import re

from golive.dialects.base import SNAPSHOT_LOST, Decision, Source
from golive.dialects.mysql import types as mt
from golive.dialects.mysql.session import connect as open_session, qi, translate_error
from golive.dialects.mysql.snapshot import _broken, _lock, _pools, is_mariadb as _is_mariadb, snapshot as _snapshot
from golive.errors import PlanError, TerminalError, TransientError
from golive.model.plan import ChunkPlan
from golive.model.schema import Column, ForeignKey, Index, SourceSchema, Table, View
from golive.model.results import key_value
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


#: session settings of every reading connection: UTC (TIMESTAMP values read as UTC), no NO_BACKSLASH_ESCAPES
#: (the rendering SQL uses backslash escapes), GROUP_CONCAT as long as the packet allows
READ_SETTINGS = {"time_zone": "+00:00", "sql_mode": "", "group_concat_max_len": 4294967295,
                 "net_write_timeout": 600}
#: bytes of wire text per query on the fast path (well under max_allowed_packet, 16 MB by default)
BATCH_BYTES = 4 << 20
CAREFUL_ROWS = 2000


def connect(url: DatabaseURL):
    conn = open_session(url, settings=READ_SETTINGS, role="source")
    return conn


def _rows(conn, sql: str, args=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _pct(sql: str) -> str:
    """SQL text used with driver parameters: a literal % (DATE_FORMAT) must be doubled."""
    return sql.replace("%", "%%")


def _s(v) -> str | None:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v


# ---------------------------------------------------------------------- introspection


def introspect(conn, url: DatabaseURL) -> SourceSchema:
    """Tables, columns, keys, indexes, foreign keys, CHECKs, views; triggers, routines and events to report."""
    db = url.database
    schema = SourceSchema()
    tables = _rows(conn, "SELECT TABLE_NAME, TABLE_TYPE, AUTO_INCREMENT, ENGINE, TABLE_COMMENT FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (db,))
    cols: dict[str, list] = {}
    for r in _rows(conn, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
                         "GENERATION_EXPRESSION, CHARACTER_SET_NAME, COLUMN_COMMENT, COLUMN_KEY, COLLATION_NAME FROM "
                         "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
                   (db,)):
        cols.setdefault(_s(r[0]), []).append([_s(x) if isinstance(x, (bytes, bytearray)) else x for x in r[1:]])
    stats: dict[str, dict[str, list]] = {}
    for r in _rows(conn, "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION, "
                         "INDEX_TYPE, NULLABLE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                         "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", (db,)):
        stats.setdefault(_s(r[0]), {}).setdefault(_s(r[1]), []).append(r[2:])
    fks: dict[str, dict[str, list]] = {}
    for r in _rows(conn, "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, "
                         "k.REFERENCED_COLUMN_NAME, c.UPDATE_RULE, c.DELETE_RULE, k.REFERENCED_TABLE_SCHEMA "
                         "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS c "
                         "ON c.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
                         "AND c.TABLE_NAME = k.TABLE_NAME WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME IS NOT NULL "
                         "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION", (db,)):
        fks.setdefault(_s(r[0]), {}).setdefault(_s(r[1]), []).append([_s(x) for x in r[2:]])
    checks: dict[str, list] = {}
    try:
        for r in _rows(conn, "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE, "
                             + ("LEVEL" if _is_mariadb(conn) else "'Table'")
                             + " FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (db,)):
            checks.setdefault(_s(r[0]), []).append([_s(x) for x in r[1:]])
    except Exception as exc:  # MySQL < 8.0.16 has no CHECK constraints table
        log.debug("no CHECK constraints: %s", exc)
    for name, kind, auto, engine, comment in tables:
        name, kind = _s(name), _s(kind)
        if kind == "VIEW":
            continue
        schema.tables.append(_table(name, cols.get(name, []), stats.get(name, {}), fks.get(name, {}),
                                    checks.get(name, []), auto, db))
    for name, definition in _rows(conn, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
                                        "WHERE TABLE_SCHEMA = %s", (db,)):
        select = _s(definition) or ""
        select = select.replace(f"`{db}`.", "")
        schema.views.append(View(name=_s(name), select=select, sql=select))
    for name, table in _rows(conn, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                                   "WHERE TRIGGER_SCHEMA = %s", (db,)):
        from golive.model.schema import Trigger

        schema.triggers.append(Trigger(name=_s(name), table=_s(table), sql=""))
    for name, kind in _rows(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                  "WHERE ROUTINE_SCHEMA = %s", (db,)):
        schema.others.append((_s(kind).lower(), _s(name), "stored routines are not translated; rewrite it in "
                                                          "PL/pgSQL if the app calls it"))
    try:
        for (name,) in _rows(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (db,)):
            schema.others.append(("event", _s(name), "scheduled events are not translated; schedule the job "
                                                     "elsewhere (a Prefect deployment, pg_cron)"))
    except Exception:  # noqa: BLE001 - the event scheduler's table may be unreadable
        pass
    return schema


def _default(raw, extra: str, data_type: str):
    """COLUMN_DEFAULT as written: MariaDB quotes string literals and says NULL; MySQL 8 does neither."""
    return raw


def _table(name: str, cols: list, stats: dict, fks: dict, checks: list, auto, db: str) -> Table:
    json_cols = {cname for cname, clause, level in checks
                 if re.fullmatch(r"json_valid\(`?" + re.escape(cname) + r"`?\)", (clause or "").strip(), re.I)}
    columns = []
    for cname, ctype, nullable, default, extra, gen, charset, comment, ckey, coll in cols:
        extra = (extra or "").lower()
        generated = "generated" in extra
        on_update = None
        m = re.search(r"on update (current_timestamp(?:\(\d*\))?)", extra)
        if m:
            on_update = m.group(1)
        columns.append(Column(name=cname, declared=ctype, nullable=nullable == "YES",
                              default=None if generated else default, generated=generated,
                              generated_sql=gen if generated else None, native=ctype,
                              auto_increment="auto_increment" in extra, on_update=on_update, charset=charset,
                              comment=comment or None, collation=coll))
    pk = [r[2] for r in stats.get("PRIMARY", [])]
    for c in columns:
        if c.name in pk:
            c.pk_position = pk.index(c.name) + 1
    indexes = []
    for iname, parts in stats.items():
        if iname == "PRIMARY":
            continue
        non_unique, kind = parts[0][0], (parts[0][5] or "BTREE").lower()
        indexes.append(Index(
            name=iname, columns=[p[2] for p in parts if p[2] is not None], unique=not non_unique,
            origin="c", expressions=any(p[2] is None for p in parts), descending=[p[4] == "D" for p in parts],
            prefix_lengths=[p[3] for p in parts], kind=kind))
    foreign_keys = []
    for fname, parts in fks.items():
        foreign_keys.append(ForeignKey(
            name=fname, columns=[p[0] for p in parts], ref_table=parts[0][1], ref_columns=[p[2] for p in parts],
            on_update=parts[0][3] or "NO ACTION", on_delete=parts[0][4] or "NO ACTION"))
    table_checks = [(cn, clause) for cn, clause, level in checks if cn not in json_cols or level != "Column"]
    t = Table(name=name, columns=columns, primary_key=pk, indexes=indexes, foreign_keys=foreign_keys,
              has_rowid=False, checks=[c for _, c in table_checks], check_names=[n for n, _ in table_checks],
              schema_name=db, identity_next=int(auto) if auto else None)
    t.sql = ",".join(sorted(json_cols))  # the JSON alias columns (read by the decisions)
    return t


# ---------------------------------------------------------------------- profile


def profile(url: DatabaseURL, tables: list[Table], *, deep: bool, workers: int, options, lengths: bool = False):
    """Row counts and per-column aggregates: one scan per table, tables in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    def one(t: Table):
        conn = connect(url)
        try:
            keys, exprs = [], []
            for c in t.columns:
                for k, sql in mt.profile_sql(c, mt.parse_type(c.declared), deep=deep):
                    keys.append((c.name, k))
                    exprs.append(sql)
            row = _rows(conn, f"SELECT COUNT(*){''.join(', ' + e for e in exprs)} FROM {qi(t.name)}")[0]
            values: dict[str, dict] = {}
            for (col, k), v in zip(keys, row[1:]):
                values.setdefault(col, {})[k] = v
            return t.name, int(row[0]), {c.name: mt.read_profile(values.get(c.name, {})) for c in t.columns}
        except Exception as exc:
            raise translate_error(exc, f"profiling {t.name}") from None
        finally:
            conn.close()

    counts, profiles = {}, {}
    with ThreadPoolExecutor(max_workers=min(workers, len(tables)) or 1) as ex:
        for name, rows, prof in ex.map(one, sorted(tables, key=lambda t: -len(t.columns))):
            counts[name], profiles[name] = rows, prof
    return counts, profiles


def decide(t: Table, c: Column, p, *, parent, target, options, identity: bool) -> Decision:
    json_cols = set(filter(None, (t.sql or "").split(",")))
    dec = mt.decide(c, mt.parse_type(c.declared), p, options=options, json_check=c.name in json_cols,
                    parent=None if target.name == "mysql" else parent)
    if target.name == "mysql":  # the same engine: the column's own type, character set and collation
        native = c.declared
        if c.name in json_cols:
            native = "JSON"  # MariaDB's JSON: LONGTEXT with its json_valid CHECK, which comes back with the name
        elif c.charset and c.collation:
            native += f" CHARACTER SET {c.charset} COLLATE {c.collation}"
        dec.type = dec.type.model_copy(update={"native": native})
        dec.reason = "kept as it is (MySQL to MySQL)"
        dec.warnings = []  # the conversions they would describe do not happen
        if p is not None and getattr(p, "empty_enum", 0):
            dec.warnings.append(f"{p.empty_enum} rows hold MySQL's '' error value of the ENUM (written in non-strict "
                                "mode): copied as the same '' error value")
        dec.nullable = None
        return dec
    if identity and dec.type.ct.value not in ("smallint", "integer", "bigint"):
        dec.warnings.append("AUTO_INCREMENT on a non-integer column: copied without identity")
    return dec


def read_default(t: Table, c: Column, options=None):
    """A MySQL/MariaDB default into the neutral form (every form ``COLUMN_DEFAULT`` shows: MariaDB quotes string
    literals and writes ``current_timestamp()``; MySQL 8 does neither). A zero date follows ``--zero-dates``."""
    from golive.model.defaults import Default, literal

    raw = c.default
    if raw is None or raw.upper() == "NULL":  # NULL on a NOT NULL column (MySQL 5) means: no default
        return None, None
    s = raw.strip()
    unquoted = s[1:-1] if len(s) >= 2 and s[0] == s[-1] == "'" else s
    if mt.parse_type(c.declared).base in ("date", "datetime", "timestamp") and mt.is_zero_date(unquoted):
        return Default("zero_date", unquoted, sql=getattr(options, "zero_dates", "null")), None
    if re.fullmatch(r"current_timestamp(\(\d*\))?|now\(\d*\)|localtimestamp(\(\d*\))?", s, re.I):
        return Default("now"), None
    if re.fullmatch(r"curdate\(\)|current_date(\(\))?", s, re.I):
        return Default("today"), None
    if re.fullmatch(r"curtime\(\d*\)|current_time(\(\d*\))?", s, re.I):
        return Default("time_now"), None
    if re.fullmatch(r"uuid\(\)", s, re.I):
        return Default("uuid"), None
    m = re.fullmatch(r"'((?:[^']|'')*)'", s, re.S)
    if m:  # MariaDB quotes string literals
        v = m.group(1).replace("''", "'").replace("\\\\", "\\")
        return literal(v), None
    if re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", s):
        return Default("literal", int(s) if re.fullmatch(r"[-+]?\d+", s) else float(s), sql=s), None
    if re.fullmatch(r"b'[01]+'", s):
        return literal(int(s[2:-1], 2)), None
    if "(" in s or " " in s:  # an expression (MariaDB 10.2+ / MySQL 8.0.13+)
        return Default("expr", sql=s), None
    return literal(s), None  # MySQL 8 shows string literals unquoted


# ---------------------------------------------------------------------- chunks


def chunks(conn, t: Table, rows: int, chunk_rows: int):
    """Key ranges of about ``chunk_rows`` rows: integer keys by value, other keys by key tuple."""

    key = row_key(t)
    if not key or rows <= chunk_rows:
        chunking = "int" if key and mt.parse_type(t.column(key[0]).declared).base in (
            "tinyint", "smallint", "mediumint", "int", "integer", "bigint") else ("keyset" if key else "single")
        return chunking, key, [ChunkPlan(no=0, lo=None, hi=None, rows=rows)]
    first = mt.parse_type(t.column(key[0]).declared)
    n = max(1, -(-rows // max(1, chunk_rows)))
    if first.base in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint"):
        k = qi(key[0])
        lo, hi = _rows(conn, f"SELECT MIN({k}), MAX({k}) FROM {qi(t.name)}")[0]
        if lo is None:
            return "int", key, [ChunkPlan(no=0, lo=None, hi=None, rows=0)]
        lo, hi = int(lo), int(hi)
        span = hi - lo + 1
        if span <= 4 * rows:
            step = -(-span // n)
            bounds = [lo + i * step for i in range(n)] + [hi + 1]
        else:  # sparse: row quantiles (one ordered walk of the key's index)
            per = -(-rows // n)
            bounds = [lo] + [int(r[0]) for r in _rows(
                conn, f"SELECT {k} FROM (SELECT {k}, ROW_NUMBER() OVER (ORDER BY {k}) AS rn FROM {qi(t.name)}) x "
                      f"WHERE MOD(rn, %s) = 1 AND rn > 1", (per,))] + [hi + 1]
        out = []
        for i, (a, b) in enumerate((a, b) for a, b in zip(bounds, bounds[1:]) if b > a):
            out.append(ChunkPlan(no=i, lo=a, hi=b - 1, rows=max(1, rows // n)))
        # open ends: rows inserted outside [min, max] after planning are still copied
        out[0].lo, out[-1].hi = None, None
        return "int", key, out
    # keyset: boundaries are key tuples; a chunk is (previous boundary, this boundary]
    per = -(-rows // n)
    cols = ", ".join(qi(c) for c in key)
    bounds = [list(r[:-1]) for r in _rows(
        conn, f"SELECT {cols}, rn FROM (SELECT {cols}, ROW_NUMBER() OVER (ORDER BY {cols}) AS rn FROM {qi(t.name)}) x "
              f"WHERE MOD(rn, %s) = 0", (per,))]
    bounds = [[_s(v) for v in b] for b in bounds]
    out, prev = [], None
    for i, b in enumerate(bounds + [None]):
        out.append(ChunkPlan(no=i, lo=prev, hi=b, rows=per))
        prev = b
    return "keyset", key, out


def row_key(t: Table) -> list[str]:
    """The primary key, else the first unique index whose columns are all NOT NULL, else none."""
    if t.primary_key:
        return list(t.primary_key)
    for ix in t.indexes:
        if ix.unique and ix.columns and not ix.expressions and all(
                not t.column(c).nullable for c in ix.columns) and not any(ix.prefix_lengths):
            return list(ix.columns)
    return []


# ---------------------------------------------------------------------- one moment for every reader


def snapshot(url: DatabaseURL, plan, *, workers: int, binlog: dict | None = None):
    """One consistent snapshot for every chunk reader (``golive.dialects.mysql.snapshot``); ``binlog``: online
    migration's capture, filled with the binlog position the snapshot is consistent with."""
    return _snapshot(url, plan, workers=workers, settings=READ_SETTINGS, binlog=binlog)


def consistency(url: DatabaseURL, conn, options) -> str:
    mode = options.snapshot
    if mode == "none":
        return "none: each chunk reads its own moment (--snapshot none): the source must be quiet during the copy"
    try:
        grants = " ".join(_s(r[0]) for r in _rows(conn, "SHOW GRANTS"))
    except Exception:  # noqa: BLE001
        grants = ""
    if re.search(r"ALL PRIVILEGES ON \*\.\*|RELOAD", grants):
        return ("snapshot: a short FLUSH TABLES WITH READ LOCK starts one consistent snapshot for every reader "
                "(the app may keep writing)")
    if mode == "lock":
        raise PlanError("--snapshot lock: the user lacks the RELOAD privilege FLUSH TABLES WITH READ LOCK needs")
    return ("none: the user lacks the RELOAD privilege a shared snapshot needs, so each chunk reads its own moment: "
            "the source must be quiet during the copy")


# ---------------------------------------------------------------------- reading chunks


class ChunkReader:
    """One table's chunks, rendered on the server; a connection of the run's snapshot when there is one."""

    counts_rows = True  # batches yield (lines, rows)

    def __init__(self, url: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        self.tp, self.url, self.snapshot = tp, url, snapshot
        self.pool = _pools.get(snapshot) if snapshot else None
        self.lost = False
        if self.pool is not None:
            if snapshot in _broken:
                raise TerminalError(SNAPSHOT_LOST.format(why=_broken[snapshot]))
            self.conn = self.pool.get()
        else:
            self.conn = connect(url)
            with self.conn.cursor() as cur:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        self.keycols = [qi(k) for k in tp.chunk_key]
        self.order = ", ".join(self.keycols)

    def converted(self) -> dict[str, int]:
        return {}

    def _range(self, chunk) -> tuple[str, list]:
        tp = self.tp
        if not self.keycols or (chunk.lo is None and chunk.hi is None):
            return "1=1", []
        if tp.chunking == "int":
            conds, args = [], []
            if chunk.lo is not None:
                conds.append(f"{self.keycols[0]} >= %s")
                args.append(chunk.lo)
            if chunk.hi is not None:
                conds.append(f"{self.keycols[0]} <= %s")
                args.append(chunk.hi)
            return " AND ".join(conds), args
        tup = "(" + ", ".join(self.keycols) + ")"
        ph = "(" + ", ".join(["%s"] * len(self.keycols)) + ")"
        conds, args = [], []
        if chunk.lo is not None:
            conds.append(f"{tup} > {ph}")
            args += list(chunk.lo)
        if chunk.hi is not None:
            conds.append(f"{tup} <= {ph}")
            args += list(chunk.hi)
        return " AND ".join(conds), args

    def batches(self, chunk):
        """``(wire bytes, rows)`` of the chunk in key order, about ``BATCH_BYTES`` per query."""
        tp = self.tp
        where, args = self._range(chunk)
        try:
            if tp.chunking != "int":
                yield from self._stream(where, args)
                return
            k = self.keycols[0]
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT MIN({k}), MAX({k}) FROM {qi(tp.source)} WHERE {where}", args)
                lo, hi = cur.fetchone()
            if lo is None:
                return
            lo, hi = int(lo), int(hi)
            density = max(chunk.rows, 1) / max(hi - lo + 1, 1)
            span = max(1, int(256 / max(density, 1e-9)))
            a = lo
            # an InnoDB range scan of the clustered primary key visits rows in key order: GROUP_CONCAT keeps it
            force = " FORCE INDEX (PRIMARY)" if any(ix.kind == "primary" for ix in tp.indexes) else ""
            sql = (f"SELECT CAST(GROUP_CONCAT({_pct(tp.line_sql)} SEPARATOR '') AS BINARY), COUNT(*) "
                   f"FROM {qi(tp.source)}{force} WHERE {k} BETWEEN %s AND %s")
            while a <= hi:
                b = min(hi, a + span - 1)
                with self.conn.cursor() as cur:
                    cur.execute(sql, (a, b))
                    blob, n = cur.fetchone()
                if n and blob is None:  # over max_allowed_packet: smaller spans, down to one row at a time
                    if span > 1:
                        span = max(1, span // 4)
                        continue
                    yield from self._stream(f"{k} BETWEEN %s AND %s", [a, b])
                    a = b + 1
                    continue
                blob = bytes(blob or b"")
                if blob:
                    per_key = len(blob) / (b - a + 1)
                    span = max(1, min(int(BATCH_BYTES / per_key), span * 8))
                else:
                    span = min(span * 8, 1 << 40)
                a = b + 1
                yield blob, int(n)
        except Exception as exc:
            raise self._error(exc, chunk) from None

    def _stream(self, where: str, args: list):
        """One rendered line per row (tables without an integer key), fetched in batches of bytes."""
        import pymysql.cursors

        tp = self.tp
        order = f" ORDER BY {self.order}" if self.order else ""
        with self.conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f"SELECT CAST({_pct(tp.line_sql)} AS BINARY) FROM {qi(tp.source)} WHERE {where}{order}", args)
            while rows := cur.fetchmany(5000):
                yield b"".join(bytes(r[0]) for r in rows), len(rows)

    def rows(self, chunk):
        """Lists of ``(rowkey, careful line)`` in key order (each list fully fetched: the connection stays free)."""
        tp = self.tp
        where, args = self._range(chunk)
        keys = ", ".join(self.keycols) if self.keycols else None
        sel = f"SELECT {keys + ', ' if keys else ''}CAST({_pct(tp.careful_sql)} AS BINARY) FROM {qi(tp.source)}"
        try:
            if not self.keycols:
                with self.conn.cursor() as cur:
                    cur.execute(f"{sel} WHERE {where}", args)
                    while rows := cur.fetchmany(CAREFUL_ROWS):
                        yield [(i, bytes(r[-1])) for i, r in enumerate(rows)]
                return
            last = None
            tup = "(" + ", ".join(self.keycols) + ")"
            ph = "(" + ", ".join(["%s"] * len(self.keycols)) + ")"
            while True:
                cond, a = where, list(args)
                if last is not None:
                    cond += f" AND {tup} > {ph}"
                    a += list(last)
                with self.conn.cursor() as cur:
                    cur.execute(f"{sel} WHERE {cond} ORDER BY {self.order} LIMIT {CAREFUL_ROWS}", a)
                    rows = cur.fetchall()
                if not rows:
                    return
                batch = [(tuple(r[:-1]), bytes(r[-1])) for r in rows]
                last = batch[-1][0]
                yield batch
        except Exception as exc:
            raise self._error(exc, chunk) from None

    def _error(self, exc: BaseException, chunk):
        """A lost connection of the run's snapshot cannot be retried into the same moment: the run stops."""
        err = translate_error(exc, f"reading {self.tp.source} chunk {chunk.no} from the source")
        if self.pool is not None and isinstance(err, TransientError):
            self.lost = True
            with _lock:
                _broken.setdefault(self.snapshot, str(err))
            return TerminalError(SNAPSHOT_LOST.format(why=_broken[self.snapshot]))
        return err

    def row(self, rowkey) -> dict:
        tp = self.tp
        if not self.keycols:
            return {}
        cond = " AND ".join(f"{k} <=> %s" for k in self.keycols)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {qi(tp.source)} WHERE {cond}", list(rowkey))
            row = cur.fetchone()
            names = [d[0] for d in cur.description] if cur.description else []
        return dict(zip(names, row)) if row else {}

    def key(self, rowkey, row: dict) -> dict:
        if not self.tp.chunk_key:
            return {"row": rowkey}
        return {k: key_value(v) for k, v in zip(self.tp.chunk_key, rowkey)}

    def close(self) -> None:
        if self.pool is not None and not self.lost:
            self.pool.put(self.conn)
        else:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass


# ---------------------------------------------------------------------- online migration: rows by key

KEYS_PER_QUERY = 500


def read_keys(url: DatabaseURL, tp, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
    """The rows of ``keys`` as the source has them now, ``(key, careful line)`` each, read in one snapshot. A key
    comes back as it was asked for (the capture's values), so the catch-up knows which keys were deleted."""
    cols = [qi(k) for k in tp.key]
    sel = f"SELECT {', '.join(cols)}, CAST({_pct(tp.careful_sql)} AS BINARY) FROM {qi(tp.source)}"
    asked = {_key_text(k): tuple(k) for k in keys}
    out = []
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            for i in range(0, len(keys), KEYS_PER_QUERY):
                part = keys[i:i + KEYS_PER_QUERY]
                if any(v is None for k in part for v in k):  # full-row identity: NULL matches NULL
                    one = "(" + " AND ".join(f"{c} <=> %s" for c in cols) + ")"
                    where = " OR ".join(one for _ in part)
                elif len(cols) == 1:
                    where = f"{cols[0]} IN ({', '.join('%s' for _ in part)})"
                else:
                    one = "(" + ", ".join("%s" for _ in cols) + ")"
                    where = f"({', '.join(cols)}) IN ({', '.join(one for _ in part)})"
                cur.execute(f"{sel} WHERE {where}", [v for k in part for v in k])
                for row in cur.fetchall():
                    key = tuple(row[:-1])
                    out.append((asked.get(_key_text(key), key), bytes(row[-1])))
        conn.rollback()
    except Exception as exc:
        raise translate_error(exc, f"reading the changed rows of {tp.source} from the source") from None
    finally:
        conn.close()
    return out


def _key_text(key) -> tuple:
    return tuple(str(v) for v in key)


# ---------------------------------------------------------------------- the concern


class MySQLSource(Source):
    """MySQL / MariaDB as a migration source, read in one consistent snapshot."""

    def introspect(self, conn, url: DatabaseURL, options=None):
        return introspect(conn, url).without_bookkeeping()

    def consistency(self, url: DatabaseURL, conn, options) -> str:
        return consistency(url, conn, options)

    def copy_options(self, options, schema=None) -> dict:
        return {"snapshot": options.snapshot, "zero_dates": options.zero_dates, "datetime_as": options.datetime_as,
                "source_time_zone": options.source_time_zone, "uuid_binary": options.uuid_binary}

    def profile(self, url, tables, *, deep: bool, workers: int, options=None, lengths: bool = False):
        return profile(url, tables, deep=deep, workers=workers, options=options, lengths=lengths)

    def decide(self, t, c, p, *, parent, target, options, identity: bool):
        return decide(t, c, p, parent=parent, target=target, options=options, identity=identity)

    def read_default(self, t, c, options=None):
        return read_default(t, c, options)

    def index_expressions(self, ix):
        return None  # functional key parts (MySQL 8) are reported: information_schema shows no expression

    def row_key(self, t) -> list[str]:
        return row_key(t) or [c.name for c in t.columns]

    def chunks(self, conn, t, rows: int, chunk_rows: int):
        return chunks(conn, t, rows, chunk_rows)

    def render(self, t, tp, wire, plan) -> tuple[str, str]:
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

    def snapshot(self, url: DatabaseURL, plan, *, workers: int):
        return snapshot(url, plan, workers=workers)

    def chunk_reader(self, url: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        return ChunkReader(url, plan, tp, snapshot=snapshot)

    def read_keys(self, url: DatabaseURL, plan, tp, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
        return read_keys(url, tp, keys)

    def size(self, url: DatabaseURL) -> int:
        conn = connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                            "WHERE table_schema = DATABASE()")
                return int(cur.fetchone()[0])
        finally:
            conn.close()

    def count_tables(self, url: DatabaseURL, plan, tables: list[str]) -> dict[str, int]:
        conn = connect(url)
        try:
            with conn.cursor() as cur:
                out = {}
                for t in tables:
                    cur.execute(f"SELECT COUNT(*) FROM {qi(t)}")
                    out[t] = cur.fetchone()[0]
                return out
        finally:
            conn.close()


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

"""Content checksums: prove that every row arrived with every value, chunk by chunk, and name the rows that did not.

For each key range, both sides render their rows as canonical text in key order (``sqlite_checksums`` /
``postgresql_checksums``) and hash it: SQLite concatenates the values (``group_concat``) and Python hashes
them with ``hashlib``; PostgreSQL computes ``sha256(string_agg(...))`` itself, so only the digest travels.
JSON is hashed as PostgreSQL normalises it: the source's JSON text is shipped to PostgreSQL and printed
through ``jsonb``, which orders keys and spaces the way the target column does.

A range whose row count or digests differ is narrowed down by bisection (the idea of data-diff): halve
the key range, compare both halves, recurse into the halves that differ, until a range holds few rows.
Those rows are then compared one by one; a value whose canonical texts differ is finally judged by
PostgreSQL parsing the text the copy sent (``value_sql``), so a canonicalisation gap never produces a
false report. The first ``limit`` differing keys per range are reported.

Rows the copy rejected (recorded with their keys in ``_golive.chunks``) are expected to be missing:
they are left out on the source side.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections import Counter
from typing import NamedTuple

from golive.dialects.postgresql import checksums as pgc
from golive.dialects.sqlite import checksums as sqc
from golive.dialects.postgresql.dialect import PostgresDialect
from golive.dialects.postgresql.session import qi as pqi, qn
from golive.dialects.sqlite.dialect import SQLiteDialect
from golive.dialects.sqlite.session import qi as sqi
from golive.errors import SourceError, TransientError
from golive.model.plan import TablePlan
from golive.model.types import CT, TEXT_TYPES, TargetType
from golive.urls import DatabaseURL
from golive.validation.model import CheckColumn, Difference, KeyColumn, RangeCheck, TableSpec

log = logging.getLogger(__name__)

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: a range holding at most this many rows (per side) is compared row by row
LEAF_ROWS = 2000
#: rows per checksum query (a chunk is split into sub-ranges of about this many rows)
SUB_RANGE_ROWS = 60_000
#: tables without an integer key are narrowed in memory up to this many rows
MAX_UNKEYED_ROWS = 1_000_000
INT_TYPES = (CT.SMALLINT, CT.INTEGER, CT.BIGINT)


class _Side(NamedTuple):
    rows: int
    row_digest: str | None
    json_digest: str | None
    lo: int | None
    hi: int | None

    def same(self, other: "_Side") -> bool:
        return (self.rows, self.row_digest, self.json_digest) == (other.rows, other.row_digest, other.json_digest)


class _TooBig(Exception):
    """A range too big for one query (string length limits): split it."""


# ---------------------------------------------------------------------- specs


def build_spec(tp: TablePlan, schema: str, rejected: list[dict], plan=None) -> TableSpec:
    """How to compare one planned table: key kind, columns, ranges (intkey ranges are added by ``key_ranges``)."""
    columns = [CheckColumn(source=c.source, target=c.target, type=c.type, sql_type=c.sql_type, nullable=c.nullable,
                           source_expr=c.source_expr)
               for c in tp.columns if not c.generated_sql]
    by_source = {c.source: c for c in tp.columns}
    common = dict(source=tp.source, target=tp.target, schema_name=tp.target_schema or schema, columns=columns,
                  rows_hint=tp.rows, rejected=rejected,
                  source_dialect=plan.source_dialect if plan else "sqlite", source_schema=tp.source_schema,
                  source_name=tp.source_name, natives={c.source: c.declared for c in tp.columns},
                  native_target=bool(plan and plan.source_dialect == plan.target_dialect),
                  options=dict(plan.options) if plan else {})
    if tp.key == ["rowid"]:
        return TableSpec(kind="bag", key=[KeyColumn(source="rowid", target="", type=TargetType(ct=CT.BIGINT))],
                         **common)
    key = [KeyColumn(source=k, target=by_source[k].target, type=by_source[k].type) for k in tp.key]
    if tp.has_rowid and len(tp.key) == 1 and tp.identity is not None and key[0].target == tp.identity:
        ranges = [(ch.lo, ch.hi, ch.rows) for ch in tp.chunks] or [(0, 0, 0)]
        return TableSpec(kind="rowid", key=key, ranges=ranges, **common)
    if key[0].type.ct in INT_TYPES:
        return TableSpec(kind="intkey", key=key, **common)
    return TableSpec(kind="sorted", key=key, **common)


def key_ranges(source: DatabaseURL, spec: TableSpec, chunk_rows: int) -> TableSpec:
    """Split an ``intkey`` table into value ranges of the first key column (index min/max, equal spans)."""
    if spec.kind != "intkey":
        return spec
    side = source_sql(source, spec)
    try:
        k = side.key_expr(spec.key[0])
        lo, hi = side.run(f"SELECT min({k}), max({k}) FROM {side.table} WHERE {k} BETWEEN {INT_MIN} AND {INT_MAX}",
                          [])[0]
    finally:
        side.close()
    if lo is None:
        spec.ranges = [(0, 0, 0)]
        return spec
    lo, hi = int(lo), int(hi)
    n = max(1, min(hi - lo + 1, -(-spec.rows_hint // max(1, chunk_rows))))
    step = -(-(hi - lo + 1) // n)
    bounds = [lo + i * step for i in range(n)] + [hi + 1]
    spec.ranges = [(a, b - 1, spec.rows_hint // n) for a, b in zip(bounds, bounds[1:]) if b > a]
    return spec


# ---------------------------------------------------------------------- SQL of one table


class _SourceSQL:
    """The source side's SQL for one table; one subclass per source dialect (its ``*_checksums`` module)."""

    hash_in_sql = False  # the streams come back and Python hashes them (SQLite, MySQL)
    ph = "?"
    #: rows per checksum query: MySQL sends a range's streams in one packet (max_allowed_packet, 16 MB)
    sub_range_rows = 60_000

    def checksum_row(self, sql: str, args):
        return self.run(sql, args)[0]

    def __init__(self, spec: TableSpec, nullable: dict[str, bool]):
        self.spec = spec
        self.nullable = nullable

    def expr(self, c) -> str:
        return c.source_expr or self.quote(c.source)

    def close(self):
        pass


class _SQLiteSource(_SourceSQL):
    ph = "?"

    def __init__(self, spec: TableSpec, nullable: dict[str, bool], source: DatabaseURL, fallback: str | None):
        super().__init__(spec, nullable)
        self.quote = sqi
        self.table = sqi(spec.source)
        self.fallback = fallback
        self.conn = SQLiteDialect().connect(source, raw_text=True)
        if fallback:
            import codecs

            def decode(v, _col):
                if not isinstance(v, bytes):
                    return v
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    try:
                        return codecs.decode(v, fallback)
                    except UnicodeDecodeError:
                        return v

            self.conn.create_function("golive_text", 2, decode, deterministic=True)

    def expr(self, c) -> str:
        e = c.source_expr or sqi(c.source)
        if self.fallback and c.type.ct in TEXT_TYPES + (CT.JSON,):
            return f"golive_text(CAST({e} AS BLOB), '')"
        return e

    def columns(self):
        return [(self.expr(c), c.type) for c in self.spec.columns]

    def streams(self):
        return sqc.streams([(self.expr(c), c.type, self.nullable.get(c.source, True)) for c in self.spec.columns])

    def json(self):
        return sqc.json_sql(self.columns()) or "NULL"

    def rowtext(self):
        return sqc.row_text_sql(self.columns())

    def keytext(self):
        return sqc.key_text_sql([(self.key_expr(k), k.type) for k in self.spec.key])

    def key_expr(self, k) -> str:
        if self.spec.kind == "rowid" and k.source == "rowid":
            return "rowid"
        col = next((c for c in self.spec.columns if c.source == k.source), None)
        return self.expr(col) if col is not None else sqi(k.source)

    def order(self):
        spec = self.spec
        if spec.kind == "rowid":
            return "rowid"
        if spec.kind in ("intkey", "sorted"):
            return ", ".join(self.key_expr(k) + (" COLLATE BINARY" if k.type.ct in sqc.TEXT_TYPES else "")
                             for k in spec.key)
        return f"{self.rowtext()}, {self.json()}"

    def range_key(self):
        return "rowid" if self.spec.kind == "rowid" else (self.key_expr(self.spec.key[0]) if self.spec.kind == "intkey" else None)

    def canonical(self, c) -> str:
        e = self.expr(c)
        return (sqc.canonical_sql(e, c.type) or e) if c.type.ct not in sqc.TEXT_TYPES else e

    def rendered(self, c) -> str:
        return f"CAST({sqc.rendered_sql(self.expr(c), c.type)} AS TEXT)"

    def checksum(self, where: str, args: list):
        streams = self.streams()
        if self.spec.kind == "rowid":  # a rowid range is visited in rowid order: no subquery needed
            aggs = "".join(f", group_concat({e}, {sep})" for e, sep, _ in streams)
            return (f"SELECT count(*), min(rowid), max(rowid), group_concat({self.json()}, char(10)){aggs} "
                    f"FROM {self.table} {where}"), args
        k = self.range_key() or "NULL"
        inner = ", ".join(f"{e} AS s{i}" for i, (e, _, _) in enumerate(streams))
        aggs = "".join(f", group_concat(s{i}, {sep})" for i, (_, sep, _) in enumerate(streams))
        return (f"SELECT count(*), min(k), max(k), group_concat(j, char(10)){aggs} FROM "
                f"(SELECT {k} AS k, {self.json()} AS j{', ' + inner if inner else ''} FROM {self.table} "
                f"{where} ORDER BY {self.order()})"), args

    def run(self, sql: str, args):
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.DataError as exc:  # string or blob too big
            raise _TooBig(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"{self.spec.source}: reading the source for the checksum failed: {exc}") from None

    def close(self):
        self.conn.close()


class _MySQLSource(_SourceSQL):
    ph = "%s"
    sub_range_rows = 12_000

    def __init__(self, spec: TableSpec, nullable: dict[str, bool], source: DatabaseURL, natives: dict[str, str]):
        from golive.dialects.mysql import checksums as myc

        super().__init__(spec, nullable)
        self.m = myc
        self.quote = myc.quote
        self.table = myc.quote(spec.source)
        self.natives = natives
        self.conn = myc.connect(source)

    def columns(self):
        return [(self.expr(c), c.type) for c in self.spec.columns]

    def streams(self):
        return self.m.streams([(self.expr(c), c.type, self.nullable.get(c.source, True), self.natives.get(c.source, ""))
                               for c in self.spec.columns])

    def json(self):
        return self.m.json_sql(self.columns())

    def rowtext(self):
        return self.m.row_text_sql([(self.expr(c), c.type, self.natives.get(c.source, "")) for c in self.spec.columns])

    def key_expr(self, k) -> str:
        return self.quote(k.source)

    def keytext(self):
        return self.m.key_text_sql([(self.key_expr(k), k.type, self.natives.get(k.source, "")) for k in self.spec.key])

    def order(self):
        if self.spec.kind in ("intkey", "sorted"):
            return self.m.order_sql([(self.key_expr(k), k.type) for k in self.spec.key])
        return f"CAST({self.rowtext()} AS BINARY)"

    def range_key(self):
        return self.key_expr(self.spec.key[0]) if self.spec.kind == "intkey" else None

    def canonical(self, c) -> str:
        e = self.expr(c)
        return self.m.canonical_sql(e, c.type, native=self.natives.get(c.source, "")) or e

    def rendered(self, c) -> str:
        return self.m.rendered_sql(self.expr(c), c.type, native=self.natives.get(c.source, ""))

    def checksum(self, where: str, args: list):
        k = self.range_key() or "NULL"
        return self.m.checksum_sql(self.table, where, self.order(), self.streams(), self.json(), k), args

    def run(self, sql: str, args):
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.replace("%", "%%").replace("%%s", "%s"), args)
                rows = cur.fetchall()
        except Exception as exc:
            from golive.dialects.mysql.session import translate_error

            raise translate_error(exc, f"{self.spec.source}: reading the source for the checksum") from None
        return rows

    def checksum_row(self, sql: str, args):
        row = self.run(sql, args)[0]
        if row[0] and any(v is None for v in row[4:]):  # a result over max_allowed_packet comes back NULL
            raise _TooBig("a stream is longer than the server's max_allowed_packet")
        return row

    def close(self):
        self.conn.close()


class _PostgresSource(_SourceSQL):
    """A PostgreSQL source: the same canonical SQL as the target side, digests computed in SQL."""

    hash_in_sql = True
    ph = "%s"

    def __init__(self, spec: TableSpec, nullable: dict[str, bool], source: DatabaseURL, relation: str):
        super().__init__(spec, nullable)
        self.quote = pqi
        self.table = f"{relation} AS src"  # ORDER BY src."id": output columns of the same name stay apart
        self.conn = PostgresDialect().connect(source, autocommit=True, settings=pgc.SESSION, role="source")

    def columns(self):
        return [(self.col(c), c.type) for c in self.spec.columns]

    def col(self, c) -> str:
        """The column as the target holds it: as text where the target made text of another type (ranges,
        inet, enums for MySQL), as the copy rendered it where the forms differ (intervals for MySQL)."""
        if self.spec.native_target or c.type.ct in (CT.JSON,):
            return c.source
        if c.type.ct == CT.INTERVAL:
            from golive.dialects.postgresql.source import value_sql

            return f"({value_sql(c.source, c.type, 'interval')})"
        if c.type.ct in pgc.TEXT_TYPES + (CT.ENUM,):
            return f"({pqi(c.source)})::text"
        return c.source

    def streams(self):
        return pgc.streams([(self.col(c), c.type, self.nullable.get(c.source, True)) for c in self.spec.columns])

    def json(self):
        return pgc.json_sql(self.columns()) or "NULL::text"

    def rowtext(self):
        return pgc.row_text_sql(self.columns())

    def key_expr(self, k) -> str:
        return pqi(k.source)

    def keytext(self):
        return pgc.key_text_sql([(k.source, k.type) for k in self.spec.key])

    def order(self):
        if self.spec.kind in ("intkey", "sorted"):
            return pgc.order_sql([(k.source, k.type) for k in self.spec.key], alias="src")
        return f'({self.rowtext()}) COLLATE "C", ({self.json()}) COLLATE "C"'

    def range_key(self):
        return pqi(self.spec.key[0].source) if self.spec.kind == "intkey" else None

    def canonical(self, c) -> str:
        e = self.col(c)
        e = e if e.startswith("(") else pqi(e)
        return (pgc.canonical_sql(e, c.type) or f"({e})::text") if c.type.ct not in pgc.TEXT_TYPES else e

    def rendered(self, c) -> str:
        return f"({pqi(c.source)})::text"

    json_raw = False  # True when the target normalises JSON differently: the text comes back to Python

    def checksum(self, where: str, args: list):
        k = self.range_key() or "NULL::bigint"
        aggs = "".join(f", {a}" for a in self.streams())
        js = (f"convert_to(string_agg({self.json()}, E'\\n'), 'UTF8')" if self.json_raw else
              f"encode(sha256(convert_to(string_agg({self.json()}, E'\\n'), 'UTF8')), 'hex')")
        return (f"SELECT count(*), min({k}), max({k}), {js}{aggs} FROM (SELECT * FROM {self.table} {where} "
                f"ORDER BY {self.order()}) s"), args

    def run(self, sql: str, args):
        import psycopg

        try:
            return self.conn.execute(sql, args).fetchall()
        except (psycopg.errors.ProgramLimitExceeded, psycopg.errors.OutOfMemory) as exc:
            raise _TooBig(str(exc)) from None
        except psycopg.OperationalError as exc:
            raise TransientError(f"{self.spec.source}: reading the source: {str(exc).strip().splitlines()[0]}") from None

    def close(self):
        self.conn.close()


def mirror(spec: TableSpec) -> TableSpec:
    """The target's view of a table as a "source" spec: its own column names and types (a MySQL target is read
    with the same SQL as a MySQL source, so both sides' streams are made the same way)."""
    from golive.validation.model import CheckColumn, KeyColumn

    cols = [CheckColumn(source=c.target, target=c.target, type=c.type, sql_type=c.sql_type, nullable=c.nullable)
            for c in spec.columns]
    key = [KeyColumn(source=k.target or k.source, target=k.target, type=k.type) for k in spec.key]
    return spec.model_copy(update={"source": spec.target, "columns": cols, "key": key, "rejected": [],
                                   "natives": {c.target: c.sql_type for c in spec.columns},
                                   "kind": "intkey" if spec.kind == "rowid" else spec.kind})


def normalise_json_lines(blob) -> str:
    """SHA-256 of JSON values (one per line, '' for NULL) re-serialised the same way on both sides: for targets
    that keep JSON text as it was sent (MariaDB), compared with a source's text."""
    import json

    out = []
    for line in _bytes(blob).decode("utf-8", "surrogateescape").split("\n"):
        if line == "":
            out.append("")
            continue
        try:
            out.append(json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        except ValueError:
            out.append("\x00" + line)
    return hashlib.sha256("\n".join(out).encode("utf-8", "surrogateescape")).hexdigest()


def source_sql(source: DatabaseURL, spec: TableSpec) -> _SourceSQL:
    """The source side of one table's comparison, for the source's dialect."""
    nullable = {c.source: c.nullable for c in spec.columns}
    if source.dialect == "sqlite":
        return _SQLiteSource(spec, nullable, source, spec.options.get("text_encoding_fallback"))
    if source.dialect == "mysql":
        return _MySQLSource(spec, nullable, source, spec.natives)
    return _PostgresSource(spec, nullable, source, qn(spec.source_schema or "public", spec.source_name or spec.source))


class _Sql:
    """The SQL for one table on both sides (built once per task)."""

    def __init__(self, spec: TableSpec, src: _SourceSQL, nullable: dict[str, bool] | None = None):
        self.spec = spec
        self.src = src
        nullable = nullable or {}
        tcols = [(c.target, c.type) for c in spec.columns]
        self.tgt_table = qn(spec.schema_name, spec.target)
        self.tgt_streams = pgc.streams([(c.target, c.type, nullable.get(c.source, True)) for c in spec.columns])
        self.tgt_json = pgc.json_sql(tcols) or "NULL::text"
        self.tgt_rowtext = pgc.row_text_sql(tcols)
        kind = spec.kind
        self.src_k = src.range_key()
        self.tgt_k = pqi(spec.key[0].target) if kind in ("rowid", "intkey") else None
        if kind in ("rowid", "intkey", "sorted"):
            self.tgt_order = pgc.order_sql([(k.target, k.type) for k in spec.key])
        else:  # no key: the rows' own texts order them the same way on both sides (bytewise)
            self.tgt_order = f'({self.tgt_rowtext}) COLLATE "C", ({self.tgt_json}) COLLATE "C"'
        self.keyed = kind != "bag"
        self.src_streams = src.streams()
        self.exclusion, self.exclusion_args, self.rejected_texts = self._exclusion()

    def _exclusion(self) -> tuple[str, list, set]:
        """Source condition leaving out the rows the copy rejected."""
        spec, ph = self.spec, self.src.ph
        if not spec.rejected:
            return "", [], set()
        if spec.kind in ("rowid", "bag") and isinstance(self.src, _SQLiteSource):
            name = spec.key[0].source
            ids = sorted({int(r[name]) for r in spec.rejected if isinstance(r.get(name), (int, float))})
            return (f" AND rowid NOT IN ({', '.join(map(str, ids))})" if ids else ""), [], set()
        names = [k.source for k in spec.key]
        rows = [tuple(r.get(n) for n in names) for r in spec.rejected if all(n in r for n in names)]
        if not rows:
            return "", [], set()
        if len(rows) * len(names) > 900:  # too many parameters: filter by key text in Python instead
            texts = {sqc.FIELD_SEP.join("\\N" if v is None else str(v) for v in row) for row in rows}
            return " AND NOT golive_rejected(" + self.src_keytext() + ")", [], texts
        q = self.src.quote
        if len(names) == 1:
            # NOT IN with a NULL inside is never true: a rejected NULL key leaves out the NULL keys instead
            values = [r[0] for r in rows if r[0] is not None]
            col = self.src.key_expr(spec.key[0])
            cond = f" AND {col} IS NOT NULL" if len(values) < len(rows) else ""
            if values:
                cond += f" AND {col} NOT IN ({', '.join(ph for _ in values)})"
            return cond, values, set()
        one = "(" + ", ".join(ph for _ in names) + ")"
        cols = "(" + ", ".join(q(n) for n in names) + ")"
        return (f" AND {cols} NOT IN (VALUES {', '.join(one for _ in rows)})" if isinstance(self.src, _SQLiteSource)
                else f" AND {cols} NOT IN ({', '.join(one for _ in rows)})", [v for r in rows for v in r], set())

    # --- range predicates

    def src_where(self, lo, hi) -> tuple[str, list]:
        ph = self.src.ph
        if self.src_k is None or lo is None:
            return "WHERE 1=1" + self.exclusion, list(self.exclusion_args)
        return f"WHERE {self.src_k} BETWEEN {ph} AND {ph}" + self.exclusion, [lo, hi] + list(self.exclusion_args)

    def tgt_where(self, lo, hi) -> tuple[str, list]:
        if self.tgt_k is None or lo is None:
            return "", []
        return f"WHERE {self.tgt_k} BETWEEN %s AND %s", [lo, hi]

    def src_keytext(self) -> str:
        return self.src.keytext()

    def tgt_keytext(self) -> str:
        return pgc.key_text_sql([(k.target, k.type) for k in self.spec.key])

    # --- checksums

    def src_checksum(self, lo, hi) -> tuple[str, list]:
        where, args = self.src_where(lo, hi)
        return self.src.checksum(where, args)

    def tgt_checksum(self, lo, hi) -> tuple[str, list]:
        """PostgreSQL digests of a range; for a key whose order is not the rows' physical order (intkey), a
        bitmap scan plus an in-memory sort beats visiting the heap in index order."""
        where, args = self.tgt_where(lo, hi)
        k = self.tgt_k or "NULL::bigint"
        aggs = "".join(f", {a}" for a in self.tgt_streams)
        return (f"SELECT count(*), min({k}), max({k}), encode(sha256(convert_to(string_agg({self.tgt_json}, E'\\n'), "
                f"'UTF8')), 'hex'){aggs} FROM "
                f"(SELECT * FROM {self.tgt_table} {where} ORDER BY {self.tgt_order}) s"), args


# ---------------------------------------------------------------------- comparing


class Comparer:
    """Compares ranges of one table; holds one SQLite and one PostgreSQL connection."""

    def __init__(self, source: DatabaseURL, target: DatabaseURL, spec: TableSpec, *, limit: int = 10):
        self.spec, self.limit = spec, limit
        self.src = source_sql(source, spec)
        self.sql = _Sql(spec, self.src, {c.source: c.nullable for c in spec.columns})
        self.my = None  # a MySQL target, read like a MySQL source
        try:
            if target.dialect == "mysql":
                self.my = _MySQLSource(mirror(spec), {c.target: c.nullable for c in spec.columns}, target,
                                       {c.target: c.sql_type for c in spec.columns})
                self.my_sql = _Sql(self.my.spec, self.my, {c.target: c.nullable for c in spec.columns})
                self.pg = None
                if isinstance(self.src, _PostgresSource):
                    self.src.json_raw = True
            else:
                self.pg = PostgresDialect().connect(target, autocommit=True, settings=pgc.SESSION)
        except Exception:
            self.src.close()
            raise
        if self.sql.rejected_texts:
            if not isinstance(self.src, _SQLiteSource):
                raise SourceError(f"{spec.source}: too many rejected rows to leave out of the comparison")
            texts = self.sql.rejected_texts
            self.src.conn.create_function("golive_rejected", 1, lambda t: _text(t) in texts, deterministic=True)
        self.narrowed = 0
        self._no_index_scan = False

    def close(self) -> None:
        self.src.close()
        (self.my or self.pg).close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- one range

    def check(self, range_no: int) -> RangeCheck:
        """Compare range ``range_no`` of the spec (the whole table for unkeyed kinds)."""
        t0 = time.perf_counter()
        spec = self.spec
        out = RangeCheck(table=spec.source, range_no=range_no)
        if spec.kind in ("rowid", "intkey"):
            lo, hi, rows = spec.ranges[range_no]
            parts = _split(lo, hi, rows, self.src.sub_range_rows)
            first, last = range_no == 0, range_no == len(spec.ranges) - 1
            out.lo, out.hi = (INT_MIN if first else lo), (INT_MAX if last else hi)
            for i, (a, b) in enumerate(parts):
                a = INT_MIN if first and i == 0 else a
                b = INT_MAX if last and i == len(parts) - 1 else b
                self._compare(a, b, out)
                if len(out.differences) >= self.limit:
                    break
        else:
            self._compare(None, None, out)
        out.match = not out.differences
        out.narrowed = self.narrowed
        out.seconds = round(time.perf_counter() - t0, 3)
        return out

    def _compare(self, lo, hi, out: RangeCheck) -> None:
        sides = self._sides_or_none(lo, hi)
        if sides is None and lo is not None and lo < hi:  # too big for one query: halves
            mid = _mid(lo, hi)
            self._compare(lo, mid, out)
            if len(out.differences) < self.limit:
                self._compare(mid + 1, hi, out)
            return
        if sides is not None:
            src, tgt = sides
            out.source_rows += src.rows
            out.target_rows += tgt.rows
            if src.same(tgt):
                return
        else:
            src = tgt = None
        self._narrow(lo, hi, src, tgt, out.differences)

    def _sides_or_none(self, lo, hi) -> tuple["_Side", "_Side"] | None:
        try:
            return self.sides(lo, hi)
        except _TooBig:
            return None

    def sides(self, lo, hi) -> tuple[_Side, _Side]:
        """Row count and digests of the range on both sides."""
        return self.source_side(lo, hi), self.target_side(lo, hi)

    def source_side(self, lo, hi) -> _Side:
        sql, args = self.sql.src_checksum(lo, hi)
        return self._side(self.src, self.sql, sql, args)

    def _side(self, side, sqls, sql, args) -> _Side:
        row = side.checksum_row(sql, args)
        rows, kmin, kmax, jblob = row[:4]
        if side.hash_in_sql:  # PostgreSQL: digests already, the same ones the target side computes
            if self.my is not None and jblob is not None:
                jblob = normalise_json_lines(jblob)
            return _Side(rows, _combine([bytes(d).hex() if d is not None else None for d in row[4:]]), jblob, kmin, kmax)
        digests = []
        for (_, _, enc), b in zip(sqls.src_streams, row[4:]):
            if b is None:
                digests.append(None)
            elif enc == "float8":
                digests.append(hashlib.sha256(sqc.float8_bytes(_bytes(b))).hexdigest())
            else:
                digests.append(hashlib.sha256(_bytes(b)).hexdigest())
        json_digest = None
        if jblob is not None:
            if self.my is not None:
                json_digest = normalise_json_lines(jblob)
            else:
                json_digest = self._pg_one(pgc.normalise_json_sql(), (_bytes(jblob),),
                                           what="normalising the source's JSON")[0]
        return _Side(rows, _combine(digests), json_digest, kmin, kmax)

    def target_side(self, lo, hi) -> _Side:
        if self.my is not None:
            sql, args = self.my_sql.src_checksum(lo, hi)
            return self._side(self.my, self.my_sql, sql, args)
        sql, args = self.sql.tgt_checksum(lo, hi)
        if self.spec.kind == "intkey" and not self._no_index_scan:
            self._no_index_scan = True
            if not self._all_visible():
                self.pg.execute("SET enable_indexscan = off")
        row = self._pg_one(sql, args, what="checksumming the target")
        rows, kmin, kmax, json_digest = row[:4]
        return _Side(rows, _combine([bytes(d).hex() if d is not None else None for d in row[4:]]), json_digest, kmin, kmax)

    def _all_visible(self) -> bool:
        """Is (nearly) every page of the target table all-visible (VACUUMed since the load)?

        Then an index-only scan reads a key range in key order without touching the heap; otherwise
        a key order that is not the physical order makes index scans visit pages at random, and a
        bitmap scan plus a sort is cheaper.
        """
        row = self.pg.execute("SELECT relpages, relallvisible FROM pg_class WHERE oid = to_regclass(%s)",
                              (self.sql.tgt_table,)).fetchone()
        return bool(row) and row[1] >= 0.9 * row[0]

    def _pg_one(self, sql: str, args, *, what: str):
        import psycopg

        try:
            return self.pg.execute(sql, args).fetchone()
        except (psycopg.errors.ProgramLimitExceeded, psycopg.errors.OutOfMemory) as exc:
            raise _TooBig(str(exc)) from None
        except psycopg.errors.InvalidTextRepresentation as exc:  # source JSON PostgreSQL cannot read
            raise _TooBig(str(exc)) from None
        except psycopg.OperationalError as exc:
            raise TransientError(f"{self.spec.source}: {what}: {str(exc).strip().splitlines()[0]}") from None
        except psycopg.errors.InternalError_ as exc:
            if "memory" in str(exc):
                raise _TooBig(str(exc)) from None
            raise

    # --- narrowing down

    def _narrow(self, lo, hi, src: _Side | None, tgt: _Side | None, found: list[Difference]) -> None:
        """Bisect a differing range until it is small, then compare its rows one by one."""
        self.narrowed += 1
        small = src is not None and src.rows <= LEAF_ROWS and tgt.rows <= LEAF_ROWS
        if lo is None or small or lo >= hi:
            found.extend(self.leaf(lo, hi)[: self.limit - len(found)])
            return
        a, b = lo, hi
        if src is not None:  # bisect the span the rows occupy on either side
            lows = [int(x) for x in (src.lo, tgt.lo) if x is not None]
            highs = [int(x) for x in (src.hi, tgt.hi) if x is not None]
            a = max(lo, min(lows)) if lows else lo
            b = min(hi, max(highs)) if highs else hi
        if a >= b:
            found.extend(self.leaf(lo, hi)[: self.limit - len(found)])
            return
        mid = _mid(a, b)
        for x, y in ((lo, mid), (mid + 1, hi)):
            sides = self._sides_or_none(x, y)
            if sides is None:
                self._narrow(x, y, None, None, found)
            elif not sides[0].same(sides[1]):
                self._narrow(x, y, sides[0], sides[1], found)
            if len(found) >= self.limit:
                return

    # --- row by row

    def leaf(self, lo, hi) -> list[Difference]:
        """Compare the rows of a (small) range one by one."""
        if self.spec.kind == "bag":
            return self._bag_leaf()
        spec, sql, src = self.spec, self.sql, self.src
        ncol = len(spec.columns)
        nkey = len(spec.key)
        canon_s = [src.canonical(c) for c in spec.columns]
        rendered = [src.rendered(c) for c in spec.columns]
        keyraw_s = [src.key_expr(k) for k in spec.key]
        where, args = sql.src_where(lo, hi)
        q = (f"SELECT {sql.src_keytext()}, {', '.join(keyraw_s)}, {', '.join(canon_s)}, {', '.join(rendered)} "
             f"FROM {src.table} {where} ORDER BY {src.order()}")
        src_rows = {}
        for row in src.run(q, args):
            src_rows[_text(row[0])] = (row[1:1 + nkey], [_plain(v) for v in row[1 + nkey:1 + nkey + ncol]],
                                       [_plain(v) for v in row[1 + nkey + ncol:]])
        if self.my is not None:
            my, my_sql = self.my, self.my_sql
            twhere, targs = my_sql.src_where(lo, hi)
            tq = (f"SELECT {my.keytext()}, {', '.join(my.key_expr(k) for k in my.spec.key)}, "
                  f"{', '.join(my.canonical(c) for c in my.spec.columns)} FROM {my.table} {twhere}")
            tgt_rows = {_text(r[0]): (r[1:1 + nkey], [_plain(v) for v in r[1 + nkey:]]) for r in my.run(tq, targs)}
        else:
            canon_t = [(pgc.canonical_sql(pqi(c.target), c.type) or f"({pqi(c.target)})::text")
                       if c.type.ct not in pgc.TEXT_TYPES else pqi(c.target) for c in spec.columns]
            twhere, targs = sql.tgt_where(lo, hi)
            tq = (f"SELECT {sql.tgt_keytext()}, {', '.join(pqi(k.target) for k in spec.key)}, {', '.join(canon_t)} "
                  f"FROM {sql.tgt_table} {twhere}")
            tgt_rows = {r[0]: (r[1:1 + nkey], list(r[1 + nkey:])) for r in self.pg.execute(tq, targs)}
        out: list[Difference] = []
        for kt, (kraw, canon, rend) in src_rows.items():
            if kt not in tgt_rows:
                out.append(Difference(table=spec.source, kind="missing", key=self._key(kraw)))
                continue
            tcanon = tgt_rows.pop(kt)[1]
            for i, c in enumerate(spec.columns):
                s, t = canon[i], tcanon[i]
                if s == t or (s is not None and t is not None and str(s) == str(t)):
                    continue
                if self._same_after_parsing(c, rend[i], t):
                    continue
                out.append(Difference(table=spec.source, kind="value", key=self._key(kraw), column=c.source,
                                      source=_show(rend[i]), target=_show(t)))
        for kt, (kraw, _) in tgt_rows.items():
            out.append(Difference(table=spec.source, kind="extra", key=self._key(kraw, target=True)))
        return out

    def _same_after_parsing(self, c: CheckColumn, rendered, target) -> bool:
        """Does PostgreSQL read the text the copy sent as exactly the value the target holds?"""
        import psycopg

        if rendered is None or target is None:
            return rendered is None and target is None
        if c.type.ct in sqc.TEXT_TYPES or c.type.ct == CT.NATIVE:
            return str(rendered) == str(target)
        if self.my is not None:
            return _same_text_value(c.type.ct, str(rendered), str(target))
        try:
            got = self.pg.execute(pgc.parsed_canonical_sql(c.sql_type, c.type), (str(rendered),)).fetchone()[0]
        except psycopg.Error:
            return False
        return got == target

    def _key(self, raw, *, target: bool = False) -> dict:
        names = [k.source for k in self.spec.key]
        return {n: _jsonable(v) for n, v in zip(names, raw)}

    def _bag_leaf(self) -> list[Difference]:
        """A table without a key: compare the rows as multisets (JSON normalised by PostgreSQL)."""
        spec, sql, src = self.spec, self.sql, self.src
        where, args = sql.src_where(None, None)
        jcols = [c for c in spec.columns if c.type.ct == CT.JSON]
        n = src.run(f"SELECT count(*) FROM {src.table} {where}", args)[0][0]
        if n > MAX_UNKEYED_ROWS:
            return [Difference(table=spec.source, kind="uncomparable", detail=(
                f"the checksums differ, and the table has no key and {n} rows, too many to list the differing "
                "rows; compare it with a key"))]
        jsel = "".join(f", {src.expr(c)}" for c in jcols)
        rid = "rowid" if isinstance(src, _SQLiteSource) else "NULL"
        src = [(r[0], _text(r[1]), [_plain(x) for x in r[2:]]) for r in src.run(
            f"SELECT {rid}, {src.rowtext()}{jsel} FROM {src.table} {where}", args)]
        if jcols:  # normalise the source JSON the way jsonb prints it
            flat = [v for _, _, js in src for v in js]
            normal = self._normalise_json(flat)
            it = iter(normal)
            src = [(rid, r, [next(it) for _ in js]) for rid, r, js in src]
        if self.my is not None:
            tj = "".join(f", {self.my.quote(c.target)}" for c in jcols)
            tgt = [(_text(r[0]), [_norm_json(x) for x in r[1:]]) for r in self.my.run(
                f"SELECT {self.my.rowtext()}{tj} FROM {self.my.table}", [])]
            src = [(rid, r, [_norm_json(x) for x in js]) for rid, r, js in src]
            jcols = []
        else:
            tj = "".join(f", ({pqi(c.target)})::text" for c in jcols)
            tgt = [(r[0], list(r[1:])) for r in self.pg.execute(f"SELECT {sql.tgt_rowtext}{tj} FROM {sql.tgt_table}")]
        have = Counter((r, tuple(js)) for r, js in tgt)
        out: list[Difference] = []
        for rid, r, js in src:
            k = (r, tuple(js))
            if have[k]:
                have[k] -= 1
            else:
                out.append(Difference(table=spec.source, kind="missing", key={"rowid": rid},
                                      detail=_show(r.replace(sqc.FIELD_SEP, " | ").strip())))
        for (r, js), cnt in have.items():
            for _ in range(cnt):
                out.append(Difference(table=spec.source, kind="extra", key={},
                                      detail=_show(r.replace(sqc.FIELD_SEP, " | ").strip())))
        return out

    def _normalise_json(self, values: list) -> list:
        import psycopg

        out = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            try:
                out.append(self.pg.execute("SELECT (%s)::jsonb::text", (str(v),)).fetchone()[0])
            except psycopg.Error:
                out.append(str(v))
        return out


# ---------------------------------------------------------------------- helpers


def _norm_json(v):
    import json

    if v is None:
        return None
    try:
        return json.dumps(json.loads(_plain(v)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return _plain(v)


def _same_text_value(ct, a: str, b: str) -> bool:
    """Do two texts of a value of type ``ct`` mean the same (a MySQL target, judged in Python)?"""
    from decimal import Decimal, InvalidOperation

    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL):
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    if ct in (CT.DOUBLE, CT.REAL):
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    if ct == CT.BOOLEAN:
        words = {"1": "true", "t": "true", "true": "true", "0": "false", "f": "false", "false": "false"}
        return words.get(a.strip().lower()) == words.get(b.strip().lower()) is not None
    def moment(x: str) -> str:
        x = x.replace("T", " ").removesuffix("+00").removesuffix("Z")
        if "." in x:
            x = x.rstrip("0").rstrip(".")
        return x
    if ct in (CT.TIMESTAMP, CT.TIMESTAMP_TZ, CT.TIME, CT.DATE, CT.INTERVAL):
        return moment(a) == moment(b)
    return a == b


def _split(lo: int, hi: int, rows: int, per: int = SUB_RANGE_ROWS) -> list[tuple[int, int]]:
    n = max(1, min(hi - lo + 1, -(-max(rows, 1) // per)))
    step = -(-(hi - lo + 1) // n)
    out, a = [], lo
    while a <= hi:
        b = min(hi, a + step - 1)
        out.append((a, b))
        a = b + 1
    return out


def _combine(digests: list) -> str:
    return hashlib.md5("|".join(d or "-" for d in digests).encode()).hexdigest()


def _mid(lo: int, hi: int) -> int:
    return lo + (hi - lo) // 2


def _bytes(v) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape")


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return "" if v is None else str(v)


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


def _jsonable(v):
    if v is None or isinstance(v, (int, float, str, bool)):
        return v
    if isinstance(v, bytes):
        return _plain(v)
    return str(v)


def _show(v, limit: int = 120) -> str | None:
    if v is None:
        return None
    s = str(v)
    s = "".join(ch if ch >= " " or ch in "\t" else f"\\x{ord(ch):02x}" for ch in s)
    return s if len(s) <= limit else s[:limit] + "…"

"""SQLite as a source: open safely, introspect, split into rowid ranges, render rows as CSV in SQL.

SQLite stores any value in any column (https://www.sqlite.org/datatype3.html), so golive decides each
column's target type from the declared type *and* a profile of what is stored (``types``). The
rows are then rendered as CSV lines by SQLite itself (``line_sql``): Python moves chunks of bytes, never
fields, which is what makes the copy as fast as the C tools.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from golive.dialects.base import Decision, Source
from golive.dialects.sqlite.session import borrow, close_idle, connect, give_back, qi
from golive.errors import SourceError
from golive.model.schema import Column, ForeignKey, Index, SourceSchema, Table, Trigger, View
from golive.model.types import CT, TargetType
from golive.model.results import key_value
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


class SQLiteSource(Source):
    """SQLite as a source: any value in any column, so types are decided from the declared type *and* a profile of
    what is stored (``types``); rows are rendered as wire lines by SQLite itself."""

    has_fingerprint = True
    #: each chunk reads the file as it is (the app must be stopped): reading ahead is safe
    shares_snapshot = False

    def connect(self, url: DatabaseURL) -> sqlite3.Connection:
        return connect(url)

    def introspect(self, conn: sqlite3.Connection, url: DatabaseURL | None = None, options=None) -> SourceSchema:
        """Read tables, columns, keys, indexes, foreign keys, views and triggers."""
        try:
            objects = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "AND name NOT LIKE '\\_golive\\_%' ESCAPE '\\' ORDER BY rowid"  # golive's own (capture, fence)
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"cannot read the source schema: {exc}") from None
        objects = [tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in o) for o in objects]
        schema = SourceSchema()
        sequences = {}
        try:
            for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence"):
                sequences[name.decode() if isinstance(name, bytes) else name] = seq
        except sqlite3.OperationalError:
            pass
        virtual = set()
        for kind, name, tbl, sql in objects:
            if kind == "table" and sql and re.match(r"\s*CREATE\s+VIRTUAL\s+TABLE", sql, re.I):
                virtual.add(name)
        for kind, name, tbl, sql in objects:
            if kind == "table":
                if name in virtual or _is_shadow(name, virtual):
                    continue
                schema.tables.append(self._table(conn, name, sql or "", sequences.get(name)))
            elif kind == "view":
                schema.views.append(View(name=name, select=_view_select(sql or ""), sql=sql or ""))
            elif kind == "trigger":
                schema.triggers.append(Trigger(name=name, table=tbl, sql=sql or ""))
        return schema.without_bookkeeping()

    def _table(self, conn: sqlite3.Connection, name: str, sql: str, sequence: int | None) -> Table:
        cols = []
        for cid, cname, ctype, notnull, dflt, pk, hidden in _rows(conn, f"PRAGMA table_xinfo({qi(name)})"):
            if hidden == 1:  # hidden column of a virtual table
                continue
            cols.append(Column(name=cname, declared=(ctype or "").strip(), nullable=not notnull, default=dflt,
                               pk_position=pk, generated=hidden in (2, 3)))
        pk = [c.name for c in sorted((c for c in cols if c.pk_position), key=lambda c: c.pk_position)]
        without_rowid = bool(re.search(r"\)\s*WITHOUT\s+ROWID\s*;?\s*$", sql, re.I))
        names = {c.name.lower() for c in cols}
        rowid_name = next((n for n in ("rowid", "_rowid_", "oid") if n not in names), None)
        if rowid_name is None:  # every rowid name is a column: read it like a WITHOUT ROWID table
            without_rowid = True
        rowid_alias = None
        if not without_rowid and len(pk) == 1:
            col = next(c for c in cols if c.name == pk[0])
            # Only exactly "INTEGER" aliases the rowid (https://www.sqlite.org/lang_createtable.html#rowid);
            # "INTEGER PRIMARY KEY DESC" does not, which introspection cannot see; the rule is close enough
            # because both store 64-bit integers.
            if col.declared.upper() == "INTEGER":
                rowid_alias = col.name
        collations = _column_collations(sql, [c.name for c in cols])
        for c in cols:
            c.collation = collations.get(c.name)
        table = Table(
            name=name,
            columns=cols,
            primary_key=pk,
            has_rowid=not without_rowid,
            rowid_name=rowid_name or "rowid",
            rowid_alias=rowid_alias,
            autoincrement=bool(re.search(r"\bAUTOINCREMENT\b", sql, re.I)),
            sequence=sequence,
            checks=_checks(sql),
            sql=sql,
        )
        table.indexes = self._indexes(conn, name)
        table.foreign_keys = self._foreign_keys(conn, name)
        return table

    def _indexes(self, conn: sqlite3.Connection, table: str) -> list[Index]:
        out = []
        for _seq, iname, unique, origin, partial in _rows(conn, f"PRAGMA index_list({qi(table)})"):
            if origin == "pk":
                continue
            cols, desc, colls, expr = [], [], [], False
            for _seqno, cid, cname, d, coll, key in _rows(conn, f"PRAGMA index_xinfo({qi(iname)})"):
                if not key:
                    continue
                if cid == -2:
                    expr = True
                elif cid == -1:
                    cname = "rowid"
                cols.append(cname)
                desc.append(bool(d))
                colls.append(None if (coll or "BINARY").upper() == "BINARY" else coll)
            sql = None
            where = None
            if origin == "c":
                row = conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND name=?", (iname,)).fetchone()
                sql = row[0].decode() if row and isinstance(row[0], bytes) else (row[0] if row else None)
                if partial and sql:
                    m = re.search(r"\bWHERE\b(.*)$", sql, re.I | re.S)
                    where = m.group(1).strip() if m else None
            out.append(Index(name=iname, columns=[] if expr else cols, unique=bool(unique), origin=origin,
                             where=where, expressions=expr, descending=desc, collations=colls, sql=sql))
        return out

    def _foreign_keys(self, conn: sqlite3.Connection, table: str) -> list[ForeignKey]:
        groups: dict[int, ForeignKey] = {}
        sql_row = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
        sql = sql_row[0] if sql_row else ""
        if isinstance(sql, bytes):
            sql = sql.decode("utf-8", "replace")
        for fid, _seq, parent, frm, to, on_update, on_delete, _match in _rows(conn, f"PRAGMA foreign_key_list({qi(table)})"):
            fk = groups.get(fid)
            if fk is None:
                fk = groups[fid] = ForeignKey(columns=[], ref_table=parent, ref_columns=[],
                                              on_delete=on_delete or "NO ACTION", on_update=on_update or "NO ACTION")
            fk.columns.append(frm)
            if to is not None:
                fk.ref_columns.append(to)
        out = []
        for fk in sorted(groups.values(), key=lambda f: f.columns):
            if len(fk.ref_columns) != len(fk.columns):
                fk.ref_columns = []
            fk.deferrable = bool(re.search(
                r"REFERENCES\s+[\"`\[]?" + re.escape(fk.ref_table) + r"[\"`\]]?[^,]*?DEFERRABLE\s+INITIALLY\s+DEFERRED",
                sql, re.I | re.S))
            out.append(fk)
        return out

    # ------------------------------------------------------------------ planning (golive.migrate.planning)

    def fingerprint(self, url: DatabaseURL) -> str:
        """Size and modification time of the SQLite file and its WAL: a changed source is detected on resume."""
        parts = []
        for suffix in ("", "-wal"):
            p = str(url.path) + suffix
            if os.path.exists(p):
                st = os.stat(p)
                parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        return "/".join(parts)

    def consistency(self, url: DatabaseURL, conn, options) -> str:
        return ("each chunk reads the SQLite file as it is when the chunk starts: stop the app's writes during the "
                "copy; rows per table are counted again at the end and a difference is reported")

    def copy_options(self, options, schema=None) -> dict:
        out = {}
        fallback = options.text_fallback() if options is not None else None
        if fallback:
            out["text_encoding_fallback"] = fallback
        return out

    def profile(self, url: DatabaseURL, tables: list[Table], *, deep: bool, workers: int, options=None,
                lengths: bool = False):
        """Count rows and profile every table, tables in parallel (SQLite releases the GIL while scanning)."""
        from golive.dialects.sqlite import types as st

        def one(t: Table):
            conn = borrow(url)  # not a connection per table: each parses the whole schema (tables x tables)
            try:
                rows = self.count_rows(conn, t.name)
                out = t.name, rows, st.profile_table(conn, t, deep=deep, rowid_keyed=rowid_keyed, lengths=lengths,
                                                     utf8=getattr(options, "invalid_text", "reject") == "bytes")
            except sqlite3.OperationalError:
                conn.close()
                raise
            except sqlite3.DatabaseError as exc:  # a damaged page: found while reading it, named with the file
                conn.close()
                raise damaged(url, t.name, exc) from None
            except BaseException:
                conn.close()
                raise
            give_back(conn)
            return out

        # tables whose single-column key is the rowid: foreign keys to them become bigint
        rowid_keyed = {t.name: t.rowid_alias for t in tables if t.rowid_alias}
        counts, profiles = {}, {}
        order = sorted(tables, key=lambda t: -len(t.columns))
        with ThreadPoolExecutor(max_workers=min(workers, len(tables)) or 1) as ex:
            for name, rows, prof in ex.map(one, order):
                counts[name], profiles[name] = rows, prof
        return counts, profiles

    def decide(self, t: Table, c: Column, p, *, parent, target, options, identity: bool) -> Decision:
        from golive.dialects.sqlite import types as st

        d = st.classify(c.declared)
        dec = st.decide(c, d, p, rowid_pk=identity, parent=parent,
                        widen=getattr(options, "type_mismatch", "reject") == "widen")
        if p is not None and p.not_utf8 and getattr(options, "invalid_text", "reject") == "bytes":
            return Decision(TargetType(ct=CT.BINARY), f"{p.not_utf8} values are not UTF-8 text: kept byte for byte "
                            "(--invalid-text bytes)", warnings=[
                                f"{p.not_utf8} values are not UTF-8: the column is binary in the target, every value "
                                "its bytes (--invalid-text bytes)"])
        if p is not None and p.null_keys and len(t.primary_key) == 1 and t.has_rowid:
            mode = getattr(options, "null_keys", "reject")
            if mode == "rowid" and not p.fill_collisions:
                dec.source_expr = f"coalesce({qi(c.name)}, {t.rowid_name})"
                dec.warnings.append(f"{p.null_keys} NULL values of the primary key filled from the rowid "
                                    "(--null-keys rowid)")
            elif mode == "rowid":
                dec.warnings.append(f"{p.null_keys} NULL values of the primary key cannot be filled from the rowid: "
                                    f"{p.fill_collisions} of those rowids are already used as keys; the rows are rejected")
            else:
                dec.warnings.append(f"{p.null_keys} NULL values in the primary key (SQLite allows it when the key is "
                                    "not the rowid): rejected; --null-keys rowid fills them from the rowid")
        return dec

    def read_default(self, t: Table, c: Column, options=None):
        from golive.dialects.sqlite.types import parse_default

        return parse_default(c.default)

    def identity(self, t: Table) -> tuple[str | None, int | None]:
        return t.rowid_alias, (t.sequence if t.autoincrement else None)

    def index_column(self, t: Table, name: str) -> str | None:
        return t.rowid_alias if name == "rowid" else name

    def index_expressions(self, ix: Index) -> str | None:
        return _index_expressions(ix.sql or "")

    def row_key(self, t: Table) -> list[str]:
        return list(t.primary_key) if t.primary_key else (["rowid"] if t.has_rowid else [c.name for c in t.columns])

    def chunks(self, conn, t: Table, rows: int, chunk_rows: int):
        from golive.model.plan import ChunkPlan

        ranges = self.chunk_ranges(conn, t, rows, chunk_rows)
        return ("rowid" if t.has_rowid else "single"), [], [
            ChunkPlan(no=i, lo=lo, hi=hi, rows=n) for i, (lo, hi, n) in enumerate(ranges)]

    def render(self, t: Table, tp, wire, plan) -> tuple[str, str]:
        from golive.dialects.sqlite import types as st

        cols = [(c.source_expr or qi(c.source), c.type) for c in tp.columns if not c.generated_sql]
        fallback = bool(plan.options.get("text_encoding_fallback"))
        return st.line_sql(cols, wire), st.careful_line_sql(cols, wire, text_fallback=fallback)

    def plan_objects(self, ctx, schema: SourceSchema, selected: set[str]) -> None:
        from golive.model.plan import Skipped, ViewPlan

        plan = ctx.plan
        if ctx.dst.name != "postgresql":  # SQLite's views mostly run on PostgreSQL as written; elsewhere: sqlglot
            super().plan_objects(ctx, schema, selected)
            return
        for v in schema.views:
            plan.views.append(ViewPlan(source=v.name, target=ctx.relations(v.name), select=v.select))
        for tr in schema.triggers:
            if tr.table in selected:
                plan.skipped.append(Skipped(kind="trigger", name=tr.name, reason=(
                    f"triggers are not translated (on {tr.table}); recreate it in PL/pgSQL if the app relies on it")))

    @contextlib.contextmanager
    def snapshot(self, url: DatabaseURL, plan, *, workers: int):
        """No shared snapshot (each chunk reads in its own transaction); the idle connections the copy kept
        (``session.borrow``) are closed when it ends."""
        try:
            yield None
        finally:
            close_idle()

    def chunk_reader(self, url: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        return ChunkReader(url, plan, tp)

    # ------------------------------------------------------------------ sizes and chunks
    def size(self, url: DatabaseURL) -> int:
        return os.path.getsize(url.path)

    def read_keys(self, url: DatabaseURL, plan, tp, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
        reader = ChunkReader(url, plan, tp)
        try:
            return reader.by_keys(keys)
        finally:
            reader.close()

    def count_tables(self, url: DatabaseURL, plan, tables: list[str]) -> dict[str, int]:
        conn = connect(url)
        try:
            return {t: self.count_rows(conn, t) for t in tables}
        finally:
            conn.close()


    def count_rows(self, conn: sqlite3.Connection, table: str) -> int:
        return conn.execute(f"SELECT count(*) FROM {qi(table)}").fetchone()[0]

    def chunk_ranges(self, conn: sqlite3.Connection, table: Table, rows: int, chunk_rows: int) -> list[tuple[int, int, int]]:
        """Split a rowid table into ``(lo, hi, estimated_rows)`` inclusive rowid ranges of ~``chunk_rows``.

        Ranges are contiguous from the smallest to the largest rowid, so every row falls in exactly
        one range (rows inserted later outside [min, max] are the only ones not covered, and the
        row-count check at the end of the copy reports them).
        """
        if not table.has_rowid:
            return [(0, 0, rows)]
        # two queries: each is a single b-tree descent, together in one query they would scan the table
        r = table.rowid_name
        lo = conn.execute(f"SELECT min({r}) FROM {qi(table.name)}").fetchone()[0]
        hi = conn.execute(f"SELECT max({r}) FROM {qi(table.name)}").fetchone()[0]
        if lo is None:
            return [(0, 0, 0)]
        n = max(1, -(-rows // max(1, chunk_rows)))
        if n == 1:
            return [(lo, hi, rows)]
        span = hi - lo + 1
        if span <= 4 * rows:  # dense enough: equal rowid spans
            step = -(-span // n)
            bounds = [lo + i * step for i in range(n)] + [hi + 1]
        else:  # sparse: boundaries at row quantiles (one ordered walk of the rowid b-tree)
            per = -(-rows // n)
            bounds = [lo]
            for (rid,) in conn.execute(
                f"SELECT {r} FROM (SELECT {r}, row_number() OVER (ORDER BY {r}) AS rn FROM {qi(table.name)}) "
                f"WHERE rn % ? = 1 AND rn > 1", (per,)
            ):
                bounds.append(rid)
            bounds.append(hi + 1)
        out = []
        for a, b in zip(bounds, bounds[1:]):
            if b > a:
                out.append((a, b - 1, max(1, rows // n)))
        return out


# ---------------------------------------------------------------------- reading chunks

#: bytes of CSV per SQLite query / load write on the clean path
BATCH_BYTES = 4 << 20
#: rows per load attempt on the reject path
CAREFUL_ROWS = 2000


class ChunkReader:
    """Reads one table's chunks: SQLite renders the wire lines itself, Python moves megabytes, never fields."""

    counts_rows = True  # batches yield (lines, rows)

    def __init__(self, url: DatabaseURL, plan, tp):
        self.tp = tp
        self.url = url
        self.fallback = plan.options.get("text_encoding_fallback")
        # an idle connection of the file when there is one: opening one per chunk parsed the whole schema each
        # time (tables x tables); one with golive_text bound to this reader is never handed back
        self.conn = connect(url, raw_text=True) if self.fallback else borrow(url, raw_text=True)
        self._cursors: list[sqlite3.Cursor] = []
        self._converted: dict[str, int] = {}
        if self.fallback:
            self.conn.create_function("golive_text", 2, self._decode, deterministic=True)

    def _execute(self, sql: str, args=()) -> sqlite3.Cursor:
        cur = self.conn.execute(sql, args)
        self._cursors.append(cur)
        return cur

    def _decode(self, value, column):
        """``golive_text(CAST(v AS BLOB), column)``: the text, decoded from the legacy encoding when it is not UTF-8."""
        if not isinstance(value, bytes):
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            key = f"{column}: decoded from {self.fallback}"
            self._converted[key] = self._converted.get(key, 0) + 1
            try:
                return value.decode(self.fallback)
            except UnicodeDecodeError:  # not that encoding either: the target refuses it, with the reason
                self._converted[key] -= 1
                return value

    def converted(self) -> dict[str, int]:
        return dict(self._converted)

    def _bounds(self, chunk) -> tuple[int, int]:
        """The chunk's rowid range; the table's first and last chunks reach the smallest and the largest rowid there
        is when they are read, so rows inserted after planning (an online migration's app writing between the plan
        and the start of capture) are copied, not lost beyond a boundary."""
        lo, hi = chunk.lo, chunk.hi
        chunks = self.tp.chunks
        if chunks and (chunk.no == 0 or chunk.no == len(chunks) - 1):
            r = self.tp.rowid_name
            low, high = self._execute(f"SELECT min({r}), max({r}) FROM {qi(self.tp.source)}").fetchone()
            if chunk.no == 0 and low is not None:
                lo = min(lo, low)
            if chunk.no == len(chunks) - 1 and high is not None:
                hi = max(hi, high)
        return lo, hi

    def by_keys(self, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
        """``(key, careful line)`` of the rows of ``keys`` (the key columns' values) that exist."""
        tp = self.tp
        cols = ", ".join(qi(k) for k in tp.key)
        out = []
        # a composite key as ORs of equalities: SQLite looks each one up in the key's index, where
        # ``(a, b) IN (VALUES …)`` scans the whole table (150× slower on 200 keys of a million-row table); 200 at a
        # time keeps the OR chain well under SQLite's expression depth limit (1000)
        per = 400 if len(tp.key) == 1 else 200
        one = "(" + " AND ".join(f"{qi(k)} = ?" for k in tp.key) + ")"
        for i in range(0, len(keys), per):
            part = keys[i:i + per]
            sql = (f"SELECT {cols}, {tp.careful_sql} FROM {qi(tp.source)} WHERE {' OR '.join(one for _ in part)}"
                   if len(tp.key) > 1 else
                   f"SELECT {cols}, {tp.careful_sql} FROM {qi(tp.source)} WHERE {cols} IN ({', '.join('?' for _ in part)})")
            for row in self._execute(sql, [v for k in part for v in k]):
                key = tuple(v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in row[:-1])
                line = row[-1] if isinstance(row[-1], bytes) else row[-1].encode("utf-8", "surrogateescape")
                out.append((key, line))
        return out

    def batches(self, chunk):
        """``(csv_bytes, rows)`` of the chunk, each about ``BATCH_BYTES`` long (adaptive rowid spans)."""
        tp = self.tp
        try:
            if not tp.has_rowid:
                cur = self._execute(f"SELECT {tp.line_sql} FROM {qi(tp.source)}")
                while rows := cur.fetchmany(2000):
                    yield b"".join(r[0] for r in rows), len(rows)
                return
            sql = (f"SELECT group_concat(line, ''), count(*) FROM "
                   f"(SELECT {tp.line_sql} AS line FROM {qi(tp.source)} WHERE {tp.rowid_name} BETWEEN ? AND ?)")
            lo, hi = self._bounds(chunk)
            density = max(chunk.rows, 1) / max(hi - lo + 1, 1)
            span = max(1, int(256 / density))  # start small: rows may be huge
            a = lo
            while a <= hi:
                b = min(hi, a + span - 1)
                blob, n = self._execute(sql, (a, b)).fetchone()
                if isinstance(blob, str):
                    blob = blob.encode("utf-8", "surrogateescape")
                if blob:
                    per_rowid = len(blob) / (b - a + 1)
                    span = max(1, min(int(BATCH_BYTES / per_rowid), span * 8))
                else:
                    span = min(span * 8, 1 << 40)
                a = b + 1
                yield blob or b"", n
        except sqlite3.OperationalError as exc:
            raise SourceError(f"reading {tp.source} chunk {chunk.no} from the source: {exc}") from None
        except sqlite3.DatabaseError as exc:  # a damaged page
            raise damaged(self.url, f"{tp.source} (chunk {chunk.no})", exc) from None

    def rows(self, chunk):
        """Lists of ``(rowkey, line)`` for the reject path; rowkey is the rowid or the key tuple."""
        tp = self.tp
        if tp.has_rowid:
            r = tp.rowid_name
            cur = self._execute(f"SELECT {r}, {tp.careful_sql} FROM {qi(tp.source)} WHERE {r} BETWEEN ? AND ? "
                                    f"ORDER BY {r}", self._bounds(chunk))
            while rows := cur.fetchmany(CAREFUL_ROWS):
                yield [(x[0], x[1]) for x in rows]
        else:
            keys = ", ".join(qi(k) for k in tp.key)
            cur = self._execute(f"SELECT {keys}, {tp.careful_sql} FROM {qi(tp.source)}")
            while rows := cur.fetchmany(CAREFUL_ROWS):
                yield [(tuple(x[:-1]), x[-1]) for x in rows]

    def row(self, rowkey) -> dict:
        tp = self.tp
        if tp.has_rowid:
            cur = self._execute(f"SELECT * FROM {qi(tp.source)} WHERE {tp.rowid_name} = ?", (rowkey,))
        else:
            cond = " AND ".join(f"{qi(k)} IS ?" for k in tp.key)
            cur = self._execute(f"SELECT * FROM {qi(tp.source)} WHERE {cond}", tuple(rowkey))
        row = cur.fetchone()
        if row is None:
            return {}
        return {d[0]: v for d, v in zip(cur.description, row)}

    def key(self, rowkey, row: dict) -> dict:
        tp = self.tp
        if tp.has_rowid and tp.key == ["rowid"]:
            return {"rowid": rowkey}
        if tp.has_rowid:
            return {k: key_value(row.get(k)) for k in tp.key}
        return dict(zip(tp.key, (key_value(v) for v in rowkey)))

    def close(self) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            for cur in self._cursors:  # no statement left running: the next chunk starts a fresh read
                cur.close()
        except sqlite3.Error:
            conn.close()
            return
        self._cursors.clear()
        if self.fallback:
            conn.close()
        else:
            give_back(conn)


# ---------------------------------------------------------------------- helpers


def _index_expressions(sql: str) -> str | None:
    m = re.search(r"\bON\s+(?:\"(?:[^\"]|\"\")+\"|`[^`]+`|\[[^\]]+\]|[\w.]+)\s*\(", sql, re.I)
    if not m:
        return None
    depth, i = 1, m.end()
    while i < len(sql) and depth:
        depth += {"(": 1, ")": -1}.get(sql[i], 0)
        i += 1
    return sql[m.end():i - 1].strip() or None


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple]:
    rows = conn.execute(sql).fetchall()
    return [tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in r) for r in rows]


def damaged(url: DatabaseURL, table: str, exc: BaseException) -> SourceError:
    """The error for a SQLite file whose pages cannot be read (truncated, overwritten): which file, which table."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SourceError(f"source {url.path}: table {table}: {first} (the file is damaged: copy it again from the app, "
                       "or restore it from a backup)")


def _is_shadow(name: str, virtual: set[str]) -> bool:
    return any(name.startswith(v + "_") for v in virtual)


def _view_select(sql: str) -> str:
    m = re.search(r"\bAS\b\s*(.*)$", sql, re.I | re.S)
    return m.group(1).strip().rstrip(";") if m else sql


def _checks(sql: str) -> list[str]:
    out = []
    for m in re.finditer(r"\bCHECK\s*\(", sql, re.I):
        depth, i = 1, m.end()
        while i < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        out.append(sql[m.end():i - 1].strip())
    return out


def _column_collations(sql: str, names: list[str]) -> dict[str, str]:
    out = {}
    body = sql[sql.find("(") + 1:] if "(" in sql else ""
    for part in _split_top_level(body):
        m = re.match(r'\s*(?:"((?:[^"]|"")+)"|`([^`]+)`|\[([^\]]+)\]|(\w+))(.*)$', part, re.S)
        if not m:
            continue
        name = next(g for g in m.groups()[:4] if g is not None).replace('""', '"')
        cm = re.search(r"\bCOLLATE\s+(\w+)", m.group(5), re.I)
        if name in names and cm and cm.group(1).upper() != "BINARY":
            out[name] = cm.group(1).upper()
    return out


def _split_top_level(body: str) -> list[str]:
    parts, depth, cur, quote = [], 0, [], None
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`[":
            quote = "]" if ch == "[" else ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts

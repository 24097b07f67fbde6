"""SQLite as a source: open safely, introspect, split into rowid ranges, render rows as CSV in SQL.

SQLite stores any value in any column (https://www.sqlite.org/datatype3.html), so golive decides each
column's target type from the declared type *and* a profile of what is stored (``sqlite_types``). The
rows are then rendered as CSV lines by SQLite itself (``line_sql``): Python moves chunks of bytes, never
fields, which is what makes the copy as fast as the C tools.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

from golive.dialects.base import Dialect
from golive.errors import SourceError
from golive.schema import Column, ForeignKey, Index, SourceSchema, Table, Trigger, View
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"


def qi(name: str) -> str:
    """Quote an SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'


class SQLiteDialect(Dialect):
    name = "sqlite"
    can_read = True
    # https://www.sqlite.org/limits.html: identifiers are not length-limited in practice
    max_identifier_length = 0
    transactional_ddl = True

    def quote(self, name: str) -> str:
        return qi(name)

    # ------------------------------------------------------------------ connections

    def check(self, url: DatabaseURL) -> Path:
        """Check that ``url`` names a readable SQLite file; return its path. Raises ``SourceError``."""
        path = url.path
        assert path is not None
        if not path.exists():
            raise SourceError(f"source {path}: no such file")
        if path.is_dir():
            raise SourceError(f"source {path}: is a directory, not a SQLite database file")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise SourceError(f"source {path}: cannot read ({exc.strerror})") from None
        if head != SQLITE_HEADER:
            what = "an empty file" if not head else "not a SQLite database (wrong file header)"
            raise SourceError(f"source {path}: {what}")
        return path

    def connect(self, url: DatabaseURL, *, raw_text: bool = False) -> sqlite3.Connection:
        """Open the database read-only. With ``raw_text`` text comes back as bytes (no decoding)."""
        path = self.check(url)
        uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA query_only = 1")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise SourceError(f"source {path}: {exc}") from None
        # Scans read each page once: a small page cache is enough, and memory stays flat per worker.
        # (No mmap: mapped pages would count in the process's RSS.)
        conn.execute("PRAGMA cache_size = -8192")
        if raw_text:
            conn.text_factory = bytes
        return conn

    # ------------------------------------------------------------------ introspection

    def introspect(self, conn: sqlite3.Connection) -> SourceSchema:
        """Read tables, columns, keys, indexes, foreign keys, views and triggers."""
        try:
            objects = conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master "
                "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
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
        return schema

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

    # ------------------------------------------------------------------ sizes and chunks

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


# ---------------------------------------------------------------------- helpers


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple]:
    rows = conn.execute(sql).fetchall()
    return [tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in r) for r in rows]


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

"""MySQL / MariaDB side of the content checksums, as a source or a target: every value as its canonical text,
in SQL on the server.

The canonical text of a value is what PostgreSQL prints for its copy (``postgresql/checksums.py``): trailing
zeros of fractions trimmed (``2024-01-02 03:04:05.12``, numeric ``5.5``), ``true``/``false``, lowercase hex,
``+00`` after a moment. The value streams have the same layout as SQLite's (``sqlite/checksums.streams``):
comma-joined canonical texts (``\\N`` for NULL), text values back to back plus their byte lengths (UTF-8,
as PostgreSQL counts them), doubles as their exact text (read into IEEE 754 bytes by Python). MySQL
concatenates each stream of a key range (``GROUP_CONCAT … ORDER BY`` the key) and Python hashes it. A source
side reads the source's declared types (``TableSpec.natives``), a target side the target's (``sql_type``): the
SQL is the same. JSON comes back as stored and is normalised in Python (MariaDB keeps JSON text as sent).
"""

from __future__ import annotations

import json

from golive.dialects.base import Checksums
from golive.dialects.base.checksums import PARAM, format_params
from golive.dialects.mysql.session import connect, qi, sqlalchemy_url, translate_error
from golive.errors import TerminalError
from golive.model.types import CT, TEXT_TYPES, TargetType
from golive.model.validation import Checksum, TooBig, stream_digests


def _trim(s: str) -> str:
    """Fractional zeros trimmed, then a bare dot: as PostgreSQL prints times and numerics."""
    return f"IF(INSTR({s}, '.') > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {s})), {s})"


def canonical_sql(expr: str, t: TargetType, *, native: str = "") -> str | None:
    """SQL giving the canonical text of ``expr`` (a MySQL column) copied as type ``t``; None for JSON."""
    c = expr
    ct = t.ct
    base = native.split("(")[0].lower().split()[0] if native else ""
    if ct == CT.JSON:
        return None
    if ct in TEXT_TYPES or ct == CT.ENUM:
        return f"CONVERT({c} USING utf8mb4)"
    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT):
        return f"CAST({c} AS CHAR)"
    if ct == CT.BOOLEAN:
        v = f"({c} + 0)" if base == "bit" else c
        return f"IF({v} = 1, 'true', IF({v} = 0, 'false', CAST({v} AS CHAR)))"
    if ct == CT.DECIMAL:
        return _trim(f"CAST({c} AS CHAR)")
    if ct in (CT.REAL, CT.DOUBLE):
        return f"CAST({c} AS CHAR)"
    zero = f"MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0"
    if ct == CT.DATE:
        return f"IF({zero}, NULL, CAST({c} AS CHAR))"
    if ct == CT.TIMESTAMP:
        return f"IF({zero}, NULL, {_trim(f'CAST({c} AS CHAR)')})"
    if ct == CT.TIMESTAMP_TZ:
        return f"IF({zero}, NULL, CONCAT({_trim(f'CAST({c} AS CHAR)')}, '+00'))"
    if ct in (CT.TIME, CT.INTERVAL):
        return _trim(f"CAST({c} AS CHAR)")
    if ct == CT.BINARY or (ct == CT.GEOMETRY and "blob" in base):
        return f"LOWER(HEX({c}))"
    if ct == CT.GEOMETRY:
        return f"LOWER(HEX(ST_AsWKB({c})))"
    if ct == CT.UUID and base in ("char", "varchar"):  # a target's CHAR(36)
        return f"LOWER({c})"
    if ct == CT.UUID:
        h = f"LOWER(HEX({c}))"
        return (f"CONCAT_WS('-', SUBSTR({h}, 1, 8), SUBSTR({h}, 9, 4), SUBSTR({h}, 13, 4), SUBSTR({h}, 17, 4), "
                f"SUBSTR({h}, 21, 12))")
    if ct in (CT.TEXT_ARRAY, CT.ARRAY) and base in ("json", "longtext"):  # a target stores arrays as JSON text
        return c
    if ct == CT.TEXT_ARRAY:  # as PostgreSQL's array_to_json(...)::text
        esc = f"REPLACE(REPLACE({c}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"')"
        return f"IF({c} = '', '[]', CONCAT('[\"', REPLACE({esc}, ',', '\",\"'), '\"]'))"
    if ct == CT.BITS:
        return f"LPAD(BIN({c} + 0), {t.length or 1}, '0')"
    return f"CAST({c} AS CHAR)"


def rendered_sql(expr: str, t: TargetType, *, native: str = "") -> str:
    """The text the copy sent for the value (PostgreSQL judges a value the canonical forms disagree on)."""
    if t.ct == CT.BOOLEAN:
        base = native.split("(")[0].lower() if native else ""
        return f"CAST({'(' + expr + ' + 0)' if base == 'bit' else expr} AS CHAR)"
    if t.ct == CT.BINARY:
        return f"CONCAT('\\\\x', HEX({expr}))"
    return canonical_sql(expr, t, native=native) or f"CAST({expr} AS CHAR)"


def streams(columns: list[tuple[str, TargetType, bool, str]]) -> list[tuple[str, str, str]]:
    """``(expression, GROUP_CONCAT separator, encoding)`` per stream; ``columns``: (expr, type, nullable, native)."""
    out = []
    for c, t, nullable, native in columns:
        if t.ct == CT.JSON:
            continue
        if (t.ct in TEXT_TYPES or t.ct == CT.ENUM) and not nullable:
            out.append((f"CONVERT({c} USING utf8mb4)", "'\\0'", "text"))
        elif t.ct in TEXT_TYPES or t.ct == CT.ENUM:
            out.append((f"IFNULL(CONVERT({c} USING utf8mb4), '')", "''", "text"))
            out.append((f"IFNULL(OCTET_LENGTH(CONVERT({c} USING utf8mb4)), -1)", "','", "text"))
        elif t.ct == CT.DOUBLE:
            out.append((f"IFNULL(CAST({c} AS CHAR), '')", "','", "float8"))
        else:
            expr = canonical_sql(c, t, native=native)
            out.append((f"IFNULL({expr}, '\\\\N')", "','", "text"))
    return out


def json_sql(columns: list[tuple[str, TargetType]]) -> str | None:
    names = [c for c, t in columns if t.ct == CT.JSON]
    if not names:
        return None
    return "CONCAT_WS(CHAR(10), " + ", ".join(f"IFNULL(REPLACE({c}, CHAR(10), ' '), '')" for c in names) + ")"


def row_text_sql(columns: list[tuple[str, TargetType, str]]) -> str:
    fields = [f"IFNULL(CAST({canonical_sql(c, t, native=n)} AS CHAR), '\\\\N')" for c, t, n in columns if t.ct != CT.JSON]
    return "CONCAT_WS(CHAR(31), " + ", ".join(fields) + ")" if fields else "''"


def key_text_sql(columns: list[tuple[str, TargetType, str]]) -> str:
    return "CONCAT_WS(CHAR(31), " + ", ".join(
        f"IFNULL(CAST({canonical_sql(c, t, native=n)} AS CHAR), '\\\\N')" for c, t, n in columns) + ")"


def order_sql(columns: list[tuple[str, TargetType]]) -> str:
    """Key order as PostgreSQL's ``COLLATE "C"`` sorts: text by its UTF-8 bytes."""
    return ", ".join(f"CAST(CONVERT({c} USING utf8mb4) AS BINARY)" if t.ct in TEXT_TYPES else c for c, t in columns)


def checksum_sql(table: str, where: str, order: str, streams_: list[tuple[str, str, str]], json: str | None,
                 key: str) -> str:
    """Count, key range and the concatenated streams of one key range."""
    aggs = "".join(f", CAST(GROUP_CONCAT({e} ORDER BY {order} SEPARATOR {sep}) AS BINARY)" for e, sep, _ in streams_)
    js = f"CAST(GROUP_CONCAT({json} ORDER BY {order} SEPARATOR '\\n') AS BINARY)" if json else "NULL"
    return f"SELECT COUNT(*), MIN({key}), MAX({key}), {js}{aggs} FROM {table} {where}"


#: session settings of checksum queries: canonical texts in UTC, no strict mode (zero dates read as they are),
#: a stream as long as a range needs (max_allowed_packet still caps the result: ``TooBig``)
SESSION = {"time_zone": "+00:00", "sql_mode": "", "group_concat_max_len": 4294967295}


# ---------------------------------------------------------------------- one side of a comparison


class MySQLSide(Checksums.Side):
    """A MySQL / MariaDB database's side: streams concatenated by ``GROUP_CONCAT`` in key order, hashed by Python.

    As a target it reads the target's columns with their declared types (``CheckColumn.sql_type``), as a
    source the source's: the canonical SQL is the same.
    """

    ph = PARAM

    #: MySQL sends a range's streams in one packet (max_allowed_packet, 16 MB by default)
    sub_range_rows = 12_000

    def __init__(self, url, spec, role: str, *, json_in_sql: bool = False):
        super().__init__(spec, role, json_in_sql=json_in_sql)
        self.conn = connect(url, settings=SESSION, role=role)
        if spec is not None:
            self.table = qi(spec.source if role == "source" else spec.target)

    def quote(self, name: str) -> str:
        return qi(name)

    def _key_native(self, k) -> str:
        if self.role == "source":
            return self.spec.natives.get(k.source, "")
        col = next((c for c in self.spec.columns if c.source == k.source), None)
        return col.sql_type if col is not None else ""

    def _columns(self) -> list[tuple[str, TargetType]]:
        return [(self.column(c), c.type) for c in self.spec.columns]

    def column(self, c) -> str:
        """The column as it is read; a source's zero date in a NOT NULL column the copy wrote as 1970-01-01
        (``--zero-dates epoch``) reads as that date (else it is NULL, as the copy wrote it)."""
        e = super().column(c)
        if (self.role == "source" and not c.nullable and self.spec.options.get("zero_dates") == "epoch"
                and c.type.ct in (CT.DATE, CT.TIMESTAMP, CT.TIMESTAMP_TZ) and not c.type.native):
            epoch = "DATE('1970-01-01')" if c.type.ct == CT.DATE else "TIMESTAMP('1970-01-01 00:00:00')"
            return f"IF(MONTH({e}) = 0 OR DAYOFMONTH({e}) = 0, {epoch}, {e})"
        return e

    def keytext(self) -> str:
        return key_text_sql([(self.key_expr(k), k.type, self._key_native(k)) for k in self.spec.key])

    def canonical(self, c) -> str:
        e = self.column(c)
        return canonical_sql(e, c.type, native=self.spec.native(c, self.role)) or e

    def rendered(self, c) -> str:
        return rendered_sql(self.column(c), c.type, native=self.spec.native(c, self.role))

    def rowtext(self) -> str:
        return row_text_sql([(self.column(c), c.type, self.spec.native(c, self.role)) for c in self.spec.columns])

    def order(self) -> str:
        if self.spec.kind != "bag":
            return order_sql([(self.key_expr(k), k.type) for k in self.spec.key])
        return f"CAST({self.rowtext()} AS BINARY)"

    def range_key(self) -> str | None:
        return self.key_expr(self.spec.key[0]) if self.spec.kind in ("rowid", "intkey") else None

    def checksum(self, where: str, args: list) -> Checksum:
        streams_ = streams([(self.column(c), c.type, c.nullable, self.spec.native(c, self.role)) for c in self.spec.columns])
        sql = checksum_sql(self.table, where, self.order(), streams_, json_sql(self._columns()),
                           self.range_key() or "NULL")
        row = self.run(sql, args)[0]
        if row[0] and any(v is None for v in row[4:]):  # a result over max_allowed_packet comes back NULL
            raise TooBig("a stream is longer than the server's max_allowed_packet")
        return Checksum(row[0], row[1], row[2], row[3], stream_digests(row[4:], [enc for _, _, enc in streams_]))

    def run(self, sql: str, args: list) -> list:
        try:
            with self.conn.cursor() as cur:
                cur.execute(format_params(sql), list(args))
                return cur.fetchall()
        except Exception as exc:
            what = self.spec.source if self.spec is not None else "validation"
            raise translate_error(exc, f"{what}: reading the {self.role} for the checksum") from None

    def close(self) -> None:
        self.conn.close()


#: the source's own dangling references, recorded by validation for the suites' foreign key checks
SOURCE_ORPHANS = "_golive_source_orphans"
ORPHANS_DDL = (f"CREATE TABLE IF NOT EXISTS {SOURCE_ORPHANS} (fk VARCHAR(255) NOT NULL, ref JSON NOT NULL, "
               "rows_n BIGINT NOT NULL, ref_hash BINARY(32) AS (UNHEX(SHA2(ref, 256))) STORED, "
               "UNIQUE KEY (fk, ref_hash)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")


class MySQLChecksums(Checksums):
    """MySQL / MariaDB as either side of a content comparison, and as the target of the suites."""

    def side(self, url, spec, role: str, *, json_in_sql: bool = False) -> MySQLSide:
        return MySQLSide(url, spec, role, json_in_sql=json_in_sql)

    def sqlalchemy_url(self, url) -> str:
        return sqlalchemy_url(url)

    def unique_query(self, schema: str, table: str, columns: list[str]) -> str:
        """Rows sharing a key (NULLs left out, as in a unique index)."""
        cols = ", ".join(qi(c) for c in columns)
        notnull = " AND ".join(f"{qi(c)} IS NOT NULL" for c in columns)
        return f"SELECT {cols}, COUNT(*) AS copies FROM {{batch}} WHERE {notnull} GROUP BY {cols} HAVING COUNT(*) > 1"

    def orphan_query(self, schema: str, fk, key: list[str]) -> str:
        """Dangling references beyond the source's own (``_golive_source_orphans``)."""
        child_cols = ", ".join(f"c.{qi(c)}" for c in fk.columns)
        on = " AND ".join(f"p.{qi(r)} = c.{qi(c)}" for c, r in zip(fk.columns, fk.ref_columns))
        notnull = " AND ".join(f"c.{qi(c)} IS NOT NULL" for c in fk.columns)
        outs = ", ".join(f"o.{qi(c)}" for c in fk.columns)
        label = fk.name.replace("'", "''")
        return (f"SELECT {outs}, o.rows_in_target, COALESCE(s.rows_n, 0) AS rows_in_source FROM ("
                f"SELECT {child_cols}, COUNT(*) AS rows_in_target FROM {{batch}} c LEFT JOIN {qi(fk.ref_table)} p "
                f"ON {on} WHERE {notnull} AND p.{qi(fk.ref_columns[0])} IS NULL GROUP BY {child_cols}) o "
                f"LEFT JOIN {SOURCE_ORPHANS} s ON s.fk = '{label}' AND CAST(JSON_COMPACT(s.ref) AS BINARY) = "
                f"CAST(JSON_COMPACT(JSON_ARRAY({outs})) AS BINARY) WHERE o.rows_in_target > COALESCE(s.rows_n, 0)")

    def record_source_orphans(self, url, schema: str, fks: list, rejects: dict, orphans_of) -> None:
        """Every foreign key (MySQL has no mark of a validated key), in ``_golive_source_orphans``."""
        conn = connect(url, autocommit=True, role="target")
        try:
            with conn.cursor() as cur:
                cur.execute(ORPHANS_DDL)
                names = [fk.name for _, fk in fks]
                if names:
                    cur.execute(f"DELETE FROM {SOURCE_ORPHANS} WHERE fk IN (" + ", ".join(["%s"] * len(names)) + ")",
                                names)
                rows = [(fk.name, json.dumps(ref, default=str, ensure_ascii=False), n)
                        for tp, fk in fks for ref, n in orphans_of(tp, fk)]
                if rows:  # JSON_ARRAY(...) in the suites' queries builds the same text MariaDB stores for ref
                    cur.executemany(f"INSERT INTO {SOURCE_ORPHANS} (fk, ref, rows_n) VALUES (%s, JSON_COMPACT(%s), %s) "
                                    "ON DUPLICATE KEY UPDATE rows_n = VALUES(rows_n)", rows)
        except Exception as exc:
            if isinstance(exc, TerminalError):
                raise
            raise translate_error(exc, f"recording the source's orphan rows in {SOURCE_ORPHANS}") from None
        finally:
            conn.close()

"""MySQL / MariaDB side of the content checksums: every value as its canonical text, in SQL on the server.

The canonical text of a value is what PostgreSQL prints for its copy (``postgresql_checksums``): trailing
zeros of fractions trimmed (``2024-01-02 03:04:05.12``, numeric ``5.5``), ``true``/``false``, lowercase hex,
``+00`` after a moment. The value streams have the same layout as SQLite's (``sqlite_checksums.streams``):
comma-joined canonical texts (``\\N`` for NULL), text values back to back plus their byte lengths (UTF-8,
as PostgreSQL counts them), doubles as their exact text (read into IEEE 754 bytes by Python). MySQL
concatenates each stream of a key range (``GROUP_CONCAT … ORDER BY`` the key) and Python hashes it.
"""

from __future__ import annotations

from golive.dialects.mysql.session import qi
from golive.model.types import CT, TEXT_TYPES, TargetType

FIELD_SEP = "\x1f"
NULL = "\\N"
HASH_IN_SQL = False  # the streams come back to Python, which hashes them (as for SQLite)
PH = "%s"


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


SESSION = {"time_zone": "+00:00", "sql_mode": "", "group_concat_max_len": 4294967295}


def connect(url):
    from golive.dialects.mysql.dialect import MySQLDialect

    return MySQLDialect().connect(url, settings=SESSION, role="source")


def quote(name: str) -> str:
    return qi(name)

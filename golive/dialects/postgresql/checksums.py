"""PostgreSQL side of the content checksums: each value as its output text, in the value streams of
``sqlite_checksums`` (canonical texts joined by commas, ``\\N`` for NULL; text values back to back plus
their byte lengths).

A range's checksum is one ``sha256(string_agg(...))`` per value stream over an index range scan in key
order, so only digests leave the server. The session settings below fix every output format the canonical text
depends on (time zone, date style, float digits), whatever the server's defaults.
"""

from __future__ import annotations

from golive.dialects.postgresql.session import qi
from golive.model.types import CT, TargetType

FIELD_SEP = "\x1f"
NULL = "\\N"
TEXT_TYPES = (CT.TEXT, CT.VARCHAR)

#: session settings for checksum queries (output formats must match ``sqlite_checksums``)
SESSION = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",  # shortest text that reads back as the same double (PostgreSQL >= 12)
    "bytea_output": "hex",
    "jit": "off",  # compiling these one-off scans costs more than it saves
    "max_parallel_workers_per_gather": "0",  # ordered range scans; chunks already run in parallel
    "work_mem": "64MB",
    "statement_timeout": "0",
}


def _ref(pre: str, name: str) -> str:
    """A column (quoted, with its alias) or, when it starts with a parenthesis, an expression as given."""
    return name if name.startswith("(") else pre + qi(name)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def canonical_sql(expr: str, t: TargetType) -> str | None:
    """Expression giving the canonical text of ``expr`` (a column or a parsed value) of type ``t``.

    None for JSON (``jsonb::text`` is compared on its own stream).
    """
    ct = t.ct
    if ct == CT.JSON:
        return None
    if ct == CT.DECIMAL:
        return f"trim_scale({expr})::text"  # 5.00 and 5 are the same number (PostgreSQL >= 13)
    if ct == CT.BINARY or (ct == CT.GEOMETRY and not t.native):
        return f"encode({expr}, 'hex')"
    if ct in (CT.TEXT_ARRAY, CT.ARRAY):  # JSON array text: the same on every side (PostgreSQL quotes by rules)
        return f"array_to_json({expr})::text"
    return f"({expr})::text"


def streams(columns: list[tuple[str, TargetType, bool]], alias: str = "") -> list[str]:
    """Aggregates hashing the value streams of ``sqlite_checksums.streams`` (same order), one SHA-256 each.

    ``columns`` holds ``(name, type, nullable in the source)``. SHA-256 rather than md5: with the CPU's
    SHA instructions (OpenSSL on both sides) it is the faster of the two.
    """
    pre = f"{alias}." if alias else ""
    out = []
    for name, t, nullable in columns:
        c = _ref(pre, name)
        if t.ct == CT.JSON:
            continue
        if t.ct in TEXT_TYPES and not nullable:  # NUL-separated (bytea: text cannot hold a NUL)
            out.append(f"sha256(string_agg(convert_to({c}, 'UTF8'), '\\x00'::bytea))")
        elif t.ct in TEXT_TYPES:
            out.append(f"sha256(convert_to(string_agg({c}, ''), 'UTF8'))")
            out.append(f"sha256(convert_to(string_agg(coalesce(octet_length({c}), -1)::text, ','), 'UTF8'))")
        elif t.ct == CT.DOUBLE:  # the IEEE 754 bytes (big-endian), NULL as a NaN payload SQLite cannot hold
            out.append(f"sha256(string_agg(coalesce(float8send({c}), '\\x7ff8000000000001'::bytea), ''::bytea))")
        else:  # (a NULL where the source cannot have one shortens the stream: noticed all the same)
            v = canonical_sql(c, t) if not nullable else f"coalesce({canonical_sql(c, t)}, {_lit(NULL)})"
            out.append(f"sha256(convert_to(string_agg({v}, ','), 'UTF8'))")
    return out


def row_text_sql(columns: list[tuple[str, TargetType]], alias: str = "") -> str:
    """One text per row of its canonical values (to order and compare rows of tables without a key)."""
    pre = f"{alias}." if alias else ""
    fields = [f"coalesce({canonical_sql(_ref(pre, n), t) if t.ct not in TEXT_TYPES else _ref(pre, n)}, {_lit(NULL)})"
              for n, t in columns if t.ct != CT.JSON]
    if not fields:
        return "''"
    groups = [f"concat_ws({_lit(FIELD_SEP)}, {', '.join(fields[i:i + 90])})" for i in range(0, len(fields), 90)]
    return f" || {_lit(FIELD_SEP)} || ".join(groups)


def json_sql(columns: list[tuple[str, TargetType]], alias: str = "") -> str | None:
    """The row's JSON values as PostgreSQL prints them, one line each ('' for NULL)."""
    pre = f"{alias}." if alias else ""
    names = [name for name, t in columns if t.ct == CT.JSON]
    if not names:
        return None
    return " || E'\\n' || ".join(f"coalesce(({_ref(pre, n)})::text, '')" for n in names)


def normalise_json_sql() -> str:
    """Query normalising shipped source JSON (one value per line, '' for NULL) the way ``jsonb`` prints it.

    Takes one parameter, passed in binary (``%b``): the UTF-8 bytes of the lines. Returns their SHA-256 (hex).
    """
    return ("SELECT encode(sha256(convert_to(string_agg(CASE WHEN x = '' THEN '' ELSE x::jsonb::text END, E'\\n' "
            "ORDER BY n), 'UTF8')), 'hex') "
            "FROM unnest(string_to_array(convert_from(%b::bytea, 'UTF8'), E'\\n')) WITH ORDINALITY AS u(x, n)")


def key_text_sql(columns: list[tuple[str, TargetType]], alias: str = "") -> str:
    pre = f"{alias}." if alias else ""
    return f" || {_lit(FIELD_SEP)} || ".join(
        f"coalesce({canonical_sql(_ref(pre, n), t)}, {_lit(NULL)})" for n, t in columns)


def parsed_canonical_sql(sql_type: str, t: TargetType) -> str:
    """Query: PostgreSQL parses the text the copy sent (one parameter) and prints it canonically.

    This is the judge for values the fast canonical forms disagree on.
    """
    if t.ct == CT.JSON:
        return "SELECT (%s)::jsonb::text"
    return f"SELECT {canonical_sql(f'(%s)::{sql_type}', t)}"


def order_sql(columns: list[tuple[str, TargetType]], alias: str = "") -> str:
    """ORDER BY list matching SQLite's: text compares by bytes (collation "C"), like SQLite's BINARY."""
    pre = f"{alias}." if alias else ""
    return ", ".join(pre + qi(n) + (' COLLATE "C"' if t.ct in TEXT_TYPES else "") for n, t in columns)

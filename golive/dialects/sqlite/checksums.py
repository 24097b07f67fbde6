"""SQLite side of the content checksums: every stored value as the text PostgreSQL prints for its copy.

The copy sends each SQLite value through ``sqlite_types.value_sql`` to PostgreSQL, which parses it into a
typed column. To prove a chunk arrived intact, both sides render each row as *canonical text* in SQL and
the texts are hashed (``golive.validation.content``). The canonical text of a value is what PostgreSQL's
output function prints for it with the session settings of ``postgresql_checksums.SESSION``: e.g. the
SQLite text ``'2024-01-02T03:04:05Z'`` and the PostgreSQL ``timestamptz`` it became both read
``2024-01-02 03:04:05+00``.

The expressions here cover the common shapes cheaply (one ``printf`` per row). A value they cannot
canonicalise (an unusual date format, a float needing 16 digits in exponent form, ...) renders
differently from its copy; that is never hidden, only *noticed*: the chunk is narrowed down to the row
and PostgreSQL itself parses the value the copy sent (``value_sql``) and compares (see
``postgresql_checksums.parsed_canonical_sql``). So a gap here costs time, never a wrong answer.

Values are hashed column by column in key order (``streams``): the canonical texts of a column joined
by commas (``\\N`` for NULL), or for a text column its values back to back plus a stream of their byte
lengths, so no content can imitate a boundary. JSON is left to PostgreSQL: it normalises ``jsonb`` (key
order, spaces), so the source's JSON text is shipped there and normalised (``golive.validation.content``).
"""

from __future__ import annotations

from golive.dialects.sqlite.types import value_sql
from golive.model.types import CT, TargetType

FIELD_SEP = "\x1f"
NULL = "\\N"

#: canonical types whose values are text, hashed with their byte length in front
TEXT_TYPES = (CT.TEXT, CT.VARCHAR)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _epoch_ts(c: str) -> str:
    """Integer epoch seconds (|v| < 1e11) or milliseconds -> 'YYYY-MM-DD HH:MM:SS[.fff]+00' (zeros trimmed)."""
    ms = (f"strftime('%Y-%m-%d %H:%M:%S', {c} / 1000 - ({c} % 1000 < 0), 'unixepoch')"
          f"||rtrim(rtrim('.'||printf('%03d', ({c} % 1000 + 1000) % 1000), '0'), '.')||'+00'")
    sec = f"strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch')||'+00'"
    return f"iif(abs({c}) >= 100000000000, {ms}, {sec})"


def _text_fraction(c: str) -> str:
    """The fractional seconds of ISO text (``.123`` after ``YYYY-MM-DD HH:MM:SS``), zeros trimmed, at most 6."""
    rest = f"substr({c}, 21)"
    digits = f"(length({rest}) - length(ltrim({rest}, '0123456789')))"
    frac = f"rtrim(substr({rest}, 1, min({digits}, 6)), '0')"
    return f"iif(substr({c}, 20, 1) = '.' AND {frac} <> '', '.'||{frac}, '')"


def canonical_sql(name: str, t: TargetType) -> str | None:
    """SQLite expression giving the canonical text of ``name`` (an SQL expression, e.g. a quoted column; NULL stays NULL).

    Returns None for JSON, which is compared through PostgreSQL's own normalisation instead.
    """
    c = name  # an SQL expression: a quoted column, or the copy's own source expression
    ct = t.ct
    if ct == CT.JSON:
        return None
    if ct in TEXT_TYPES:
        return c
    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT):
        return (f"CASE typeof({c}) WHEN 'integer' THEN {c} WHEN 'real' THEN iif({c} = CAST({c} AS INTEGER), "
                f"CAST({c} AS INTEGER), {c}) ELSE {c} END")
    if ct == CT.BOOLEAN:  # PostgreSQL's boolean::text
        words = ("WHEN 't' THEN 'true' WHEN 'true' THEN 'true' WHEN 'y' THEN 'true' WHEN 'yes' THEN 'true' "
                 "WHEN 'on' THEN 'true' WHEN '1' THEN 'true' WHEN 'f' THEN 'false' WHEN 'false' THEN 'false' "
                 "WHEN 'n' THEN 'false' WHEN 'no' THEN 'false' WHEN 'off' THEN 'false' WHEN '0' THEN 'false'")
        return (f"CASE typeof({c}) WHEN 'integer' THEN CASE {c} WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE {c} END "
                f"WHEN 'real' THEN CASE {c} WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE {c} END "
                f"WHEN 'text' THEN CASE lower(trim({c})) {words} ELSE {c} END ELSE {c} END")
    if ct == CT.DOUBLE:
        # PostgreSQL prints the shortest text that reads back as the same double; SQLite has no such
        # format, so take 15 or 16 significant digits when they read back as the value, else 17. SQLite's
        # own text-to-double conversion may be one unit in the last place off, hence the tolerance (a
        # wrong guess only makes the texts differ, which the row-by-row comparison then settles).
        s15, s16 = f"printf('%.15g', {c})", f"printf('%.16g', {c})"
        tol = f"abs({c}) * 2.3e-16"
        return (f"CASE typeof({c}) WHEN 'real' THEN iif(abs(CAST({s15} AS REAL) - {c}) <= {tol}, {s15}, "
                f"iif(abs(CAST({s16} AS REAL) - {c}) <= {tol}, {s16}, printf('%!.17g', {c}))) "
                f"WHEN 'integer' THEN iif(abs({c}) < 1000000000000000, {c}, printf('%.15g', {c})) ELSE {c} END")
    if ct == CT.DECIMAL:
        # what the copy sends (15 significant digits for a REAL), then trailing zeros trimmed like trim_scale()
        s = f"printf('%!.15g', {c})"
        return (f"CASE typeof({c}) WHEN 'real' THEN iif(instr({s}, 'e') = 0, rtrim(rtrim({s}, '0'), '.'), {s}) "
                f"ELSE {c} END")
    if ct == CT.TIMESTAMP_TZ:
        full = (f"CASE typeof({c}) WHEN 'text' THEN coalesce(strftime('%Y-%m-%d %H:%M:%S', {c})||{_text_fraction(c)}"
                f"||'+00', {c}) WHEN 'integer' THEN coalesce({_epoch_ts(c)}, {c}) "
                f"ELSE {value_sql(name, t)} END")
        # the shape PostgreSQL prints itself ('YYYY-MM-DD HH:MM:SS', read as UTC) needs no work
        return f"CASE WHEN {c} GLOB '????-??-?? ??:??:??' THEN {c}||'+00' WHEN {c} IS NULL THEN NULL ELSE {full} END"
    if ct == CT.DATE:
        v = value_sql(name, t)
        return (f"CASE WHEN length({c}) = 10 AND substr({c}, 5, 1) = '-' AND typeof({c}) = 'text' THEN {c} "
                f"ELSE coalesce(date({v}), {v}) END")
    if ct == CT.TIME:
        return f"iif(typeof({c}) = 'text' AND length({c}) = 5 AND substr({c}, 3, 1) = ':', {c}||':00', {c})"
    if ct == CT.BINARY:
        return f"iif({c} IS NULL, NULL, lower(hex({c})))"  # hex(NULL) is ''
    if ct == CT.UUID:
        return f"iif(typeof({c}) = 'text', lower({c}), {value_sql(name, t)})"
    raise AssertionError(f"no canonical form for {ct}")


def streams(columns: list[tuple[str, TargetType, bool]]) -> list[tuple[str, str, str]]:
    """The value streams of a range, as ``(expression, group_concat separator (SQL), encoding)``.

    ``columns`` holds ``(name, type, nullable)``. Values are hashed column by column (cheaper than
    building row texts): a NOT NULL text column gives its values separated by NUL (which no text can
    hold), a nullable one its values back to back plus their byte lengths (-1 for NULL), so no content
    can imitate a boundary; a double precision column gives the exact text the copy
    sent (17 significant digits), which Python reads into the IEEE 754 bytes PostgreSQL holds (encoding
    ``float8``: bit-exact, and free of the difference between the two systems' shortest forms); any
    other column gives its canonical texts separated by commas, ``\\N`` for NULL. JSON columns are left
    out (see ``json_sql``). The order matches ``postgresql_checksums.streams``.
    """
    out = []
    for name, t, nullable in columns:
        c = name  # an SQL expression: a quoted column, or the copy's own source expression
        if t.ct == CT.JSON:
            continue
        if t.ct in TEXT_TYPES and not nullable:
            # text never holds a NUL (PostgreSQL refuses it, the copy rejects it): NUL separates the values
            out.append((c, "char(0)", "text"))
        elif t.ct in TEXT_TYPES:
            out.append((c, "''", "text"))
            out.append((f"coalesce(length(CAST({c} AS BLOB)), -1)", "','", "text"))
        elif t.ct == CT.DOUBLE:
            out.append((f"coalesce({value_sql(name, t)}, '')", "','", "float8"))
        elif t.ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT):
            # as stored: an integral REAL (3.0) would read '3.0' here and '3' there, a difference the
            # row-by-row comparison then settles; integers need no conversion at all
            out.append((f"coalesce({c}, {_lit(NULL)})" if nullable else c, "','", "text"))
        else:
            expr = canonical_sql(name, t)
            # NOT NULL is enforced by SQLite; a NULL there would only shorten the stream (and be noticed)
            out.append((f"coalesce({expr}, {_lit(NULL)})" if nullable else expr, "','", "text"))
    return out


#: the 8 bytes standing for NULL in a ``float8`` stream: a NaN payload SQLite cannot produce
FLOAT8_NULL = bytes.fromhex("7ff8000000000001")


def float8_bytes(blob: bytes) -> bytes:
    """The big-endian IEEE 754 bytes of the comma-separated numbers of a ``float8`` stream ('' = NULL).

    A field Python cannot read as a number becomes 8 bytes that match nothing, so the range is compared
    row by row (where PostgreSQL judges the value itself).
    """
    import struct

    fields = blob.split(b",")
    if b"" not in fields:  # no NULL: one C-level pass
        try:
            return struct.pack(f">{len(fields)}d", *map(float, fields))
        except ValueError:
            pass
    out = bytearray()
    pack = struct.Struct(">d").pack
    for field in fields:
        if not field:
            out += FLOAT8_NULL
            continue
        try:
            out += pack(float(field))
        except ValueError:
            out += b"\xff" * 8
    return bytes(out)


def json_sql(columns: list[tuple[str, TargetType]]) -> str | None:
    """The row's JSON values as stored, one line each ('' for NULL), for PostgreSQL to normalise."""
    names = [name for name, t in columns if t.ct == CT.JSON]
    if not names:
        return None
    # a raw newline is only ever whitespace between JSON tokens (strings cannot hold one unescaped)
    return " || char(10) || ".join(f"coalesce(replace({n}, char(10), ' '), '')" for n in names)


def row_text_sql(columns: list[tuple[str, TargetType]]) -> str:
    """One text per row of its canonical values (to order and compare rows of tables without a key)."""
    fields = [f"coalesce(CAST({canonical_sql(n, t) if t.ct not in TEXT_TYPES else n} AS TEXT), {_lit(NULL)})"
              for n, t in columns if t.ct != CT.JSON]
    return f" || {_lit(FIELD_SEP)} || ".join(fields) if fields else "''"


def key_text_sql(names: list[tuple[str, TargetType]]) -> str:
    """Canonical text of a row's key (to match rows across the two sides)."""
    return f" || {_lit(FIELD_SEP)} || ".join(
        f"coalesce(CAST({canonical_sql(n, t)} AS TEXT), {_lit(NULL)})" for n, t in names)


def rendered_sql(name: str, t: TargetType) -> str:
    """The text the copy sent for the value (careful rendering): what PostgreSQL parses to check a value."""
    return value_sql(name, t)

"""SQLite's side of the content checksums: every stored value as the text PostgreSQL prints for its copy.

The copy sends each SQLite value through ``types.value_sql`` to the target, which parses it into a typed
column. To prove a chunk arrived intact, both sides render each row as *canonical text* in SQL and the texts
are hashed (``SQLiteSide``; the comparer is ``golive.validation.content``). The canonical text of a value is
what PostgreSQL's output function prints for it with the session settings of ``postgresql/checksums.SESSION``:
e.g. the SQLite text ``'2024-01-02T03:04:05Z'`` and the PostgreSQL ``timestamptz`` it became both read
``2024-01-02 03:04:05+00``.

The expressions here cover the common shapes cheaply (one ``printf`` per row). A value they cannot
canonicalise (an unusual date format, a float needing 16 digits in exponent form, ...) renders
differently from its copy; that is never hidden, only *noticed*: the chunk is narrowed down to the row
and the target side itself reads the value the copy sent (``rendered_sql``) and compares
(``Checksums.Side.same_after_parsing``). So a gap here costs time, never a wrong answer.

Values are hashed column by column in key order (``streams``): the canonical texts of a column joined
by commas (``\\N`` for NULL), or for a text column its values back to back plus a stream of their byte
lengths, so no content can imitate a boundary. JSON is left to the target: PostgreSQL normalises ``jsonb``
(key order, spaces), so the source's JSON text is shipped to the target side and normalised there
(``json_digest``).
"""

from __future__ import annotations

import sqlite3

from golive.dialects.base import Checksums
from golive.dialects.sqlite.session import connect, qi
from golive.dialects.sqlite.types import value_sql
from golive.errors import SourceError
from golive.model.types import CT, TargetType
from golive.model.validation import FIELD_SEP, NULL, Checksum, TooBig, as_text, float8_bytes, stream_digests

__all__ = ["FIELD_SEP", "NULL", "TEXT_TYPES", "SQLiteChecksums", "SQLiteSide", "canonical_sql", "float8_bytes",
           "json_sql", "key_text_sql", "rendered_sql", "row_text_sql", "streams"]

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
    out (see ``json_sql``). The order matches ``postgresql/checksums.streams``.
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


# ---------------------------------------------------------------------- one side of a comparison


class SQLiteSide(Checksums.Side):
    """A SQLite database's side: streams concatenated by ``group_concat`` in key order, hashed by Python."""

    ph = "?"
    rowid = "rowid"
    values_rows = True  # SQLite reads a list of row values only as VALUES (...), (...)

    def __init__(self, url, spec, role: str, *, json_in_sql: bool = False):
        super().__init__(spec, role, json_in_sql=json_in_sql)
        self.conn = connect(url, raw_text=True)
        #: text read as bytes and decoded here: the copy's fallback codec for text that is no UTF-8
        self.fallback = spec.options.get("text_encoding_fallback") if spec is not None and role == "source" else None
        #: a rowid table's ranges are rowid ranges, visited in rowid order (no sort)
        self.by_rowid = spec is not None and spec.kind == "rowid" and role == "source"
        if spec is None:
            return
        self.table = qi(spec.source if role == "source" else spec.target)
        if self.fallback:
            import codecs

            fallback = self.fallback

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

    def quote(self, name: str) -> str:
        return qi(name)

    def column(self, c) -> str:
        e = super().column(c)
        if self.fallback and c.type.ct in TEXT_TYPES + (CT.JSON,):
            return f"golive_text(CAST({e} AS BLOB), '')"
        return e

    def _columns(self) -> list[tuple[str, TargetType]]:
        return [(self.column(c), c.type) for c in self.spec.columns]

    def _streams(self) -> list[tuple[str, str, str]]:
        return streams([(self.column(c), c.type, c.nullable) for c in self.spec.columns])

    def _json(self) -> str:
        return json_sql(self._columns()) or "NULL"

    def key_expr(self, k) -> str:
        if self.by_rowid and k.source == "rowid":
            return "rowid"
        col = next((c for c in self.spec.columns if c.source == k.source), None)
        return self.column(col) if col is not None else qi(k.on(self.role))

    def keytext(self) -> str:
        return key_text_sql([(self.key_expr(k), k.type) for k in self.spec.key])

    def canonical(self, c) -> str:
        e = self.column(c)
        return (canonical_sql(e, c.type) or e) if c.type.ct not in TEXT_TYPES else e

    def rendered(self, c) -> str:
        return f"CAST({rendered_sql(self.column(c), c.type)} AS TEXT)"

    def rowtext(self) -> str:
        return row_text_sql(self._columns())

    def order(self) -> str:
        if self.by_rowid:
            return "rowid"
        if self.spec.kind != "bag":
            return ", ".join(self.key_expr(k) + (" COLLATE BINARY" if k.type.ct in TEXT_TYPES else "")
                             for k in self.spec.key)
        return f"{self.rowtext()}, {self._json()}"

    def range_key(self) -> str | None:
        if self.by_rowid:
            return "rowid"
        return self.key_expr(self.spec.key[0]) if self.spec.kind in ("rowid", "intkey") else None

    def checksum(self, where: str, args: list) -> Checksum:
        streams_ = self._streams()
        if self.by_rowid:  # a rowid range is visited in rowid order: no subquery needed
            aggs = "".join(f", group_concat({e}, {sep})" for e, sep, _ in streams_)
            sql = (f"SELECT count(*), min(rowid), max(rowid), group_concat({self._json()}, char(10)){aggs} "
                   f"FROM {self.table} {where}")
        else:
            k = self.range_key() or "NULL"
            inner = ", ".join(f"{e} AS s{i}" for i, (e, _, _) in enumerate(streams_))
            aggs = "".join(f", group_concat(s{i}, {sep})" for i, (_, sep, _) in enumerate(streams_))
            sql = (f"SELECT count(*), min(k), max(k), group_concat(j, char(10)){aggs} FROM "
                   f"(SELECT {k} AS k, {self._json()} AS j{', ' + inner if inner else ''} FROM {self.table} "
                   f"{where} ORDER BY {self.order()})")
        row = self.run(sql, args)[0]
        return Checksum(row[0], row[1], row[2], row[3], stream_digests(row[4:], [enc for _, _, enc in streams_]))

    def run(self, sql: str, args: list) -> list:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.DataError as exc:  # string or blob too big
            raise TooBig(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            what = self.spec.source if self.spec is not None else "validation"
            raise SourceError(f"{what}: reading the {self.role} for the checksum failed: {exc}") from None

    def rejected_filter(self, texts: set[str]) -> str:
        """A Python function tests each row's key text (SQLite calls back into this process)."""
        self.conn.create_function("golive_rejected", 1, lambda t: as_text(t) in texts, deterministic=True)
        return f"golive_rejected({self.keytext()})"

    def close(self) -> None:
        self.conn.close()


class SQLiteChecksums(Checksums):
    """SQLite as a side of a content comparison (a source: SQLite is never a migration target)."""

    loose_keys = True  # https://www.sqlite.org/datatype3.html: a column holds any type whatever it declares

    def side(self, url, spec, role: str, *, json_in_sql: bool = False) -> SQLiteSide:
        return SQLiteSide(url, spec, role, json_in_sql=json_in_sql)

    def sqlalchemy_url(self, url) -> str:
        return f"sqlite:///{url.path.resolve()}"

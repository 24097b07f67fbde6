"""MySQL / MariaDB type decisions and renderings: the column's catalog type + a profile of its values ->
``TargetType``; and the SQL that renders each value in the target's wire format on the MySQL server.

The rules (each has a README row and a test):

* integers keep their size; ``UNSIGNED`` widens (int unsigned -> bigint; bigint unsigned -> numeric(20) only
  when values need it); ``TINYINT(1)`` -> boolean when it holds only 0/1, else smallint with a warning;
  ``YEAR`` -> smallint;
* ``DECIMAL(p,s)`` -> numeric(p,s); ``FLOAT`` -> real, ``DOUBLE`` -> double precision (shortest exact text);
* ``CHAR(n)``/``VARCHAR(n)`` -> varchar(n) (MySQL strips CHAR's trailing spaces when read, so the app reads the
  same value); TEXT kinds -> text; latin1 and other charsets are converted by the server as MySQL decodes
  them (its latin1 is cp1252); NUL in text is rejected (PostgreSQL text cannot hold it);
* ``ENUM`` -> text + CHECK (the labels); ``SET`` -> text[]; ``BIT(1)`` -> boolean, ``BIT(n)`` -> bit varying(n);
* ``BINARY``/``VARBINARY``/BLOB kinds -> bytea (``BINARY(16)`` -> uuid with ``--uuid-binary``); JSON (and
  MariaDB's LONGTEXT + json_valid CHECK) -> jsonb; geometry -> bytea (WKB), reported;
* ``DATE`` -> date, ``DATETIME`` -> timestamp (the app's wall clock; ``--datetime-as timestamptz`` converts
  from ``--source-time-zone``), ``TIMESTAMP`` -> timestamptz; fractional seconds kept; zero dates
  (``0000-00-00``, ``2024-00-15``) -> NULL where nullable, counted; NOT NULL columns by ``--zero-dates``;
* ``TIME`` -> time within 00:00:00..24:00:00, else interval (MySQL allows -838:59:59..838:59:59).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from golive.dialects.base import Decision, Wire
from golive.dialects.mysql.session import qi
from golive.model.schema import Column
from golive.model.types import CT, TargetType

_INT_BASES = {"tinyint": CT.SMALLINT, "smallint": CT.SMALLINT, "mediumint": CT.INTEGER, "int": CT.INTEGER,
              "integer": CT.INTEGER, "bigint": CT.BIGINT}
#: the next size up for unsigned values (tinyint unsigned 0..255 still fits smallint)
_UNSIGNED = {"tinyint": CT.SMALLINT, "smallint": CT.INTEGER, "mediumint": CT.INTEGER, "int": CT.BIGINT,
             "integer": CT.BIGINT, "bigint": CT.BIGINT}
_TEXT = ("tinytext", "text", "mediumtext", "longtext")
_BINARY = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_GEOMETRY = ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
             "geometrycollection", "geomcollection")


@dataclass(frozen=True)
class MyType:
    """A MySQL column type taken apart (from information_schema.COLUMNS.COLUMN_TYPE)."""

    text: str
    base: str
    args: tuple[int, ...]
    unsigned: bool
    labels: tuple[str, ...] = ()


def parse_type(column_type: str) -> MyType:
    """``int(10) unsigned`` -> MyType(base='int', args=(10,), unsigned=True); ENUM/SET labels unquoted."""
    text = column_type.strip()
    low = text.lower()
    base = re.match(r"[a-z]+", low).group(0) if re.match(r"[a-z]+", low) else low
    labels: tuple[str, ...] = ()
    args: tuple[int, ...] = ()
    if base in ("enum", "set"):
        inner = text[text.index("(") + 1: text.rindex(")")]
        labels = tuple(m.replace("''", "'").replace("\\\\", "\\") for m in re.findall(r"'((?:[^']|'')*)'", inner))
    else:
        m = re.search(r"\(([\d,\s]+)\)", low)
        if m:
            args = tuple(int(x) for x in m.group(1).split(",") if x.strip())
    return MyType(text, base, args, "unsigned" in low, labels)


# ---------------------------------------------------------------------- profiles


@dataclass
class MyProfile:
    values: int = 0
    max: float | int | None = None
    min: float | int | None = None
    not_bool: int = 0  # TINYINT(1) values other than 0/1
    zero_dates: int = 0
    empty_enum: int = 0  # MySQL's '' error value of an ENUM
    nul_bytes: int = 0
    predicted_rejects: int = 0
    samples: list[str] = field(default_factory=list)


def profile_sql(c: Column, t: MyType, *, deep: bool) -> list[tuple[str, str]]:
    """Aggregates for one column, all computed in one scan of the table."""
    q = qi(c.name)
    out: list[tuple[str, str]] = []
    if t.base == "tinyint" and t.args == (1,):
        out.append(("not_bool", f"SUM({q} NOT IN (0, 1))"))
    if t.base == "bigint" and t.unsigned:
        out.append(("max", f"MAX({q})"))
    if t.base in ("date", "datetime", "timestamp"):
        out.append(("zero_dates", f"SUM(MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0)"))
    if t.base == "time":
        out += [("min", f"MIN({q})"), ("max", f"MAX({q})")]
    if t.base == "enum":
        out.append(("empty_enum", f"SUM({q} = '')"))
    if deep and (t.base in ("char", "varchar") + _TEXT or t.base in ("enum", "set")):
        out.append(("nul_bytes", f"SUM(INSTR({q}, CHAR(0)) > 0)"))
    return out


def read_profile(agg: dict) -> MyProfile:
    p = MyProfile()
    for k, v in agg.items():
        if v is None:
            continue
        if k in ("min", "max"):
            setattr(p, k, v)
        else:
            setattr(p, k, int(v))
    p.predicted_rejects = p.nul_bytes
    return p


def _seconds(v) -> float | None:
    """A TIME value (timedelta, or text like '-838:59:59.5') in seconds."""
    import datetime as dt

    if v is None:
        return None
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    m = re.match(r"(-)?(\d+):(\d+):(\d+(?:\.\d+)?)", str(v))
    if not m:
        return None
    s = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
    return -s if m.group(1) else s


# ---------------------------------------------------------------------- decisions


def decide(c: Column, t: MyType, p: MyProfile | None, *, options, json_check: bool, parent=None) -> Decision:
    """The neutral type of one MySQL column; see the module docstring for the rules."""
    p = p or MyProfile()
    b = t.base
    if parent is not None and b in _INT_BASES:
        return Decision(parent, "foreign key: same type as the referenced column")
    if b == "tinyint" and t.args == (1,) and not t.unsigned:
        if p.not_bool:
            return Decision(TargetType(ct=CT.SMALLINT), f"TINYINT(1) holding {p.not_bool} values other than 0/1",
                            warnings=[f"TINYINT(1) holds {p.not_bool} values other than 0/1: smallint, not boolean"])
        return Decision(TargetType(ct=CT.BOOLEAN), "TINYINT(1) holding only 0/1")
    if b in _INT_BASES:
        if not t.unsigned:
            return Decision(TargetType(ct=_INT_BASES[b]), "declared type")
        if b == "bigint":
            if p.max is not None and int(p.max) > 2**63 - 1:
                return Decision(TargetType(ct=CT.DECIMAL, precision=20, scale=0),
                                f"BIGINT UNSIGNED holding values up to {p.max} (> 2^63-1): numeric(20)")
            return Decision(TargetType(ct=CT.BIGINT), "BIGINT UNSIGNED whose values fit bigint")
        return Decision(TargetType(ct=_UNSIGNED[b]), f"{b.upper()} UNSIGNED widened to hold its whole range")
    if b in ("decimal", "numeric", "dec", "fixed"):
        prec = t.args[0] if t.args else 10
        scale = t.args[1] if len(t.args) > 1 else 0
        return Decision(TargetType(ct=CT.DECIMAL, precision=prec, scale=scale), "declared type")
    if b == "float":
        return Decision(TargetType(ct=CT.REAL), "FLOAT is 4 bytes")
    if b in ("double", "real"):
        return Decision(TargetType(ct=CT.DOUBLE), "declared type")
    if b == "year":
        return Decision(TargetType(ct=CT.SMALLINT), "YEAR: a number")
    if b == "bit":
        n = t.args[0] if t.args else 1
        if n == 1:
            return Decision(TargetType(ct=CT.BOOLEAN), "BIT(1)")
        return Decision(TargetType(ct=CT.BITS, length=n), f"BIT({n}): bit varying({n})")
    if b in ("char", "varchar"):
        n = t.args[0] if t.args else 255
        why = "declared type" + (" (MySQL strips CHAR's trailing spaces when read: the app reads the same value)"
                                 if b == "char" else "")
        return Decision(TargetType(ct=CT.VARCHAR, length=max(1, n)), why)
    if b in _TEXT:
        if json_check:
            return Decision(TargetType(ct=CT.JSON), "MariaDB JSON (LONGTEXT with a json_valid CHECK)")
        return Decision(TargetType(ct=CT.TEXT), "declared type")
    if b == "json":
        return Decision(TargetType(ct=CT.JSON), "declared type")
    if b == "enum":
        labels = list(t.labels)
        warnings = []
        if p.empty_enum and "" not in labels:
            labels.append("")
            warnings.append(f"{p.empty_enum} rows hold MySQL's '' error value of the ENUM (written in non-strict "
                            "mode); '' is allowed by the CHECK")
        return Decision(TargetType(ct=CT.ENUM, values=labels), "ENUM: text with a CHECK listing the labels",
                        warnings=warnings)
    if b == "set":
        return Decision(TargetType(ct=CT.TEXT_ARRAY, values=list(t.labels)), "SET: text[] of its members")
    if b in _BINARY:
        if b == "binary" and t.args == (16,) and options.uuid_binary:
            return Decision(TargetType(ct=CT.UUID), "BINARY(16) as uuid (--uuid-binary)")
        return Decision(TargetType(ct=CT.BINARY), "declared type")
    if b in _GEOMETRY:
        return Decision(TargetType(ct=CT.GEOMETRY), "geometry as WKB bytes (bytea)",
                        warnings=["geometry copied as WKB in bytea (install PostGIS and convert with "
                                  "ST_GeomFromWKB to query it spatially)"])
    if b == "date":
        return _zero(c, p, options, TargetType(ct=CT.DATE), "declared type")
    if b == "datetime":
        if options.datetime_as == "timestamptz":
            return _zero(c, p, options, TargetType(ct=CT.TIMESTAMP_TZ),
                         f"DATETIME read in {options.source_time_zone} (--datetime-as timestamptz)")
        return _zero(c, p, options, TargetType(ct=CT.TIMESTAMP), "DATETIME: the app's wall clock, no time zone")
    if b == "timestamp":
        return _zero(c, p, options, TargetType(ct=CT.TIMESTAMP_TZ), "TIMESTAMP is a moment (stored in UTC)")
    if b == "time":
        lo, hi = _seconds(p.min), _seconds(p.max)
        if (lo is not None and lo < 0) or (hi is not None and hi > 86400):
            return Decision(TargetType(ct=CT.INTERVAL), "TIME values outside 00:00..24:00: interval")
        return Decision(TargetType(ct=CT.TIME), "declared type")
    return Decision(TargetType(ct=CT.TEXT), f"{t.text}: not a type golive knows; copied as its text",
                    warnings=[f"type {t.text} copied as text"])


_ZERO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T][\d:.]+)?")


def is_zero_date(text: str | None) -> bool:
    """``0000-00-00``, ``0000-00-00 00:00:00``, or a zero month or day (``2000-00-00``): dates MySQL stores in
    non-strict mode and no other engine has."""
    m = _ZERO_DATE.fullmatch((text or "").strip())
    return bool(m) and (m.group(2) == "00" or m.group(3) == "00")


def _zero(c: Column, p: MyProfile, options, t: TargetType, reason: str) -> Decision:
    zero_default = is_zero_date((c.default or "").strip("'"))
    if zero_default and not c.nullable and options.zero_dates == "null":
        # an INSERT that leaves the column out gets the zero date in MySQL, written as NULL here: NULL must fit
        return Decision(t, reason, nullable=True, warnings=[
            f"default {c.default} is a zero date, written as NULL (--zero-dates null): the column is nullable in "
            "the target (--zero-dates reject|epoch to keep it NOT NULL)"]
            + ([f"{p.zero_dates} zero dates written as NULL"] if p.zero_dates else []))
    if not p.zero_dates:
        return Decision(t, reason)
    if c.nullable:
        return Decision(t, reason, warnings=[f"{p.zero_dates} zero dates (0000-00-00 or a zero month/day) written "
                                             "as NULL"])
    mode = options.zero_dates
    if mode == "reject":
        return Decision(t, reason, warnings=[f"{p.zero_dates} zero dates in a NOT NULL column: rejected "
                                             "(--zero-dates reject)"])
    if mode == "epoch":
        return Decision(t, reason, warnings=[f"{p.zero_dates} zero dates in a NOT NULL column written as "
                                             "1970-01-01 (--zero-dates epoch)"])
    return Decision(t, reason, nullable=True, warnings=[
        f"{p.zero_dates} zero dates in a NOT NULL column written as NULL; the column is nullable in the target "
        "(--zero-dates reject|epoch to keep it NOT NULL)"])


# ---------------------------------------------------------------------- rendering (on the MySQL server)


def _text(q: str) -> str:
    """A text value with its quotes doubled, as UTF-8 bytes: converted from the column's character set (latin1 is
    recoded, utf8mb4 kept byte for byte), then binary, so the row's CONCAT never compares collations (a table may
    mix them: utf8mb4_nopad_bin beside a JSON column's utf8mb4_bin is "Illegal mix of collations", error 1271)."""
    return f"CAST(CONVERT(REPLACE({q}, '''', '''''') USING utf8mb4) AS BINARY)"


def value_sql(c: Column, t: MyType, tt: TargetType, wire: Wire, *, options, zero_mode: str) -> str:
    """SQL rendering one value as the target's loader reads it; NULL stays NULL (the line adds the quotes).

    ``zero_mode``: what a zero date becomes: 'null', 'reject' (a value the target refuses, with the reason)
    or 'epoch'.
    """
    q = qi(c.name)
    ct = tt.ct
    plain = wire.timestamps == "plain"
    if tt.native:  # MySQL to MySQL: the value as the server prints it (binary as hex, bits as 0/1 text)
        if t.base in _BINARY:
            return f"HEX({q})"
        if t.base in _GEOMETRY:
            return f"HEX(ST_AsWKB({q}))"
        if t.base == "bit":
            return f"LPAD(BIN({q} + 0), {t.args[0] if t.args else 1}, '0')"
        if t.base in ("char", "varchar", "enum", "set", "json") + _TEXT:
            return _text(q)
        return f"CAST({q} AS CHAR)" if t.base in ("date", "datetime", "timestamp", "time", "year") else q
    if ct in (CT.DATE, CT.TIMESTAMP, CT.TIMESTAMP_TZ) and t.base in ("date", "datetime", "timestamp"):
        # the server's own text of a DATE/DATETIME/TIMESTAMP ('YYYY-MM-DD HH:MM:SS[.ffffff]') is what both
        # targets read; TIMESTAMP is read in the session's zone, which is UTC
        v = q
        if ct == CT.TIMESTAMP_TZ and t.base == "datetime":  # --datetime-as timestamptz: from the source's zone
            v = f"CONVERT_TZ({q}, '{options.source_time_zone}', '+00:00')"
        out = v if ct != CT.TIMESTAMP_TZ or plain else f"CONCAT({v}, '+00')"
        if zero_mode == "none":  # no zero dates when planned: one written since is refused by the target, named
            return out
        zero = {"null": "NULL", "epoch": "'1970-01-01'" if t.base == "date" else
                ("'1970-01-01 00:00:00'" if plain or ct != CT.TIMESTAMP_TZ else "'1970-01-01 00:00:00+00'"),
                "reject": f"CONCAT('golive: zero date: ', CAST({q} AS CHAR))"}[zero_mode]
        return f"IF(MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0, {zero}, {out})"
    if ct == CT.BOOLEAN:
        v = f"({q} + 0)" if t.base == "bit" else q
        if wire.bool_true == "1":
            return v
        return f"IF({v} = 1, '{wire.bool_true}', IF({v} = 0, '{wire.bool_false}', {v}))"
    if ct == CT.BITS:
        return f"LPAD(BIN({q} + 0), {tt.length}, '0')"
    if ct in (CT.BINARY, CT.GEOMETRY):
        v = f"ST_AsWKB({q})" if ct == CT.GEOMETRY else q
        return f"CONCAT('\\\\x', HEX({v}))" if wire.binary == "pg-hex" else f"HEX({v})"
    if ct == CT.UUID:
        h = f"LOWER(HEX({q}))"
        return (f"CONCAT_WS('-', SUBSTR({h}, 1, 8), SUBSTR({h}, 9, 4), SUBSTR({h}, 13, 4), SUBSTR({h}, 17, 4), "
                f"SUBSTR({h}, 21, 12))")
    if ct == CT.TEXT_ARRAY:
        esc = f"REPLACE(REPLACE({_text(q)}, '\\\\', '\\\\\\\\'), '\"', '\\\\\"')"
        if wire.arrays == "json":
            return f"IF({q} = '', '[]', CONCAT('[\"', REPLACE({esc}, ',', '\",\"'), '\"]'))"
        return f"IF({q} = '', '{{}}', CONCAT('{{\"', REPLACE({esc}, ',', '\",\"'), '\"}}'))"
    if ct in (CT.TEXT, CT.VARCHAR, CT.JSON, CT.ENUM):
        return _text(q)
    if ct in (CT.TIME, CT.INTERVAL):
        return f"CAST({q} AS CHAR)"
    return q  # numbers: their own text, exact


def line_sql(cols: list[tuple[Column, MyType, TargetType]], wire: Wire, *, options, zero_modes: dict[str, str],
             careful: bool = False) -> str:
    """One row as a wire line: every value quoted (quotes doubled), NULL the bare word.

    ``careful``: the same (kept for the readers' interface: MySQL's rendering has no unguarded conversion).
    """
    fields = []
    for c, t, tt in cols:
        v = value_sql(c, t, tt, wire, options=options, zero_mode=zero_modes.get(c.name, "null"))
        quote = tt.ct not in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL, CT.REAL, CT.DOUBLE) or bool(tt.native)
        fields.append(f"IFNULL(CONCAT('''', {v}, ''''), 'NULL')" if quote else f"IFNULL({v}, 'NULL')")
    # a NUL byte in text reaches PostgreSQL as is, which refuses the load (invalid byte sequence 0x00): the
    # careful path then names the row, so the fast path needs no check of its own
    return "CONCAT(" + ", ',', ".join(fields) + ", '\\n')"


# ---------------------------------------------------------------------- writing: neutral types as MySQL DDL

#: canonical type -> MySQL type (https://mariadb.com/kb/en/data-types/); sizes by stored lengths in ``type_sql``
WRITE_TYPES = {
    CT.BOOLEAN: "TINYINT(1)",
    CT.SMALLINT: "SMALLINT",
    CT.INTEGER: "INT",
    CT.BIGINT: "BIGINT",
    CT.DECIMAL: "DECIMAL(%d,%d)",
    CT.REAL: "FLOAT",
    CT.DOUBLE: "DOUBLE",
    CT.VARCHAR: "VARCHAR(%d)",
    CT.DATE: "DATE",
    CT.TIME: "TIME(6)",
    CT.TIMESTAMP: "DATETIME(6)",
    CT.TIMESTAMP_TZ: "DATETIME(6)",  # in UTC (TIMESTAMP ends in 2038); reported
    CT.INTERVAL: "TIME(6)",  # within ±838:59:59, else rejected
    CT.JSON: "JSON",
    CT.UUID: "CHAR(36)",
    CT.TEXT_ARRAY: "JSON",
    CT.ARRAY: "JSON",
    CT.BITS: "BIT(%d)",
    CT.GEOMETRY: "LONGBLOB",
}

#: the largest value (bytes) each text/blob type holds
_TEXT_SIZES = ((65_535, "TEXT", "BLOB"), (16_777_215, "MEDIUMTEXT", "MEDIUMBLOB"))


def type_sql(t: TargetType) -> str:
    ct = t.ct
    if ct == CT.NATIVE or t.native:
        return t.native or "LONGTEXT"
    if ct == CT.DECIMAL:
        if t.precision and t.precision <= 65:
            return WRITE_TYPES[CT.DECIMAL] % (t.precision, min(t.scale or 0, 30))
        return "DECIMAL(65,30)"
    if ct == CT.VARCHAR:
        n = t.length or 255
        return WRITE_TYPES[CT.VARCHAR] % n if n <= 16_383 else type_sql(TargetType(ct=CT.TEXT, length=n * 4))
    if ct in (CT.TEXT, CT.BINARY):
        size = t.length  # the longest stored value in bytes, when the planner measured it
        for limit, text, blob in _TEXT_SIZES:
            if size is not None and size <= limit:
                return text if ct == CT.TEXT else blob
        return "LONGTEXT" if ct == CT.TEXT else "LONGBLOB"
    if ct == CT.ENUM:
        labels = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "''") + "'" for v in (t.values or []))
        return f"ENUM({labels})" if labels else "VARCHAR(255)"
    if ct == CT.BITS:
        return WRITE_TYPES[CT.BITS] % min(t.length or 1, 64)
    return WRITE_TYPES[ct]

def render_default(d, t: TargetType) -> str | None:
    """The SQL of a neutral default for a column of type ``t`` (MariaDB 10.2+ / MySQL 8.0.13+ take expressions)."""
    ct = t.ct
    if d.kind == "expr":
        return f"({d.sql})" if d.sql and not d.sql.startswith("(") else d.sql
    if d.kind == "uuid":
        return "(UUID())"
    if d.kind == "epoch_now":
        return "(UNIX_TIMESTAMP())"
    if d.kind in ("now", "today", "time_now"):
        if ct in (CT.TEXT, CT.VARCHAR):
            fmt = {"now": "%Y-%m-%d %H:%i:%s", "today": "%Y-%m-%d", "time_now": "%H:%i:%s"}[d.kind]
            return f"(DATE_FORMAT(UTC_TIMESTAMP(), '{fmt}'))"
        if d.kind == "today" or ct == CT.DATE:
            return "(CURRENT_DATE)"
        if d.kind == "time_now" or ct == CT.TIME:
            return "(CURRENT_TIME)"
        m = re.search(r"\((\d)\)", t.native or "")  # the column's own fractional digits (DATETIME(3))
        p = m.group(1) if m else ("0" if t.native else "6")
        return f"CURRENT_TIMESTAMP({p})" if p != "0" else "CURRENT_TIMESTAMP"
    v = d.value
    if isinstance(v, list):  # a text array is JSON here
        import json

        return "('" + json.dumps(v, ensure_ascii=False).replace("\\", "\\\\").replace("'", "''") + "')"
    if d.sql == "bits":
        return f"b'{v}'"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, bytes):
        return f"0x{v.hex()}" if v else "''"
    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL, CT.DOUBLE, CT.REAL):
        return str(v)
    text = "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"
    return f"({text})" if ct in (CT.TEXT, CT.JSON, CT.BINARY) else text

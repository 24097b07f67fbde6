"""SQLite type decisions: declared type + profile of stored values -> ``TargetType``; and the SQL that
renders each value as a CSV field the target's bulk loader accepts.

The rule, also in the README table:

* the declared type chooses the *kind* (integer, boolean, timestamp, JSON, text, ...);
* the stored values choose the *size*: an integer column whose values exceed int32 becomes bigint, a
  VARCHAR(n) holding longer strings becomes text, a DECIMAL(p,s) holding more digits becomes plain
  numeric, a DATE holding times of day becomes timestamptz ("shape widens");
* a value that is not of the kind at all (text in an INTEGER column, invalid JSON, an unparseable
  date, a NUL byte in text, invalid UTF-8) is rejected with its key, column, value and reason
  ("kind rejects"). Nothing is dropped or altered silently.
* columns with no declared type (or an unknown one) take the kind of what they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from golive.dialects.base import Decision, Wire
from golive.dialects.sqlite.session import qi
from golive.model.defaults import Default, literal
from golive.model.schema import Column
from golive.model.types import CT, TargetType, smallest_integer

# ---------------------------------------------------------------------- classifying declared types

#: kind of a declared type, matched on the lower-cased base name (before any "(...)")
_EXACT = {
    "bool": "bool", "boolean": "bool", "bit": "bool",
    "date": "date",
    "time": "time", "timetz": "time", "time without time zone": "time", "time with time zone": "time",
    "uuid": "uuid", "uniqueidentifier": "uuid",
    "decimal": "decimal", "numeric": "decimal", "number": "decimal", "dec": "decimal", "fixed": "decimal",
    "money": "decimal", "smallmoney": "decimal",
    "year": "smallint",
    "enum": "text", "set": "text", "string": "text",
    "binary": "blob", "varbinary": "blob", "bytea": "blob", "image": "blob", "raw": "blob",
}
_VARCHAR = {"varchar", "nvarchar", "char", "nchar", "character", "varying character", "character varying",
            "native character", "nvarchar2", "varchar2", "national character", "national char",
            "national character varying", "national varchar", "char varying", "nchar varying"}
_DATETIME = ("datetime", "timestamp", "smalldatetime", "datetime2", "datetimeoffset", "timestamptz")


@dataclass(frozen=True)
class Declared:
    """A declared SQLite type taken apart."""

    text: str
    base: str
    args: tuple[int, ...]
    kind: str  # bool date time datetime json uuid decimal float smallint int bigint text varchar blob untyped other
    unsigned: bool = False


def classify(declared: str) -> Declared:
    """Classify a declared type the way SQLite's affinity rules would, but finer.

    >>> classify("NVARCHAR(120)").kind, classify("int(11)").kind, classify("").kind
    ('varchar', 'int', 'untyped')
    """
    text = " ".join((declared or "").lower().split())
    if "(" in text:
        base, _, tail = text.partition("(")
        rawargs = tail.split(")", 1)[0]
    else:
        base, rawargs = text, ""
    args = tuple(int(a) for a in re.findall(r"-?\d+", rawargs))
    unsigned = "unsigned" in text
    base = re.sub(r"\b(unsigned|signed|zerofill|auto_increment|autoincrement|nocase|not null|primary key)\b", "", base)
    base = " ".join(base.split())
    if not text:
        return Declared(text, "", args, "untyped")
    if base in _EXACT:
        kind = _EXACT[base]
    elif base in ("tinyint",) and args == (1,):
        kind = "bool"
    elif "json" in base:
        kind = "json"
    elif base.startswith(_DATETIME):
        kind = "datetime"
    elif "int" in base:  # SQLite rule 1: INTEGER affinity
        if base in ("tinyint", "smallint", "int2", "short", "short integer") or "small" in base or "tiny" in base:
            kind = "smallint"
        elif "big" in base or base == "int8" or "long" in base:
            kind = "bigint"
        else:
            kind = "int"
    elif base in _VARCHAR:
        kind = "varchar" if args else "text"
    elif any(w in base for w in ("char", "clob", "text")):  # rule 2: TEXT affinity
        kind = "text"
    elif "blob" in base:  # rule 3: BLOB affinity
        kind = "blob"
    elif any(w in base for w in ("real", "floa", "doub")):  # rule 4: REAL affinity
        kind = "float"
    else:  # rule 5: NUMERIC affinity; we look at the values
        kind = "other"
    return Declared(text, base, args, kind, unsigned)


# ---------------------------------------------------------------------- profiles

@dataclass
class ColumnProfile:
    """What a column holds. Only the aggregates its kind needs are computed (see ``profile_sql``)."""

    values: int = 0  # non-null values
    by_class: dict[str, int] = field(default_factory=dict)  # integer/real/text/blob counts when measured
    num_min: float | None = None
    num_max: float | None = None
    has_non_numeric: bool = False
    max_length: int | None = None
    overscale: int = 0  # decimal values with more fractional digits than the declared scale
    with_time: int = 0  # DATE values holding a time of day
    fractional: int = 0  # REALs with a fraction in an integer column (2.99 in `amount integer`)
    fractional_example: float | None = None
    null_keys: int = 0  # NULLs in a primary key column that is not the rowid
    fill_collisions: int = 0  # of those rows, how many have a rowid another row uses as its key
    max_bytes: int | None = None  # the longest value in bytes (measured when the target sizes types by it)
    not_utf8: int = 0  # text values that are not valid UTF-8 (measured with --invalid-text bytes)
    # deep (dry-run) predictions
    predicted_rejects: int = 0
    predicted_reason: str = ""
    samples: list[str] = field(default_factory=list)


def profile_sql(col: Column, d: Declared, *, deep: bool, lengths: bool = False) -> list[tuple[str, str]]:
    """Aggregates to compute for one column as ``(key, sql)``; all go into one scan of the table."""
    c = qi(col.name)
    # counting values reads every column: only where the decision needs it
    out = [("values", f"count({c})")] if deep or d.kind in ("untyped", "other") else []
    # integer sizes and decimal magnitudes depend on the values; floats and booleans do not
    if d.kind in ("smallint", "int", "bigint", "decimal", "untyped", "other"):
        out += [("min", f"min({c})"), ("max", f"max({c})")]
    if d.kind in ("smallint", "int", "bigint"):
        frac = f"typeof({c}) = 'real' AND {c} <> CAST({c} AS INTEGER)"
        out += [("fractional", f"sum({frac})"), ("fractional_example", f"max(iif({frac}, {c}, NULL))")]
    if col.pk_position and col.nullable:
        out.append(("null_keys", f"sum({c} IS NULL)"))
    if lengths and d.kind in ("text", "varchar", "blob", "json", "untyped", "other", "uuid"):
        out.append(("max_bytes", f"max(length(CAST({c} AS BLOB)))"))
    if d.kind in ("untyped", "other"):
        out += [(f"class_{k}", f"sum(typeof({c})='{k}')") for k in ("integer", "real", "text", "blob")]
    if d.kind == "varchar":
        out.append(("max_length", f"max(length({c}))"))
    if d.kind == "decimal" and len(d.args) >= 2 and d.args[1] >= 0:
        s = d.args[1]
        g = f"printf('%!.15g', {c})"  # the text the target will read for a REAL
        out.append(("overscale", f"sum(CASE typeof({c}) WHEN 'real' THEN iif(instr({g}, 'e'), abs({c}) < 1 AND {c} <> 0, "
                                 f"length(rtrim({g}, '0')) - instr({g}, '.') > {s}) "
                                 f"WHEN 'text' THEN instr({c}, '.') > 0 AND length(rtrim({c}, '0')) - instr({c}, '.') > {s} "
                                 f"ELSE 0 END)"))
    if d.kind == "date":
        out.append(("with_time", f"sum(CASE typeof({c}) WHEN 'text' THEN length({c}) > 10 AND "
                                 f"substr({c}, 12, 8) NOT IN ('00:00:00', '') "
                                 f"WHEN 'integer' THEN {c} % iif(abs({c}) >= 100000000000, 86400000, 86400) <> 0 "
                                 f"ELSE 0 END)"))
    if deep:
        cond = _bad_value_condition(c, d)
        if cond:
            out.append(("bad", f"sum({cond})"))
    return out


def _bad_value_condition(c: str, d: Declared) -> str | None:
    """A SQL condition predicting values the target will reject (dry run only; the target decides)."""
    if d.kind in ("smallint", "int", "bigint"):
        x = f"trim({c})"
        good = (f"({x} <> '' AND NOT {x} GLOB '*[^0-9]*' OR substr({x}, 1, 1) IN ('-', '+') "
                f"AND substr({x}, 2) <> '' AND NOT substr({x}, 2) GLOB '*[^0-9]*')")
        return f"typeof({c}) = 'text' AND NOT {good} OR typeof({c}) = 'blob'"
    if d.kind == "bool":
        return (f"typeof({c}) IN ('integer', 'real') AND {c} NOT IN (0, 1) OR typeof({c}) = 'text' AND lower(trim({c})) "
                f"NOT IN ('t','f','true','false','y','n','yes','no','on','off','1','0') OR typeof({c}) = 'blob'")
    if d.kind in ("datetime", "date"):
        return (f"typeof({c}) = 'text' AND julianday({c}) IS NULL AND lower(trim({c})) NOT IN ('infinity', '-infinity') "
                f"OR typeof({c}) = 'blob'")
    if d.kind == "json":
        return f"{c} IS NOT NULL AND NOT json_valid({c})"
    if d.kind in ("float", "decimal"):
        x = f"trim({c})"
        return (f"typeof({c}) = 'text' AND ({x} = '' OR {x} GLOB '*[^0-9.eE+-]*') AND lower({x}) NOT IN "
                f"('nan', 'infinity', '-infinity', '+infinity', 'inf', '-inf', '+inf') OR typeof({c}) = 'blob'")
    if d.kind in ("text", "varchar", "untyped", "other"):
        return f"typeof({c}) IN ('text', 'blob') AND instr(CAST({c} AS BLOB), x'00') > 0"
    return None


def read_profile(col: Column, d: Declared, agg: dict[str, object]) -> ColumnProfile:
    """Build a ``ColumnProfile`` from the aggregates of ``profile_sql``."""
    p = ColumnProfile(values=int(agg.get("values") or 0))
    lo, hi = agg.get("min"), agg.get("max")
    # SQLite orders NULL < numbers < text < blob, so a text/blob max means non-numeric values exist
    if isinstance(hi, (bytes, str)) or isinstance(lo, (bytes, str)):
        p.has_non_numeric = True
    if isinstance(lo, (int, float)):
        p.num_min = lo
    if isinstance(hi, (int, float)):
        p.num_max = hi
    for k in ("integer", "real", "text", "blob"):
        if f"class_{k}" in agg:
            p.by_class[k] = int(agg[f"class_{k}"] or 0)
    if agg.get("max_length") is not None:
        p.max_length = int(agg["max_length"])
    p.overscale = int(agg.get("overscale") or 0)
    p.with_time = int(agg.get("with_time") or 0)
    p.fractional = int(agg.get("fractional") or 0)
    p.fractional_example = agg.get("fractional_example")
    p.null_keys = int(agg.get("null_keys") or 0)
    p.not_utf8 = int(agg.get("not_utf8") or 0)
    p.max_bytes = int(agg["max_bytes"]) if agg.get("max_bytes") is not None else (0 if "max_bytes" in agg else None)
    p.predicted_rejects = int(agg.get("bad") or 0)
    return p


def profile_table(conn, t, *, deep: bool, rowid_keyed: dict | None = None, lengths: bool = False,
                  utf8: bool = False) -> dict[str, ColumnProfile]:
    """Profile every column of ``t`` in one scan (two for very wide tables) and return ``{column: profile}``
    (``utf8``: also count the text values that are not valid UTF-8, a Python check of every text value)."""
    rowid_keyed = rowid_keyed or {}
    if utf8:
        conn.create_function("golive_not_utf8", 1, _not_utf8, deterministic=True)
    keys, exprs, decls = [], [], {}
    # a column referencing a rowid key takes the key's type (bigint): its own range does not matter
    rowid_children = {fk.columns[0] for fk in t.foreign_keys
                      if len(fk.columns) == 1 and fk.ref_table in rowid_keyed
                      and fk.ref_columns in ([], [rowid_keyed[fk.ref_table]])}
    for c in t.columns:
        d = classify(c.declared)
        decls[c.name] = d
        if (c.name == t.rowid_alias or (c.name in rowid_children and d.kind in ("smallint", "int", "bigint"))) \
                and not deep:
            continue
        for key, sql in profile_sql(c, d, deep=deep, lengths=lengths):
            keys.append((c.name, key))
            exprs.append(sql)
        if utf8 and d.kind in ("text", "varchar", "untyped", "other", "json", "uuid", "date", "datetime", "time"):
            keys.append((c.name, "not_utf8"))
            exprs.append(f"sum(typeof({qi(c.name)}) = 'text' AND golive_not_utf8(CAST({qi(c.name)} AS BLOB)))")
    values = {}
    if exprs:
        # SQLite allows up to 2000 result columns by default: split very wide tables
        for start in range(0, len(exprs), 1500):
            row = conn.execute(f"SELECT {', '.join(exprs[start:start + 1500])} FROM {qi(t.name)}").fetchone()
            for (col, key), v in zip(keys[start:start + 1500], row):
                values.setdefault(col, {})[key] = v
    out = {}
    for c in t.columns:
        d = decls[c.name]
        p = read_profile(c, d, values.get(c.name, {}))
        if p.has_non_numeric and d.kind in ("smallint", "int", "bigint", "decimal", "float", "bool"):
            # text/blob values sort above numbers: measure the numeric range on its own
            p.num_min, p.num_max = conn.execute(
                f"SELECT min({qi(c.name)}), max({qi(c.name)}) FROM {qi(t.name)} "
                f"WHERE typeof({qi(c.name)}) IN ('integer', 'real')").fetchone()
        if p.null_keys and t.has_rowid and len(t.primary_key) == 1:
            k, r = qi(c.name), t.rowid_name
            p.fill_collisions = conn.execute(
                f"SELECT count(*) FROM {qi(t.name)} a WHERE a.{k} IS NULL AND EXISTS "
                f"(SELECT 1 FROM {qi(t.name)} b WHERE b.{k} = a.{r})").fetchone()[0]
        if deep and p.predicted_rejects:
            cond = _bad_value_condition(qi(c.name), d)
            p.samples = [_show(v) for (v,) in conn.execute(
                f"SELECT {qi(c.name)} FROM {qi(t.name)} WHERE {cond} LIMIT 3")]
        out[c.name] = p
    return out


def _not_utf8(b) -> int:
    if not isinstance(b, bytes):
        return 0
    try:
        b.decode("utf-8")
        return 0
    except UnicodeDecodeError:
        return 1


def _show(v) -> str:
    if isinstance(v, bytes):
        try:
            v = v.decode("utf-8")
        except UnicodeDecodeError:
            return "x'" + v[:32].hex() + ("…'" if len(v) > 32 else "'")
    s = "".join(ch if ch >= " " or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in str(v))
    return s if len(s) <= 80 else s[:77] + "…"


# ---------------------------------------------------------------------- decisions

def decide(col: Column, d: Declared, p: ColumnProfile, *, rowid_pk: bool, parent: TargetType | None,
           widen: bool = False) -> Decision:
    """Choose the target type of one column. See the module docstring for the rule (``widen``: a numeric column
    holding text becomes text, ``--type-mismatch widen``)."""
    k = d.kind
    if widen and not rowid_pk and p.has_non_numeric and k in ("smallint", "int", "bigint", "decimal"):
        why = f"{d.text or k} column holding text: widened to text, every value as it is (--type-mismatch widen)"
        return Decision(TargetType(ct=CT.TEXT), why, warnings=[why])
    if rowid_pk:
        return Decision(TargetType(ct=CT.BIGINT), "INTEGER PRIMARY KEY aliases the 64-bit rowid: identity column")
    if parent is not None and k in ("smallint", "int", "bigint", "untyped", "other") and parent.ct in (
            CT.SMALLINT, CT.INTEGER, CT.BIGINT):
        return Decision(parent, "foreign key: same type as the referenced column")
    if k in ("smallint", "int", "bigint") and p.fractional:
        # numbers widen within numbers: an ORM's `amount integer` holding 2.99 keeps its cents
        why = (f"{p.fractional} REAL values with a fraction (e.g. {p.fractional_example!r}) in an integer "
               "column: widened to numeric")
        return Decision(TargetType(ct=CT.DECIMAL), why, _stray_notes(p), warnings=[why])
    if k in ("smallint", "int", "bigint"):
        at_least = {"smallint": CT.SMALLINT, "int": CT.INTEGER, "bigint": CT.BIGINT}[k]
        lo = _floor(p.num_min)
        hi = _ceil(p.num_max)
        ct = smallest_integer(lo, hi, at_least)
        if d.unsigned and k != "bigint" and ct == at_least and at_least != CT.BIGINT:
            # unsigned values may use the top bit: keep room for it
            ct = smallest_integer(lo, hi if hi is not None else None, at_least)
        if ct != at_least:
            reason = f"values {lo}..{hi} exceed {at_least.value}"
        elif lo is not None:
            reason = f"values {lo}..{hi}"
        else:
            reason = "declared type (no values)"
        return Decision(TargetType(ct=ct), reason, _stray_notes(p))
    if k == "bool":
        return Decision(TargetType(ct=CT.BOOLEAN), "declared type; reads 0/1, t/f, true/false, yes/no")
    if k == "float":
        return Decision(TargetType(ct=CT.DOUBLE), "declared type (SQLite REAL is 8-byte)")
    if k == "decimal":
        if len(d.args) >= 1 and 0 < d.args[0] <= 1000:
            prec, scale = d.args[0], (d.args[1] if len(d.args) > 1 else 0)
            limit = 10 ** (prec - scale) if prec > scale else 1
            big = max(abs(p.num_min or 0), abs(p.num_max or 0))
            if p.overscale or big >= limit:
                why = (f"{p.overscale} values have more than {scale} decimals" if p.overscale
                       else f"values up to {big} do not fit ({prec},{scale})")
                return Decision(TargetType(ct=CT.DECIMAL), f"{why}: widened")
            return Decision(TargetType(ct=CT.DECIMAL, precision=prec, scale=scale), "declared type")
        return Decision(TargetType(ct=CT.DECIMAL), "declared type")
    if k == "varchar":
        n = d.args[0] if d.args else None
        if n is None or n <= 0 or n > 10485760:
            return Decision(TargetType(ct=CT.TEXT), "declared type")
        if p.max_length is not None and p.max_length > n:
            return Decision(TargetType(ct=CT.TEXT),
                            f"longest value has {p.max_length} characters > {n} (SQLite does not enforce lengths): widened")
        return Decision(TargetType(ct=CT.VARCHAR, length=n), "declared type" + (" (varchar: SQLite does not blank-pad like char(n))"
                                           if "char" in d.base and "var" not in d.base else ""))
    if k == "text":
        return Decision(TargetType(ct=CT.TEXT), "declared type")
    if k == "blob":
        return Decision(TargetType(ct=CT.BINARY), "declared type")
    if k == "date":
        if p.with_time:
            return Decision(TargetType(ct=CT.TIMESTAMP_TZ),
                            f"{p.with_time} values hold a time of day a date would drop: widened")
        return Decision(TargetType(ct=CT.DATE), "declared type (ISO text or epoch)")
    if k == "time":
        return Decision(TargetType(ct=CT.TIME), "declared type")
    if k == "datetime":
        return Decision(TargetType(ct=CT.TIMESTAMP_TZ),
                        "ISO text is UTC unless it has an offset; integers are epoch s or ms")
    if k == "json":
        return Decision(TargetType(ct=CT.JSON), "declared type")
    if k == "uuid":
        return Decision(TargetType(ct=CT.UUID), "declared type (text, or 16-byte blobs)")
    # untyped / unknown: the values decide
    return _by_values(d, p)


def _by_values(d: Declared, p: ColumnProfile) -> Decision:
    label = f"{d.text!r}" if d.text else "no declared type"
    cls = {k: v for k, v in p.by_class.items() if v}
    if not cls:
        return Decision(TargetType(ct=CT.TEXT), f"{label}: text (column holds no values)")
    kinds = set(cls)
    if kinds == {"integer"}:
        ct = smallest_integer(_floor(p.num_min), _ceil(p.num_max), CT.INTEGER)
        return Decision(TargetType(ct=ct), f"{label}: {ct.value} (holds only integers)")
    if kinds <= {"integer", "real"}:
        return Decision(TargetType(ct=CT.DOUBLE if d.kind == "untyped" else CT.DECIMAL),
                        f"{label}: {'double precision' if d.kind == 'untyped' else 'numeric'} (holds numbers)")
    if kinds == {"blob"}:
        return Decision(TargetType(ct=CT.BINARY), f"{label}: bytea (holds only blobs)")
    if "blob" in kinds:
        return Decision(TargetType(ct=CT.BINARY), f"{label}: bytea (holds blobs and {', '.join(sorted(kinds - {'blob'}))})",
                        [f"{sum(v for k, v in cls.items() if k != 'blob')} non-blob values stored as their text bytes"])
    notes = []
    if kinds & {"integer", "real"}:
        notes.append(f"{cls.get('integer', 0) + cls.get('real', 0)} numbers stored as their SQLite text form")
    return Decision(TargetType(ct=CT.TEXT), f"{label}: text (holds {', '.join(sorted(kinds))})", notes)


def _stray_notes(p: ColumnProfile) -> list[str]:
    return ["holds non-numeric values: those the target cannot read as numbers are rejected"] if p.has_non_numeric else []


def _floor(v):
    import math

    return None if v is None else (math.floor(v) if math.isfinite(v) else (-(2**63) if v < 0 else 2**63))


def _ceil(v):
    import math

    return None if v is None else (math.ceil(v) if math.isfinite(v) else (-(2**63) if v < 0 else 2**63))


# ---------------------------------------------------------------------- rendering rows as CSV
#
# Rows go to ``COPY ... (FORMAT csv, QUOTE "'", NULL 'NULL')``: every value is a single-quoted field
# (quotes doubled), NULL is the bare word NULL (a quoted 'NULL' stays text). Two renderings:
#
# * fast (``line_sql``): one ``printf('%Q,%Q,...')`` per row, a single C call. ``%Q`` stops at a NUL
#   byte, so a row holding NUL in any text value is emitted as a line with too many fields instead,
#   which makes the target refuse the chunk and sends it down the careful path;
# * careful (``careful_line_sql``): NUL-safe ``replace()`` quoting and every conversion guarded by the
#   value's storage class; used only for chunks the target refused.
#
# Both render a clean value identically. A conversion that cannot handle a value passes it on as
# stored (or with a "golive: reason:" prefix), so the target rejects it with a reason: never NULL.

COPY_OPTIONS = "FORMAT csv, QUOTE '''', NULL 'NULL'"

#: the PostgreSQL target's wire (the default of the renderings below)
PG_WIRE = Wire(name="postgresql")

#: words PostgreSQL's date/time input reads as *moments* ('now', 'today', ...): reading them would change the
#: meaning of stored text, so they are rejected instead (https://www.postgresql.org/docs/current/datatype-datetime.html)
_SPECIAL_DT = "('now','today','tomorrow','yesterday','epoch','allballs')"

_SQ = "''''"  # SQL literal of one single quote


def _bad(reason: str, c: str) -> str:
    """A value the target rejects on purpose, carrying the reason."""
    return f"'golive: {reason}: '||{c}"


def _epoch(c: str, *, date: bool, plain: bool = False) -> str:
    """Integer epoch seconds (|v| < 1e11) or milliseconds (>= 1e11) -> ISO UTC text."""
    zone = "" if plain else "||'+00'"
    if date:
        sec = f"date({c}, 'unixepoch')"
        ms = f"date({c} / 1000 - ({c} % 1000 < 0), 'unixepoch')"
    else:
        sec = f"strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch'){zone}"
        ms = (f"strftime('%Y-%m-%d %H:%M:%S', {c} / 1000 - ({c} % 1000 < 0), 'unixepoch')||'.'||"
              f"printf('%03d', ({c} % 1000 + 1000) % 1000){zone}")
    return f"coalesce(iif(abs({c}) >= 100000000000, {ms}, {sec}), {_bad('epoch out of range', c)})"


def _epoch_real(c: str, *, date: bool, plain: bool = False) -> str:
    fmt = "'%Y-%m-%d'" if date else "'%Y-%m-%d %H:%M:%f'"
    tail = "" if date or plain else "||'+00'"
    return (f"coalesce(strftime({fmt}, iif(abs({c}) >= 100000000000, {c} / 1000.0, {c}), 'unixepoch'){tail}, "
            f"{_bad('epoch out of range', c)})")


def _plain_ts(c: str, *, date: bool) -> str:
    """ISO text as 'YYYY-MM-DD HH:MM:SS[.f…]' in UTC, the fraction kept to the digit (MySQL DATETIME reads only
    this form); text SQLite cannot read as a date passes on as stored, for the target to reject."""
    if date:
        return f"coalesce(date({c}), {c})"
    rest = f"substr({c}, 21)"
    digits = f"(length({rest}) - length(ltrim({rest}, '0123456789')))"
    frac = f"iif(substr({c}, 20, 1) = '.' AND {digits} > 0, '.'||substr({rest}, 1, min({digits}, 6)), '')"
    return f"coalesce(strftime('%Y-%m-%d %H:%M:%S', {c})||{frac}, {c})"


def value_sql(expr: str, t: TargetType, *, fast: bool = False, wire: Wire = PG_WIRE, text_fallback: bool = False) -> str:
    """SQL giving the text the target's loader reads for one value (NULL stays NULL).

    Args:
        expr: the source expression (a quoted column, or ``ColumnPlan.source_expr``).
        wire: how the target reads values (``golive.dialects.base.Wire``).
        text_fallback: text goes through ``golive_text()``, which decodes invalid UTF-8 from the plan's legacy
            encoding (registered on the reject path's connection only).
    """
    c = expr
    ct = t.ct
    plain = wire.timestamps == "plain"
    if ct in (CT.TEXT, CT.VARCHAR, CT.JSON, CT.ENUM):
        if text_fallback:  # as a blob: Python would decode TEXT arguments as UTF-8 before the function sees them
            label = "'" + c.strip('"').replace('""', '"').replace("'", "''") + "'"
            return f"golive_text(CAST({c} AS BLOB), {label})"
        return c
    if ct == CT.TIME:
        return c
    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT):
        # fast: a REAL such as 3.0 reaches the target as '3.0' and is refused -> the careful path converts it
        return c if fast else (f"CASE typeof({c}) WHEN 'real' THEN iif({c} = CAST({c} AS INTEGER), "
                               f"CAST({c} AS INTEGER), {c}) ELSE {c} END")
    if ct == CT.BOOLEAN:
        if wire.bool_true == "1":  # the loader reads numbers only: SQLite's words become 1/0 here
            t_words = "'t','true','y','yes','on','1'"
            f_words = "'f','false','n','no','off','0'"
            return (f"CASE typeof({c}) WHEN 'integer' THEN {c} WHEN 'real' THEN iif({c} IN (0, 1), CAST({c} AS INTEGER), {c}) "
                    f"WHEN 'text' THEN CASE WHEN lower(trim({c})) IN ({t_words}) THEN 1 WHEN lower(trim({c})) IN ({f_words}) "
                    f"THEN 0 ELSE {_bad('not a boolean', c)} END ELSE {c} END")
        return c if fast else f"CASE typeof({c}) WHEN 'real' THEN iif({c} IN (0, 1), CAST({c} AS INTEGER), {c}) ELSE {c} END"
    if ct == CT.DOUBLE:
        return f"iif(typeof({c}) = 'real', printf('%!.17g', {c}), {c})"
    if ct == CT.DECIMAL:
        # 15 significant digits: SQLite's own text form of a REAL, which recovers the decimal that was stored
        return f"iif(typeof({c}) = 'real', printf('%!.15g', {c}), {c})"
    if ct in (CT.TIMESTAMP_TZ, CT.DATE):
        d = ct == CT.DATE
        text = _plain_ts(c, date=d) if plain else c
        full = (f"CASE typeof({c}) WHEN 'text' THEN iif(length({c}) < 12 AND lower(trim({c})) IN {_SPECIAL_DT}, "
                f"{_bad('relative date word', c)}, {text}) WHEN 'integer' THEN {_epoch(c, date=d, plain=plain)} "
                f"WHEN 'real' THEN {_epoch_real(c, date=d, plain=plain)} ELSE {c} END")
        if plain:
            # fast: text already in the plain form goes straight through
            shape = "'????-??-??'" if d else "'????-??-?? ??:??:??*'"
            return (f"CASE WHEN +{c} GLOB {shape} AND NOT +{c} GLOB '*[^0-9 :.-]*' THEN {c} ELSE {full} END"
                    if fast else full)
        # fast: text starting with a digit (ISO dates) goes straight through. The unary + strips the
        # column's NUMERIC affinity, which would otherwise turn '0' into 0 and let integers through.
        return f"CASE WHEN +{c} >= '0' AND +{c} < ':' THEN {c} ELSE {full} END" if fast else full
    if ct == CT.BINARY:
        return f"iif({c} IS NULL, NULL, '\\x'||hex({c}))" if wire.binary == "pg-hex" else f"iif({c} IS NULL, NULL, hex({c}))"
    if ct == CT.UUID:
        h = f"lower(hex({c}))"
        fmt = f"substr({h},1,8)||'-'||substr({h},9,4)||'-'||substr({h},13,4)||'-'||substr({h},17,4)||'-'||substr({h},21,12)"
        return f"iif(typeof({c}) = 'blob' AND length({c}) = 16, {fmt}, {c})"
    raise AssertionError(f"no rendering for {ct}")


def _may_hold_nul(t: TargetType) -> bool:
    return t.ct not in (CT.BINARY, CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.BOOLEAN, CT.DOUBLE, CT.DECIMAL)


def line_sql(cols: list[tuple[str, TargetType]], wire: Wire = PG_WIRE) -> str:
    """Fast rendering of one row as a CSV line (see the comment above); ``cols`` holds (expression, type)."""
    groups = []
    for start in range(0, len(cols), 100):  # SQLite functions take at most 127 arguments
        part = cols[start:start + 100]
        fmt = ",".join("%Q" for _ in part)
        groups.append(f"printf('{fmt}', {', '.join(value_sql(e, t, fast=True, wire=wire) for e, t in part)})")
    line = " || ',' || ".join(groups) + " || char(10)"
    if wire.nul_in_text:
        return line
    # UUID blobs are rendered as hex text: only their text values are checked
    nul = [f"instr(iif(typeof({e}) = 'blob', NULL, {e}), char(0))" if t.ct == CT.UUID
           else f"instr({e}, char(0))" for e, t in cols if _may_hold_nul(t)]
    if not nul:
        return line
    broken = "," * (len(cols) + 1)  # more fields than columns: the target refuses the chunk
    return f"CASE WHEN {' OR '.join(nul)} THEN '{broken}' || char(10) ELSE {line} END"


def careful_line_sql(cols: list[tuple[str, TargetType]], wire: Wire = PG_WIRE, *, text_fallback: bool = False) -> str:
    """NUL-safe rendering with every conversion guarded (the reject path)."""
    fields = [f"coalesce({_SQ}||replace({value_sql(e, t, wire=wire, text_fallback=text_fallback)}, {_SQ}, "
              f"{_SQ}||{_SQ})||{_SQ}, 'NULL')" for e, t in cols]
    return " || ',' || ".join(fields) + " || char(10)"


# ---------------------------------------------------------------------- defaults

_NOW_FUNCS = re.compile(
    r"^(datetime|strftime|date|time|julianday|unixepoch)\s*\((.*)\)$", re.I | re.S)


def parse_default(raw: str | None) -> tuple[Default | None, str | None]:
    """Read a SQLite default expression as SQLite itself reads it; returns ``(default, note)``.

    ``note`` says why a default is not carried over (None when there is none, or it was read).
    """
    if raw is None:
        return None, None
    s = raw.strip()
    while s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        s = s[1:-1].strip()
    up = s.upper()
    if up == "NULL":
        return None, None
    if up in ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"):
        return Default({"CURRENT_TIMESTAMP": "now", "CURRENT_DATE": "today", "CURRENT_TIME": "time_now"}[up]), None
    m = _NOW_FUNCS.match(s)
    if m and re.search(r"'now'", m.group(2), re.I):
        fn, args = m.group(1).lower(), m.group(2)
        if fn == "unixepoch" or (fn == "strftime" and re.match(r"\s*'%s'", args)):
            return Default("epoch_now"), None
        if fn in ("date", "time", "datetime", "strftime"):
            return Default({"date": "today", "time": "time_now"}.get(fn, "now")), None
        return None, f"default {raw} not translated"
    if up in ("TRUE", "FALSE"):
        return literal(up == "TRUE"), None
    if re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", s):
        number = int(s) if re.fullmatch(r"[-+]?\d+", s) else float(s)
        return Default("literal", number, sql=s), None
    m = re.fullmatch(r"'((?:[^']|'')*)'", s, re.S)
    if m:
        return literal(m.group(1).replace("''", "'")), None
    # a double-quoted word SQLite cannot resolve as a column is read as a string literal ("" is '')
    m = re.fullmatch(r'"((?:[^"]|"")*)"', s, re.S)
    if m:
        return literal(m.group(1).replace('""', '"')), None
    m = re.fullmatch(r"[xX]'([0-9a-fA-F]*)'", s)
    if m and len(m.group(1)) % 2 == 0:
        return Default("literal", bytes.fromhex(m.group(1)), sql=m.group(1)), None
    return None, f"default {raw} not translated (expression)"


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0

"""Column defaults in neutral form: a source dialect reads its own default syntax into a ``Default``, a target
dialect renders it (``render_default``), so SQLite's ``datetime('now')``, MySQL's ``CURRENT_TIMESTAMP(6)``
and PostgreSQL's ``now()`` all become what the target writes for "the current moment"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["literal", "now", "today", "time_now", "epoch_now", "uuid", "expr", "zero_date", "sequence"]


@dataclass(frozen=True)
class Default:
    """A default value: a literal (``value``: text, number, bytes, bool, or a list of texts for a set/array), a
    moment/date/time of "now", a new UUID, an expression in the source's SQL (``sql``, translated for the target by
    the planner), or MySQL's zero date (``value`` as written, ``sql`` the run's ``--zero-dates`` choice)."""

    kind: Kind
    value: Any = None
    sql: str | None = None


def literal(value) -> Default:
    return Default("literal", value)


_TRUE = {"t", "true", "1", "y", "yes", "on"}
_FALSE = {"f", "false", "0", "n", "no", "off"}


def coerce(d: Default, t, raw: str) -> tuple[Default | None, str | None]:
    """Fit a default to the column's target type; returns ``(default or None, note explaining what was not carried over)``.

    The rules are SQLite's own reading of the value where that is clear: a number on a date/time column is
    an epoch (seconds, or milliseconds from 10^11 on, as the values' rule), a quoted ``'now'`` on a date/time
    column is the current moment, ``'t'``/``'yes'``/``1`` on a boolean are true.
    """
    import datetime as dt
    import json
    import math

    from golive.model.types import CT, INT_TYPES

    ct = t.ct
    if ct == CT.NATIVE and d.sql and d.kind != "zero_date":  # the same engine: the default exactly as written
        return Default("expr", sql=d.sql), None
    if d.kind == "sequence":
        return None, (f"default {raw} (a sequence) has no equivalent in the target: dropped; the values are copied, "
                      "and a new row needs one (a table's one identity column keeps its AUTO_INCREMENT)")
    if d.kind in ("now", "today", "time_now"):
        if ct in (CT.TIMESTAMP_TZ, CT.TIMESTAMP, CT.DATE, CT.TIME, CT.TEXT, CT.VARCHAR, CT.NATIVE):
            return d, None
        return None, f"default {raw} not translated for {ct.value}"
    if d.kind == "epoch_now":
        if ct in INT_TYPES or ct in (CT.DECIMAL, CT.DOUBLE):
            return d, None
        return None, f"default {raw} not translated for {ct.value}"
    if d.kind in ("uuid", "expr"):
        return d, None
    if d.kind == "zero_date":
        if ct == CT.NATIVE or t.native:  # MySQL to MySQL: the same column, the same default
            return literal(d.value), None
        if d.sql == "epoch":
            value = "1970-01-01" if ct == CT.DATE else "1970-01-01 00:00:00"
            return literal(value), f"default {raw} is a zero date: {value} (--zero-dates epoch)"
        if d.sql == "reject":
            return None, (f"default {raw} is a zero date, which the target cannot hold: dropped (--zero-dates reject); "
                          "an INSERT that leaves the column out fails")
        return None, f"default {raw} is a zero date: NULL (--zero-dates null)"
    v = d.value
    if ct == CT.TEXT_ARRAY and isinstance(v, str) and not t.native:  # MySQL SET: 'a,b' names its members; '' none
        v = [m for m in v.split(",") if m] if v else []
    if isinstance(v, list):
        if ct not in (CT.TEXT_ARRAY, CT.ARRAY, CT.NATIVE):
            return None, f"default {raw} (a list) not translated for {ct.value}"
        unknown = [m for m in v if t.values is not None and m not in t.values]
        if unknown:
            return None, f"default {raw} names {', '.join(map(repr, unknown))}, not a member: dropped"
        return literal(v), None
    if ct == CT.BITS:
        bits = format(v, "b") if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else str(v).strip()
        if not bits or set(bits) - {"0", "1"}:
            return None, f"default {raw} is not a bit string"
        return Default("literal", bits.zfill(t.length or len(bits)), sql="bits"), None
    if ct == CT.ENUM and t.values is not None and str(v) not in t.values:
        return None, f"default {raw} is not one of the labels: dropped"
    if ct == CT.UUID and isinstance(v, str):
        import uuid

        try:
            uuid.UUID(v)
        except ValueError:
            return None, f"default {raw} is not a UUID"
    if isinstance(v, bool):
        if ct == CT.BOOLEAN:
            return d, None
        if ct in INT_TYPES or ct in (CT.DECIMAL, CT.DOUBLE, CT.REAL):
            return literal(int(v)), None
        return None, f"default {raw} not translated for {ct.value}"
    number = None
    if isinstance(v, (int, float)):
        number = v
    elif isinstance(v, str) and ct not in (CT.TEXT, CT.VARCHAR, CT.JSON, CT.ENUM, CT.BINARY):
        try:
            number = float(v.strip()) if v.strip() else None
            if number is not None and v.strip().lstrip("+-").isdigit():
                number = int(v.strip())
        except ValueError:
            number = None
    if ct == CT.BOOLEAN:
        if number is not None:
            return (literal(bool(number)), None) if number in (0, 1) else (None, f"default {raw} is not a boolean")
        word = str(v).strip().lower()
        if word in _TRUE or word in _FALSE:
            return literal(word in _TRUE), None
        return None, f"default {raw} is not a boolean"
    if ct in INT_TYPES or ct in (CT.DECIMAL, CT.DOUBLE, CT.REAL):
        if number is None:
            if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'" and _is_number(v[1:-1]):
                return None, (f"default {raw} is the text {v} with its quotes, not a number (SQLite stores that "
                              f"text in the column): not translated")
            return None, f"default {raw} is not a number"
        if ct in INT_TYPES and isinstance(number, float) and not number.is_integer():
            return None, f"default {raw} is not an integer"
        if isinstance(number, float) and not math.isfinite(number):
            return None, f"default {raw} is not a finite number"
        text = v.strip().lstrip("+") if isinstance(v, str) else (d.sql or repr(number)).lstrip("+")
        return literal(int(number) if ct in INT_TYPES else text), None
    if ct in (CT.TIMESTAMP_TZ, CT.TIMESTAMP, CT.DATE):
        if number is not None and isinstance(v, (int, float)):  # SQLite reads a number here as an epoch
            seconds = number / 1000 if abs(number) >= 1e11 else number
            try:
                moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
            except OverflowError:
                return None, f"default {raw}: epoch out of range"
            value = moment.date().isoformat() if ct == CT.DATE else moment.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
            return literal(value), f"default {raw} read as Unix epoch: {value} UTC"
        if isinstance(v, str) and v.strip().lower() in ("now", "today"):
            return Default("today" if ct == CT.DATE else "now"), None
        return (literal(str(v)), None) if isinstance(v, str) else (None, f"default {raw} not translated for {ct.value}")
    if ct == CT.JSON:
        text = v if isinstance(v, str) else json.dumps(v)
        try:
            json.loads(text)
        except ValueError:
            return None, f"default {raw} is not valid JSON"
        return literal(text), None
    if ct == CT.BINARY:
        return Default("literal", v if isinstance(v, bytes) else str(v).encode(), sql=d.sql), None
    if isinstance(v, bytes):
        return None, f"default {raw} (a blob) not translated for {ct.value}"
    return literal(v if isinstance(v, str) else (d.sql or str(v))), None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False

"""Neutral types as PostgreSQL DDL (the WRITE side; what a PostgreSQL source reads is decided in ``source.py``)."""

from __future__ import annotations

from golive.model.types import CT, TargetType

#: canonical type -> PostgreSQL type (https://www.postgresql.org/docs/current/datatype.html)
WRITE_TYPES = {
    CT.BOOLEAN: "boolean",
    CT.SMALLINT: "smallint",
    CT.INTEGER: "integer",
    CT.BIGINT: "bigint",
    CT.DECIMAL: "numeric",
    CT.DOUBLE: "double precision",
    CT.TEXT: "text",
    CT.VARCHAR: "varchar(%d)",
    CT.BINARY: "bytea",
    CT.DATE: "date",
    CT.TIME: "time",
    CT.TIMESTAMP_TZ: "timestamptz",
    CT.JSON: "jsonb",
    CT.UUID: "uuid",
    CT.REAL: "real",
    CT.TIMESTAMP: "timestamp",
    CT.INTERVAL: "interval",
    CT.ENUM: "text",  # + a CHECK listing the labels (golive.migrate.planning)
    CT.TEXT_ARRAY: "text[]",
    CT.BITS: "bit varying(%d)",
    CT.GEOMETRY: "bytea",  # WKB; geometry(…) when the target has PostGIS
}


def type_sql(t: TargetType) -> str:
    if t.ct == CT.VARCHAR:
        return WRITE_TYPES[CT.VARCHAR] % (t.length or 1)
    if t.ct == CT.DECIMAL and t.precision:
        return f"numeric({t.precision},{t.scale or 0})"
    if t.ct == CT.BITS:
        return WRITE_TYPES[CT.BITS] % (t.length or 1)
    if t.ct == CT.ARRAY:
        return (type_sql(TargetType(ct=t.element)) if t.element else "text") + "[]"
    if t.ct == CT.NATIVE:
        return t.native or "text"
    if t.ct == CT.GEOMETRY and t.native:
        return t.native  # geometry(…) when PostGIS is installed (decided by the planner)
    return WRITE_TYPES[t.ct]

def render_default(d, t: TargetType) -> str | None:
    """The SQL of a neutral default (``golive.model.defaults.Default``) for a column of type ``t``."""
    ct = t.ct
    if d.kind == "expr":
        return d.sql
    if d.kind == "uuid":  # a new UUID; its text on a text column (MySQL's CHAR(36) DEFAULT (uuid()))
        return "gen_random_uuid()" if ct in (CT.UUID, CT.NATIVE) else "(gen_random_uuid())::text"
    if d.kind == "epoch_now":
        return "(extract(epoch from now()))::bigint"
    if d.kind in ("now", "today", "time_now"):
        if ct in (CT.TEXT, CT.VARCHAR):  # SQLite's text form, in UTC
            fmt = {"now": "YYYY-MM-DD HH24:MI:SS", "today": "YYYY-MM-DD", "time_now": "HH24:MI:SS"}[d.kind]
            return f"to_char(now() AT TIME ZONE 'UTC', '{fmt}')"
        if d.kind == "today" or ct == CT.DATE:
            return "CURRENT_DATE"
        if d.kind == "time_now" or ct == CT.TIME:
            return "LOCALTIME"
        return "CURRENT_TIMESTAMP"
    v = d.value
    if isinstance(v, list):  # a text array: ARRAY['a','b'], or an empty one
        items = ", ".join("'" + str(m).replace("'", "''") + "'" for m in v)
        return f"ARRAY[{items}]::text[]" if v else "'{}'::text[]"
    if d.sql == "bits":
        return f"B'{v}'"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return "'\\x" + (d.sql or v.hex()) + "'::bytea"
    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL, CT.DOUBLE, CT.REAL):
        return str(v)
    text = "'" + str(v).replace("'", "''") + "'"
    if ct == CT.JSON:
        return text + "::jsonb"
    return text

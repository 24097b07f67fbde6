"""What a content comparison compares: one ``TableSpec`` per planned table, its key ranges, and the rows of a
range on each side (the range predicate, less the rows the copy rejected).

A spec names the key kind that orders and splits the table (``rowid``, ``intkey``, ``sorted``, ``bag``), the
columns with both sides' names, and the keys of rejected rows. The SQL of each engine comes from its
``Checksums.Side``: here only what is the same on every engine (``BETWEEN``, ``NOT IN``).
"""

from __future__ import annotations

from golive.dialects import dialect_of
from golive.model.plan import TablePlan
from golive.model.types import CT, TargetType
from golive.model.validation import FIELD_SEP, NULL, CheckColumn, KeyColumn, TableSpec
from golive.urls import DatabaseURL

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
INT_TYPES = (CT.SMALLINT, CT.INTEGER, CT.BIGINT)
#: rows the copy rejected that one ``NOT IN`` lists at most (bound parameters); beyond, the side filters by key text
MAX_LISTED_KEYS = 900


def build_spec(tp: TablePlan, schema: str, rejected: list[dict], plan=None) -> TableSpec:
    """How to compare one planned table: key kind, columns, ranges (intkey ranges are added by ``key_ranges``)."""
    columns = [CheckColumn(source=c.source, target=c.target, type=c.type, sql_type=c.sql_type, nullable=c.nullable,
                           source_expr=c.source_expr)
               for c in tp.columns if not c.generated_sql]
    by_source = {c.source: c for c in tp.columns}
    common = dict(source=tp.source, target=tp.target, schema_name=tp.target_schema or schema, columns=columns,
                  rows_hint=tp.rows, rejected=rejected,
                  source_dialect=plan.source_dialect if plan else "sqlite", source_schema=tp.source_schema,
                  source_name=tp.source_name, natives={c.source: c.declared for c in tp.columns},
                  native_target=bool(plan and plan.source_dialect == plan.target_dialect),
                  options=dict(plan.options) if plan else {})
    if tp.key == ["rowid"]:
        return TableSpec(kind="bag", key=[KeyColumn(source="rowid", target="", type=TargetType(ct=CT.BIGINT))],
                         **common)
    key = [KeyColumn(source=k, target=by_source[k].target, type=by_source[k].type) for k in tp.key]
    if tp.has_rowid and len(tp.key) == 1 and tp.identity is not None and key[0].target == tp.identity:
        ranges = [(ch.lo, ch.hi, ch.rows) for ch in tp.chunks] or [(0, 0, 0)]
        return TableSpec(kind="rowid", key=key, ranges=ranges, **common)
    if key[0].type.ct in INT_TYPES:
        return TableSpec(kind="intkey", key=key, **common)
    return TableSpec(kind="sorted", key=key, **common)


def key_ranges(source: DatabaseURL, spec: TableSpec, chunk_rows: int) -> TableSpec:
    """Split an ``intkey`` table into value ranges of the first key column (index min/max, equal spans)."""
    if spec.kind != "intkey":
        return spec
    side = dialect_of(source).checksums.side(source, spec, "source")
    try:
        k = side.key_expr(spec.key[0])
        lo, hi = side.run(f"SELECT min({k}), max({k}) FROM {side.table} WHERE {k} BETWEEN {INT_MIN} AND {INT_MAX}",
                          [])[0]
    finally:
        side.close()
    if lo is None:
        spec.ranges = [(0, 0, 0)]
        return spec
    lo, hi = int(lo), int(hi)
    n = max(1, min(hi - lo + 1, -(-spec.rows_hint // max(1, chunk_rows))))
    step = -(-(hi - lo + 1) // n)
    bounds = [lo + i * step for i in range(n)] + [hi + 1]
    spec.ranges = [(a, b - 1, spec.rows_hint // n) for a, b in zip(bounds, bounds[1:]) if b > a]
    return spec


# ---------------------------------------------------------------------- the rows of a range, on one side


def exclusion(spec: TableSpec, side) -> tuple[str, list]:
    """The source's condition leaving out the rows the copy rejected (``AND …``), with its parameters."""
    if not spec.rejected:
        return "", []
    if spec.kind in ("rowid", "bag") and side.rowid:
        name = spec.key[0].source
        ids = sorted({int(r[name]) for r in spec.rejected if isinstance(r.get(name), (int, float))})
        return (f" AND {side.rowid} NOT IN ({', '.join(map(str, ids))})" if ids else ""), []
    names = [k.source for k in spec.key]
    rows = [tuple(r.get(n) for n in names) for r in spec.rejected if all(n in r for n in names)]
    if not rows:
        return "", []
    if len(rows) * len(names) > MAX_LISTED_KEYS:  # too many parameters: filter by key text instead
        texts = {FIELD_SEP.join(NULL if v is None else str(v) for v in row) for row in rows}
        return " AND NOT " + side.rejected_filter(texts), []
    ph = side.ph
    if len(names) == 1:
        # NOT IN with a NULL inside is never true: a rejected NULL key leaves out the NULL keys instead
        values = [r[0] for r in rows if r[0] is not None]
        col = side.key_expr(spec.key[0])
        cond = f" AND {col} IS NOT NULL" if len(values) < len(rows) else ""
        if values:
            cond += f" AND {col} NOT IN ({', '.join(ph for _ in values)})"
        return cond, values
    one = "(" + ", ".join(ph for _ in names) + ")"
    cols = "(" + ", ".join(side.quote(n) for n in names) + ")"
    listed = ("VALUES " if side.values_rows else "") + ", ".join(one for _ in rows)
    return f" AND {cols} NOT IN ({listed})", [v for r in rows for v in r]


def where(side, lo, hi, excluded: tuple[str, list] = ("", [])) -> tuple[str, list]:
    """``WHERE`` of the key range ``lo``..``hi`` on one side (None: the whole table), less ``excluded``."""
    cond, args = excluded
    k = side.range_key()
    if k is None or lo is None:
        return "WHERE 1=1" + cond, list(args)
    return f"WHERE {k} BETWEEN {side.ph} AND {side.ph}" + cond, [lo, hi] + list(args)


def keys_where(side, spec: TableSpec, keys: list[tuple], excluded: tuple[str, list] = ("", [])) -> tuple[str, list]:
    """``WHERE`` of the rows with these key values (source values, in the spec's key order) on one side."""
    cond, args = excluded
    ph = side.ph
    if len(spec.key) == 1:
        values = [k[0] for k in keys]
        return (f"WHERE {side.key_expr(spec.key[0])} IN ({', '.join(ph for _ in values)})" + cond,
                values + list(args))
    if side.values_rows:  # SQLite: ORs of equalities use the key's index, ``(a, b) IN (VALUES …)`` scans the table
        one = "(" + " AND ".join(f"{side.key_expr(k)} = {ph}" for k in spec.key) + ")"
        return (f"WHERE ({' OR '.join(one for _ in keys)})" + cond, [v for k in keys for v in k] + list(args))
    one = "(" + ", ".join(ph for _ in spec.key) + ")"
    cols = "(" + ", ".join(side.key_expr(k) for k in spec.key) + ")"
    listed = ("VALUES " if side.values_rows else "") + ", ".join(one for _ in keys)
    return f"WHERE {cols} IN ({listed})" + cond, [v for k in keys for v in k] + list(args)

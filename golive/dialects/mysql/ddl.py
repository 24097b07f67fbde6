"""MySQL DDL of planned tables, and what MySQL's own limits require of them (key lengths, the row size).

Plain functions of plan objects: testable without a server (``tests/dialects/test_mysql.py``).
"""

from __future__ import annotations

import re

from golive.dialects.mysql.session import qi
from golive.model.plan import ForeignKeyPlan, IndexPlan, MigrationPlan, Skipped, TablePlan
from golive.model.types import CT


# ---------------------------------------------------------------------- what MySQL's limits require

#: InnoDB's longest index key: 3072 bytes, 768 utf8mb4 characters
KEY_BYTES = 3072
KEY_CHARS = KEY_BYTES // 4
#: a row's VARCHAR columns may take at most 65,535 bytes together (4 per utf8mb4 character)
ROW_BYTES = 65_000


def _long(c) -> bool:
    """Can the column hold more than an index key may (a TEXT/BLOB type, or a VARCHAR longer than 768)?"""
    st = c.sql_type.upper()
    if st.startswith(("TEXT", "MEDIUMTEXT", "LONGTEXT", "BLOB", "MEDIUMBLOB", "LONGBLOB", "JSON")):
        return True
    m = re.match(r"VAR(?:CHAR|BINARY)\((\d+)\)", st)
    return bool(m) and int(m.group(1)) > KEY_CHARS


def adjust_table(tp: TablePlan, plan: MigrationPlan) -> None:
    """Fit a planned table to MySQL: indexable text, key lengths, the row size limit. Every change is reported."""
    pk = next((ix for ix in tp.indexes if ix.kind == "primary"), None)
    if tp.identity and pk is not None and pk.columns[0] != tp.identity:
        plan.warnings.append(f"{tp.source}.{tp.identity}: the identity column does not lead the primary key; MySQL's "
                             "AUTO_INCREMENT must lead a key, so a key on it is added")
    from golive.model.plan import ColumnPlan
    from golive.model.types import TargetType

    by_target = {c.target: c for c in tp.columns}
    # MySQL has no partial indexes: a plain one covers every row (same answers, more space); a UNIQUE one
    # would forbid more than the source did, so it is left out and reported
    for ix in list(tp.indexes):
        if ix.where is None:
            continue
        m = re.fullmatch(r"\(*\s*(?:NOT\s+\(?\s*[\"`]?(\w+)[\"`]?\s+IS\s+NULL\s*\)?|[\"`]?(\w+)[\"`]?\s+IS\s+NOT\s+NULL)\s*\)*",
                         ix.where.strip(), re.I)
        if m and (m.group(1) or m.group(2)) in ix.columns and len(ix.columns) == 1:
            ix.where = None  # WHERE col IS NOT NULL: MySQL's UNIQUE leaves NULLs out anyway
            continue
        if ix.kind == "index":
            plan.warnings.append(f"{tp.source}: partial index {ix.name} (WHERE {ix.where}) built over every row "
                                 "(MySQL has no partial indexes)")
            ix.where = None
        else:
            tp.indexes.remove(ix)
            plan.skipped.append(Skipped(kind="index", name=ix.source_name or ix.name, reason=(
                f"a UNIQUE index WHERE {ix.where} has no MySQL equivalent (over every row it would refuse what the "
                "source allows)")))
    keyed = {col for ix in tp.indexes for col in ix.columns}
    keyed |= {col for fk in tp.foreign_keys for col in fk.columns}  # MySQL indexes foreign keys itself
    keyed |= {col for t in plan.tables for fk in t.foreign_keys if fk.ref_table == tp.target for col in fk.ref_columns}
    # a foreign key's columns have exactly the parent's integer types in MySQL (PostgreSQL allows wider)
    for fk in tp.foreign_keys:
        parent = next((t for t in plan.tables if t.target == fk.ref_table), None)
        if parent is None:
            continue
        pcols = {c.target: c for c in parent.columns}
        for col, ref in zip(fk.columns, fk.ref_columns):
            child, par = by_target.get(col), pcols.get(ref)
            if child is not None and par is not None and child.type.ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT) \
                    and par.type.ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT) and child.sql_type != par.sql_type:
                child.notes.append(f"{par.sql_type}: the type of {fk.ref_table}.{ref} it references (MySQL requires it)")
                child.sql_type, child.type = par.sql_type, par.type
    zoned = [c.target for c in tp.columns if c.type.ct == CT.TIMESTAMP_TZ and not c.type.native]
    if zoned:
        plan.warnings.append(f"{tp.source}: {', '.join(zoned)}: moments stored as DATETIME(6) in UTC (MySQL's "
                             "TIMESTAMP ends in 2038)")
    # 1. a text/blob column in a key whose longest value fits a key: VARCHAR/VARBINARY of the longest length
    #    its keys leave it (768 characters alone in a key, a share of 3072 bytes with others), not of the longest
    #    value: the app (and golive rewrite-paths) will write longer ones
    def convertible(c) -> bool:
        return c is not None and not c.type.native and _long(c) and c.type.ct in (CT.TEXT, CT.BINARY)

    room: dict[str, int] = {}  # column -> bytes its tightest key leaves it
    for cols in [ix.columns for ix in tp.indexes if ix.method not in ("fulltext", "spatial") and not any(ix.prefix_lengths)] \
            + [[col] for col in keyed]:
        texts = [col for col in cols if convertible(by_target.get(col))]
        if not texts:
            continue
        share = (KEY_BYTES - 8 * (len(cols) - len(texts))) // len(texts)
        for col in texts:
            room[col] = min(room.get(col, KEY_BYTES), share)
    for name, nbytes in room.items():
        c = by_target[name]
        n = nbytes // 4 if c.type.ct == CT.TEXT else nbytes  # utf8mb4: up to 4 bytes per character
        longest = c.type.length
        if longest is not None and longest <= n:
            c.sql_type = f"VARCHAR({n})" if c.type.ct == CT.TEXT else f"VARBINARY({n})"
            c.notes.append(f"{c.sql_type}: indexed, so not TEXT; as long as its keys allow (its longest value now: "
                           f"{longest} bytes)")
    # 2. keys still over the limit: a prefix for plain indexes; UNIQUE and PRIMARY over a hash column
    for ix in list(tp.indexes):
        longs = [col for col in ix.columns if col in by_target and _long(by_target[col])]
        if not longs or any(ix.prefix_lengths) or ix.method in ("fulltext", "spatial"):
            continue  # (a MySQL source's own prefixes and FULLTEXT keys already fit)
        if ix.kind == "index":
            ix.prefix_lengths = [KEY_CHARS if col in longs else None for col in ix.columns]
            plan.warnings.append(f"{tp.source}: index {ix.name} covers the first {KEY_CHARS} characters of "
                                 f"{', '.join(longs)} (MySQL's longest key; longer values are still stored whole)")
            continue
        hashed = []
        for col in ix.columns:
            if col not in longs:
                hashed.append(col)
                continue
            hname = f"{col}_sha256"[:64]
            if hname not in by_target:
                hc = ColumnPlan(source=by_target[col].source, target=hname, type=TargetType(ct=CT.BINARY),
                                sql_type="BINARY(32)", generated_sql=f"UNHEX(SHA2({qi(col)}, 256))",
                                reason=f"SHA-256 of {col}: keeps {ix.kind} over values too long for a MySQL key")
                tp.columns.append(hc)
                by_target[hname] = hc
            hashed.append(hname)
        ix.columns = hashed
        if ix.kind == "primary":
            ix.kind = "unique"
            ix.constraint = False
            plan.warnings.append(f"{tp.source}: the primary key on {', '.join(longs)} (values too long for a MySQL "
                                 f"key) became a UNIQUE index on their SHA-256 ({', '.join(hashed)}); the table has "
                                 "no primary key in MySQL")
        else:
            plan.warnings.append(f"{tp.source}: UNIQUE {ix.name} on {', '.join(longs)} (values too long for a MySQL "
                                 f"key) is kept on their SHA-256 ({', '.join(hashed)}), a generated column")
    # 3. the row size limit: the longest non-key VARCHARs become TEXT until the row fits
    def row_bytes() -> int:
        total = 0
        for c in tp.columns:
            m = re.match(r"VARCHAR\((\d+)\)", c.sql_type.upper())
            if m:
                total += int(m.group(1)) * 4 + 2
        return total
    if row_bytes() > ROW_BYTES:
        candidates = sorted((c for c in tp.columns if re.match(r"VARCHAR\(", c.sql_type.upper())
                             and c.target not in keyed), key=lambda c: -int(re.findall(r"\d+", c.sql_type)[0]))
        for c in candidates:
            if row_bytes() <= ROW_BYTES:
                break
            before = c.sql_type
            c.sql_type = "TEXT"
            plan.warnings.append(f"{tp.source}.{c.source}: {before} became TEXT: the table's VARCHAR columns exceed "
                                 "MySQL's 65,535-byte row limit (values are kept whole)")


# ---------------------------------------------------------------------- DDL


def column_sql(c) -> str:
    parts = [qi(c.target), c.sql_type]
    if c.generated_sql:
        parts.append(f"GENERATED ALWAYS AS ({c.generated_sql}) STORED")
    else:
        parts.append("NULL" if c.nullable and not c.identity else "NOT NULL")
        if c.identity:
            parts.append("AUTO_INCREMENT")
        elif c.default_sql is not None:
            parts.append(f"DEFAULT {c.default_sql}")
        if c.on_update == "now":
            m = re.search(r"\((\d)\)", c.sql_type)
            parts.append(f"ON UPDATE CURRENT_TIMESTAMP({m.group(1)})" if m else "ON UPDATE CURRENT_TIMESTAMP")
    return " ".join(parts)


def create_table_sql(tp: TablePlan, collation: str) -> str:
    cols = [column_sql(c) for c in tp.columns]
    pk = next((ix for ix in tp.indexes if ix.kind == "primary"), None)
    if pk is not None:
        cols.append(f"PRIMARY KEY ({', '.join(_key_part(tp, c) for c in pk.columns)})")
    if tp.identity and (pk is None or pk.columns[0] != tp.identity):  # AUTO_INCREMENT must lead a key
        cols.append(f"KEY ({qi(tp.identity)})")
    body = ",\n  ".join(cols)
    return (f"CREATE TABLE {qi(tp.target)} (\n  {body}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}")


def _key_part(tp: TablePlan, col: str, prefix: int | None = None) -> str:
    if prefix:
        return f"{qi(col)}({prefix})"
    return qi(col)


def index_clause(tp: TablePlan, ix: IndexPlan) -> str:
    parts = []
    for i, col in enumerate(ix.columns):
        prefix = ix.prefix_lengths[i] if i < len(ix.prefix_lengths) else None
        desc = " DESC" if i < len(ix.descending) and ix.descending[i] else ""
        parts.append(_key_part(tp, col, prefix) + desc)
    if ix.expression_sql:
        parts = [f"({ix.expression_sql})"]
    kind = "UNIQUE INDEX" if ix.kind == "unique" else "INDEX"
    if ix.method in ("fulltext", "spatial"):
        kind = f"{ix.method.upper()} INDEX"
    return f"ADD {kind} {qi(ix.name)} ({', '.join(parts)})"


def foreign_key_sql(fk: ForeignKeyPlan) -> str:
    sql = (f"ALTER TABLE {qi(fk.table)} ADD CONSTRAINT {qi(fk.name)} FOREIGN KEY ({', '.join(map(qi, fk.columns))}) "
           f"REFERENCES {qi(fk.ref_table)} ({', '.join(map(qi, fk.ref_columns))})")
    for what, action in (("DELETE", fk.on_delete), ("UPDATE", fk.on_update)):
        if action.upper() not in ("NO ACTION", "") and action.upper() != "SET DEFAULT":
            sql += f" ON {what} {action.upper()}"
    return sql

"""PostgreSQL as a source: every type kept as it is when the target is PostgreSQL too.

PostgreSQL to PostgreSQL (between servers, versions, schemas) keeps the schema exactly: the target gets the
source's own pre-data script (``pg_dump --section=pre-data``: types, enums, domains, functions, sequences,
tables with their defaults, identities, CHECKs and comments, views, materialized views), then golive copies
the rows chunk by chunk and builds each table's keys and indexes from the source's own definitions
(``pg_get_constraintdef``/``pg_get_indexdef``) as soon as it is loaded, foreign keys NOT VALID then
validated, and at the end triggers, materialized views' data and sequence values (read from the source
after the copy, so no id handed out before is ever reused).

* One snapshot: the flow exports one (``pg_export_snapshot``) and every chunk reader starts its
  transaction in it (``SET TRANSACTION SNAPSHOT``), in any process.
* Chunks: integer keys by value ranges, other keys by key tuples; tables without a key in one chunk.
* Fast path: ``COPY (SELECT …) TO STDOUT (FORMAT binary)`` through ``psql`` (one pipe read per megabyte:
  Python touches no row), loaded with ``COPY … FROM STDIN (FORMAT binary)``; the stream's trailer proves
  it is complete, and COPY loads all of it or nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess

from golive.dialects.base import SNAPSHOT_LOST, Decision, Source
from golive.dialects.postgresql.session import (READ_SETTINGS, _lit, connect as open_session, connect_source as connect,
                                               kept, qi, qn, translate_error)
from golive.errors import ConfigError, PlanError, TerminalError, TransientError
from golive.model.schema import BOOKKEEPING_REASON, Column, SourceSchema, Table
from golive.model.types import CT, TargetType
from golive.model.defaults import Default
from golive.dialects.postgresql.schema import (_partition_own_keys, final_statements, introspect, outside_references,
                                              pre_data, relation, schemas_of)
from golive.model.results import key_value
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

BATCH_BYTES = 4 << 20
CAREFUL_ROWS = 2000

#: PostgreSQL type name -> canonical type (what validation compares); anything else is NATIVE
_CANONICAL = {
    "int2": CT.SMALLINT, "int4": CT.INTEGER, "int8": CT.BIGINT, "numeric": CT.DECIMAL, "float4": CT.REAL,
    "float8": CT.DOUBLE, "bool": CT.BOOLEAN, "text": CT.TEXT, "varchar": CT.VARCHAR, "bytea": CT.BINARY,
    "date": CT.DATE, "time": CT.TIME, "timestamp": CT.TIMESTAMP, "timestamptz": CT.TIMESTAMP_TZ,
    "interval": CT.INTERVAL, "jsonb": CT.JSON, "uuid": CT.UUID,
}


# ---------------------------------------------------------------------- profile and decisions


def profile(url: DatabaseURL, tables: list[Table], *, deep: bool, workers: int, options, lengths: bool = False):
    """Row counts (exact: one count per table, in parallel). PostgreSQL's types say everything else."""
    from concurrent.futures import ThreadPoolExecutor

    from types import SimpleNamespace

    sized = ("text", "varchar", "bpchar", "bytea", "json", "jsonb", "xml", "citext")

    def one(t: Table):
        measured = [c for c in t.columns if lengths and (_parts(c)[0] in sized or _parts(c)[2] in sized
                                                         or _parts(c)[0].startswith("_"))]
        extra = "".join(f", max(octet_length(({qi(c.name)})::text))" for c in measured)
        with connect(url) as conn:
            row = conn.execute(f"SELECT count(*){extra} FROM {relation(t)}").fetchone()
        prof = {c.name: SimpleNamespace(max_bytes=int(v or 0), values=0, predicted_rejects=0, samples=[])
                for c, v in zip(measured, row[1:])}
        return t.name, row[0], prof

    counts, profiles = {}, {}
    with ThreadPoolExecutor(max_workers=min(workers, len(tables)) or 1) as ex:
        for name, n, prof in ex.map(one, tables):
            counts[name], profiles[name] = n, prof
    return counts, profiles


def index_expressions(ix) -> str | None:
    """The key part of an expression index's definition (``CREATE INDEX … ON t USING btree (lower(name))``)."""
    m = re.search(r" USING \w+ \((.*)\)(?: WHERE .*)?$", ix.sql or "", re.S)
    return m.group(1) if m else None


def _parts(c: Column) -> tuple[str, str, str, str]:
    typname, typtype, base, basetype = ((c.native or "") + ":::").split(":")[:4]
    return typname, typtype, base, basetype


#: PostgreSQL types -> the neutral type, for another engine
_NEUTRAL = {
    "int2": CT.SMALLINT, "int4": CT.INTEGER, "int8": CT.BIGINT, "float4": CT.REAL, "float8": CT.DOUBLE,
    "bool": CT.BOOLEAN, "text": CT.TEXT, "bytea": CT.BINARY, "date": CT.DATE, "time": CT.TIME, "timetz": CT.TIME,
    "timestamp": CT.TIMESTAMP, "timestamptz": CT.TIMESTAMP_TZ, "interval": CT.INTERVAL, "json": CT.JSON,
    "jsonb": CT.JSON, "uuid": CT.UUID, "xml": CT.TEXT, "citext": CT.TEXT, "inet": CT.TEXT, "cidr": CT.TEXT,
    "macaddr": CT.TEXT, "money": CT.DECIMAL, "bit": CT.BITS, "varbit": CT.BITS,
}


def decide(t: Table, c: Column, p, *, parent, target, options, identity: bool) -> Decision:
    typname, typtype, base, basetype = _parts(c)
    if target.name != "postgresql":
        return _decide_neutral(c, p, typname, typtype, base, basetype, parent)
    if target.name == "postgresql":  # the same engine: the type exactly as the source spells it

        base = typname.lstrip("_")
        ct = _CANONICAL.get(typname) if typtype == "b" and not typname.startswith("_") else None
        tt = TargetType(ct=ct or CT.NATIVE, native=c.declared)
        if ct == CT.VARCHAR:
            m = re.search(r"\((\d+)\)", c.declared)
            tt.length = int(m.group(1)) if m else None
        return Decision(tt, "kept as it is (PostgreSQL to PostgreSQL)" + ("" if ct else f" ({base})"))
    raise PlanError(f"{t.name}.{c.name}: PostgreSQL to {target.name} is not supported")


def _decide_neutral(c: Column, p, typname: str, typtype: str, base: str, basetype: str, parent) -> Decision:
    """The neutral type of a PostgreSQL column for another engine (sizes by the measured lengths)."""
    declared = c.declared
    warnings = []
    if typtype == "d":  # a domain: its base type, and its CHECK on the column (schema.py)
        warnings.append(f"domain {typname} copied as its base type {basetype}, its CHECK on the column")
        typname, declared = base, basetype
    if parent is not None and typname in ("int2", "int4", "int8"):
        return Decision(parent, "foreign key: same type as the referenced column")
    if typtype == "e":
        labels = (c.comment or "").split("\x1f") if c.comment else []
        return Decision(TargetType(ct=CT.ENUM, values=labels), f"enum {typname}: its labels", warnings=warnings)
    if typname.startswith("_"):
        return Decision(TargetType(ct=CT.ARRAY, element=_NEUTRAL.get(typname[1:], CT.TEXT)),
                        f"{declared}: a JSON array", warnings=warnings)
    if typname == "numeric":
        m = re.search(r"\((\d+)(?:,(\d+))?\)", declared)
        if m and int(m.group(1)) <= 65:
            return Decision(TargetType(ct=CT.DECIMAL, precision=int(m.group(1)), scale=int(m.group(2) or 0)),
                            "declared type", warnings=warnings)
        why = ("numeric without a precision" if not m else f"numeric({m.group(1)}) is wider than MySQL's 65 digits")
        return Decision(TargetType(ct=CT.DECIMAL), f"{why}: DECIMAL(65,30); values that do not fit are rejected",
                        warnings=warnings + [f"{why}: DECIMAL(65,30) (values with more digits are rejected, named)"])
    if typname in ("varchar", "bpchar"):
        m = re.search(r"\((\d+)\)", declared)
        return Decision(TargetType(ct=CT.VARCHAR, length=int(m.group(1))) if m else TargetType(ct=CT.TEXT),
                        "declared type" + (" (char(n)'s padding is not kept)" if typname == "bpchar" else ""),
                        warnings=warnings)
    if typname in ("bit", "varbit"):
        m = re.search(r"\((\d+)\)", declared)
        return Decision(TargetType(ct=CT.BITS, length=int(m.group(1)) if m else 64), "declared type", warnings=warnings)
    ct = _NEUTRAL.get(typname)
    if ct is None:
        return Decision(TargetType(ct=CT.TEXT), f"{declared}: copied as its text", warnings=warnings + [
            f"type {declared} has no equivalent: copied as its text"])
    if typname == "timetz":
        warnings.append("time with time zone copied as time (the offset is dropped)")
    if typname == "money":
        return Decision(TargetType(ct=CT.DECIMAL, precision=19, scale=2), "money", warnings=warnings)
    return Decision(TargetType(ct=ct), "declared type", warnings=warnings)


#: PostgreSQL's spellings of "now", and of a new UUID
_NOW = {"now()": "now", "current_timestamp": "now", "localtimestamp": "now", "statement_timestamp()": "now",
        "transaction_timestamp()": "now", "clock_timestamp()": "now", "current_date": "today",
        "current_time": "time_now", "localtime": "time_now", "gen_random_uuid()": "uuid",
        "uuid_generate_v4()": "uuid"}


def read_default(raw: str | None):
    """A PostgreSQL default (``pg_get_expr``'s text) in neutral form: a literal with its cast (``'ok'::mood``,
    ``'x'::character varying``, ``(0)::numeric``) is the literal, keeping the text for a PostgreSQL target; now(),
    CURRENT_DATE, gen_random_uuid() and their kin are their neutral kinds; ``nextval(…)`` is a sequence; anything
    else an expression sqlglot translates."""
    if raw is None:
        return None, None
    s = raw.strip()
    if s.lower().startswith("nextval("):
        return Default("sequence", sql=s), None
    bare = re.sub(r"\((\d+)\)", r"\1", s.lower())
    bare = re.sub(r"::[a-z ]+(\(\d+(,\d+)?\))?$", "", bare).strip()
    if bare in _NOW:
        return Default(_NOW[bare], sql=s), None
    m = re.fullmatch(r"'((?:[^']|'')*)'(?:::[\w\s.\"\[\]]+(?:\(\d+(?:,\d+)?\))?)?", s, re.S)
    if m:
        return Default("literal", m.group(1).replace("''", "'"), sql=s), None
    m = re.fullmatch(r"\(?([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\)?(?:::[\w\s]+(?:\(\d+(?:,\d+)?\))?)?", s)
    if m:
        n = m.group(1)
        return Default("literal", int(n) if re.fullmatch(r"[-+]?\d+", n) else n, sql=s), None
    if s.lower() in ("true", "false"):
        return Default("literal", s.lower() == "true", sql=s), None
    return Default("expr", sql=s), None


def value_sql(col: str, t: TargetType, typname: str) -> str:
    """PostgreSQL expression rendering one value in the MySQL loader's form (NULL stays NULL)."""
    c = qi(col)
    ct = t.ct
    bad = "'golive: {}: ' || ({})::text"
    if ct == CT.BOOLEAN:
        return f"({c})::int::text"
    if ct in (CT.TIMESTAMP_TZ, CT.TIMESTAMP, CT.DATE):
        fmt = "YYYY-MM-DD" if ct == CT.DATE else "YYYY-MM-DD HH24:MI:SS.US"
        v = f"{c} AT TIME ZONE 'UTC'" if ct == CT.TIMESTAMP_TZ else c
        return f"CASE WHEN isfinite({c}) THEN to_char({v}, '{fmt}') ELSE {bad.format('infinity', c)} END"
    if ct == CT.TIME:
        return f"({c})::time::text"
    if ct == CT.INTERVAL:  # MySQL TIME: -838:59:59 .. 838:59:59, no months
        secs = f"extract(epoch FROM {c})"
        body = (f"CASE WHEN {secs} < 0 THEN '-' ELSE '' END || floor(abs({secs}) / 3600)::bigint || ':' || "
                f"lpad(mod(floor(abs({secs}) / 60)::bigint, 60)::text, 2, '0') || ':' || "
                f"to_char(abs({secs}) - floor(abs({secs}) / 60) * 60, 'FM00.999999')")
        return (f"CASE WHEN extract(year FROM {c}) <> 0 OR extract(month FROM {c}) <> 0 THEN "
                f"{bad.format('an interval of months has no fixed length', c)} WHEN abs({secs}) >= 3020400 THEN "
                f"{bad.format('beyond the range of MySQL TIME', c)} ELSE rtrim({body}, '.') END")
    if ct == CT.BINARY:
        return f"encode({c}, 'hex')"
    if ct == CT.ARRAY:
        return f"array_to_json({c})::text"
    return f"({c})::text"



# ---------------------------------------------------------------------- chunks


def row_key(t: Table) -> list[str]:
    if t.primary_key:
        return list(t.primary_key)
    for ix in t.indexes:
        if ix.unique and ix.columns and all(not t.column(c).nullable for c in ix.columns if c in
                                            {x.name for x in t.columns}):
            return list(ix.columns)
    return []


def chunks(conn, t: Table, rows: int, chunk_rows: int):
    from golive.model.plan import ChunkPlan

    key = row_key(t)
    if not key:
        return "single", [], [ChunkPlan(no=0, rows=rows)]
    first = t.column(key[0])
    is_int = (first.native or "").split(":")[0] in ("int2", "int4", "int8")
    if rows <= chunk_rows:
        return ("int" if is_int else "keyset"), key, [ChunkPlan(no=0, rows=rows)]
    n = max(1, -(-rows // max(1, chunk_rows)))
    rel = relation(t)
    if is_int:
        k = qi(key[0])
        lo, hi = conn.execute(f"SELECT min({k}), max({k}) FROM {rel}").fetchone()
        if lo is None:
            return "int", key, [ChunkPlan(no=0, rows=0)]
        span = hi - lo + 1
        if span <= 4 * rows:
            step = -(-span // n)
            bounds = [lo + i * step for i in range(n)] + [hi + 1]
        else:
            bounds = [lo] + [r[0] for r in conn.execute(
                f"SELECT min({k}) FROM (SELECT {k}, ntile({n}) OVER (ORDER BY {k}) g FROM {rel}) x GROUP BY g "
                "ORDER BY 1 OFFSET 1")] + [hi + 1]
        out = [ChunkPlan(no=i, lo=a, hi=b - 1, rows=max(1, rows // n))
               for i, (a, b) in enumerate((a, b) for a, b in zip(bounds, bounds[1:]) if b > a)]
        out[0].lo, out[-1].hi = None, None
        return "int", key, out
    cols = ", ".join(qi(c) for c in key)
    bounds = [list(r) for r in conn.execute(
        f"SELECT {cols} FROM (SELECT {cols}, row_number() OVER (ORDER BY {cols}) rn FROM {rel}) x "
        f"WHERE rn % {-(-rows // n)} = 0 ORDER BY {cols}").fetchall()]
    out, prev = [], None
    for i, b in enumerate(bounds + [None]):
        out.append(ChunkPlan(no=i, lo=[_jsonable(v) for v in prev] if prev else None,
                             hi=[_jsonable(v) for v in b] if b else None, rows=max(1, rows // n)))
        prev = b
    return "keyset", key, out


def _jsonable(v):
    import datetime as dt
    import decimal
    import uuid as uuidlib

    if isinstance(v, (dt.date, dt.datetime, dt.time, decimal.Decimal, uuidlib.UUID)):
        return str(v)
    return v


# ---------------------------------------------------------------------- one moment for every reader


@contextlib.contextmanager
def snapshot(url: DatabaseURL, plan, *, workers: int):
    """Export one snapshot and keep its transaction open while the chunks copy (``pg_export_snapshot``)."""
    if plan.options.get("snapshot") == "none":
        yield None
        return
    conn = open_session(url, settings=READ_SETTINGS, role="source")
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        name = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        yield name
    finally:
        conn.close()


# ---------------------------------------------------------------------- reading chunks


class ChunkReader:
    """One table's chunks: binary COPY through psql (fast path), CSV lines with their keys (reject path)."""

    def __init__(self, url: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        self.url, self.plan, self.tp, self.snapshot = url, plan, tp, snapshot
        self.rel = qn(tp.source_schema or "public", tp.source_name or tp.source)
        self.keycols = [qi(k) for k in tp.chunk_key]
        self._conn = None
        self.counts_rows = False  # binary COPY: the target's count is the rows read (see batches)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = connect(self.url, snapshot=self.snapshot)
        return self._conn

    def converted(self) -> dict[str, int]:
        return {}

    def _where(self, chunk) -> str:
        if not self.keycols or (chunk.lo is None and chunk.hi is None):
            return "true"
        if self.tp.chunking == "int":
            conds = []
            if chunk.lo is not None:
                conds.append(f"{self.keycols[0]} >= {int(chunk.lo)}")
            if chunk.hi is not None:
                conds.append(f"{self.keycols[0]} <= {int(chunk.hi)}")
            return " AND ".join(conds)
        tup = "(" + ", ".join(self.keycols) + ")"
        types = [next(c for c in self.tp.columns if c.source == k).sql_type for k in self.tp.chunk_key]

        def row(vals):
            return "(" + ", ".join(f"{_lit(str(v))}::{t}" for v, t in zip(vals, types)) + ")"

        conds = []
        if chunk.lo is not None:
            conds.append(f"{tup} > {row(chunk.lo)}")
        if chunk.hi is not None:
            conds.append(f"{tup} <= {row(chunk.hi)}")
        return " AND ".join(conds)

    def _select(self, chunk) -> str:
        order = f" ORDER BY {', '.join(self.keycols)}" if self.keycols else ""
        return f"SELECT {self.tp.line_sql} FROM {self.rel} WHERE {self._where(chunk)}{order}"

    def batches(self, chunk):
        """Binary COPY of the chunk, piped from ``psql`` in megabytes; the rows count is the target's.

        Yields ``(bytes, 0)``; the stream's trailer (``\\xff\\xff``) proves it is complete."""
        from golive.dialects.postgresql import tools as pgtools

        fmt = "FORMAT binary" if self.tp.native else "FORMAT csv, QUOTE '''', FORCE_QUOTE *, NULL 'NULL'"
        copy = f"COPY ({self._select(chunk)}) TO STDOUT ({fmt})"
        try:
            path, _ = pgtools.find("psql", 0)
        except ConfigError:
            path = None
        if path is None:  # no psql: psycopg, one message per row
            yield from self._batches_psycopg(copy)
            return
        args, env = pgtools.env_for(self.url)
        script = ["-c", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"]
        if self.snapshot:
            script += ["-c", f"SET TRANSACTION SNAPSHOT {_lit(self.snapshot)}"]
        script += ["-c", "SET extra_float_digits = 1", "-c", copy, "-c", "COMMIT"]
        proc = subprocess.Popen([path, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args, *script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        tail = b""
        try:
            buf = []
            size = 0
            while True:
                block = proc.stdout.read(1 << 20)
                if not block:
                    break
                tail = (tail + block)[-2:]
                buf.append(block)
                size += len(block)
                if size >= BATCH_BYTES:
                    yield b"".join(buf), 0
                    buf, size = [], 0
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            code = proc.wait()
            if code and "invalid snapshot identifier" in err:  # the exporting session is gone (server restart)
                raise TerminalError(SNAPSHOT_LOST.format(why=(err.splitlines() or ["?"])[-1]))
            if code or (self.tp.native and tail != b"\xff\xff"):
                raise TransientError(f"reading {self.tp.source} chunk {chunk.no} from the source: psql "
                                     f"{'exit ' + str(code) if code else 'stream incomplete'}: "
                                     f"{(err.splitlines() or ['?'])[-1]}")
            if buf:
                yield b"".join(buf), 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _batches_psycopg(self, copy: str):
        with self.conn.cursor() as cur:
            with cur.copy(copy) as cp:
                buf, size = [], 0
                for data in cp:
                    buf.append(bytes(data))
                    size += len(data)
                    if size >= BATCH_BYTES:
                        yield b"".join(buf), 0
                        buf, size = [], 0
                if buf:
                    yield b"".join(buf), 0

    def rows(self, chunk):
        """Lists of ``(key tuple, CSV line)`` in key order, for the reject path."""
        keys = ", ".join(self.keycols) if self.keycols else "ctid"
        sql = (f"SELECT {keys}, {self.tp.careful_sql} FROM {self.rel} WHERE {self._where(chunk)}"
               + (f" ORDER BY {keys}" if self.keycols else ""))
        try:
            with self.conn.cursor(name="golive_careful") as cur:
                cur.execute(sql)
                while rows := cur.fetchmany(CAREFUL_ROWS):
                    yield [(tuple(r[:-1]), r[-1].encode("utf-8")) for r in rows]
        except Exception as exc:
            raise translate_error(exc, f"reading {self.tp.source} chunk {chunk.no} from the source") from None

    def row(self, rowkey) -> dict:
        if not self.keycols:
            cond = f"ctid = {_lit(str(rowkey[0]))}::tid"
            args = ()
        else:
            cond = " AND ".join(f"{k} IS NOT DISTINCT FROM %s" for k in self.keycols)
            args = tuple(rowkey)
        names = [c.source for c in self.tp.columns if not c.generated_sql]
        # as text: infinity dates, NaN numerics and the like have no Python value, but every value has a text
        cols = ", ".join(f"({qi(n)})::text" if n not in self.tp.chunk_key else qi(n) for n in names)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {cols} FROM {self.rel} WHERE {cond}", args)
            row = cur.fetchone()
        return dict(zip(names, row)) if row else {}

    def by_keys(self, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
        """``(key, careful line)`` of the rows of ``keys`` (values as text, in ``tp.key``'s order) that exist now;
        each key comes back as it was asked for (the catch-up tells deleted rows by the keys missing)."""
        tp = self.tp
        types = dict(self.conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped", (self.rel,)).fetchall())
        nullable = {c.source: c.nullable for c in tp.columns}
        cond = " AND ".join(
            f"{qi(k)} {'IS NOT DISTINCT FROM' if nullable.get(k, True) and k not in tp.chunk_key else '='} "
            f"_golive_k._golive_k{i}::{types[k]}" for i, k in enumerate(tp.key))
        names = ", ".join(f"_golive_k{i}" for i in range(len(tp.key)))
        sql = (f"SELECT _golive_k._golive_i, {tp.careful_sql} FROM unnest({', '.join('%s::text[]' for _ in tp.key)}) "
               f"WITH ORDINALITY AS _golive_k({names}, _golive_i) JOIN {self.rel} ON {cond}")
        args = [[None if k[i] is None else str(k[i]) for k in keys] for i in range(len(tp.key))]
        try:
            return [(keys[i - 1], line.encode("utf-8")) for i, line in self.conn.execute(sql, args).fetchall()]
        except Exception as exc:
            raise translate_error(exc, f"reading changed rows of {tp.source} from the source") from None

    def key(self, rowkey, row: dict) -> dict:
        names = self.tp.chunk_key or ["ctid"]
        return {k: key_value(_jsonable(v)) for k, v in zip(names, rowkey)}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# ---------------------------------------------------------------------- the plan, PostgreSQL to PostgreSQL


def plan_objects(ctx, schema: SourceSchema, selected: set[str]) -> None:
    """Views, triggers and, for a PostgreSQL target, the source's own definitions of everything."""
    from golive.model.plan import IndexPlan, Skipped, ViewPlan
    from golive.dialects.base import plan_views_and_others

    plan = ctx.plan
    schemas = plan.options.get("source_schemas") or schemas_of(ctx.options)
    qualify = len(schemas) > 1
    excluded = set(ctx.options.exclude or [])
    outside = [(kind, obj, ref, obj if qualify else obj.split(".", 1)[1])  # the last: the name --exclude takes
               for kind, obj, ref in outside_references(ctx.conn, schemas)]
    outside = [o for o in outside if o[3] not in excluded]
    if outside:  # the target would refuse these objects half-way: say so before anything is written
        shown = "; ".join(f"{kind} {obj} reads {ref}" for kind, obj, ref, _ in outside[:5])
        more = f" (and {len(outside) - 5} more)" if len(outside) > 5 else ""
        needed = sorted({ref.split(".", 1)[0] for _, _, ref, _ in outside})
        objects = sorted({label for _, _, _, label in outside})
        raise PlanError(f"{shown}{more}: add --source-schema {','.join(schemas + needed)}, or --exclude "
                        f"{','.join(objects)}")
    if ctx.dst.name != "postgresql":
        plan_views_and_others(ctx, schema, selected)
        for t in schema.tables:
            if t.name in selected and t.partitions:
                plan.warnings.append(f"{t.name}: a partitioned table ({len(t.partitions)} partitions), copied as one "
                                     f"table: the target's partitioning is not created")
        return
    if plan.identifiers != "preserve":
        raise PlanError("PostgreSQL to PostgreSQL keeps every name as it is: --identifiers snake is not supported")
    if ctx.options.target_schema not in ("public", *schemas) or (len(schemas) == 1 and schemas[0] != "public"
                                                                and ctx.options.target_schema != "public"
                                                                and ctx.options.target_schema != schemas[0]):
        raise PlanError("PostgreSQL to PostgreSQL keeps schema names (choose them with --source-schema); "
                        f"--schema {ctx.options.target_schema} is not supported")
    own = [name for kind, name, reason in schema.others if kind == "table" and reason == BOOKKEEPING_REASON]
    plan.pre_data_sql, made_by = pre_data(ctx.source_url, ctx.conn, schemas, list(ctx.options.exclude or []) + own)
    plan.consistency += f"; schema from {made_by}"
    tables = {t.name: t for t in schema.tables if t.name in selected}
    for tp in plan.tables:
        t = tables[tp.source]
        tp.native = True
        tp.target = t.local_name or t.name
        tp.target_schema = t.schema_name
        tp.line_sql, tp.careful_sql = render(t, tp, None, plan)  # binary COPY of the columns as they are
        tp.identity, tp.sequence_floor, tp.checks = None, None, []
        rel = qn(t.schema_name, t.local_name or t.name)
        # a partitioned table's keys and indexes are built on the parent, which builds them on every partition
        only = "" if t.partitions else "ONLY "
        tp.indexes = []
        for ix in t.indexes:
            if ix.kind == "constraint":
                kind = "primary" if ix.origin == "pk" else ("unique" if ix.unique else "index")
                sql = f"ALTER TABLE {only}{rel} ADD CONSTRAINT {qi(ix.name)} {ix.sql}"
            else:
                kind, sql = ("unique" if ix.unique else "index"), ix.sql
                if t.partitions:
                    sql = re.sub(r" ON ONLY ", " ON ", sql, count=1)
            tp.indexes.append(IndexPlan(name=ix.name, kind=kind, columns=list(ix.columns), definition_sql=sql,
                                        source_name=ix.name))
        if t.partitions:
            own_indexes, own_fks = _partition_own_keys(ctx.conn, t, plan, tables)
            tp.indexes += own_indexes
        else:
            own_fks = []
        by_name = {fk.name: fk for fk in t.foreign_keys}
        for fk in tp.foreign_keys:
            src_fk = by_name.get(fk.name)
            fk.table = tp.target
            if src_fk is not None:
                parent = tables.get(src_fk.ref_table)
                fk.definition_sql = src_fk.definition_sql
                fk.ref_schema = src_fk.ref_schema
                fk.ref_table = (parent.local_name or parent.name) if parent else fk.ref_table
        tp.foreign_keys += own_fks
    for v in schema.views:
        plan.views.append(ViewPlan(source=v.name, target=v.name, select=v.select, materialized=v.materialized,
                                   native=True))
    # triggers come with the final statements (after the data); nothing to skip
    for kind, name, reason in schema.others:
        plan.skipped.append(Skipped(kind=kind, name=name, reason=reason))


def render(t: Table, tp, wire, plan) -> tuple[str, str]:
    """The select list of the COPY (binary for the same engine; the target's wire format in CSV otherwise),
    and the CSV line of the reject path."""
    cols = [c for c in tp.columns if not c.generated_sql]
    if tp.native:
        exprs = [f"({qi(c.source)})::text" for c in cols]
        select = ", ".join(qi(c.source) for c in cols)
    else:
        by_name = {c.name: c for c in t.columns}
        exprs = [value_sql(c.source, c.type, _parts(by_name[c.source])[0]) for c in cols]
        select = ", ".join(f"{e} AS {qi(c.source)}" for e, c in zip(exprs, cols))
    fields = [f"coalesce('''' || replace({e}, '''', '''''') || '''', 'NULL')" for e in exprs]
    careful = " || ',' || ".join(fields) + " || E'\\n'"
    return select, careful


# ---------------------------------------------------------------------- the concern


class PostgresSource(Source):
    """PostgreSQL as a migration source: one exported snapshot for every reader; PostgreSQL to PostgreSQL keeps
    the source's own DDL (pg_dump's pre-data) and copies in COPY's binary format."""

    def chunk_reader(self, source: DatabaseURL, plan, tp, *, snapshot: str | None = None):
        return ChunkReader(source, plan, tp, snapshot=snapshot)

    def introspect(self, conn, url: DatabaseURL | None = None, options=None):
        return introspect(conn, url, options).without_bookkeeping()

    def consistency(self, url: DatabaseURL, conn, options) -> str:
        if options.snapshot == "none":
            return "none: each chunk reads its own moment (--snapshot none): the source must be quiet during the copy"
        return "snapshot: every reader starts in one exported snapshot (pg_export_snapshot); the app may keep writing"

    def copy_options(self, options, schema=None) -> dict:
        return {"snapshot": options.snapshot,
                "source_schemas": schema.schemas if schema is not None and schema.schemas else schemas_of(options)}

    def profile(self, url, tables, *, deep: bool, workers: int, options=None, lengths: bool = False):
        return profile(url, tables, deep=deep, workers=workers, options=options, lengths=lengths)

    def decide(self, t, c, p, *, parent, target, options, identity: bool):
        return decide(t, c, p, parent=parent, target=target, options=options, identity=identity)

    def read_default(self, t, c, options=None):
        return read_default(c.default)

    def index_expressions(self, ix):
        return index_expressions(ix)

    def row_key(self, t) -> list[str]:
        return row_key(t) or [c.name for c in t.columns]

    def chunks(self, conn, t, rows: int, chunk_rows: int):
        return chunks(conn, t, rows, chunk_rows)

    def render(self, t, tp, wire, plan) -> tuple[str, str]:
        return render(t, tp, wire, plan)

    def plan_objects(self, ctx, schema, selected: set[str]) -> None:
        plan_objects(ctx, schema, selected)

    def snapshot(self, url: DatabaseURL, plan, *, workers: int):
        return snapshot(url, plan, workers=workers)

    def final_statements(self, url: DatabaseURL, plan) -> list[str]:
        return final_statements(url, plan)

    def size(self, url: DatabaseURL) -> int:
        with open_session(url, role="source") as conn:
            return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def read_keys(self, url: DatabaseURL, plan, tp, keys: list[tuple]) -> list[tuple[tuple, bytes]]:
        reader = ChunkReader(url, plan, tp)
        reader._conn = kept(url, READ_SETTINGS)  # one per batch and table: kept open across the catch-up's batches
        return reader.by_keys(keys)

    def count_tables(self, url: DatabaseURL, plan, tables: list[str]) -> dict[str, int]:
        by = {t.source: t for t in plan.tables} if plan is not None else {}
        with connect(url) as conn:
            out = {}
            for name in tables:
                tp = by.get(name)
                rel = qn(tp.source_schema or "public", tp.source_name or tp.source) if tp else qi(name)
                out[name] = conn.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
            return out

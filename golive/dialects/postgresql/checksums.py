"""PostgreSQL side of the content checksums, as a source or a target (the same SQL): each value as its output
text, in the value streams of ``sqlite/checksums.streams`` (canonical texts joined by commas, ``\\N`` for NULL;
text values back to back plus their byte lengths).

A range's checksum is one ``sha256(string_agg(...))`` per value stream over a scan in key order, so only digests
leave the server. The session settings below fix every output format the canonical text depends on (time zone,
date style, float digits), whatever the server's defaults. JSON is compared as ``jsonb`` prints it; a source's
JSON lines from another engine are normalised here (``normalise_json_sql``), and a value the canonical forms
disagree on is judged by parsing the text the copy sent (``parsed_canonical_sql``).

As a target it also answers Great Expectations (datasource, the suites' SQL: catalog short-cuts for unique
indexes and validated foreign keys) and keeps the source's orphans in ``_golive.source_orphans``.
"""

from __future__ import annotations

import json
import logging
import time

from golive.dialects.base import Checksums
from golive.dialects.base.checksums import PARAM, format_params
from golive.dialects.postgresql.bookkeeping import STATE_SCHEMA
from golive.dialects.postgresql.session import connect, libpq, qi, qn, translate_error
from golive.errors import TerminalError, TransientError
from golive.model.types import CT, TargetType
from golive.model.validation import FIELD_SEP, NULL, Checksum, TooBig

log = logging.getLogger(__name__)

TEXT_TYPES = (CT.TEXT, CT.VARCHAR)

#: session settings for checksum queries (output formats must match the other engines' canonical SQL)
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
    """Aggregates hashing the value streams of ``sqlite/checksums.streams`` (same order), one SHA-256 each.

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


# ---------------------------------------------------------------------- one side of a comparison


class PostgresSide(Checksums.Side):
    """A PostgreSQL database's side, as a source or a target (the same canonical SQL): one
    ``sha256(string_agg(...))`` per value stream over a scan in key order, so only digests leave the server."""

    ph = PARAM

    hash_in_sql = True

    def __init__(self, url, spec, role: str, *, json_in_sql: bool = False):
        super().__init__(spec, role, json_in_sql=json_in_sql)
        # canonical texts need the session's output formats; a side on the database only reads keys and counts
        self.conn = connect(url, autocommit=True, settings=SESSION if spec is not None else None, role=role)
        self.label = spec.source if spec is not None else "validation"
        self._scan_chosen = False
        if spec is None:
            return
        if role == "source":
            self.rel = qn(spec.source_schema or "public", spec.source_name or spec.source)
        else:
            self.rel = qn(spec.schema_name, spec.target)
        self.table = f"{self.rel} AS src"  # ORDER BY src."id": output columns of the same name stay apart

    def quote(self, name: str) -> str:
        return qi(name)

    def relation(self, schema: str | None, name: str) -> str:
        return qn(schema or "public", name)

    def _ref(self, c) -> str:
        """The column as the target holds it (``_ref`` of this module: a name, or an expression in parentheses):
        a source made text of types the target has not (ranges, inet, enums for MySQL) and renders intervals
        as the copy did (MySQL TIME); a target, or a source copied to PostgreSQL, holds them as they are."""
        name = c.on(self.role)
        if self.role == "target" or self.spec.native_target or c.type.ct == CT.JSON:
            return name
        if c.type.ct == CT.INTERVAL:
            from golive.dialects.postgresql.source import value_sql

            return f"({value_sql(name, c.type, 'interval')})"
        if c.type.ct in TEXT_TYPES + (CT.ENUM,):
            return f"({qi(name)})::text"
        return name

    def column(self, c) -> str:
        ref = self._ref(c)
        return ref if ref.startswith("(") else qi(ref)

    def _columns(self) -> list[tuple[str, TargetType]]:
        return [(self._ref(c), c.type) for c in self.spec.columns]

    def _json(self) -> str:
        return json_sql(self._columns()) or "NULL::text"

    def keytext(self) -> str:
        return key_text_sql([(k.on(self.role), k.type) for k in self.spec.key])

    def canonical(self, c) -> str:
        e = self.column(c)
        return (canonical_sql(e, c.type) or f"({e})::text") if c.type.ct not in TEXT_TYPES else e

    def rendered(self, c) -> str:
        return f"({qi(c.on(self.role))})::text"

    def rowtext(self) -> str:
        return row_text_sql(self._columns())

    def json_text(self, c) -> str:
        return f"({qi(c.on(self.role))})::text"

    def order(self) -> str:
        if self.spec.kind != "bag":
            return order_sql([(k.on(self.role), k.type) for k in self.spec.key], alias="src")
        return f'({self.rowtext()}) COLLATE "C", ({self._json()}) COLLATE "C"'

    def range_key(self) -> str | None:
        return qi(self.spec.key[0].on(self.role)) if self.spec.kind in ("rowid", "intkey") else None

    def checksum(self, where: str, args: list) -> Checksum:
        if self.role == "target" and self.spec.kind == "intkey" and not self._scan_chosen:
            self._choose_scan()
        k = self.range_key() or "NULL::bigint"
        aggs = "".join(f", {a}" for a in streams([(self._ref(c), c.type, c.nullable) for c in self.spec.columns]))
        js = (f"encode(sha256(convert_to(string_agg({self._json()}, E'\\n'), 'UTF8')), 'hex')" if self.json_in_sql
              else f"convert_to(string_agg({self._json()}, E'\\n'), 'UTF8')")
        row = self.run(f"SELECT count(*), min({k}), max({k}), {js}{aggs} FROM (SELECT * FROM {self.table} {where} "
                       f"ORDER BY {self.order()}) s", args)[0]
        return Checksum(row[0], row[1], row[2], row[3], [bytes(d).hex() if d is not None else None for d in row[4:]])

    def _choose_scan(self) -> None:
        """Read key ranges of a target table whose pages are not (nearly) all-visible by a bitmap scan plus a sort.

        A target just loaded has not been VACUUMed (``settle`` tries): there, a key order that is not the
        physical order makes index scans visit pages at random. An all-visible table is read by an index-only
        scan in key order without touching the heap, which is better still.
        """
        self._scan_chosen = True
        row = self.conn.execute("SELECT relpages, relallvisible FROM pg_class WHERE oid = to_regclass(%s)",
                                (self.rel,)).fetchone()
        if not (row and row[1] >= 0.9 * row[0]):
            self.conn.execute("SET enable_indexscan = off")

    def run(self, sql: str, args: list) -> list:
        return self._run(format_params(sql), list(args))

    def _run(self, sql: str, args, *, what: str = "", bad_text: bool = False) -> list:
        import psycopg

        what = what or ("reading the source" if self.role == "source" else "checksumming the target")
        try:
            return self.conn.execute(sql, args).fetchall()
        except (psycopg.errors.ProgramLimitExceeded, psycopg.errors.OutOfMemory) as exc:
            raise TooBig(str(exc)) from None
        except psycopg.errors.InvalidTextRepresentation as exc:
            if bad_text:  # JSON of the other side PostgreSQL cannot read: compared row by row
                raise TooBig(str(exc)) from None
            raise
        except psycopg.OperationalError as exc:
            raise TransientError(f"{self.label}: {what}: {str(exc).strip().splitlines()[0]}") from None
        except psycopg.errors.InternalError_ as exc:
            if "memory" in str(exc):
                raise TooBig(str(exc)) from None
            raise

    def json_digest(self, lines: bytes) -> str:
        return self._run(normalise_json_sql(), (lines,), what="normalising the source's JSON", bad_text=True)[0][0]

    def normalise_json(self, values: list) -> list:
        """As ``jsonb`` prints them, one value at a time (a value PostgreSQL cannot read stays as it is)."""
        import psycopg

        out = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            try:
                out.append(self.conn.execute("SELECT (%s)::jsonb::text", (str(v),)).fetchone()[0])
            except psycopg.Error:
                out.append(str(v))
        return out

    def same_after_parsing(self, c, rendered: str, value) -> bool:
        """PostgreSQL parses the text the copy sent as the column's type and prints it canonically."""
        import psycopg

        try:
            got = self.conn.execute(parsed_canonical_sql(c.sql_type, c.type), (rendered,)).fetchone()[0]
        except psycopg.Error:
            return False
        return got == value

    def same_after_parsing_many(self, c, pairs: list[tuple[str, object]]) -> list[bool]:
        """One query for all of them; a text PostgreSQL cannot read fails it: then one at a time."""
        import psycopg

        if len(pairs) < 2:
            return [self.same_after_parsing(c, r, v) for r, v in pairs]
        expr = "(u.v)::jsonb::text" if c.type.ct == CT.JSON else canonical_sql(f"(u.v)::{c.sql_type}", c.type)
        try:
            got = [r[0] for r in self.conn.execute(
                f"SELECT {expr} FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, i) ORDER BY u.i",
                ([r for r, _ in pairs],)).fetchall()]
        except psycopg.Error:
            return [self.same_after_parsing(c, r, v) for r, v in pairs]
        return [g == v for g, (_, v) in zip(got, pairs)]

    def close(self) -> None:
        self.conn.close()


#: the source's own dangling references, recorded by validation for the suites' foreign key checks
SOURCE_ORPHANS = f"{STATE_SCHEMA}.source_orphans"
ORPHANS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA};
CREATE TABLE IF NOT EXISTS {SOURCE_ORPHANS} (
  fk text NOT NULL,
  ref jsonb NOT NULL,
  rows bigint NOT NULL,
  PRIMARY KEY (fk, ref)
);
"""


class PostgresChecksums(Checksums):
    """PostgreSQL as either side of a content comparison, and as the target of the suites."""

    json_form = "jsonb"  # JSON digests of the text jsonb prints (keys ordered, spaces normalised)

    def side(self, url, spec, role: str, *, json_in_sql: bool = False) -> PostgresSide:
        return PostgresSide(url, spec, role, json_in_sql=json_in_sql)

    def settle(self, url, specs: list) -> None:
        """VACUUM the target tables compared in key order whose pages are not yet all-visible.

        Right after a load, concurrent copies keep VACUUM (and autovacuum) from marking pages all-visible;
        a key range of a table whose physical order is not its key order (a composite key, say) then costs
        a pass over most of the heap plus a sort, once per range. After a VACUUM the key's index answers
        each range alone (an index-only scan), and the app's own queries benefit the same way. VACUUM
        changes no data; without the rights to run it (not the owner) it is skipped with PostgreSQL's warning.
        """
        import psycopg

        wanted = [qn(s.schema_name, s.target) for s in specs if s.kind in ("intkey", "sorted")]
        if not wanted:
            return
        try:
            with connect(url, autocommit=True) as conn:
                rows = conn.execute("SELECT t, c.relpages, c.relallvisible FROM unnest(%s::text[]) AS t "
                                    "JOIN pg_class c ON c.oid = to_regclass(t)", (wanted,)).fetchall()
                for table, pages, visible in rows:
                    if pages > 0 and visible < 0.9 * pages:
                        t0 = time.perf_counter()
                        conn.execute(f"VACUUM {table}")
                        log.info("VACUUM %s (%d pages, %d all-visible): %.2f s", table, pages, visible,
                                 time.perf_counter() - t0)
        except psycopg.Error as exc:  # an optimisation only: the comparison works without it
            log.warning("could not VACUUM the target tables before comparing: %s", str(exc).strip().splitlines()[0])

    def sqlalchemy_url(self, url) -> str:
        return "postgresql+psycopg://" + libpq(url).split("://", 1)[1]

    def gx_engine_kwargs(self) -> dict:
        # plain serial plans: the catalog short-circuits would otherwise still start parallel workers
        return {"connect_args": {"options": "-c max_parallel_workers_per_gather=0 -c jit=off",
                                 "application_name": "golive-gx"}}

    def unique_query(self, schema: str, table: str, columns: list[str]) -> str:
        """Rows sharing a key, unless a valid unique index on exactly these columns already guarantees none.

        NULLs are left out, as in a unique constraint. The index test is a one-time filter: with the index
        in place PostgreSQL does not scan the table at all.
        """
        cols = ", ".join(qi(c) for c in columns)
        notnull = " AND ".join(f"{qi(c)} IS NOT NULL" for c in columns)
        rel = qn(schema, table).replace("'", "''")
        guaranteed = (
            "SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass('" + rel + "') AND i.indisunique "
            "AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = " + str(len(columns)) +
            " AND ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey::int2[]) ORDER BY a.attname::text) = " + _names(sorted(columns)))
        return (f"SELECT {cols}, count(*) AS copies FROM {{batch}} WHERE {notnull} AND NOT EXISTS ({guaranteed}) "
                f"GROUP BY {cols} HAVING count(*) > 1")

    def orphan_query(self, schema: str, fk, key: list[str]) -> str:
        """Dangling references: values of the child's columns with no parent row, beyond the source's own.

        A foreign key PostgreSQL has validated and enforces has none: the catalog answers and no row is read
        (rows slipped in with triggers off by ``session_replication_role = replica`` are still caught by the
        content checksums, as rows the source does not have).
        """
        child_cols = ", ".join(f"c.{qi(c)}" for c in fk.columns)
        on = " AND ".join(f"p.{qi(r)} = c.{qi(c)}" for c, r in zip(fk.columns, fk.ref_columns))
        notnull = " AND ".join(f"c.{qi(c)} IS NOT NULL" for c in fk.columns)
        ex = qi(f"example_{key[0]}") if len(key) == 1 else ""
        examples = (f", (array_agg(c.{qi(key[0])} ORDER BY c.{qi(key[0])}))[1:5]::text AS {ex}" if ex else "")
        label = f"{schema}.{fk.name}".replace("'", "''")
        outs = ", ".join(f"o.{qi(c)}" for c in fk.columns)
        return (
            f"SELECT {outs}, o.rows_in_target, coalesce(s.rows, 0) AS rows_in_source"
            f"{', o.' + ex if ex else ''} FROM ("
            f"SELECT {child_cols}, count(*) AS rows_in_target{examples} FROM {{batch}} c "
            f"LEFT JOIN {qn(fk.ref_schema or schema, fk.ref_table)} p ON {on} WHERE {notnull} "
            f"AND p.{qi(fk.ref_columns[0])} IS NULL "
            f"AND NOT EXISTS ({enforced_fk_sql(schema, fk)}) "
            f"GROUP BY {child_cols}) o LEFT JOIN {SOURCE_ORPHANS} s ON s.fk = '{label}' "
            f"AND s.ref = jsonb_build_array({outs}) WHERE o.rows_in_target > coalesce(s.rows, 0)")

    def record_source_orphans(self, url, schema: str, fks: list, rejects: dict, orphans_of) -> None:
        """Only foreign keys PostgreSQL has not validated need it (a validated key has no orphans to excuse),
        and those whose parent lost rows to rejects (their children now dangle too, and rightly so)."""
        try:
            with connect(url, autocommit=True) as conn:
                conn.execute(ORPHANS_DDL)
                validated = {r[0] for r in conn.execute(
                    "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                    "WHERE c.contype = 'f' AND c.convalidated AND n.nspname = %s", (schema,))}
                labels = [f"{schema}.{fk.name}" for _, fk in fks]
                conn.execute(f"DELETE FROM {SOURCE_ORPHANS} WHERE fk = ANY(%s)", (labels,))
                need = [(tp, fk) for tp, fk in fks if fk.name not in validated or rejects.get(fk.source_ref_table)]
                rows = [(f"{schema}.{fk.name}", json.dumps(ref, default=str), n)
                        for tp, fk in need for ref, n in orphans_of(tp, fk)]
                if rows:
                    with conn.cursor() as cur:
                        cur.executemany(f"INSERT INTO {SOURCE_ORPHANS} (fk, ref, rows) VALUES (%s, %s::jsonb, %s) "
                                        "ON CONFLICT (fk, ref) DO UPDATE SET rows = EXCLUDED.rows", rows)
        except Exception as exc:
            if isinstance(exc, TerminalError):
                raise
            raise translate_error(exc, f"recording the source's orphan rows in {SOURCE_ORPHANS}") from None


def _names(cols: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + c.replace("'", "''") + "'" for c in cols) + "]::text[]"


def enforced_fk_sql(schema: str, fk) -> str:
    """True when PostgreSQL has validated this foreign key and enforces it (its triggers are enabled)."""
    child = qn(schema, fk.table).replace("'", "''")
    parent = qn(fk.ref_schema or schema, fk.ref_table).replace("'", "''")
    return (
        "SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND k.convalidated "
        f"AND k.conrelid = to_regclass('{child}') AND k.confrelid = to_regclass('{parent}') "
        "AND ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i), pg_attribute a "
        f"WHERE a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) = {_names(fk.columns)} "
        "AND ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i), pg_attribute a "
        f"WHERE a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) = {_names(fk.ref_columns)} "
        "AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = k.oid AND t.tgenabled = 'D')")

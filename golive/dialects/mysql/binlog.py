"""Reading a MySQL / MariaDB binlog for online migration: the changed rows' keys, in commit order, and DDL.

``read_changes`` opens a non-blocking binlog dump at a ``file:offset`` position (a fresh random ``server_id`` per
reader so two readers never evict each other) and reads whole transactions: the position it hands back is always a
transaction's end (after its XID event, its COMMIT, or a standalone statement), so ``changes(after=…)`` starts
exactly after what the target recorded. golive reads the stream itself (``binlog_wire``: only the copied tables'
key columns, from the row images' bytes); ``mysql-replication`` reads it, decoding every column, where golive's
reader meets what it does not read exactly. Every query event is read, because DDL may name a copied table from
another default database. ``_collect`` makes the same checks whoever reads.

Columns are taken by **ordinal position** from the table's definition recorded when capture began: without
``binlog_row_metadata=FULL`` the binlog carries no column names (nor signedness: an UNSIGNED key is corrected here).
Any change of a copied table's definition stops the run (``SchemaChanged``), naming the table and the statement:
``ALTER``/``DROP``/``RENAME``/``TRUNCATE``/``CREATE OR REPLACE``/index DDL in a query event, or a row event whose
column count (or, with FULL metadata, whose column names) differ from the recorded definition (a DDL written with
``sql_log_bin = 0``, an online schema-change tool).
"""

from __future__ import annotations

import logging
import random
import re
import warnings
from contextlib import contextmanager

from golive.dialects.mysql import binlog_wire
from golive.dialects.mysql.session import connect, connect_kwargs, qi, translate_error
from golive.dialects.mysql.snapshot import position_key
from golive.errors import TerminalError
from golive.model.capture import CaptureState, Change, ChangeBatch, SchemaChanged
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)
# the library warns on every stream that binlog_row_metadata is not FULL: golive's check says it once, with the fix
logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)
# mysql-replication 1.0.17 opens its control connection with PyMySQL's old ``db=`` argument
warnings.filterwarnings("ignore", message="'db' is deprecated", category=DeprecationWarning)

SCHEMA_CHANGED = ("the source's schema changed during capture: {what}; golive does not apply DDL: stop the app's "
                  "schema change, then run the same command with --drop-existing (or golive migrate abort)")

_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_QNAME = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_LIST = rf"{_QNAME}(?:\s*,\s*{_QNAME})*"
#: statements that change a table's definition (or its rows without row events), and where they name the tables
_DDL = [
    ("altered", rf"ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?P<names>{_QNAME})"),
    ("dropped", rf"DROP\s+TABLES?\s+(?:IF\s+EXISTS\s+)?(?:/\*.*?\*/\s*)?(?P<names>{_LIST})"),
    ("renamed", rf"RENAME\s+TABLES?\s+(?P<names>{_QNAME}\s+TO\s+{_QNAME}(?:\s*,\s*{_QNAME}\s+TO\s+{_QNAME})*)"),
    ("truncated", rf"TRUNCATE\s+(?:TABLE\s+)?(?P<names>{_QNAME})"),
    ("replaced", rf"CREATE\s+OR\s+REPLACE\s+TABLE\s+(?P<names>{_QNAME})"),
    ("given an index", rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|OFFLINE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?"
                       rf"INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}\s+(?:USING\s+\w+\s+)?ON\s+(?P<names>{_QNAME})"),
    ("stripped of an index", rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?{_NAME}\s+ON\s+(?P<names>{_QNAME})"),
]
_DROP_DB = re.compile(rf"DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?(?P<db>{_NAME})", re.I | re.S)
_DML = re.compile(r"(?:INSERT|REPLACE|UPDATE|DELETE|LOAD\s+DATA)\b", re.I)
#: query events that open a transaction or stay inside one (every other query event ends one)
_INSIDE = re.compile(r"(?:BEGIN|START\s+TRANSACTION|SAVEPOINT|ROLLBACK\s+TO|RELEASE\s+SAVEPOINT)", re.I)
_XA = re.compile(r"XA\s+(?:START|BEGIN)\b", re.I)
_INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _names(text: str, default_db: str) -> list[tuple[str, str]]:
    """``[(database, table)]`` of a list of (qualified) names."""
    out = []
    for m in re.finditer(rf"({_NAME})(?:\s*\.\s*({_NAME}))?", text):
        if m.group(1).upper() == "TO" and not m.group(2):
            continue
        out.append((_unquote(m.group(1)), _unquote(m.group(2))) if m.group(2) else (default_db, _unquote(m.group(1))))
    return out


def clean_sql(query: str) -> str:
    """A statement without comments (the code inside ``/*!NNNNN … */`` kept), on one line."""
    q = re.sub(r"/\*!\d*", " ", query)
    q = re.sub(r"/\*.*?\*/", " ", q, flags=re.S)
    q = re.sub(r"\*/", " ", q)
    q = re.sub(r"(?m)(--\s|#).*$", " ", q)
    return " ".join(q.split())


def ddl_change(query: str, schema: str, database: str, tables) -> str | None:
    """What a statement does to a copied table (``"table t altered: ALTER TABLE …"``), or None when it leaves every
    copied table as it was. ``schema`` is the statement's default database."""
    q = clean_sql(query)
    wanted = {t.lower(): t for t in tables}
    db = database.lower()
    m = _DROP_DB.match(q)
    if m and _unquote(m.group("db")).lower() == db:
        return f"the database {database} was dropped: {q[:160]}"
    for what, pattern in _DDL:
        m = re.match(pattern, q, re.I | re.S)
        if not m:
            continue
        hit = [wanted[t.lower()] for d, t in _names(m.group("names"), schema)
               if d.lower() == db and t.lower() in wanted]
        if hit:
            return f"table {', '.join(dict.fromkeys(hit))} {what}: {q[:160]}"
        return None
    return None


def statement_write(query: str, schema: str, database: str, tables) -> str | None:
    """A copied table written by a statement logged as text (a session with ``binlog_format = STATEMENT``): its
    rows are not in the binlog, so golive cannot see them."""
    q = clean_sql(query)
    if not _DML.match(q):
        return None
    words = {w.lower() for w in re.findall(r"[\w$]+", q.replace("`", " "))}
    hit = [t for t in tables if t.lower() in words]
    if hit and (schema.lower() == database.lower() or database.lower() in words):
        return (f"table {', '.join(hit)} was written by a statement logged as text (a session with binlog_format = "
                f"STATEMENT or MIXED), whose rows golive cannot see: {q[:120]}; make every session use ROW "
                "(binlog_format = ROW in my.cnf, and reconnect the app), then run the same command with "
                "--drop-existing")
    return None


# ---------------------------------------------------------------------- what begin records


def describe(conn, database: str, plan) -> dict:
    """Each copied table's columns in ordinal order, its key's ordinals (with the bits of an UNSIGNED integer key
    column), and the foreign keys whose ON UPDATE CASCADE the binlog does not show; refuses a table whose
    definition changed since the plan."""
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (database,))
        cols: dict[str, list] = {}
        for t, c, ty, cs in cur.fetchall():
            cols.setdefault(_s(t), []).append((_s(c), _s(ty).lower(), _s(cs)))
    tables = {}
    for tp in plan.tables:
        have = cols.get(tp.source, [])
        names = [c for c, _, _ in have]
        planned = [c.source for c in tp.columns]
        if not have:
            raise SchemaChanged(SCHEMA_CHANGED.format(what=f"table {tp.source} is gone since the plan"))
        if sorted(names) != sorted(planned):
            gone, new = sorted(set(planned) - set(names)), sorted(set(names) - set(planned))
            what = "; ".join(filter(None, [gone and f"columns {', '.join(gone)} gone", new and
                                           f"columns {', '.join(new)} added"]))
            raise SchemaChanged(SCHEMA_CHANGED.format(what=f"table {tp.source} changed since the plan ({what})"))
        key = [names.index(k) for k in tp.key]
        unsigned = [_bits(have[i][1]) for i in key]
        # a string key's character set (None: binary), for the wire reader to decode it as the server stores it
        tables[tp.source] = {"columns": names, "key": key, "unsigned": unsigned,
                             "charsets": [have[i][2] for i in key]}
    fks = cascades(conn, database, plan)
    for fk in fks:  # the parent's referenced columns by ordinal, as the binlog has them, to find the children by
        have = cols[fk["parent"]]
        names = [c for c, _, _ in have]
        fk["ref_at"] = [names.index(r) for r in fk["ref"]]
        fk["ref_unsigned"] = [_bits(have[i][1]) for i in fk["ref_at"]]
        fk["ref_charsets"] = [have[i][2] for i in fk["ref_at"]]
    return {"database": database, "tables": tables, "cascades": fks}


def _bits(column_type: str) -> int:
    """The bits of an UNSIGNED integer column (the binlog carries it signed without metadata), else 0."""
    base = re.match(r"\w+", column_type).group(0)
    return _INT_BITS.get(base, 0) if "unsigned" in column_type else 0


def foreign_keys(conn, database: str) -> list[dict]:
    """The database's foreign keys with their ON DELETE / ON UPDATE rules (source names)."""
    with conn.cursor() as cur:
        cur.execute("SELECT c.CONSTRAINT_NAME, c.TABLE_NAME, c.REFERENCED_TABLE_NAME, c.UPDATE_RULE, c.DELETE_RULE, "
                    "k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS c "
                    "JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA AND "
                    "k.CONSTRAINT_NAME = c.CONSTRAINT_NAME AND k.TABLE_NAME = c.TABLE_NAME "
                    "WHERE c.CONSTRAINT_SCHEMA = %s ORDER BY c.TABLE_NAME, c.CONSTRAINT_NAME, k.ORDINAL_POSITION",
                    (database,))
        rows = cur.fetchall()
    out: dict[tuple, dict] = {}
    for name, child, parent, upd, dele, col, ref in rows:
        fk = out.setdefault((_s(child), _s(name)), {"name": _s(name), "child": _s(child), "parent": _s(parent),
                                                     "on_update": _s(upd), "on_delete": _s(dele), "columns": [],
                                                     "ref": []})
        fk["columns"].append(_s(col))
        fk["ref"].append(_s(ref))
    return list(out.values())


def cascades(conn, database: str, plan) -> list[dict]:
    """ON UPDATE CASCADE foreign keys of copied tables: the binlog shows the parent's key change but not the
    children it changed, so the capture finds those children by their new value."""
    copied = {tp.source: tp for tp in plan.tables}
    out = []
    for fk in foreign_keys(conn, database):
        if fk["child"] in copied and fk["parent"] in copied and fk["on_update"] == "CASCADE":
            parent_cols = [c.source for c in copied[fk["parent"]].columns]
            out.append({**fk, "ref_at": [parent_cols.index(r) for r in fk["ref"]],
                        "child_key": list(copied[fk["child"]].key)})
    return out


def _s(v):
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v


# ---------------------------------------------------------------------- reading the stream


def _stream_settings(url: DatabaseURL) -> dict:
    kw = connect_kwargs(url)
    kw.pop("database", None)
    kw["read_timeout"] = 600
    return kw


def read_changes(url: DatabaseURL, state: CaptureState, after: str, *, limit: int) -> ChangeBatch:
    """The changed rows of the copied tables after ``after`` (whole transactions, at least ``limit`` changes when
    that many are waiting), and the position after the last transaction read.

    Read off the wire (``binlog_wire``: the key columns, and an ON UPDATE CASCADE parent's referenced columns, from
    the row images' bytes); the library reads the range instead, decoding every column, when the wire reader meets
    an event or a column it does not read exactly."""
    try:
        return _collect(url, state, after, limit, _wire_events)
    except binlog_wire.Unsupported as exc:
        log.debug("the binlog read by the library: %s", exc)
    return _collect(url, state, after, limit, _library_events)


def _collect(url: DatabaseURL, state: CaptureState, after: str, limit: int, source) -> ChangeBatch:
    """Whole transactions of ``source(url, state, file, pos)``'s events, up to ``limit`` changes: the DDL, statement
    writes, XA and fence checks, the same whoever reads the stream."""
    meta = state.meta
    database, tables = meta["database"], meta["tables"]
    start = after or state.applied or state.started_at
    file, _, pos = start.rpartition(":")
    fenced = position_key(meta["fenced_pos"]) if meta.get("fenced_pos") else None
    changes: list[Change] = []
    txn: list[Change] = []
    position, first_at, last_at, full, xa = start, None, None, False, False
    try:
        with source(url, state, file, int(pos)) as stream:
            for ev in stream:
                kind = ev[0]
                if kind == "rows":
                    _, table, ts, found, at_file, at_pos = ev
                    if xa:
                        raise TerminalError(f"an XA transaction wrote to {table}: golive's capture does not follow "
                                            "XA transactions (their rows commit apart from their binlog events); move "
                                            "this database offline, or stop the XA writes and start again")
                    if fenced is not None and position_key(f"{at_file}:{at_pos}") > fenced:
                        raise TerminalError(
                            f"golive: a write to {table} reached the source after the fence (binlog "
                            f"{at_file}:{at_pos}): a session with READ_ONLY ADMIN or SUPER ignores read_only: stop it "
                            "(the app must write to the target now), then run the same command")
                    txn.extend(found)
                    last_at = ts
                    continue
                if kind == "query":
                    _, q, schema = ev[:3]
                    if q.lstrip().upper().startswith("XA "):  # XA START … XA END, XA PREPARE, XA COMMIT/ROLLBACK
                        xa = bool(_XA.match(q.lstrip()))
                        continue
                    if _INSIDE.match(q.lstrip()):
                        continue
                    problem = ddl_change(q, schema, database, tables)
                    if problem is not None:
                        if changes:  # what came before the DDL is applied first; the next read stops at it
                            break
                        raise SchemaChanged(SCHEMA_CHANGED.format(what=problem))
                    problem = statement_write(q, schema, database, tables)
                    if problem is not None:
                        raise TerminalError(problem)
                # the end of a transaction (an XID event, a COMMIT, a standalone statement)
                if txn:
                    changes.extend(txn)
                    txn = []
                    first_at = first_at or last_at
                position = f"{ev[-2]}:{ev[-1]}"
                if len(changes) >= limit:
                    full = True
                    break
    except (SchemaChanged, TerminalError):
        raise
    except binlog_wire.Unsupported:
        raise
    except Exception as exc:
        raise _stream_error(exc, url, start) from None
    pending = _pending(url, start, position, len(changes)) if full else 0
    at = last_at if pending else (first_at or last_at)
    return ChangeBatch(changes=changes, position=position, pending=pending, oldest_at=float(at) if at else None)


@contextmanager
def _wire_events(url: DatabaseURL, state: CaptureState, file: str, pos: int):
    """The stream read off the wire (``binlog_wire``)."""
    conn = connect(url, autocommit=True, role="source", database=False)
    conn._read_timeout = 600  # a silently dead server: an error after 10 minutes, not a hang
    lookups = _Children(url)
    try:
        reader = binlog_wire.Reader(state.meta["database"], state.meta["tables"], _check_columns,
                                    cascades=state.meta.get("cascades", []), children=lookups.cascaded)
        yield binlog_wire.events(conn, file, pos, reader, checksum=binlog_wire.checksum_on(conn))
    finally:
        conn.close()
        lookups.close()


@contextmanager
def _library_events(url: DatabaseURL, state: CaptureState, file: str, pos: int):
    """The stream read by ``mysql-replication``, every column decoded (what golive's reader does not read)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import NotImplementedEvent, QueryEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent


    meta = state.meta
    database, tables = meta["database"], meta["tables"]
    by_parent: dict[str, list] = {}
    for fk in meta.get("cascades", []):
        by_parent.setdefault(fk["parent"], []).append(fk)
    stream = BinLogStreamReader(
        connection_settings=_stream_settings(url), server_id=random.randint(1 << 24, (1 << 32) - 2),
        log_file=file, log_pos=pos, resume_stream=True, blocking=False,
        only_events=[QueryEvent, XidEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, NotImplementedEvent],
        only_schemas=[database], only_tables=list(tables), ignore_decode_errors=True, enable_logging=False,
        freeze_schema=True, filter_non_implemented_events=False)
    lookups = _Children(url)

    def events():
        for ev in stream:
            if isinstance(ev, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
                spec = tables.get(ev.table)
                if spec is None or ev.schema != database:
                    continue
                _check_columns(ev.table, ev.number_of_columns, [c.name for c in ev.columns], spec)
                update = isinstance(ev, UpdateRowsEvent)
                found = list(_row_changes(ev, spec, update, isinstance(ev, DeleteRowsEvent)))
                for fk in by_parent.get(ev.table, []) if update else []:
                    for row in ev.rows:  # the children an ON UPDATE CASCADE moved, found by the new values
                        old, new = (_values(row[side], fk["ref_at"], fk.get("ref_unsigned"))
                                    for side in ("before_values", "after_values"))
                        if old != new:
                            found.extend(lookups.cascaded(fk, new))
                yield "rows", ev.table, ev.timestamp, found, stream.log_file, stream.log_pos
            elif isinstance(ev, QueryEvent):
                yield "query", ev.query or "", _s(ev.schema) or "", stream.log_file, stream.log_pos
            elif isinstance(ev, XidEvent):
                yield "end", stream.log_file, stream.log_pos
            elif getattr(ev, "event_type", None) in binlog_wire.COMPRESSED:  # skipped by the library: rows lost
                raise TerminalError(binlog_wire.COMPRESSED_FIX)

    try:
        yield events()
    finally:
        stream.close()
        lookups.close()


def _check_columns(table: str, count: int, names, spec: dict) -> None:
    """A row event's table still has the definition the copy has (count, and names when the binlog says them)."""
    n = len(spec["columns"])
    if count != n:
        raise SchemaChanged(SCHEMA_CHANGED.format(
            what=f"table {table} now has {count} columns in the binlog where the copy has {n} (a "
                 "DDL the binlog does not show: sql_log_bin = 0, or an online schema-change tool)"))
    if names and all(names) and list(names) != spec["columns"]:
        raise SchemaChanged(SCHEMA_CHANGED.format(
            what=f"table {table}'s columns are now {', '.join(names)} (the copy has {', '.join(spec['columns'])})"))


def _values(values: dict, at: list[int], bits: list[int] | None) -> tuple:
    """The values at ordinals ``at`` of a row the library decoded, an UNSIGNED integer corrected (without
    metadata the binlog does not say the column is UNSIGNED)."""
    row = list(values.values())
    out = []
    for i, b in zip(at, bits or [0] * len(at)):
        v = row[i]
        if b and isinstance(v, int) and v < 0:
            v += 1 << b
        out.append(v)
    return tuple(out)


def _row_changes(ev, spec: dict, update: bool, delete: bool):
    t, key, bits = ev.table, spec["key"], spec["unsigned"]
    for row in ev.rows:
        if update:
            old, new = _values(row["before_values"], key, bits), _values(row["after_values"], key, bits)
            yield Change(table=t, key=new)
            if old != new:  # the key changed: the old row is gone
                yield Change(table=t, key=old, deleted=True)
        else:
            yield Change(table=t, key=_values(row["values"], key, bits), deleted=delete)


class _Children:
    """The children an ON UPDATE CASCADE changed with their parent's key: the binlog does not show them, so they are
    found in the source by the parent's new value (one changed again since is captured again, later)."""

    def __init__(self, url: DatabaseURL):
        self.url, self.conn = url, None

    def cascaded(self, fk: dict, new) -> list[Change]:
        """The children of ``fk`` that reference the parent's new values ``new``."""
        if self.conn is None:
            self.conn = connect(self.url, autocommit=True, settings={"time_zone": "+00:00"}, role="source")
        cond = " AND ".join(f"{qi(c)} = %s" for c in fk["columns"])
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(qi(k) for k in fk['child_key'])} FROM {qi(fk['child'])} "
                        f"WHERE {cond}", list(new))
            return [Change(table=fk["child"], key=tuple(r)) for r in cur.fetchall()]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _pending(url: DatabaseURL, start: str, position: str, n: int) -> int:
    """About how many changes wait after ``position`` (the binlog bytes left, at this batch's bytes per change)."""
    conn = connect(url, autocommit=True, role="source")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            sizes = [(_s(r[0]), int(r[1])) for r in cur.fetchall()]
    except Exception:  # noqa: BLE001 - only the lag display depends on it
        return 1
    finally:
        conn.close()
    at, left = position_key(position), 0
    for name, size in sizes:
        k = position_key(f"{name}:0")
        if k[:2] == at[:2]:
            left += max(0, size - at[2])
        elif k[:2] > at[:2]:
            left += size
    s, p = position_key(start), position_key(position)
    per = (p[2] - s[2]) / n if s[:2] == p[:2] and n and p[2] > s[2] else 200
    return max(1, int(left / max(per, 20))) if left else 0


def _stream_error(exc: BaseException, url: DatabaseURL, start: str):
    code = exc.args[0] if getattr(exc, "args", None) and isinstance(exc.args[0], int) else 0
    if code == 1236:  # the binlog holding the position is gone (purged, or never existed)
        return TerminalError(
            f"the source's binlog no longer holds position {start} ({_s(exc.args[1]) if len(exc.args) > 1 else exc}):"
            " the binlogs were purged (binlog_expire_logs_seconds / expire_logs_days) before the target caught up; "
            "keep them longer, then run the same command with --drop-existing")
    return translate_error(exc, "reading the source's binlog")

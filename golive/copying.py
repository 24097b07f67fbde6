"""Copy one chunk (a rowid range of one table) from SQLite into PostgreSQL with COPY.

Clean path: SQLite renders the rows of a batch as CSV text (``TablePlan.line_sql``) and concatenates
them (``group_concat``), so Python moves a few megabytes at a time and never touches a field. The whole
chunk goes through one ``COPY ... FROM STDIN`` in one transaction that also records the chunk in
``_golive.chunks``. The target's row count must equal the rows read, or the chunk is redone carefully.

Reject path (only when the target refuses something): the chunk is redone row by row inside
savepoints. A failing row is located from the line number PostgreSQL reports, rejected with its key,
column, value and reason, and the rows around it are copied. The clean path pays nothing for this.

Read-ahead (``read_ahead``): the CLI reads the first batches of the first chunks while Prefect starts up;
a chunk's copy takes them (``_claim``) and reads the rest itself. Nothing is written ahead, so every
guarantee above holds unchanged.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time

from pydantic import BaseModel, Field

from golive import progress, state
from golive.dialects.postgresql import LOAD_SETTINGS, PostgresDialect, is_data_error, translate_error
from golive.dialects.sqlite import SQLiteDialect, qi
from golive.errors import SourceError, TransientError
from golive.plan import ChunkPlan, TablePlan
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: bytes of CSV per SQLite query / COPY write on the clean path
BATCH_BYTES = 4 << 20
#: rows per COPY attempt on the reject path
CAREFUL_ROWS = 2000


class ChunkResult(BaseModel):
    table: str
    chunk: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rejects: list[dict] = Field(default_factory=list)
    seconds: float = 0.0
    resumed: bool = Field(False, description="Committed by an earlier, interrupted run.")
    careful: bool = Field(False, description="The reject path was used.")


class _CountMismatch(Exception):
    def __init__(self, read: int, written: int):
        super().__init__(f"read {read} rows but the target counted {written}")
        self.read, self.written = read, written


def copy_chunk(source: DatabaseURL, target: DatabaseURL, run_key: str, schema: str, tp: TablePlan,
               chunk: ChunkPlan) -> ChunkResult:
    """Copy one chunk exactly once. Safe to retry: a committed chunk is recognised and skipped.

    Raises:
        TransientError: the connection failed; retrying may help.
        TerminalError: something a retry will not fix.
    """
    import psycopg

    sd, pg = SQLiteDialect(), PostgresDialect()
    t0 = time.perf_counter()
    sq = sd.connect(source, raw_text=True)
    try:
        pgc = pg.connect(target, settings=LOAD_SETTINGS)
    except Exception:
        sq.close()
        raise
    try:
        with pgc:
            prev = state.chunk_done(pgc, run_key, tp.source, chunk.no)
            pgc.commit()
            if prev is not None:
                return ChunkResult(table=tp.source, chunk=chunk.no, resumed=True, **prev)
            read = 0
            ahead = _claim(source, tp, chunk)
            try:
                with pgc.transaction():
                    with pgc.cursor() as cur:
                        with cur.copy(pg.copy_sql(schema, tp)) as cp:
                            for blob, n in _source_batches(sq, tp, chunk, ahead):
                                if blob:
                                    cp.write(blob)
                                read += n
                                progress.emit("rows", table=tp.source, rows=n)
                        written = cur.rowcount
                    if written != read:
                        raise _CountMismatch(read, written)
                    seconds = round(time.perf_counter() - t0, 3)
                    state.record_chunk(pgc, run_key, tp.source, chunk.no, read, written, [], seconds)
                return ChunkResult(table=tp.source, chunk=chunk.no, rows_read=read, rows_written=written,
                                   rows_rejected=0, seconds=seconds)
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError, _CountMismatch) as exc:
                if isinstance(exc, psycopg.Error) and not is_data_error(exc):
                    raise
                log.info("chunk %s#%s: the target refused a row (%s); redoing it row by row",
                         tp.source, chunk.no, _first_line(exc))
                progress.emit("rows", table=tp.source, rows=-read)
                return _copy_carefully(sq, pgc, pg, run_key, schema, tp, chunk, t0)
    except psycopg.Error as exc:
        raise translate_error(exc, f"copying {tp.source} chunk {chunk.no}") from None
    except _sqlite_error() as exc:
        raise SourceError(f"reading {tp.source} chunk {chunk.no} from the source: {exc}") from None
    finally:
        sq.close()


def _sqlite_error():
    import sqlite3

    return sqlite3.DatabaseError


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------- reading the source


def _batches(sq, tp: TablePlan, chunk: ChunkPlan):
    """Yield ``(csv_bytes, rows)`` for the chunk, each about ``BATCH_BYTES`` long (adaptive rowid spans)."""
    if not tp.has_rowid:
        cur = sq.execute(f"SELECT {tp.line_sql} FROM {qi(tp.source)}")
        while rows := cur.fetchmany(2000):
            yield b"".join(r[0] for r in rows), len(rows)
        return
    for blob, n, _, _ in _spans(sq, tp, chunk):
        yield blob, n


def _spans(sq, tp: TablePlan, chunk: ChunkPlan, start: int | None = None, span: int | None = None):
    """Yield ``(csv_bytes, rows, next rowid, next span)`` for the rowid range of the chunk from ``start`` on."""
    sql = (f"SELECT group_concat(line, ''), count(*) FROM "
           f"(SELECT {tp.line_sql} AS line FROM {qi(tp.source)} WHERE {tp.rowid_name} BETWEEN ? AND ?)")
    lo, hi = chunk.lo, chunk.hi
    if span is None:
        density = max(chunk.rows, 1) / max(hi - lo + 1, 1)
        span = max(1, int(256 / density))  # start small: rows may be huge
    a = lo if start is None else start
    while a <= hi:
        b = min(hi, a + span - 1)
        blob, n = sq.execute(sql, (a, b)).fetchone()
        if isinstance(blob, str):
            blob = blob.encode("utf-8", "surrogateescape")
        if blob:
            per_rowid = len(blob) / (b - a + 1)
            span = max(1, min(int(BATCH_BYTES / per_rowid), span * 8))
        else:
            span = min(span * 8, 1 << 40)
        a = b + 1
        yield blob, n, a, span


# ---------------------------------------------------------------------- read-ahead

#: CSV read ahead for one chunk at most, and for all chunks of a read-ahead together
READ_AHEAD_CHUNK_BYTES = 16 << 20
READ_AHEAD_BYTES = 64 << 20


class _Ahead:
    """The first batches of one chunk, read before its copy starts."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, int]] = []
        self.next_lo: int | None = None  # where the copy goes on reading (None: from the chunk's start)
        self.span: int | None = None
        self.started = self.claimed = False
        self.failed = False
        self.done = threading.Event()


_ahead: dict[tuple, _Ahead] = {}
_ahead_lock = threading.Lock()
_ahead_stops: list[threading.Event] = []  # one per read-ahead thread still running


def _ahead_key(source: DatabaseURL, tp: TablePlan, chunk: ChunkPlan) -> tuple:
    return (source.raw, tp.source, tp.line_sql, tp.rowid_name, chunk.no, chunk.lo, chunk.hi)


def read_ahead(source: DatabaseURL, order: list[tuple[TablePlan, ChunkPlan]], *,
               budget: int = READ_AHEAD_BYTES) -> threading.Thread:
    """Read the first batches of the first chunks of ``order`` in a background thread, for ``copy_chunk``
    in this process to take instead of reading them itself.

    The CLI starts it as soon as the plan is known, while Prefect is still starting up and a core would
    otherwise idle. Nothing is written: a chunk whose copy starts before its read-ahead simply reads
    everything itself; a copy that fails and is retried reads its chunk again from the source. At most
    ``READ_AHEAD_CHUNK_BYTES`` per chunk and ``budget`` in all are read ahead; ``drop_read_ahead`` frees
    what no copy took (a chunk an interrupted run already committed, say).
    """
    entries = []
    stop = threading.Event()
    with _ahead_lock:
        _ahead_stops.append(stop)
        for tp, ch in order:
            key = _ahead_key(source, tp, ch)
            if tp.has_rowid and key not in _ahead:
                _ahead[key] = _Ahead()
                entries.append((tp, ch, _ahead[key]))

    def run() -> None:
        used = 0
        sq = None
        if sys.platform == "linux":  # yield the CPU to Prefect's start-up and the copies (this thread only)
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except OSError:
                pass
        try:
            sq = SQLiteDialect().connect(source, raw_text=True)
            for tp, ch, ahead in entries:
                with _ahead_lock:
                    if ahead.claimed:
                        continue
                    if used >= budget or stop.is_set():
                        break
                    ahead.started = True
                try:
                    size = 0
                    for blob, n, nxt, span in _spans(sq, tp, ch):
                        ahead.batches.append((blob or b"", n))
                        ahead.next_lo, ahead.span = nxt, span
                        size += len(blob or b"")
                        if size >= READ_AHEAD_CHUNK_BYTES or ahead.claimed or stop.is_set():
                            break
                    used += size
                except Exception as exc:  # the copy reads the chunk itself and meets the error there
                    log.debug("read-ahead of %s chunk %d failed: %s", tp.source, ch.no, exc)
                    ahead.failed = True
                finally:
                    ahead.done.set()
        except Exception as exc:
            log.debug("read-ahead stopped: %s", exc)
        finally:
            with _ahead_lock:  # entries never started: their copies read everything themselves
                for tp, ch, ahead in entries:
                    if not ahead.started and _ahead.get(_ahead_key(source, tp, ch)) is ahead:
                        del _ahead[_ahead_key(source, tp, ch)]
                if stop in _ahead_stops:
                    _ahead_stops.remove(stop)
            if sq is not None:
                sq.close()

    thread = threading.Thread(target=run, name="golive-read-ahead", daemon=True)
    thread.start()
    return thread


def drop_read_ahead() -> None:
    """Stop reading ahead and free every batch no copy took."""
    with _ahead_lock:
        for stop in _ahead_stops:
            stop.set()
        _ahead.clear()


def _claim(source: DatabaseURL, tp: TablePlan, chunk: ChunkPlan) -> _Ahead | None:
    """The read-ahead of this chunk, complete up to ``next_lo``, or None (the copy reads it all)."""
    with _ahead_lock:
        ahead = _ahead.pop(_ahead_key(source, tp, chunk), None)
        if ahead is None:
            return None
        ahead.claimed = True
        if not ahead.started:
            return None
    ahead.done.wait()  # at most the batch being read
    return None if ahead.failed or ahead.next_lo is None else ahead


def _source_batches(sq, tp: TablePlan, chunk: ChunkPlan, ahead: _Ahead | None):
    """The chunk's ``(csv_bytes, rows)``: what was read ahead, then the rest from the source."""
    if ahead is None:
        yield from _batches(sq, tp, chunk)
        return
    batches, ahead.batches = ahead.batches, []
    yield from batches
    for blob, n, _, _ in _spans(sq, tp, chunk, start=ahead.next_lo, span=ahead.span):
        yield blob, n


def _rows(sq, tp: TablePlan, chunk: ChunkPlan):
    """Yield lists of ``(rowkey, line)`` for the reject path; rowkey is the rowid or the key tuple."""
    if tp.has_rowid:
        r = tp.rowid_name
        cur = sq.execute(f"SELECT {r}, {tp.careful_sql} FROM {qi(tp.source)} WHERE {r} BETWEEN ? AND ? "
                         f"ORDER BY {r}", (chunk.lo, chunk.hi))
        while rows := cur.fetchmany(CAREFUL_ROWS):
            yield [(r[0], r[1]) for r in rows]
    else:
        keys = ", ".join(qi(k) for k in tp.key)
        cur = sq.execute(f"SELECT {keys}, {tp.careful_sql} FROM {qi(tp.source)}")
        while rows := cur.fetchmany(CAREFUL_ROWS):
            yield [(tuple(r[:-1]), r[-1]) for r in rows]


def _source_row(sq, tp: TablePlan, rowkey) -> dict:
    if tp.has_rowid:
        cur = sq.execute(f"SELECT * FROM {qi(tp.source)} WHERE {tp.rowid_name} = ?", (rowkey,))
    else:
        cond = " AND ".join(f"{qi(k)} IS ?" for k in tp.key)
        cur = sq.execute(f"SELECT * FROM {qi(tp.source)} WHERE {cond}", tuple(rowkey))
    row = cur.fetchone()
    if row is None:
        return {}
    return {d[0]: v for d, v in zip(cur.description, row)}


# ---------------------------------------------------------------------- the reject path


def _copy_carefully(sq, pgc, pg: PostgresDialect, run_key: str, schema: str, tp: TablePlan, chunk: ChunkPlan,
                    t0: float) -> ChunkResult:
    import psycopg

    rejects: list[dict] = []
    read = written = 0
    copy_sql = pg.copy_sql(schema, tp)

    def attempt(lines: list[bytes]) -> int:
        with pgc.transaction():  # a savepoint inside the chunk's transaction
            with pgc.cursor() as cur:
                with cur.copy(copy_sql) as cp:
                    cp.write(b"".join(lines))
                n = cur.rowcount
            if n != len(lines):
                raise _CountMismatch(len(lines), n)
        return n

    refused = (psycopg.errors.DataError, psycopg.errors.IntegrityError, _CountMismatch)

    def one_by_one(rows) -> int:
        n = 0
        for rowkey, line in rows:
            try:
                n += attempt([line])
            except refused as exc:
                if isinstance(exc, psycopg.Error) and not is_data_error(exc):
                    raise
                rejects.append(_reject(sq, tp, rowkey, exc))
        return n

    with pgc.transaction():
        for batch in _rows(sq, tp, chunk):
            read += len(batch)
            pending = batch
            while pending:
                try:
                    written += attempt([line for _, line in pending])
                    break
                except refused as exc:
                    if isinstance(exc, psycopg.Error) and not is_data_error(exc):
                        raise
                    idx = _failed_row(exc, pending)
                    if idx is None:  # cannot locate the row: try each one alone
                        written += one_by_one(pending)
                        break
                    if idx > 0:
                        try:
                            written += attempt([line for _, line in pending[:idx]])
                        except refused:
                            written += one_by_one(pending[:idx])
                    rejects.append(_reject(sq, tp, pending[idx][0], exc))
                    pending = pending[idx + 1:]
            progress.emit("rows", table=tp.source, rows=len(batch))
        seconds = round(time.perf_counter() - t0, 3)
        state.record_chunk(pgc, run_key, tp.source, chunk.no, read, written, rejects, seconds)
    if read != written + len(rejects):  # the invariant of the whole tool
        raise TransientError(f"{tp.source} chunk {chunk.no}: read {read}, wrote {written}, "
                             f"rejected {len(rejects)}; retrying")
    return ChunkResult(table=tp.source, chunk=chunk.no, rows_read=read, rows_written=written,
                       rows_rejected=len(rejects), rejects=rejects, seconds=seconds, careful=True)


# the COPY line of an error context ("COPY t, line 3, column c: ..."); other lines (e.g. "JSON data,
# line 1: ...") come from the type's own parser
_LINE_RE = re.compile(r"^COPY .*?, line (\d+)(?:,|$)", re.M)
_COLUMN_RE = re.compile(r"^COPY .*?, line \d+, column (.+?): ", re.M)


def _failed_row(exc: Exception, rows: list) -> int | None:
    """Index of the row PostgreSQL refused, from the *physical* line number in the error context.

    PostgreSQL counts the newlines inside quoted CSV values too, so the row is found by walking the
    lines' newline counts.
    """
    ctx = getattr(getattr(exc, "diag", None), "context", None) or ""
    m = _LINE_RE.search(ctx)
    if not m:
        return None
    target = int(m.group(1))
    line = 1
    for i, (_, text) in enumerate(rows):
        line += text.count(b"\n")
        if target < line:
            return i
    return None


def _reject(sq, tp: TablePlan, rowkey, exc: Exception) -> dict:
    """Describe a rejected row: its key, the offending column and value, and the reason."""
    row = _source_row(sq, tp, rowkey)
    by_target = {c.target: c for c in tp.columns}
    column = None
    diag = getattr(exc, "diag", None)
    if diag is not None and diag.column_name and diag.column_name in by_target:
        column = by_target[diag.column_name].source
    if column is None and diag is not None:
        m = _COLUMN_RE.search(diag.context or "")
        if m and m.group(1) in by_target:
            column = by_target[m.group(1)].source
    reason = (diag.message_primary if diag is not None and diag.message_primary else _first_line(exc))
    if isinstance(exc, _CountMismatch):
        reason = "the row's values break the CSV structure of the bulk load"
    if column is None:  # encoding errors name no column: find it in the source row
        for c in tp.columns:
            v = row.get(c.source)
            if isinstance(v, bytes):
                if b"\x00" in v:
                    column = c.source
                    break
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError:
                    column = c.source
                    break
    value = row.get(column) if column is not None else None
    if isinstance(value, bytes) and b"\x00" in value:
        reason = "text contains a NUL byte (0x00), which PostgreSQL text cannot store"
    elif isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            reason = "text is not valid UTF-8"
    m = re.search(r"golive: ([^:]+): ", reason)
    if m:
        reason = {"relative date word": "a word PostgreSQL would read as a moment ('now', 'today', ...)",
                  "epoch out of range": "epoch number outside the representable date range"}.get(m.group(1), m.group(1))
    if tp.has_rowid and tp.key == ["rowid"]:
        key = {"rowid": rowkey}
    elif tp.has_rowid:
        key = {k: key_value(row.get(k)) for k in tp.key}
    else:
        key = dict(zip(tp.key, (key_value(v) for v in rowkey)))
    return {"table": tp.source, "key": key, "column": column, "value": _show(value), "reason": reason}


def key_value(v):
    """A source key value as rejects record it (JSON): text as is, bytes as UTF-8 text or ``x'hex'``."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return "x'" + v.hex() + "'"
    return v


def _show(v, limit: int = 200) -> str | None:
    """A printable, JSON-safe rendering of a source value (NUL and control bytes escaped)."""
    if v is None:
        return None
    if isinstance(v, bytes):
        try:
            s = v.decode("utf-8")
        except UnicodeDecodeError:
            h = v[:limit // 2].hex()
            return f"x'{h}'" + ("…" if len(v) > limit // 2 else "")
    else:
        s = repr(v) if isinstance(v, float) else str(v)
    s = "".join(ch if ch >= " " or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in s)
    return s if len(s) <= limit else s[:limit] + "…"

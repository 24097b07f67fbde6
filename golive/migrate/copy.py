"""Copy one chunk (a key range of one table) from any source into any target, exactly once.

Clean path: the source renders the chunk's rows in the target's wire format (``golive.dialects.base``)
and hands over batches of a few megabytes (``ChunkReader.batches``); the target bulk-loads them in one
transaction that also records the chunk in its bookkeeping (``ChunkWriter``), so a chunk is either fully
committed *and* recorded, or neither. The target's row count must equal the rows read, or the chunk is
redone carefully. A SHA-256 of the bytes read is recorded with the chunk: a resumed run re-reads the
committed chunks of a server source and refuses to go on when one changed.

Reject path (only when the target refuses something): the chunk is redone row by row inside
savepoints. A failing row is located from the line number the target reports, rejected with its key,
column, value and reason, and the rows around it are copied. The clean path pays nothing for this.

Nothing here knows an engine: sources provide a ``ChunkReader``, targets a ``ChunkWriter``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time

from golive import progress
from golive.dialects import get_dialect
from golive.errors import TransientError
from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
from golive.model.results import ChunkReader, ChunkResult, ChunkWriter, CountMismatch, GroupResult, Refused
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: rows per load attempt on the reject path
CAREFUL_ROWS = 2000


def copy_chunk(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan, *,
               snapshot: str | None = None) -> ChunkResult:
    """Copy one chunk exactly once. Safe to retry: a committed chunk is recognised and skipped.

    Raises:
        TransientError: the connection failed; retrying may help.
        TerminalError: something a retry will not fix.
    """
    src, dst = get_dialect(plan.source_dialect), get_dialect(plan.target_dialect)
    t0 = time.perf_counter()
    writer = dst.target.chunk_writer(target, plan, tp, chunk)
    try:
        prev = writer.done()
        if prev is not None:
            return ChunkResult(table=tp.source, chunk=chunk.no, resumed=True, **prev)
        from golive.migrate import readahead

        ahead = readahead.claim(source, tp, chunk)
        reader = ahead.reader if ahead is not None else src.source.chunk_reader(source, plan, tp, snapshot=snapshot)
        try:
            read = 0
            digest = hashlib.sha256()

            def counted():
                nonlocal read
                for blob, n in (ahead.stream() if ahead is not None else reader.batches(chunk)):
                    read += n
                    digest.update(blob)
                    progress.emit("rows", table=tp.source, rows=n)
                    if blob:
                        yield blob

            batches = counted()
            try:
                with writer.transaction():
                    written = writer.load(batches)
                    if not reader.counts_rows:
                        # a complete binary stream (the reader checked its trailer) loaded all or nothing
                        read = written
                        progress.emit("rows", table=tp.source, rows=written)
                    if written != read:
                        raise CountMismatch(read, written)
                    result = ChunkResult(table=tp.source, chunk=chunk.no, rows_read=read, rows_written=written,
                                         rows_rejected=0, seconds=round(time.perf_counter() - t0, 3))
                    writer.record(result, digest.hexdigest())
                return result
            except Refused as exc:
                batches.close()  # the reader's connection is needed for the careful path
                log.info("chunk %s#%s: the target refused a row (%s); redoing it row by row",
                         tp.source, chunk.no, exc.reason)
                progress.emit("rows", table=tp.source, rows=-read)
                return _copy_carefully(reader, writer, tp, chunk, t0)
        finally:
            reader.close()
    finally:
        writer.close()


#: what the failed attempts of a group did, by ``attempt_key`` (the caller's id of the step, the same for its
#: retries): a retry takes those results instead of finding the chunks committed (which would report them as an
#: earlier run's)
_group_attempts: dict[str, dict[str, ChunkResult]] = {}


def copy_tables(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, schema: str,
                tables: list[TablePlan], *, snapshot: str | None = None, attempt_key: str | None = None) -> GroupResult:
    """Copy a group of small tables (one chunk each, or none) and build each one's keys, one table after the
    other: one step instead of two per table (``golive.migrate.schedule.group_tables``).

    Safe to retry as a whole: each chunk is copied exactly once (``copy_chunk`` recognises a committed chunk) and
    the key builds look at what exists. Chunks committed by a failed attempt of this group in this process keep
    their results (not marked resumed); chunks an interrupted earlier run committed come back ``resumed``.
    """
    from golive.migrate import target as tgt

    memo_key = attempt_key
    done = _group_attempts.setdefault(memo_key, {}) if memo_key else {}
    out = GroupResult()
    for tp in tables:
        for chunk in tp.chunks:
            result = done.get(f"{tp.source}\x1f{chunk.no}")
            if result is None:
                result = copy_chunk(source, target, plan, tp, chunk, snapshot=snapshot)
                done[f"{tp.source}\x1f{chunk.no}"] = result
            out.chunks.append(result)
        out.steps.append(tgt.finish_table(target, schema, tp))
    if memo_key:
        _group_attempts.pop(memo_key, None)
    return out


def chunk_digest(reader: ChunkReader, chunk: ChunkPlan) -> tuple[str, int]:
    """SHA-256 and row count of the chunk's fast-path bytes, as ``copy_chunk`` records them."""
    digest, rows = hashlib.sha256(), 0
    for blob, n in reader.batches(chunk):
        digest.update(blob)
        rows += n
    return digest.hexdigest(), rows


# ---------------------------------------------------------------------- the reject path


def _copy_carefully(reader: ChunkReader, writer: ChunkWriter, tp: TablePlan, chunk: ChunkPlan,
                    t0: float) -> ChunkResult:
    rejects: list[dict] = []
    read = written = 0

    def attempt(lines: list[bytes]) -> int:
        with writer.transaction():  # a savepoint inside the chunk's transaction
            n = writer.load(iter([b"".join(lines)]))
            if n != len(lines):
                raise CountMismatch(len(lines), n)
        return n

    def one_by_one(rows) -> int:
        n = 0
        for rowkey, line in rows:
            try:
                n += attempt([line])
            except Refused as exc:
                rejects.append(_reject(reader, tp, rowkey, exc, line))
        return n

    with writer.transaction():
        for batch in reader.rows(chunk):
            read += len(batch)
            pending = batch
            while pending:
                try:
                    written += attempt([line for _, line in pending])
                    break
                except Refused as exc:
                    idx = _failed_row(exc, pending)
                    if idx is None:  # cannot locate the row: try each one alone
                        written += one_by_one(pending)
                        break
                    if idx > 0:
                        try:
                            written += attempt([line for _, line in pending[:idx]])
                        except Refused:
                            written += one_by_one(pending[:idx])
                    rejects.append(_reject(reader, tp, pending[idx][0], exc, pending[idx][1]))
                    pending = pending[idx + 1:]
            progress.emit("rows", table=tp.source, rows=len(batch))
        digest, _ = chunk_digest(reader, chunk)
        result = ChunkResult(table=tp.source, chunk=chunk.no, rows_read=read, rows_written=written,
                             rows_rejected=len(rejects), rejects=rejects, converted=reader.converted(),
                             seconds=round(time.perf_counter() - t0, 3), careful=True)
        writer.record(result, digest)
    if read != written + len(rejects):  # the invariant of the whole tool
        raise TransientError(f"{tp.source} chunk {chunk.no}: read {read}, wrote {written}, "
                             f"rejected {len(rejects)}; retrying")
    return result


def _failed_row(exc: Refused, rows: list) -> int | None:
    """Index of the row the target refused, from the *physical* line number it reported.

    PostgreSQL counts the newlines inside quoted CSV values too, so the row is found by walking the
    lines' newline counts (a target counting rows instead reports lines without inner newlines alike).
    """
    if exc.row is not None:  # a record number: no newline counting
        return exc.row - 1 if 0 < exc.row <= len(rows) else None
    if exc.line is None:
        return None
    target = exc.line
    line = 1
    for i, (_, text) in enumerate(rows):
        line += text.count(b"\n")
        if target < line:
            return i
    return None


def _reject(reader: ChunkReader, tp: TablePlan, rowkey, exc: Refused, line: bytes | None = None) -> dict:
    """Describe a rejected row: its key, the offending column and value, and the reason."""
    row = reader.row(rowkey)
    if line and b"golive: " in line and "golive: " not in exc.reason:  # the rendering said why, the target did not
        m = re.search(rb"golive: ([^:']+): ", line)
        if m:
            exc = Refused(f"golive: {m.group(1).decode('utf-8', 'replace')}: ({exc.reason})", line=exc.line,
                          column=exc.column, row=exc.row)
    by_target = {c.target: c for c in tp.columns}
    column = by_target[exc.column].source if exc.column in by_target else None
    reason = exc.reason
    if isinstance(exc, CountMismatch):
        reason = "the row's values break the CSV structure of the bulk load"
    if column is None:  # encoding errors name no column: find it in the source row
        for c in tp.columns:
            v = row.get(c.source)
            if c.type.ct.value not in ("text", "varchar", "json", "enum", "text[]", "native", "uuid", "time",
                                       "date", "timestamp", "timestamptz"):
                continue  # numbers, booleans, bits, binaries: a NUL or a non-UTF-8 byte is no text problem there
            if isinstance(v, bytes):
                if b"\x00" in v:
                    column = c.source
                    break
                try:
                    v.decode("utf-8")
                except UnicodeDecodeError:
                    column = c.source
                    break
            elif isinstance(v, str) and "\x00" in v:
                column = c.source
                break
    if column is None and "json" in reason.lower():  # a JSON check names no column: the one not holding JSON
        import json

        for c in tp.columns:
            v = row.get(c.source)
            if c.type.ct.value == "json" and v is not None:
                try:
                    json.loads(v)
                except (ValueError, TypeError):
                    column = c.source
                    break
    value = row.get(column) if column is not None else None
    if isinstance(value, (bytes, str)) and ("\x00" in value if isinstance(value, str) else b"\x00" in value):
        reason = "text contains a NUL byte (0x00), which PostgreSQL text cannot store"
    elif isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            reason = "text is not valid UTF-8"
    m = re.search(r"golive: ([^:]+): ", reason)
    if m:
        reason = {"relative date word": "a word PostgreSQL would read as a moment ('now', 'today', ...)",
                  "epoch out of range": "epoch number outside the representable date range",
                  "zero date": "a zero date (0000-00-00) in a NOT NULL column (see --zero-dates)",
                  "not a boolean": "not a boolean (0/1, t/f, true/false, yes/no, on/off)"}.get(m.group(1), m.group(1))
    return {"table": tp.source, "key": reader.key(rowkey, row), "column": column, "value": show(value),
            "reason": reason}


def show(v, limit: int = 200) -> str | None:
    """A printable, JSON-safe rendering of a source value (NUL and control bytes escaped)."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v)
        try:
            s = v.decode("utf-8")
        except UnicodeDecodeError:
            h = v[:limit // 2].hex()
            return f"x'{h}'" + ("…" if len(v) > limit // 2 else "")
    else:
        s = repr(v) if isinstance(v, float) else str(v)
    s = "".join(ch if ch >= " " or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in s)
    return s if len(s) <= limit else s[:limit] + "…"


def verify_committed(source: DatabaseURL, plan: MigrationPlan, chunks: dict) -> str | None:
    """Re-read the chunks an interrupted run committed and compare their digests; None when all are unchanged.

    This is how a resumed run detects a changed server source: a committed chunk whose rows (or their
    values) changed reads differently now, so resuming would mix two moments.
    """
    src = get_dialect(plan.source_dialect)
    by_table = {tp.source: tp for tp in plan.tables}
    for (table, no), done in sorted(chunks.items()):
        tp = by_table.get(table)
        if tp is None or not done.get("digest") or no >= len(tp.chunks):
            continue
        reader = src.source.chunk_reader(source, plan, tp)
        try:
            digest, rows = chunk_digest(reader, tp.chunks[no])
        finally:
            reader.close()
        if digest != done["digest"]:
            return (f"chunk {no} of {table} reads differently now ({rows} rows, {done['rows_read']} copied); "
                    "golive compares each copied chunk's SHA-256 with the source on resume")
    return None

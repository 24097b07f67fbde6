"""Read the first batches of the first chunks while Prefect starts up.

The CLI knows the plan about a second after the command starts, while Prefect is still importing and
creating the flow run and a core would idle. ``read_ahead`` reads the first batches of the first chunks
in a background thread (lower CPU priority), each with its own source reader; a chunk's copy takes what
was read (``claim``) and continues the same reader where the read-ahead stopped. Nothing is written
ahead: a chunk whose copy starts first simply reads everything itself, and a retried copy reads its
chunk again from the source, so every guarantee of the copy holds unchanged.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Iterator

from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: bytes read ahead for one chunk at most, and for all chunks of a read-ahead together
READ_AHEAD_CHUNK_BYTES = 16 << 20
READ_AHEAD_BYTES = 64 << 20
#: chunks read ahead at most: each holds its source reader (a connection) open until its copy takes it, so
#: thousands of small tables (a few bytes each, never reaching the byte budget) held as many connections, each
#: with the whole schema parsed: memory and file descriptors grew with tables x tables (issue 22, "Scale")
READ_AHEAD_CHUNKS = 8


class Ahead:
    """The first batches of one chunk, read before its copy starts, and the reader to go on with."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, int]] = []
        self.reader = None
        self.rest: Iterator[tuple[bytes, int]] | None = None
        self.finished = False  # the whole chunk was read
        self.started = self.claimed = False
        self.failed = False
        self.done = threading.Event()

    def stream(self) -> Iterator[tuple[bytes, int]]:
        """What was read ahead, then the rest of the chunk from the same reader."""
        batches, self.batches = self.batches, []
        yield from batches
        if not self.finished and self.rest is not None:
            yield from self.rest

    def close(self) -> None:
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:  # noqa: BLE001 - closing a read-only source connection
                pass
            self.reader = None


_ahead: dict[tuple, Ahead] = {}
_lock = threading.Lock()
_stops: list[threading.Event] = []  # one per read-ahead thread still running


def _key(source: DatabaseURL, tp: TablePlan, chunk: ChunkPlan) -> tuple:
    return (source.raw, tp.source, tp.line_sql, chunk.no, repr(chunk.lo), repr(chunk.hi))


def read_ahead(source: DatabaseURL, plan: MigrationPlan, order: list[tuple[TablePlan, ChunkPlan]], *,
               budget: int = READ_AHEAD_BYTES, max_chunks: int | None = None) -> threading.Thread:
    """Read the first batches of the first chunks of ``order`` in a background thread (see the module): at most
    ``budget`` bytes and ``max_chunks`` chunks (default ``READ_AHEAD_CHUNKS``), each holding its reader open."""
    from golive.dialects import get_dialect

    src = get_dialect(plan.source_dialect).source
    entries = []
    stop = threading.Event()
    cap = READ_AHEAD_CHUNKS if max_chunks is None else max_chunks
    with _lock:
        _stops.append(stop)
        for tp, ch in order:
            if len(entries) >= cap:
                break
            key = _key(source, tp, ch)
            if tp.chunking != "single" and key not in _ahead:  # a table read in one piece is not worth it
                _ahead[key] = Ahead()
                entries.append((key, tp, ch, _ahead[key]))

    def run() -> None:
        used = 0
        if sys.platform == "linux":  # yield the CPU to Prefect's start-up and the copies (this thread only)
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except OSError:
                pass
        try:
            for key, tp, ch, ahead in entries:
                with _lock:
                    if ahead.claimed:
                        continue
                    if used >= budget or stop.is_set():
                        break
                    ahead.started = True
                try:
                    ahead.reader = src.chunk_reader(source, plan, tp)
                    ahead.rest = iter(ahead.reader.batches(ch))
                    size = 0
                    for blob, n in ahead.rest:
                        ahead.batches.append((blob, n))
                        size += len(blob)
                        if size >= READ_AHEAD_CHUNK_BYTES or ahead.claimed or stop.is_set():
                            break
                    else:
                        ahead.finished = True
                    used += size
                except Exception as exc:  # the copy reads the chunk itself and meets the error there
                    log.debug("read-ahead of %s chunk %d failed: %s", tp.source, ch.no, exc)
                    ahead.failed = True
                    ahead.close()
                finally:
                    ahead.done.set()
        finally:
            with _lock:  # entries never started: their copies read everything themselves
                for key, tp, ch, ahead in entries:
                    if not ahead.started and _ahead.get(key) is ahead:
                        del _ahead[key]
                if stop in _stops:
                    _stops.remove(stop)

    thread = threading.Thread(target=run, name="golive-read-ahead", daemon=True)
    thread.start()
    return thread


def drop_read_ahead() -> None:
    """Stop reading ahead and free every batch (and reader) no copy took."""
    with _lock:
        for stop in _stops:
            stop.set()
        left = list(_ahead.values())
        _ahead.clear()
    for ahead in left:
        if ahead.started:
            ahead.done.wait(5)
        ahead.close()


def claim(source: DatabaseURL, tp: TablePlan, chunk: ChunkPlan) -> Ahead | None:
    """The read-ahead of this chunk, or None (the copy reads it all). The caller closes it."""
    with _lock:
        ahead = _ahead.pop(_key(source, tp, chunk), None)
        if ahead is None:
            return None
        ahead.claimed = True
        if not ahead.started:
            return None
    ahead.done.wait()  # at most the batch being read
    if ahead.failed:
        ahead.close()
        return None
    return ahead

"""The archiver: the server's change log into object storage, continuously, at most ``flush_seconds`` behind.

One loop, once a second:

1. the receiver (the engine's own tool: ``pg_receivewal``, ``mariadb-binlog --raw``) runs; when it died it is
   started again and resumes where the spool (and PostgreSQL's slot) says, so a crash of it or of this process
   leaves no gap;
2. every complete segment in the spool is stored (zstd, optionally encrypted, SHA-256 in the manifest), then
   removed from the spool: the spool never loses a segment the bucket does not have;
3. every ``flush_seconds``: read the server's clock and log position (in that order), wait until the spool holds
   that position, store the segment being written as far as it goes, and record the clock in the manifest as
   ``flushed.at``: every commit before it can be restored. That moment is the end of the recovery window;
4. every ``marker_seconds`` a marker row (drills check them); every ``base_every_hours`` a new base backup (in a
   thread: a long base never delays the flushes).

A second archiver of the same archive is refused (``archiver.lock``). Stop with SIGTERM/SIGINT (or ``seconds``): the
loop flushes once more and stops the receiver.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource
import signal
import socket
import threading
import time
from pathlib import Path

from golive import __version__
from golive.archive.options import ArchiveOptions, ArchiveRunResult
from golive.archive.store import ArchiveStore, archive_url
from golive.archive.window import window_of
from golive.backup.crypto import key_id, parse_key
from golive.backup.manifest import Encryption
from golive.backup.naming import clean_name, new_id
from golive.backup.stream import parse_compression
from golive.dialects import dialect_of, resolve
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.model.archive import ArchiveManifest, BaseEntry, Flush, PartialEntry
from golive.urls import as_url

log = logging.getLogger(__name__)

#: how long a flush waits for the receiver to reach the server's position before it is reported late
REACH_TIMEOUT = 30.0


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def default_spool(name: str) -> Path:
    home = Path(os.environ.get("GOLIVE_HOME") or Path.home() / ".golive")
    return home / "archive" / clean_name(name)


class Archiver:
    """The archive of one database, driven by ``run`` (or step by step in tests)."""

    def __init__(self, db_url, to: str, options: ArchiveOptions | None = None):
        self.options = options or ArchiveOptions()
        self.url = resolve(as_url(db_url, role="database"))
        self.dialect = dialect_of(self.url)
        self.engine = self.dialect.archive
        self.name = clean_name(self.options.name or self.url.database or "db")
        self.store = ArchiveStore(archive_url(to, self.name), self.options.storage)
        self.compression = parse_compression(self.options.compress)
        key_text = self.options.encryption_key.get_secret_value() if self.options.encryption_key else None
        self.key = parse_key(key_text) if key_text else None
        self.spool = Path(self.options.spool_dir) if self.options.spool_dir else default_spool(self.name)
        self.manifest: ArchiveManifest | None = None
        self.receiver = None
        self.failing = 0  # receiver starts since the last good flush
        self.next_start = 0.0
        self.stored = 0
        self.flushes = 0
        self.max_lag: float | None = None
        self.base_thread: threading.Thread | None = None
        self.base_error: BaseException | None = None
        self.lock = threading.Lock()  # the manifest: the loop and the base thread
        self.last_marker = 0.0
        #: segment -> the last flush's clock while it was the newest one (``SegmentEntry.covers``)
        self.covers: dict[str, dt.datetime] = {}

    # -- set-up
    def open(self) -> None:
        self.engine.check_ready(self.url)
        self.store.check(create=self.options.create_bucket)
        self.store.lock()
        ident = self.engine.identity(self.url)
        m = self.store.load()
        if m is None:
            m = ArchiveManifest(name=self.name, engine=self.dialect.name, source=self.url.masked, system=ident,
                                compression=str(self.compression),
                                encryption=Encryption(key_id=key_id(self.key), frame_bytes=1 << 20) if self.key else None,
                                created_at=now(), golive_version=__version__)
        else:
            if m.engine != self.dialect.name or m.system.get("system") != ident.get("system"):
                raise ConfigError(f"the archive at {self.store.url} is of another server ({m.engine} "
                                  f"{m.system.get('system')}, not {ident.get('system')}): give another --name or --to")
            if (m.encryption and not self.key) or (self.key and (not m.encryption or m.encryption.key_id != key_id(self.key))):
                raise ConfigError(f"the archive at {self.store.url} is "
                                  + (f"encrypted with key {m.encryption.key_id}: give that key" if m.encryption
                                     else "not encrypted: give no key (or start a new archive with --name)"))
            self.compression = parse_compression(m.compression)
        m.archiver = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": now().isoformat(),
                      "restarts": 0}
        self.manifest = m
        self.spool.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.spool, 0o777 if os.geteuid() == 0 else 0o700)  # the server's own tools may run as its user
        except OSError:
            pass
        # where the receiver starts when its spool is empty (a new machine): the segment being written, the one after
        # the last stored, the newest base's first, or the server's position now (MySQL; PostgreSQL's slot decides)
        bases = self.store.bases()
        if m.partial is not None:
            start = m.partial.name
        elif m.segments:
            start = self.engine.next_segment(m.segments[-1].name)
        elif bases:
            start = bases[-1].first_segment
        else:
            start = self.engine.head(self.url)[1]
        # the receiver first: PostgreSQL's slot then holds every WAL segment from here on, before the base starts
        self.receiver = self.engine.receiver(self.url, self.spool, name=self.name, start=start)
        self.receiver.start()
        self.save()

    def save(self) -> None:
        with self.lock:
            self.store.save(self.manifest)

    # -- one step of the loop
    def keep_receiving(self) -> None:
        """Start the receiver again when it died, backing off (1, 2, 4 … 30 s) while it keeps dying: a server being
        restarted is waited for; ``max_down_seconds`` without a good flush ends the archiver."""
        if self.receiver.alive():
            return
        t = time.monotonic()
        if t < self.next_start:
            return
        why = self.receiver.last_error()
        self.failing += 1
        self.next_start = t + min(30.0, 2.0 ** min(self.failing - 1, 5))
        log.warning("the %s receiver stopped (%s); starting it again", self.engine.log_name, why or "no message")
        self.manifest.archiver["restarts"] = self.manifest.archiver.get("restarts", 0) + 1
        self.receiver.start()

    def store_complete(self, closed_at: dt.datetime | None = None) -> int:
        """Store the complete segments of the spool, oldest first; each leaves the spool once stored."""
        n = 0
        for path in self.engine.spooled(self.spool).complete:
            closed = closed_at or self.engine.head(self.url)[0]
            entry = self.store.put_segment(path, closed, self.compression, self.key)
            entry.covers = self.covers.pop(entry.name, None)
            with self.lock:
                self.manifest.segments = [s for s in self.manifest.segments if s.name != entry.name] + [entry]
                self.manifest.segments.sort(key=lambda s: self.engine.segment_key(s.name))
                done = self.manifest.partial if (self.manifest.partial and
                                                 self.manifest.partial.segment == entry.name) else None
                if done is not None:
                    self.manifest.partial = None
            self.save()
            if done is not None:  # the complete segment replaces the pieces of it
                self.store.delete([p.stored_as for p in done.pieces])
            path.unlink()
            n += 1
        self.stored += n
        return n

    def flush(self) -> Flush | None:
        """Make every commit before the server's clock now restorable; returns the flush (None: not reached)."""
        at, position = self.engine.head(self.url)
        key = self.engine.position_key(position)
        t_end = time.monotonic() + REACH_TIMEOUT
        while True:
            got = self.engine.received(self.url, self.spool, name=self.name)
            if got is not None and self.engine.position_key(got) >= key:
                break
            if time.monotonic() > t_end:  # a connection that died silently keeps the tool alive: start it again
                log.warning("the %s receiver has not reached %s within %.0f s (it is at %s): starting it again",
                            self.engine.log_name, position, REACH_TIMEOUT, got)
                self.receiver.stop()
                self.keep_receiving()
                return None
            self.keep_receiving()
            time.sleep(0.05)
        self.store_complete(at)
        spooled = self.engine.spooled(self.spool)
        if spooled.partial is not None:
            name = spooled.partial.name
            cur = self.manifest.partial
            same = cur is not None and cur.name == name
            start = cur.raw_length if same else 0
            try:
                data, end = self.engine.partial_bytes(spooled.partial, start=start)
            except FileNotFoundError:  # it became complete meanwhile: stored on the next step
                self.store_complete(at)
                data = None
            if data is not None:
                pieces = list(cur.pieces) if same else []
                if data:  # only what arrived since the last flush
                    pieces.append(self.store.put_piece(name, start, data, self.compression, self.key))
                with self.lock:
                    self.manifest.partial = PartialEntry(name=name, end=end, pieces=pieces)
                if cur is not None and not same:  # a new segment is being written: the old one is stored
                    self.save()
                    self.store.delete([p.stored_as for p in cur.pieces])
        # every commit before ``at`` is now in the newest segment or an earlier one
        newest = spooled.partial.name.removesuffix(".partial") if spooled.partial is not None else None
        with self.lock:
            if newest is not None:
                self.covers[newest] = at
            elif self.manifest.segments:  # it was just completed and stored
                self.manifest.segments[-1].covers = at
        flush = Flush(at=at, position=position, wall=now())
        with self.lock:
            self.manifest.flushed = flush
        self.save()
        self.store.lock()  # the heartbeat
        self.flushes += 1
        self.failing = 0
        lag = (flush.wall - at).total_seconds()
        self.max_lag = lag if self.max_lag is None else max(self.max_lag, lag)
        return flush

    def marker(self) -> None:
        if self.options.marker_seconds and time.monotonic() - self.last_marker >= self.options.marker_seconds:
            self.last_marker = time.monotonic()
            try:
                at = self.engine.write_marker(self.url)
                with self.lock:
                    self.manifest.markers = (self.manifest.markers + [at])[-1000:]
            except GoliveError as exc:
                log.warning("could not write the marker row: %s", exc)

    # -- base backups
    def take_base(self) -> BaseEntry:
        """A base backup into ``bases/<ID>/`` (objects, then ``base.json``), recorded in the manifest."""
        from golive.backup.create import Sink
        from golive.backup.store import BackupStore

        started = now()
        base_id = new_id(self.name, started)
        t0 = time.perf_counter()
        bstore = BackupStore(self.store.url + "/bases", self.options.storage)
        sink = Sink(bstore, base_id, self.compression, self.key, 8 << 20)
        try:
            fields = self.engine.base_backup(self.url, sink, name=self.name)
        except BaseException:
            sink.discard()
            raise
        objects = fields.pop("objects")
        entry = BaseEntry(id=base_id, started_at=started, end_time=fields["end_time"], start=fields["start"],
                          end=fields["end"], first_segment=fields["first_segment"],
                          server_version=fields.get("server_version", ""), tool=fields.get("tool"), objects=objects,
                          tables=fields.get("tables") or [], details=fields.get("details") or {},
                          stored_bytes=sum(o.size for o in objects), seconds=round(time.perf_counter() - t0, 3))
        self.store.storage.put_bytes(self.store.key(f"bases/{base_id}/base.json"),
                                     entry.model_dump_json(indent=1).encode())
        if self.receiver is not None:  # the running archiver's manifest lists it too (restores read base.json)
            with self.lock:
                self.manifest.bases.append(entry)
            self.save()
        log.info("base backup %s: %d bytes stored in %.1f s", base_id, entry.stored_bytes, entry.seconds)
        return entry

    def base_due(self) -> bool:
        if self.base_thread is not None and self.base_thread.is_alive():
            return False
        if not self.manifest.bases:
            self.manifest.bases = self.store.bases()
            if not self.manifest.bases:
                return True
        every = self.options.base_every_hours
        return bool(every) and now() - self.manifest.bases[-1].started_at >= dt.timedelta(hours=every)

    def start_base(self) -> None:
        def run():
            try:
                self.take_base()
            except BaseException as exc:  # noqa: BLE001 - reported by the loop
                self.base_error = exc

        self.base_thread = threading.Thread(target=run, name="golive-base", daemon=True)
        self.base_thread.start()

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
        try:
            self.store.unlock()
        except GoliveError:
            pass

    # -- the loop
    def run(self, stop: threading.Event | None = None) -> ArchiveRunResult:
        stop = stop or threading.Event()
        t0 = time.monotonic()
        cpu0 = _cpu()
        self.open()
        try:
            last_flush = last_good = time.monotonic() - self.options.flush_seconds
            first, down = True, ""
            while not stop.is_set():
                if self.options.seconds is not None and time.monotonic() - t0 >= self.options.seconds:
                    break
                try:
                    self.keep_receiving()
                    if self.base_error is not None:
                        raise self.base_error
                    if self.base_due():
                        if first:  # the first base before anything else: without it nothing can be restored
                            self.take_base()
                        else:
                            self.start_base()
                    first = False
                    self.store_complete()
                    self.marker()
                    if time.monotonic() - last_flush >= self.options.flush_seconds:
                        if self.flush() is not None:
                            last_flush = last_good = time.monotonic()
                            if down:
                                log.warning("archiving again after %s", down)
                                down = ""
                except (ConnectionFailed, TransientError) as exc:  # the server restarts, the storage hiccups
                    self.base_error = None
                    if time.monotonic() - last_good > self.options.max_down_seconds:
                        raise TerminalError(f"nothing archived for {self.options.max_down_seconds:.0f} s: {exc}") from None
                    if not down:
                        down = str(exc)
                        log.warning("cannot archive now (%s); trying again until it works", exc)
                stop.wait(1.0)
            if self.base_thread is not None:
                self.base_thread.join()
            if self.base_error is not None:
                raise self.base_error
            try:
                self.flush()
            except (ConnectionFailed, TransientError) as exc:
                log.warning("the last flush failed (%s): the archive ends at its previous flush", exc)
        finally:
            self.close()
        return ArchiveRunResult(url=self.store.url, name=self.name, engine=self.dialect.name,
                                seconds=round(time.monotonic() - t0, 3), segments_stored=self.stored,
                                flushes=self.flushes, restarts=self.manifest.archiver.get("restarts", 0),
                                bases=[b.id for b in self.manifest.bases],
                                window=window_of(self.manifest, self.store).model_dump(mode="json"),
                                max_flush_lag_seconds=None if self.max_lag is None else round(self.max_lag, 3),
                                cpu_seconds=round(_cpu() - cpu0, 3))


def _cpu() -> float:
    """CPU seconds of this process and the children it waited for (the receiver, zstd)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run_archive(db_url, to: str, options: ArchiveOptions | None = None, *,
                stop: threading.Event | None = None) -> ArchiveRunResult:
    """Archive ``db_url`` into ``<to>/archive/<name>`` until ``stop`` is set, ``options.seconds`` pass, or
    SIGTERM/SIGINT (in the main thread)."""
    stop = stop or threading.Event()
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        return Archiver(db_url, to, options).run(stop)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def take_base(db_url, to: str, options: ArchiveOptions | None = None) -> BaseEntry:
    """One base backup into an existing archive (the archiver takes them itself every ``base_every_hours``)."""
    a = Archiver(db_url, to, options)
    m = a.store.require()
    a.manifest = m  # not saved: the running archiver owns archive.json
    a.compression = parse_compression(m.compression)
    return a.take_base()

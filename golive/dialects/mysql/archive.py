"""MySQL / MariaDB: the binary log archived continuously, for restores to any second (``golive.archive``).

**Receiving.** ``mariadb-binlog --read-from-remote-server --raw --stop-never`` is a replica as far as the server
is concerned (``REPLICATION SLAVE``, a replica server id of its own) and writes each binlog file byte for byte
into the spool, named as the server names it. Measured with MariaDB 10.11 under three writers (about 2 MB/s of
binlog): the raw file is written event by event, unbuffered (the spool reached the server's ``SHOW MASTER
STATUS`` position 0.1 ms after it was read, at most 10 ms), so the server's own tool is kept rather than writing
the events ourselves with ``mysql-replication``. The tool does not reconnect: the capability starts it again when
it died. It begins again at the start of the newest file in the spool: it truncates that file and fetches it
again, so ``start`` first keeps a copy (``<file>.previous``) that ``received`` and ``partial_bytes`` read until
the new one is as long (what was received never goes back; the copy goes once the file is caught up or
rotated). Its replica server id is derived from the archive's name: a second receiver of the same archive (a
stale one) is disconnected by the server when the new one connects.

**Segments.** A spool file is complete once a newer one exists (the server rotated: the old file ends with its
Rotate event); the newest one is the partial segment. Its safe prefix is cut after its last whole event (after
the 4-byte magic, each event's 19-byte header gives its size).

**Base.** golive's own consistent logical dump (``backup.py``); MariaDB gives the binlog position of that very
snapshot without a lock (``binlog_snapshot_file``/``_position``), so the replay starts exactly where the dump
stops seeing.

**Restore.** The dump is loaded into the target database, then each segment is replayed by ``mariadb-binlog
--database=<source db> [--rewrite-db=src->dst] [--stop-datetime]`` piped into ``mariadb``, one segment at a time
(a transaction never spans two files; a failure names its segment). Checked with MariaDB 10.11:

- ``--database`` filters on the *original* name, before ``--rewrite-db`` renames (``--database=<new name>``
  keeps nothing; MySQL 8 documents the opposite order). Row events are renamed inside their ``BINLOG`` blocks,
  statement events by their ``use``; both replay (ROW, STATEMENT and MIXED binlogs).
- Statement events are kept by their *default* database: ``USE other; CREATE TABLE src.t ...`` is left out (the
  replay then fails on the first row of that table, loudly). CREATE/ALTER/DROP DATABASE are logged under the
  database they name, kept by ``--database`` and not renamed: CREATE/ALTER DATABASE are not replayed (the target
  exists, its character set is the base's); a DROP DATABASE of the source stops the replay with an error
  (replayed, it would drop the source's database, the live one when restoring onto the same server).
- Binlog timestamps are whole seconds (each event carries its statement's start second): a target is honoured
  to the second. Every transaction stamped before the target's second is replayed, none at or after it (a commit
  in the target's own second, before the target, is not replayed); ``reached`` says where the replay stopped.
- GTIDs: the ``SET gtid_seq_no`` of each transaction is dropped from the replayed SQL, so the target numbers the
  replayed transactions itself. Replayed with their original numbers into the same server they are written a
  second time into its binlog (``gtid_binlog_pos`` went back from 0-1-13 to 0-1-8) and a server with
  ``gtid_strict_mode`` refuses them (ERROR 1950). ``server_id`` is kept. Checked into another database of the
  same server (with and without ``gtid_strict_mode``) and into another server (log_bin off).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import tempfile
import zlib
from pathlib import Path
from types import SimpleNamespace

from golive.dialects.base.archive import Archive, Receiver
from golive.dialects.mysql import backup as mybackup
from golive.dialects.mysql.session import qi, translate_error
from golive.dialects.mysql.tools import OptionsFile, find_client
from golive.errors import ConfigError, TerminalError
from golive.model.archive import Spooled
from golive.model.backup import ObjectEntry, TableEntry, first_line
from golive.runtime import die_with_parent
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

MAGIC = b"\xfebin"
HEADER = 19
#: binlog file names: ``<basename>.<number>`` (the number has at least 6 digits)
_FILE_RE = re.compile(r"^(?P<base>.+)\.(?P<num>\d{6,})$")
MARKER_TABLE = "golive_pitr_marker"
#: the copy of the newest spool file kept while the restarted receiver fetches it again (``_best``)
PREVIOUS = ".previous"
#: seconds after its start when a receiver no longer truncates the file it re-fetches
SETTLED = 5.0
UTC = dt.timezone.utc


def _s(v) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, (bytes, bytearray)) else ("" if v is None else str(v))


def _connect(url: DatabaseURL, *, database: bool = True):
    return mybackup.connect(url, database=database)


def _query(url: DatabaseURL, sql: str, *, database: bool = True) -> list[tuple]:
    conn = _connect(url, database=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _master_status(cur) -> tuple[str, int] | None:
    """(file, position) of the binary log now; None when it is off. MySQL 8.4 renamed the statement."""
    import pymysql

    try:
        cur.execute("SHOW MASTER STATUS")
    except pymysql.err.ProgrammingError:
        cur.execute("SHOW BINARY LOG STATUS")
    row = cur.fetchone()
    return (_s(row[0]), int(row[1])) if row else None


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _binlog_tool():
    return find_client("mariadb-binlog", "mysqlbinlog")


def replica_id(name: str) -> int:
    """The replica server id the receiver of archive ``name`` announces: stable across restarts (the server then
    drops a stale receiver of the same archive), never 0 or 1 (1 is every default server's own id)."""
    return 1000 + zlib.crc32(f"golive-archive:{name}".encode()) % 2_000_000_000


def whole_events(data: bytes) -> int:
    """The length of the prefix of binlog bytes ``data`` that ends after its last whole event (0 without the
    magic)."""
    if len(data) < len(MAGIC) or data[:4] != MAGIC:
        return 0
    off = 4
    while off + HEADER <= len(data):
        size = int.from_bytes(data[off + 9:off + 13], "little")
        if size < HEADER or off + size > len(data):
            break
        off += size
    return off


#: path -> (inode, length of its whole events found so far): each call reads only what was added since
_scanned: dict[str, tuple[int, int]] = {}


def whole_length(path: Path) -> int:
    """The length of binlog file ``path`` up to the end of its last whole event, 0 when it is missing or has no
    magic. Reads the event headers only, from where the previous call for that file stopped (a spool file of a
    gigabyte is not read again on every call); a file that shrank (the receiver re-fetching it) is read again."""
    key = str(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return 0
    with fh:
        st = os.fstat(fh.fileno())
        ino, off = _scanned.get(key, (-1, 0))
        if ino != st.st_ino or off > st.st_size:
            off = 0
        if off == 0:
            if fh.read(4) != MAGIC:
                return 0
            off = 4
        fh.seek(off)
        while off + HEADER <= st.st_size:
            hdr = fh.read(HEADER)
            if len(hdr) < HEADER:
                break
            size = int.from_bytes(hdr[9:13], "little")
            if size < HEADER or off + size > st.st_size:
                break
            off += size
            fh.seek(off)
    if len(_scanned) > 1000:
        _scanned.clear()
    _scanned[key] = (st.st_ino, off)
    return off


def _previous(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS)


def _best(path: Path) -> tuple[Path, int]:
    """Where the partial segment ``path`` is longest, and that length: the receiver re-fetches the newest file from
    its start after a restart (truncating it), so until it caught up the copy kept by ``start`` holds more."""
    n = whole_length(path)
    prev = _previous(path)
    if prev.exists():
        p = whole_length(prev)
        if p > n:
            return prev, p
        # not removed here: the tool truncates the file more than once as it starts (when it opens it, then on the
        # stream's first rotate event), so a file that caught up once may be short again; the receiver removes the
        # copy once it has run for a while (``BinlogReceiver.alive``)
    return path, n


def _split(position: str) -> tuple[str, int]:
    file, _, offset = position.rpartition(":")
    if not file or not offset.isdigit():
        raise ValueError(f"not a binlog position: {position!r} (expected <file>:<offset>)")
    return file, int(offset)


def _number(segment: str) -> int:
    m = _FILE_RE.match(segment)
    if not m:
        raise ValueError(f"not a binlog file name: {segment!r}")
    return int(m.group("num"))


def _segment_files(spool: Path) -> list[Path]:
    return sorted((p for p in spool.iterdir() if p.is_file() and _FILE_RE.match(p.name)), key=lambda p: _number(p.name))


class BinlogReceiver(Receiver):
    """``mariadb-binlog --raw --stop-never`` writing the server's binlog files into the spool."""

    def __init__(self, url: DatabaseURL, spool: Path, *, name: str, start: str | None = None):
        # ``start`` may be a segment name or a position (``binlog.000003:1234``): the file is where it begins
        self.url, self.spool, self.name = url, Path(spool), name
        self.start_file = start.split(":", 1)[0].removesuffix(".partial") if start else None
        self.tool = _binlog_tool()
        self.proc: subprocess.Popen | None = None
        self._opts: OptionsFile | None = None
        self._err: Path | None = None
        self.first: str | None = None  # the file the running tool began with
        self._last = ""  # its last words, kept once its private directory is gone

    def _first_file(self) -> str:
        files = _segment_files(self.spool)
        if files:
            return files[-1].name  # re-fetched from its start: the same bytes again, then what follows
        if self.start_file:
            return self.start_file
        rows = _query(self.url, "SHOW BINARY LOGS", database=False)
        if not rows:
            raise ConfigError(f"{self.url.masked}: the server lists no binary log (is log_bin on?)")
        return _s(rows[0][0])

    def start(self) -> None:
        """Start the tool (stopping a running one first). On Linux it dies with the thread that started it (so a
        golive killed with ``kill -9`` leaves no receiver behind): start it from the thread that keeps the
        archive going."""
        self.stop()
        for stale in self.spool.glob(f"*{PREVIOUS}.tmp"):  # a copy interrupted by a kill
            stale.unlink(missing_ok=True)
        first = self._first_file()
        newest = self.spool / first
        if newest.exists():  # the tool truncates it and fetches it again: keep what it had meanwhile
            prev = _previous(newest)
            if whole_length(newest) > whole_length(prev):
                tmp = prev.with_name(prev.name + ".tmp")
                shutil.copyfile(newest, tmp)
                os.replace(tmp, prev)
        self._opts = OptionsFile(self.url)
        self._err = Path(self._opts.dir) / "stderr"
        cmd = [self.tool.path, f"--defaults-extra-file={self._opts.path}", "--read-from-remote-server", "--raw",
               "--stop-never", f"--stop-never-slave-server-id={replica_id(self.name)}",
               f"--result-file={self.spool}{os.sep}", first]
        with open(self._err, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=die_with_parent())
        self.first = first
        self.started = time.monotonic()
        log.info("binlog receiver started at %s (replica id %d) into %s", first, replica_id(self.name), self.spool)

    def alive(self) -> bool:
        ok = self.proc is not None and self.proc.poll() is None
        if ok and self.first and time.monotonic() - self.started > SETTLED:
            newest = self.spool / self.first
            prev = _previous(newest)
            if prev.exists() and whole_length(newest) >= whole_length(prev):
                prev.unlink(missing_ok=True)  # the tool re-fetched past it and no longer truncates
        return ok

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._opts is not None:
            if self._err is not None and self._err.exists():  # keep the last words past the private directory
                self._last = self._read_err()
            self._opts.__exit__(None, None, None)
            self._opts = None

    def _read_err(self) -> str:
        try:
            lines = self._err.read_bytes()[-4000:].decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return mask(" | ".join(lines[-3:]))

    def last_error(self) -> str:
        if self._opts is not None and self._err is not None:
            text = self._read_err()
        else:
            text = self._last
        if self.proc is not None and self.proc.poll() not in (None, 0) and not text:
            text = f"exited with status {self.proc.returncode}"
        return f"{self.tool.name} (from {self.first}): {text}" if text else ""


# ---------------------------------------------------------------- replay

_HEADER_RE = re.compile(r"^#(\d{6} +\d{1,2}:\d\d:\d\d) server id \d+ +end_log_pos (\d+) .*?\t(\w+)")
_GTID_SEQ_RE = re.compile(rb"^/\*M?!100001 SET @@session\.gtid_seq_no=\d+\*/(/\*!\*/;)?\s*$")


def _header_time(text: str) -> dt.datetime:
    """The time of a ``mariadb-binlog`` event header (``261207 14:15:18``, run with TZ=UTC)."""
    return dt.datetime.strptime(" ".join(text.split()), "%y%m%d %H:%M:%S").replace(tzinfo=UTC)


_DATABASE_DDL_RE = re.compile(rb"^\s*(/\*.*?\*/\s*)*(CREATE|ALTER|DROP)\s+(DATABASE|SCHEMA)\b", re.IGNORECASE)


class _DatabaseDropped(TerminalError):
    pass


class _Replay:
    """Reads ``mariadb-binlog``'s SQL, drops the GTID numbers, feeds ``mariadb``; notes the last commit seen."""

    def __init__(self, segment: str):
        self.segment = segment
        self.transactions = 0
        self.last: tuple[str, int] | None = None  # (time, end position) of the last commit
        self._hdr: tuple[str, int, str] | None = None
        self._ddl = False
        self._boundary = True  # the previous line ended a statement: this one may begin one
        self._skipping = False

    def line(self, raw: bytes) -> bytes | None:
        boundary, self._boundary = self._boundary, raw.rstrip().endswith(b"/*!*/;")
        if self._skipping:  # the rest of a statement about the database itself
            self._skipping = not self._boundary
            return None
        if boundary and _DATABASE_DDL_RE.match(raw):
            # MariaDB logs CREATE/ALTER/DROP DATABASE under the database they name, so --database keeps them,
            # and --rewrite-db does not rename them: run as they are, they would act on the source's database
            # (on the same server: the live one)
            when = f" at {_header_time(self._hdr[0]):%Y-%m-%d %H:%M:%S} UTC" if self._hdr else ""
            if raw.lstrip()[:4].upper() == b"DROP":
                raise _DatabaseDropped(f"replaying binlog segment {self.segment} stopped: the log drops the source "
                                       f"database{when}: restore to a moment before it (the target is partly "
                                       "restored)")
            self._skipping = not self._boundary  # CREATE/ALTER DATABASE: the target exists, its charset is the base's
            return None
        if raw.startswith(b"#") and b"end_log_pos" in raw[:80]:
            m = _HEADER_RE.match(raw.decode("latin-1"))
            if m:
                when, end, kind = m.group(1), int(m.group(2)), m.group(3)
                self._hdr = (when, end, kind)
                if kind == "GTID":
                    self._ddl = raw.rstrip().endswith(b"ddl")
                elif kind == "Xid" or (kind == "Query" and self._ddl):
                    self._commit()
            return raw
        if raw.startswith(b"COMMIT/*!*/;") and self._hdr and self._hdr[2] == "Query":
            self._commit()
        if raw.startswith(b"/*") and _GTID_SEQ_RE.match(raw):
            return None
        return raw

    def _commit(self) -> None:
        self._ddl = False
        self.transactions += 1
        self.last = (self._hdr[0], self._hdr[1])


def _stop_second(target: dt.datetime) -> dt.datetime:
    """The second ``mariadb-binlog --stop-datetime`` stops at: the target's own second (binlog timestamps are
    whole seconds: everything stamped before it is replayed)."""
    if target.tzinfo is None:
        raise ValueError("the restore target must be an aware datetime")
    return target.astimezone(UTC).replace(microsecond=0)


def _replay_segment(tool, client, opts: OptionsFile, path: Path, *, segment: str, dst: str, src: str,
                    start: int | None, stop: dt.datetime | None) -> _Replay:
    cmd = [tool.path, "--no-defaults", f"--database={src}"]
    if src != dst:
        cmd.append(f"--rewrite-db={src}->{dst}")
    if start is not None:
        cmd.append(f"--start-position={start}")
    if stop is not None:
        cmd.append(f"--stop-datetime={stop.strftime('%Y-%m-%d %H:%M:%S')}")
    cmd.append(str(path))
    env = {**os.environ, "TZ": "UTC"}  # --stop-datetime and the event headers are in the tool's local time
    replay = _Replay(segment)
    with tempfile.TemporaryFile() as reader_err, tempfile.TemporaryFile() as client_err:
        reader = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=reader_err, env=env,
                                  preexec_fn=die_with_parent())
        sql = subprocess.Popen([client.path, f"--defaults-extra-file={opts.path}", "--binary-mode",
                                "--database", dst], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=client_err, preexec_fn=die_with_parent())
        broken = False
        try:
            for raw in reader.stdout:
                out = replay.line(raw)  # raises when the log drops the database: the client gets no more
                if out is not None and not broken:
                    try:
                        sql.stdin.write(out)
                    except BrokenPipeError:  # the client failed: its error says why
                        broken = True
        finally:
            reader.stdout.close()
            try:
                sql.stdin.close()
            except BrokenPipeError:
                pass
            reader.wait()
            sql.wait()
        if reader.returncode != 0:
            reader_err.seek(0)
            why = first_line(mask(reader_err.read().decode("utf-8", "replace"))) or f"exit {reader.returncode}"
            raise TerminalError(f"replaying binlog segment {segment} failed: {tool.name}: {why} (the target is "
                                "partly restored)")
        if sql.returncode != 0 or broken:
            client_err.seek(0)
            why = first_line(mask(client_err.read().decode("utf-8", "replace"))) or f"exit {sql.returncode}"
            raise TerminalError(f"replaying binlog segment {segment} failed: {client.name}: {why} (the target is "
                                "partly restored)")
    return replay


def _as(model, value):
    return value if isinstance(value, model) else model.model_validate(value)


# ---------------------------------------------------------------- the concern


class MySQLArchive(Archive):
    """The binary log, streamed by ``mariadb-binlog --raw`` into the spool, replayed onto golive's own dump."""

    log_name = "binlog"
    needs = ("log_bin on (with a server_id), and a user with REPLICATION SLAVE and BINLOG MONITOR (REPLICATION "
             "CLIENT before MariaDB 10.5 and on MySQL); mariadb-binlog (or mysqlbinlog) installed")

    def check_ready(self, url: DatabaseURL) -> None:
        import pymysql

        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@log_bin, @@server_id")
                log_bin, server_id = cur.fetchone()
                if not int(log_bin or 0):
                    raise ConfigError(f"{url.masked}: the binary log is off: set log_bin (and server_id) in the "
                                      "server's configuration and restart")
                if not int(server_id or 0):
                    raise ConfigError(f"{url.masked}: server_id is 0, which no replica may read: set server_id in "
                                      "the server's configuration and restart")
                try:
                    _master_status(cur)
                except pymysql.err.MySQLError:
                    raise ConfigError(f"{url.masked}: this user may not read the binary log's position: GRANT BINLOG "
                                      "MONITOR ON *.* TO it (REPLICATION CLIENT before MariaDB 10.5 and on MySQL)"
                                      ) from None
                if not _has_replication_slave(cur):
                    raise ConfigError(f"{url.masked}: this user may not stream the binary log: GRANT REPLICATION "
                                      "SLAVE ON *.* TO it")
        except ConfigError:
            raise
        except Exception as exc:
            raise translate_error(exc, f"checking {url.masked} for the binlog archive") from None
        finally:
            conn.close()
        _binlog_tool()

    def identity(self, url: DatabaseURL) -> dict:
        row = _query(url, "SELECT @@hostname, @@port, @@server_id, VERSION(), @@log_bin_basename")[0]
        host, port, sid, version, basename = (_s(v) for v in row)
        return {"system": f"{host}:{port}:{sid}", "server_version": version, "log_bin_basename": basename}

    def receiver(self, url: DatabaseURL, spool: Path, *, name: str, start: str | None = None) -> BinlogReceiver:
        return BinlogReceiver(url, spool, name=name, start=start)

    def spooled(self, spool: Path) -> Spooled:
        files = _segment_files(Path(spool))
        for prev in Path(spool).glob(f"*{PREVIOUS}"):  # kept copies of files since rotated (complete) or stored
            if not files or prev.name[:-len(PREVIOUS)] != files[-1].name:
                prev.unlink(missing_ok=True)
        if not files:
            return Spooled()
        return Spooled(complete=files[:-1], partial=files[-1])

    def partial_bytes(self, path: Path, *, start: int = 0) -> tuple[bytes, str]:
        """Whole events from ``start`` (an event boundary: where the last flush's bytes ended) on."""
        path = Path(path)
        src, end = _best(path)
        if end <= start:
            return b"", f"{path.name}:{start}"
        with open(src, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        if len(data) < end - start:  # truncated meanwhile by a restarted receiver: whole events only
            off = len(MAGIC) if start == 0 else 0
            while off + HEADER <= len(data):
                size = int.from_bytes(data[off + 9:off + 13], "little")
                if size < HEADER or off + size > len(data):
                    break
                off += size
            data = data[:off]
        return data, f"{path.name}:{start + len(data)}"

    def head(self, url: DatabaseURL) -> tuple[dt.datetime, str]:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT UTC_TIMESTAMP(6)")  # the clock first: every commit before it is at or before
                now = _utc(cur.fetchone()[0])     # the position read next
                status = _master_status(cur)
        except Exception as exc:
            raise translate_error(exc, f"reading the binlog position of {url.masked}") from None
        finally:
            conn.close()
        if status is None:
            raise ConfigError(f"{url.masked}: the binary log is off: set log_bin (and server_id) in the server's "
                              "configuration and restart")
        return now, f"{status[0]}:{status[1]}"

    def received(self, url: DatabaseURL, spool: Path, *, name: str) -> str | None:
        files = _segment_files(Path(spool))
        if not files:
            return None
        newest = files[-1]
        return f"{newest.name}:{_best(newest)[1]}"

    def position_key(self, position: str) -> tuple:
        file, offset = _split(position)
        return (_number(file), offset)

    def segment_key(self, segment: str) -> tuple:
        return (_number(segment),)

    def next_segment(self, segment: str) -> str:
        m = _FILE_RE.match(segment)
        if not m:
            raise ValueError(f"not a binlog file name: {segment!r}")
        digits = m.group("num")
        return f"{m.group('base')}.{int(digits) + 1:0{len(digits)}d}"

    def base_backup(self, url: DatabaseURL, sink, *, name: str) -> dict:
        res = mybackup.backup(url, sink)
        pos = res["details"].get("binlog")
        if not pos:
            raise ConfigError(f"{url.masked}: the server did not give the binary log position of the backup's "
                              "snapshot (is log_bin on? MariaDB gives it as binlog_snapshot_file/position)")
        at = f"{pos['file']}:{pos['position']}"
        return {"start": at, "end": at, "end_time": dt.datetime.fromisoformat(pos["time"]),
                "first_segment": pos["file"], "tables": res["tables"], "server_version": res["server_version"],
                "tool": res["tool"], "objects": res["objects"],
                "details": {**res["details"], "database": res["database"],
                            "schema_fingerprint": res["schema_fingerprint"], "warnings": res["warnings"]}}

    def restore(self, base: dict, base_files: dict[str, Path], segments: list[Path], target: dt.datetime | None,
                *, to_url: DatabaseURL | None = None, to_dir: Path | None = None, port: int | None = None,
                workdir: Path, force: bool = False) -> dict:
        """Load the base into ``to_url`` (an empty database unless ``force``), then replay the segments from the
        base's position up to ``target``'s second (see the module's docstring)."""
        if to_dir is not None or to_url is None:
            raise ConfigError("a MySQL/MariaDB archive restores into a database (--to mysql://...), not a directory")
        base = base if isinstance(base, dict) else base.model_dump()
        details = base.get("details") or {}
        src = details.get("database")
        if not src:
            raise ConfigError("the base backup does not record its database: it cannot be replayed onto")
        dst = to_url.database
        first, start = _split(base["start"])
        stop = _stop_second(target) if target is not None else None
        end_time = base.get("end_time")
        if isinstance(end_time, str):
            end_time = dt.datetime.fromisoformat(end_time)
        if target is not None and end_time is not None and target < end_time:
            raise TerminalError(f"the target {target.isoformat()} is before the base's snapshot ({end_time.isoformat()}"
                                "): a logical base cannot go back, restore from an older base")
        # the segments from the base's own on, by number; a partial one is named <file>.partial
        named: dict[str, Path] = {}
        for p in segments:
            p = Path(p)
            partial = p.name.endswith(".partial")
            n = p.name[:-len(".partial")] if partial else p.name
            if not (partial and n in named):  # the complete file, when both are given
                named[n] = p
        order = sorted((n for n in named if _number(n) >= _number(first)), key=_number)
        if not order or order[0] != first:
            raise TerminalError(f"the binlog segment {first} the base starts in is not among the segments given")
        for a, b in zip(order, order[1:]):
            if self.next_segment(a) != b:
                raise TerminalError(f"binlog segments missing between {a} and {b}: the replay cannot go on past {a}")
        # 1. the base
        manifest = SimpleNamespace(details=details, tables=[_as(TableEntry, t) for t in base.get("tables", [])],
                                   objects=[_as(ObjectEntry, o) for o in base.get("objects", [])])
        mybackup.restore(to_url, base_files, manifest, force=force, jobs=3)
        # 2. the log, one segment at a time (a transaction never spans two files)
        tool, client = _binlog_tool(), find_client("mariadb", "mysql")
        work = Path(workdir) / "binlog-replay"
        work.mkdir(parents=True, exist_ok=True)
        transactions, nbytes, last = 0, 0, None
        try:
            with OptionsFile(to_url) as opts:
                for n in order:
                    path = named[n]
                    if path.name != n:  # mariadb-binlog reads any name; the partial keeps its own in messages
                        link = work / n
                        link.unlink(missing_ok=True)
                        link.symlink_to(path.resolve())
                        path = link
                    r = _replay_segment(tool, client, opts, path, segment=named[n].name, dst=dst, src=src,
                                        start=start if n == first else None, stop=stop)
                    nbytes += path.stat().st_size - (start if n == first else 0)
                    transactions += r.transactions
                    if r.last:
                        last = (n, *r.last)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        reached = f"{last[0]}:{last[2]}" if last else base["start"]
        out = {"reached": reached, "where": to_url.masked, "transactions": transactions, "bytes": nbytes,
               "segments": len(order), "base": base.get("id") or base["start"]}
        if last:
            out["last_commit_second"] = _header_time(last[1]).isoformat()
        if stop is not None:
            out["stopped_before"] = stop.isoformat()
        return out

    def write_marker(self, url: DatabaseURL) -> dt.datetime:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                            "at DATETIME(6) NOT NULL, note VARCHAR(200))")
                # the statement's own clock: the second its binlog event is stamped with
                cur.execute(f"INSERT INTO {MARKER_TABLE} (at, note) VALUES (UTC_TIMESTAMP(6), 'golive archive marker')")
                cur.execute(f"SELECT at FROM {MARKER_TABLE} WHERE id = LAST_INSERT_ID()")
                return _utc(cur.fetchone()[0])
        except Exception as exc:
            raise translate_error(exc, f"writing the archive's marker into {url.masked}") from None
        finally:
            conn.close()

    def markers(self, url: DatabaseURL) -> list[dt.datetime]:
        conn = _connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                            f"AND TABLE_NAME = '{MARKER_TABLE}'")
                if not cur.fetchone()[0]:
                    return []
                cur.execute(f"SELECT at FROM {MARKER_TABLE} ORDER BY at")
                return [_utc(r[0]) for r in cur.fetchall()]
        except Exception as exc:
            raise translate_error(exc, f"reading the archive's markers from {url.masked}") from None
        finally:
            conn.close()

    def integrity(self, url: DatabaseURL) -> list[str]:
        conn = _connect(url)
        problems = []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                            "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
                for (t,) in cur.fetchall():
                    cur.execute(f"CHECK TABLE {qi(_s(t))}")
                    for _tbl, _op, kind, text in cur.fetchall():
                        kind, text = _s(kind).lower(), _s(text)
                        if kind == "error" or (kind == "status" and text.upper() != "OK"):
                            problems.append(f"{_s(t)}: {text}")
        except Exception as exc:
            raise translate_error(exc, f"checking the tables of {url.masked}") from None
        finally:
            conn.close()
        return problems

    def forget(self, url: DatabaseURL, *, name: str) -> list[str]:
        return []  # a binlog reader leaves nothing on the server (the server purges its binlogs by its own rules)


def _has_replication_slave(cur) -> bool:
    """Whether the current user holds REPLICATION SLAVE (named REPLICATION REPLICA in newer releases), directly,
    through ALL PRIVILEGES or a role shown by SHOW GRANTS."""
    cur.execute("SHOW GRANTS")
    grants = " ".join(_s(r[0]) for r in cur.fetchall()).upper()
    if re.search(r"GRANT ALL PRIVILEGES ON \*\.\*", grants):
        return True
    return any(re.search(rf"GRANT [^`]*\b{p}\b[^`]* ON \*\.\*", grants)
               for p in ("REPLICATION SLAVE", "REPLICATION REPLICA"))


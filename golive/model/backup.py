"""What a backup is, shared by ``golive.backup`` (the capability) and each engine's ``backup.py`` (the dialects).

* The **manifest**: what a backup holds and how to check it, as JSON next to its objects (``<ID>/manifest.json``).
  It is written **last**, after every object is stored and hashed, so a backup that failed half-way has no
  manifest and is never listed, restored or counted by retention. Verification rewrites it with its result.
* The **sink** an engine dumps into (``ObjectSink`` / ``ObjectWriter``): the capability passes one in
  (``golive.backup.create.Sink``, writers from ``golive.backup.stream``), so engines never import the capability.
* The errors both sides raise about a backup (``BackupCorrupt``, ``ScratchFull``), and two small helpers of the
  engines' dumps (``pump``, ``first_line``).

Neutral: no engine here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from golive.errors import DiskFull, TerminalError

FORMAT = 1
#: bytes per read when copying a dump into a writer (``pump``)
READ = 1 << 20


class ObjectEntry(BaseModel):
    """One stored object of the backup."""

    name: str = Field(description="What it is, e.g. db.dump or tables/0001.tsv")
    stored_as: str = Field(description="Its key relative to the backup: the name plus .zst (compressed) and "
                                       ".aes (encrypted)")
    kind: str = Field(description="pg_dump, sqlite, schema, data, post-schema")
    size: int = Field(description="Bytes stored (compressed, encrypted)")
    raw_size: int = Field(description="Bytes before compression")
    sha256: str = Field(description="SHA-256 of the stored bytes")
    table: str | None = Field(None, description="The table whose rows it holds (MySQL data objects)")


class TableEntry(BaseModel):
    """A table's row count, counted in the backup's own snapshot."""

    name: str = Field(description="Qualified for PostgreSQL (schema.table), plain otherwise")
    schema_name: str | None = Field(None, description="PostgreSQL schema")
    table: str
    rows: int
    raw_bytes: int | None = Field(None, description="Bytes of its data in the dump, where known")


class Encryption(BaseModel):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_id: str = Field(description="Fingerprint of the key (not the key): a wrong key is refused by name")
    frame_bytes: int


class Tool(BaseModel):
    name: str
    version: str
    path: str | None = None


class Verification(BaseModel):
    status: Literal["passed", "failed"]
    at: dt.datetime
    seconds: float
    scratch: str = Field(description="Where it was restored (masked)")
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    golive_version: str


class Manifest(BaseModel):
    format: int = FORMAT
    id: str
    name: str
    engine: Literal["postgresql", "mysql", "sqlite"]
    server_version: str
    database: str = Field(description="Database name (or SQLite file name)")
    source: str = Field(description="The source URL, masked")
    tool: Tool
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_seconds: float
    raw_bytes: int
    stored_bytes: int
    compression: str = Field(description="zstd:LEVEL or none")
    encryption: Encryption | None = None
    objects: list[ObjectEntry]
    tables: list[TableEntry]
    schema_fingerprint: str
    golive_version: str
    details: dict = Field(default_factory=dict, description="Engine specifics (charset, snapshot, ...)")
    warnings: list[str] = Field(default_factory=list)
    verification: Verification | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "Manifest":
        try:
            return cls.model_validate_json(data)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
            raise TerminalError(f"{where}: the manifest is not readable ({first})") from None

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def table_counts(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}


# ---------------------------------------------------------------- errors


class BackupCorrupt(TerminalError):
    """A stored object is not what the manifest says (hash, size, or it does not decode)."""


class ScratchFull(DiskFull):
    """The scratch directory ran out of space."""


# ---------------------------------------------------------------- where an engine's dump goes


class ObjectWriter(Protocol):
    """One object of a backup being stored: raw bytes in, its manifest entry out (compressed, encrypted, hashed
    and uploaded on the way: ``golive.backup.stream.ObjectWriter``)."""

    def write(self, data: bytes) -> None:
        """Append raw bytes."""

    def splice_from(self, fd: int) -> bool:
        """Move everything from the pipe ``fd`` in without passing through Python; False when that cannot be done
        here (then nothing was moved and ``write`` is the way)."""

    def close(self) -> ObjectEntry:
        """Finish the object: its manifest entry. Raises if anything failed (then call ``abort``)."""

    def abort(self) -> None:
        """Stop; nothing stays stored under the object's key."""


class ObjectSink(Protocol):
    """Where an engine's ``Backup.backup`` stores its objects (``golive.backup.create.Sink``): a failed backup
    removes every object opened here."""

    def open(self, name: str, kind: str, table: str | None = None) -> ObjectWriter:
        """A writer for the object ``name`` (``db.dump``, ``tables/0001.tsv``) of ``kind`` (``ObjectEntry.kind``);
        ``table``: the table whose rows it holds."""


def pump(src, writer: ObjectWriter, size: int = READ) -> None:
    """Copy a child process's stdout (or any binary file) into ``writer`` until EOF: spliced in the kernel
    when ``src`` is a pipe going into zstd."""
    try:
        fd = src.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        is_pipe = False
    if is_pipe and writer.splice_from(fd):  # (src is read from its start: nothing sits in its buffer)
        return
    read = getattr(src, "read1", None) or src.read
    while data := read(size):
        writer.write(data)


class Pumped:
    """A tool's stdout pumped into an object writer in one thread (``pump``), its stderr read in another; a pump
    that fails kills the tool. ``join()`` waits for both and returns the stderr bytes; ``errors`` holds the pump's
    exception, if any."""

    def __init__(self, proc, writer: ObjectWriter, name: str):
        import threading

        self.proc, self.errors, self._stderr = proc, [], []

        def run() -> None:
            try:
                pump(proc.stdout, writer)
            except BaseException as exc:  # re-raised by the caller
                self.errors.append(exc)
                proc.kill()

        self.pumper = threading.Thread(target=run, name=f"{name}-pump", daemon=True)
        self.reader = threading.Thread(target=lambda: self._stderr.append(proc.stderr.read()), daemon=True)
        self.pumper.start()
        self.reader.start()

    def join(self) -> bytes:
        self.pumper.join()
        self.reader.join()
        return b"".join(self._stderr)


def alive(pid: int | None) -> bool:
    """Does process ``pid`` run (on this host)?"""
    try:
        pid = int(pid or 0)
    except (TypeError, ValueError):  # read from a file another process wrote
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def first_line(text: str) -> str:
    """The line of a tool's error output worth a one-line message: its last non-empty one (where pg_dump, zstd and
    the MySQL clients put the cause)."""
    lines = [ln for ln in re.split(r"[\r\n]+", text or "") if ln.strip()]
    return lines[-1].strip() if lines else ""


# ---------------------------------------------------------------- scratch directories, and what killed runs left

#: the prefixes of golive's scratch directories (restore, verify, SQLite's snapshot copy, the MySQL clients' options)
SCRATCH_PREFIXES = ("golive-restore-", "golive-verify-", "gbk-sqlite-", "gbk-my-")
OWNER = ".golive-owner"


def make_scratch(parent: str | None, prefix: str) -> str:
    """A new scratch directory under ``parent`` (default: the temp directory) holding its owner (host and
    process), after removing the ones golive processes that no longer run left there (``kill -9`` skips every
    ``finally``): their files, and an embedded PostgreSQL a verification had started in one.

    Raises ``OSError`` when the directory cannot be made (the caller names it)."""
    import socket
    import tempfile

    sweep_scratch(parent or tempfile.gettempdir())
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        with open(os.path.join(path, OWNER), "w", encoding="utf-8") as fh:
            fh.write(f"{socket.gethostname()} {os.getpid()}\n")
    except OSError:  # a full disk: the caller's own write says so, with the path
        pass
    return path


def sweep_scratch(parent: str) -> list[str]:
    """Remove the scratch directories under ``parent`` whose owner process (on this host) is gone; returns them."""
    import shutil
    import signal
    import socket
    import time

    removed = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(SCRATCH_PREFIXES)]
    except OSError:
        return removed
    host = socket.gethostname()
    for name in names:
        path = os.path.join(parent, name)
        try:
            owner_host, pid = open(os.path.join(path, OWNER), encoding="utf-8").read().split()
            pid = int(pid)
        except (OSError, ValueError):
            continue  # not ours to judge (an older golive, or another tool's)
        if owner_host != host or _alive(pid):
            continue
        for pidfile in _postmaster_pids(path):  # an embedded PostgreSQL of a killed verification
            try:
                pg = int(open(pidfile, encoding="utf-8").readline().strip())
                os.kill(pg, signal.SIGQUIT)  # immediate shutdown: the data directory is thrown away
                for _ in range(50):
                    if not _alive(pg):
                        break
                    time.sleep(0.1)
            except (OSError, ValueError):
                pass
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


_alive = alive


def _postmaster_pids(path: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(path):
        if "postmaster.pid" in files:
            found.append(os.path.join(root, "postmaster.pid"))
        if root.count(os.sep) - path.count(os.sep) >= 2:
            dirs[:] = []
    return found

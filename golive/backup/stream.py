"""Streams between a database tool and storage: dump -> zstd -> (encrypt) -> SHA-256 -> multipart upload,
and back: download -> SHA-256 -> (decrypt) -> zstd -d -> scratch file.

Memory is bounded (a few parts in flight: about 40 MiB whatever the database's size) and nothing is kept
on local disk while backing up. Compression runs in the ``zstd`` program (multi-threaded, in its own
process, so Python's interpreter lock never limits it); Python only moves buffers.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from golive.backup.crypto import Decryptor, Encryptor
from golive.errors import ConfigError, GoliveError, TerminalError
# the errors and helpers engines share live in the neutral model (imported here for the capability's callers)
from golive.model.backup import BackupCorrupt, ObjectEntry, ScratchFull, first_line

log = logging.getLogger(__name__)

MiB = 1 << 20
READ = 1 * MiB
SPLICE = 1 * MiB  # bytes per splice() call and the pipe size asked for


@dataclass(frozen=True)
class Compression:
    kind: str  # "zstd" or "none"
    level: int = 1

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"zstd:{self.level}"

    @property
    def suffix(self) -> str:
        return ".zst" if self.kind == "zstd" else ""


def parse_compression(text: str | None) -> Compression:
    """``zstd``, ``zstd:LEVEL`` (1-19) or ``none``."""
    text = (text or "zstd:1").strip().lower()
    if text == "none":
        return Compression("none", 0)
    kind, _, level = text.partition(":")
    if kind != "zstd":
        raise ConfigError(f"--compress {text!r}: expected zstd, zstd:LEVEL (1-19) or none")
    try:
        lvl = int(level) if level else 1
    except ValueError:
        lvl = 0
    if not 1 <= lvl <= 19:
        raise ConfigError(f"--compress {text!r}: the zstd level must be 1 to 19")
    return Compression("zstd", lvl)


def zstd_path() -> str:
    path = shutil.which("zstd")
    if not path:
        raise ConfigError("the zstd program is not installed (apt-get install zstd)")
    return path


class ObjectWriter:
    """A sink for one object: ``write(raw bytes)`` ... ``close()`` -> ``ObjectEntry``; ``abort()`` on failure.

    Bytes written go through zstd (a child process), the optional cipher and SHA-256 into a bounded queue
    that an uploader thread drains into ``store.put_stream``.
    """

    def __init__(self, store, key: str, name: str, stored_as: str, kind: str, compression: Compression,
                 enc_key: bytes | None, part_size: int = 8 * MiB, table: str | None = None, depth: int = 12):
        self.store, self.key, self.name, self.kind, self.table = store, key, name, kind, table
        self.stored_as = stored_as
        self.raw = 0
        self.size = 0
        self.sha = hashlib.sha256()
        self.enc = Encryptor(enc_key) if enc_key else None
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.info = None
        self.closed = False
        self.uploader = threading.Thread(target=self._upload, args=(part_size,), name=f"upload-{name}", daemon=True)
        self.uploader.start()
        self.proc = None
        if compression.kind == "zstd":
            self.proc = subprocess.Popen([zstd_path(), "-q", "-c", f"-{compression.level}", "-T0"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.reader = threading.Thread(target=self._read_zstd, name=f"zstd-{name}", daemon=True)
            self.reader.start()

    # -- the uploader side
    def _chunks(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            yield item

    def _upload(self, part_size: int) -> None:
        try:
            self.info = self.store.put_stream(self.key, self._chunks(), part_size=part_size)
        except BaseException as exc:  # handed to the writer
            self.error = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    self.q.get_nowait()
                except queue.Empty:
                    break

    def _emit(self, data: bytes) -> None:
        if self.enc is not None:
            data = self.enc.feed(data)
        if not data:
            return
        self.sha.update(data)
        self.size += len(data)
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(data, timeout=0.5)
                return
            except queue.Full:
                continue

    def _read_zstd(self) -> None:
        try:
            while data := self.proc.stdout.read1(READ) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(READ):
                self._emit(data)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self.proc.kill()

    # -- the producer side
    def write(self, data) -> None:
        if not data:
            return
        self.raw += len(data)
        if self.proc is None:
            self._emit(bytes(data))
            return
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, OSError):
            if self.error is not None:
                raise self.error from None
            raise TerminalError(f"{self.name}: zstd stopped: {self._zstd_err()}") from None

    def splice_from(self, fd: int) -> bool:
        """Move everything from the pipe ``fd`` into zstd's stdin in the kernel (``splice``: the bytes never
        pass through Python; a PostgreSQL dump is most of them), counting them. False when splicing cannot
        be used here (then nothing was moved and ``write`` is the way)."""
        if self.proc is None or not hasattr(os, "splice"):
            return False
        out = self.proc.stdin.fileno()
        for pipe in (fd, out):  # bigger pipes, fewer calls (Linux caps at pipe-max-size; an error is harmless)
            try:
                fcntl.fcntl(pipe, 1031, SPLICE)  # F_SETPIPE_SZ
            except OSError:
                pass
        moved = False
        while True:
            try:
                n = os.splice(fd, out, SPLICE)
            except OSError as exc:
                if not moved and exc.errno in (errno.EINVAL, errno.ENOSYS):
                    return False
                if self.error is not None:
                    raise self.error from None
                raise TerminalError(f"{self.name}: zstd stopped: {self._zstd_err()}") from None
            if n == 0:
                return True
            moved = True
            self.raw += n

    def _zstd_err(self) -> str:
        try:
            return (self.proc.stderr.read() or b"").decode("utf-8", "replace").strip() or "no message"
        except Exception:  # noqa: BLE001
            return "no message"

    def close(self) -> ObjectEntry:
        """Finish the object; returns its manifest entry. Raises if anything failed (then call ``abort``)."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.reader.join()
            rc = self.proc.wait()
            if self.error is not None:
                raise self.error
            if rc != 0:
                raise TerminalError(f"{self.name}: zstd failed: {self._zstd_err()}")
        if self.enc is not None:
            tail = self.enc.finish()
            self.enc = None
            self.sha.update(tail)
            self.size += len(tail)
            self._put_raw(tail)
        self._put_raw(None)
        self.uploader.join()
        if self.error is not None:
            raise self.error
        self.closed = True
        return ObjectEntry(name=self.name, stored_as=self.stored_as, kind=self.kind, size=self.size, raw_size=self.raw,
                           sha256=self.sha.hexdigest(), table=self.table)

    def _put_raw(self, item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def abort(self) -> None:
        """Stop everything; nothing stays under the key (an unfinished multipart upload is aborted)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.error is None:
            self.error = TerminalError(f"{self.name}: aborted")
        try:
            self.q.put_nowait(None)
        except queue.Full:
            pass
        self.uploader.join(timeout=30)
        if self.closed or self.info is not None:
            try:
                self.store.delete_keys([self.key])
            except GoliveError as exc:
                log.warning("could not delete %s after a failed backup: %s", self.key, exc)


def fetch(store, key: str, entry: ObjectEntry, dest: Path, compression: Compression,
          enc_key: bytes | None) -> Path:
    """Download ``key`` into ``dest`` (decrypted, decompressed), checking its size and SHA-256.

    Raises ``BackupCorrupt`` naming the object when its bytes are not the manifest's (the whole object is
    read either way, so a damaged object is always reported as such, not as a decoding error), and
    ``ScratchFull`` when ``dest``'s file system fills up.
    """
    sha = hashlib.sha256()
    n = 0
    dec = Decryptor(enc_key, entry.name) if enc_key else None
    failure: BaseException | None = None
    out = open(dest, "wb")
    proc = None
    try:
        if compression.kind == "zstd":
            proc = subprocess.Popen([zstd_path(), "-d", "-q", "-c"], stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.PIPE)
        for chunk in store.iter_object(key):
            sha.update(chunk)
            n += len(chunk)
            if failure is not None:
                continue
            try:
                plain = dec.feed(chunk) if dec else chunk
                if proc is not None:
                    proc.stdin.write(plain)
                else:
                    out.write(plain)
            except BaseException as exc:  # keep hashing: the verdict names the object
                failure = exc
        if failure is None and dec is not None:
            try:
                dec.finish()
            except BaseException as exc:
                failure = exc
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            rc = proc.wait()
            err = (proc.stderr.read() or b"").decode("utf-8", "replace").strip()
            if "No space left" in err:
                failure = ScratchFull(_full(dest, entry))
            elif rc != 0 and (failure is None or isinstance(failure, BrokenPipeError)):
                failure = BackupCorrupt(f"{entry.name}: does not decompress ({first_line(err) or rc})",
                                        object=entry.name)
        out.flush()
        os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno == 28:
            failure = ScratchFull(_full(dest, entry))
        else:
            raise
    finally:
        try:
            out.close()
        except OSError as exc:
            if exc.errno == 28 and failure is None:
                failure = ScratchFull(_full(dest, entry))
        if proc is not None and proc.poll() is None:
            proc.kill()
    if n != entry.size or sha.hexdigest() != entry.sha256:
        raise BackupCorrupt(f"{entry.name}: the stored object does not match the manifest "
                            f"({n} bytes, SHA-256 {sha.hexdigest()[:16]}…; expected {entry.size} bytes, "
                            f"{entry.sha256[:16]}…): it was changed or damaged", object=entry.name)
    if isinstance(failure, OSError) and getattr(failure, "errno", None) == 28:
        failure = ScratchFull(_full(dest, entry))
    if isinstance(failure, (BrokenPipeError,)):
        failure = BackupCorrupt(f"{entry.name}: does not decompress", object=entry.name)
    if failure is not None:
        raise failure
    return dest


def _full(dest: Path, entry: ObjectEntry) -> str:
    return (f"no space left in the scratch directory {dest.parent} while writing {entry.name} "
            f"(it needs {entry.raw_size / MiB:.1f} MiB there)")


__all__ = ["BackupCorrupt", "ScratchFull", "Compression", "ObjectWriter", "fetch", "first_line",
           "parse_compression", "zstd_path"]

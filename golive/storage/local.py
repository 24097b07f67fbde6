"""``file:///dir``: a local directory as a storage (tests, NFS mounts, dry rehearsals); writes are atomic."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Iterator


from golive.errors import ConfigError, TerminalError

log = logging.getLogger(__name__)

from golive.storage.base import MiB, Destination, ObjectInfo, check_stop, md5_file, read_source


class LocalStorage:
    """A local directory as a destination. Writes are atomic (temporary file, then rename)."""

    max_object_size = 1 << 62
    max_single_put = 1 << 62
    _TMP = ".golive-tmp-"

    def __init__(self, dest: Destination):
        self.dest = dest
        self.root = dest.root

    def describe(self) -> str:
        return str(self.dest)

    def check(self, create: bool = False, *, creatable: bool = False) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create destination directory {self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"destination directory {self.root} is not writable")

    def _path(self, key: str) -> Path:
        return self.root / key

    def _write(self, key: str, chunks) -> str:
        path = self._path(key)
        tmp = path.with_name(f"{self._TMP}{uuid.uuid4().hex}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                for data in chunks:
                    out.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TerminalError(f"{key}: cannot write {path}: {exc.strerror}", key=key) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return md5_file(path)  # read back: the verification is of what landed on disk

    def put(self, key: str, data: bytes, md5: bytes, ctype: str) -> str:
        return self._write(key, [data])

    def put_multipart(self, key, fh, size, chunk, md5_hex, ctype, on_start=None, stop=None):
        running = hashlib.md5()

        def chunks():
            remaining = size
            while remaining > 0:
                check_stop(stop, key)  # the temporary file is removed: nothing half-written stays
                data = read_source(fh, min(chunk, remaining), key)
                remaining -= len(data)
                running.update(data)
                yield data

        etag = self._write(key, chunks())
        return etag, running.hexdigest()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        return None

    def open_uploads(self, prefix: str) -> list[tuple[str, str]]:
        return []  # a directory has no multipart uploads

    def abort_strays(self, key: str, keep: str | None = None) -> int:
        return 0

    def list(self) -> Iterator[ObjectInfo]:
        root = str(self.root)
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.startswith(self._TMP):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                yield ObjectInfo(rel, os.stat(full).st_size, None)

    def head_md5(self, key: str) -> str | None:
        try:
            return md5_file(self._path(key))
        except FileNotFoundError:
            return None

    # -- streams of unknown size (backups)
    def put_stream(self, key: str, chunks, part_size: int = 8 * MiB,
                          ctype: str = "application/octet-stream") -> ObjectInfo:
        size = {"n": 0}

        def counted():
            for data in chunks:
                size["n"] += len(data)
                yield data

        path = self._path(key)
        tmp = path.with_name(f"{self._TMP}{uuid.uuid4().hex}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                for data in counted():
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TerminalError(f"{key}: cannot write {path}: {exc.strerror}", key=key) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ObjectInfo(key, size["n"], None)

    def iter_object(self, key: str, chunk: int = 1 * MiB):
        try:
            fh = open(self._path(key), "rb")
        except FileNotFoundError:
            raise TerminalError(f"{key}: no such object in {self.describe()}", key=key) from None
        except OSError as exc:
            raise TerminalError(f"{key}: cannot read ({exc.strerror})", key=key) from None
        with fh:
            while data := fh.read(chunk):
                yield data

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TerminalError(f"{key}: cannot read ({exc.strerror})", key=key) from None

    def put_bytes(self, key: str, data: bytes, ctype: str = "application/json") -> str:
        return self._write(key, [data])

    def list_under(self, prefix: str = "", delimiter: str | None = None):
        root = self.root
        if delimiter:
            base = root / prefix if prefix else root
            try:
                names = sorted(os.listdir(base))
            except FileNotFoundError:
                return
            for name in names:
                if (base / name).is_dir():
                    yield prefix + name + "/"
            return
        for info in self.list():
            if info.key.startswith(prefix):
                yield info

    def delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TerminalError(f"{key}: could not be deleted ({exc.strerror})", key=key) from None
            parent = path.parent
            while parent != self.root and parent.is_relative_to(self.root):  # drop emptied directories
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

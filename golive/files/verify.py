"""``golive verify files``: compare an uploads folder with its destination, like ``rclone check``.

Every local file is hashed and compared with the destination's listing: *missing* (no object), *different*
(size or checksum differs) or matched; objects with no local file are *extra*. Single-part objects are
compared by ETag (the MD5); multipart objects by recomputing the multipart ETag with golive's part size,
falling back to the ``golive-md5`` metadata golive stores (one HEAD for those only). Read-only: neither
side nor the manifest is changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from pydantic import BaseModel

from golive.files.scan import Problem, scan_source
from golive.storage import MiB, multipart_etag, open_storage, parse_dest, part_size, read_source
from golive.files.sync import UploadJob

log = logging.getLogger(__name__)


class Difference(BaseModel):
    path: str
    reason: str


class VerifyReport(BaseModel):
    """What ``golive verify files`` found (also written by ``--report FILE``)."""

    source: str
    dest: str
    checked_at: str
    seconds: float = 0.0
    matched: int = 0
    missing: list[str] = []
    different: list[Difference] = []
    extra: list[str] = []
    not_compared: list[Problem] = []

    @property
    def ok(self) -> bool:
        return not (self.missing or self.different or any(p.kind != "symlink" for p in self.not_compared))

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        return (f"{self.matched} matched, {len(self.missing)} missing, {len(self.different)} different, "
                f"{len(self.extra)} extra, {len(self.not_compared)} not compared")


def local_checksums(path: str, size: int, threshold: int, chunksize: int) -> tuple[str, str]:
    """``(md5, etag)`` of a local file: the ETag golive's upload of it gets (multipart above threshold)."""
    with open(path, "rb", buffering=0) as fh:
        if size <= threshold:
            h = hashlib.md5()
            remaining = size
            while remaining > 0:
                data = read_source(fh, min(8 * MiB, remaining), path)
                remaining -= len(data)
                h.update(data)
            return h.hexdigest(), h.hexdigest()
        chunk = part_size(size, chunksize)
        whole, digests, remaining = hashlib.md5(), [], size
        while remaining > 0:
            data = read_source(fh, min(chunk, remaining), path)
            remaining -= len(data)
            whole.update(data)
            digests.append(hashlib.md5(data).digest())
        return whole.hexdigest(), multipart_etag(digests)


def verify_files(job: UploadJob) -> VerifyReport:
    """Compare ``job.source`` with ``job.storage.dest``. See the module docstring.

    Raises:
        SourceError, ConfigError, ConnectionFailed: bad input (the CLI exits 2).
    """
    started = time.time()
    dest = parse_dest(job.storage.dest)
    storage = open_storage(job.storage)
    storage.check()
    scan = scan_source(job.source, prefix=dest.prefix, follow_symlinks=job.follow_symlinks,
                       max_size=storage.max_object_size, max_key_bytes=1024 if dest.scheme == "s3" else 4096,
                       exclude=(os.path.dirname(os.path.dirname(job.manifest)),))
    listing = {o.key: o for o in storage.list()}
    report = VerifyReport(source=job.source, dest=job.storage.dest,
                          checked_at=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
                          not_compared=scan.problems)

    def compare(f) -> tuple[str, str | None]:
        key = dest.key(f.rel)
        obj = listing.get(key)
        if obj is None:
            return "missing", None
        if obj.size != f.size:
            return "different", f"size: local {f.size} bytes, destination {obj.size} bytes"
        try:
            md5, etag = local_checksums(os.path.join(job.source, f.rel), f.size,
                                        job.multipart_threshold, job.multipart_chunksize)
        except OSError as exc:
            return "unreadable", f"cannot read ({exc.strerror or exc})"
        except Exception as exc:  # noqa: BLE001 - FileChanged / SourceUnreadable from read_source
            return "unreadable", str(exc)
        if obj.etag in (md5, etag):
            return "matched", None
        if obj.etag is None or "-" in obj.etag:
            stored = storage.head_md5(key)
            if stored == md5:
                return "matched", None
            if stored is None:
                return "different", "multipart object without golive-md5 metadata: content cannot be checked"
        return "different", "content differs (checksum)"

    with ThreadPoolExecutor(max(1, job.workers)) as pool:
        outcomes = list(pool.map(compare, scan.files))
    local_keys = set()
    for f, (status, reason) in zip(scan.files, outcomes):
        local_keys.add(dest.key(f.rel))
        if status == "matched":
            report.matched += 1
        elif status == "missing":
            report.missing.append(f.rel)
        elif status == "different":
            report.different.append(Difference(path=f.rel, reason=reason))
        else:
            report.not_compared.append(Problem(path=f.rel, kind="unreadable", reason=reason))
    report.extra = sorted(k for k in listing if k not in local_keys)
    report.seconds = round(time.time() - started, 3)
    log.info("verify %s -> %s: %s", job.source, job.storage.dest, report.summary())
    return report

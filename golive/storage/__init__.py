"""Object storage for files and backups: S3-compatible buckets (AWS S3, MinIO, Aliyun OSS, Volcengine TOS, moto) or
a local directory, behind one small interface (``base.Storage``), so the uploads (``golive.files``) and the backups
(``golive.backup``) do not care which one they have.

    base.py    destinations, configuration, the interface, S3's checksums (MD5, multipart ETags)
    s3.py      S3 through boto3 (one shared client; errors sorted by whether a retry helps)
    direct.py  small PUTs signed and sent without botocore's per-request overhead
    local.py   ``file:///dir``
"""

from __future__ import annotations

import functools

from golive.storage.base import (GiB, KiB, MiB, S3_MAX_KEY_BYTES, S3_MAX_OBJECT, S3_MAX_PARTS, S3_MAX_PUT, S3_MIN_PART,
                                 TiB, Destination, FileChanged, Interrupted, ObjectInfo, SourceUnreadable, Storage,
                                 StorageConfig, check_stop, content_type, file_etag, md5_file, multipart_etag,
                                 parse_dest, part_size, read_source)
from golive.storage.local import LocalStorage
from golive.storage.s3 import S3Storage, translate_error


def open_storage(cfg: StorageConfig) -> Storage:
    """The storage for ``cfg`` (cached per configuration, so clients and their pools are reused)."""
    return _open_storage(cfg)


@functools.lru_cache(maxsize=16)
def _open_storage(cfg: StorageConfig) -> Storage:
    dest = parse_dest(cfg.dest)
    if dest.scheme == "file":
        return LocalStorage(dest)
    return S3Storage(dest, cfg)


__all__ = ["GiB", "KiB", "MiB", "S3_MAX_KEY_BYTES", "S3_MAX_OBJECT", "S3_MAX_PARTS", "S3_MAX_PUT", "S3_MIN_PART", "TiB",
           "Destination", "FileChanged", "Interrupted", "LocalStorage", "ObjectInfo", "S3Storage", "SourceUnreadable",
           "Storage", "StorageConfig", "check_stop", "content_type", "file_etag", "md5_file", "multipart_etag",
           "open_storage", "parse_dest", "part_size", "read_source", "translate_error"]

"""What every storage is: a destination (``s3://bucket/prefix`` or ``file:///dir``), its configuration, the small
interface both backends answer, and the checksums S3 gives objects (MD5, multipart ETags)."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Literal, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from golive.errors import ConfigError, TerminalError

log = logging.getLogger(__name__)


KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
S3_MAX_PUT = 5 * GiB  # largest object in a single PUT
S3_MAX_OBJECT = 5 * TiB  # largest object at all (multipart)
S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * MiB  # every part but the last
S3_MAX_KEY_BYTES = 1024

# Types Python's table lacks or gets wrong for files served from a bucket.
_EXTRA_TYPES = {".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif", ".webp": "image/webp",
                ".jfif": "image/jpeg", ".md": "text/markdown", ".mjs": "text/javascript"}
# "x.tar.gz" is a gzip file to serve as-is, not a tar to serve with Content-Encoding: gzip.
_ENCODED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                  "br": "application/x-brotli", "compress": "application/x-compress"}


class FileChanged(TerminalError):
    """The source file changed while golive was reading it; the object is not recorded as verified."""


class SourceUnreadable(TerminalError):
    """A source file could not be read (permissions, I/O error)."""


class Interrupted(TerminalError):
    """The run was told to stop (Ctrl-C): a transfer in progress was abandoned (a multipart upload aborted), nothing
    of it recorded as verified; what was verified before stays in the manifest for the re-run."""


def check_stop(stop, key: str) -> None:
    """Raise ``Interrupted`` when ``stop`` (a ``threading.Event``, or None) is set: between files, parts and reads."""
    if stop is not None and stop.is_set():
        raise Interrupted(f"{key}: interrupted before it was complete", key=key)


def read_source(fh: IO[bytes], n: int, key: str) -> bytes:
    """Read exactly ``n`` bytes of a source file, or raise ``FileChanged`` / ``SourceUnreadable``."""
    try:
        data = fh.read(n)
    except OSError as exc:
        raise SourceUnreadable(f"{key}: read failed ({exc.strerror or exc})", key=key) from None
    if len(data) != n:
        raise FileChanged(f"{key}: the file shrank while it was being uploaded", key=key)
    return data


def content_type(name: str) -> str:
    """The Content-Type to store for a file called ``name`` (``application/octet-stream`` if unknown)."""
    ext = os.path.splitext(name)[1].lower()
    if ext in _EXTRA_TYPES:
        return _EXTRA_TYPES[ext]
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"


def part_size(size: int, chunksize: int) -> int:
    """Part size for a multipart upload of ``size`` bytes: ``chunksize`` unless 10,000 parts would not do.

    Deterministic, so a multipart ETag can be recomputed from the local file later (verify, manifest
    rebuild) without asking the server.
    """
    chunk = max(chunksize, S3_MIN_PART)
    if size > chunk * S3_MAX_PARTS:
        chunk = -(-size // S3_MAX_PARTS)
        chunk = -(-chunk // MiB) * MiB  # round up to a whole MiB
    return chunk


def multipart_etag(part_digests: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, then ``-<parts>``."""
    return f"{hashlib.md5(b''.join(part_digests)).hexdigest()}-{len(part_digests)}"


# ---------------------------------------------------------------- configuration


class StorageConfig(BaseModel):
    """Where files go and how to reach it. Secrets are ``SecretStr`` and never printed."""

    model_config = ConfigDict(frozen=True)

    dest: str = Field(description="s3://bucket/prefix or file:///absolute/dir")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000")
    region: str | None = Field(None, description="Region name; the AWS chain's default when empty")
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="path: http://host/bucket/key; virtual: http://bucket.host/key (OSS, TOS need it)")
    access_key_id: SecretStr | None = Field(None, description="Overrides the AWS chain when set")
    secret_access_key: SecretStr | None = Field(None, description="Overrides the AWS chain when set")
    session_token: SecretStr | None = Field(None, description="For temporary credentials")
    max_attempts: int = Field(4, ge=1, description="botocore attempts per request (standard retry mode)")
    connect_timeout: float = Field(10, gt=0, description="Seconds to wait for a connection")
    read_timeout: float = Field(60, gt=0, description="Seconds to wait for a response")
    pool_size: int = Field(16, ge=1, description="HTTP connections kept open (>= workers)")


@dataclass(frozen=True)
class Destination:
    """A parsed destination URL."""

    scheme: Literal["s3", "file"]
    bucket: str  # "" for file://
    prefix: str  # "" or ends with "/"
    root: Path | None = None  # file:// only

    def key(self, rel: str) -> str:
        return self.prefix + rel

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.root}"
        return f"s3://{self.bucket}/{self.prefix}"


def parse_dest(url: str) -> Destination:
    """Parse ``s3://bucket/prefix`` or ``file:///dir``; raise ``ConfigError`` naming what is wrong."""
    if not url or "://" not in url:
        raise ConfigError(f"destination {url!r} is not a URL (expected s3://bucket/prefix or file:///dir)")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"destination {url!r}: file:// needs an absolute path (file:///srv/files)")
        return Destination("file", "", "", Path(path))
    if scheme not in ("s3", "s3a"):
        raise ConfigError(f"destination {url!r}: unknown scheme {scheme!r} (expected s3:// or file://)")
    bucket, _, prefix = rest.partition("/")
    if not 3 <= len(bucket) <= 63 or bucket != bucket.strip() or "/" in bucket:
        raise ConfigError(f"destination {url!r}: bucket names have 3 to 63 characters")
    prefix = prefix.strip("/")
    if any(part in (".", "..") for part in prefix.split("/")):
        # S3 keys may hold "..", but HTTP clients, proxies and the tools that later download the objects resolve it:
        # s3://bucket/../other would write outside the prefix (or another bucket) for some of them
        plain = "/".join(p for p in prefix.split("/") if p not in (".", ".."))
        raise ConfigError(f"destination {url!r}: the prefix has a '.' or '..' segment; give the prefix without it "
                          f"(s3://{bucket}/{plain})")
    return Destination("s3", bucket, prefix + "/" if prefix else "")


# ---------------------------------------------------------------- the interface


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing shows it. ``etag`` is None where the backend has none (file://)."""

    key: str
    size: int
    etag: str | None


class Storage(Protocol):
    dest: Destination
    max_object_size: int
    max_single_put: int

    def check(self, create: bool = False, *, creatable: bool = False) -> None: ...
    def put(self, key: str, data: bytes, md5: bytes, ctype: str) -> str: ...
    def put_multipart(self, key: str, fh: IO[bytes], size: int, chunk: int, md5_hex: str, ctype: str,
                      on_start=None, stop=None) -> tuple[str, str]: ...
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
    def open_uploads(self, prefix: str) -> list[tuple[str, str]]: ...
    def abort_strays(self, key: str, keep: str | None = None) -> int: ...
    def list(self) -> Iterator[ObjectInfo]: ...
    def head_md5(self, key: str) -> str | None: ...
    def describe(self) -> str: ...
    # streams of unknown size and small objects (backups)
    def put_stream(self, key: str, chunks, part_size: int = ..., ctype: str = ...) -> ObjectInfo: ...
    def iter_object(self, key: str, chunk: int = ...) -> Iterator[bytes]: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def put_bytes(self, key: str, data: bytes, ctype: str = ...) -> str: ...
    def list_under(self, prefix: str = "", delimiter: str | None = None) -> Iterator: ...
    def delete_keys(self, keys: list[str]) -> None: ...


def md5_file(path: str | os.PathLike, bufsize: int = 1 * MiB) -> str:
    """MD5 hex digest of a file (hashlib releases the GIL on big buffers, so threads hash in parallel)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while data := fh.read(bufsize):
            h.update(data)
    return h.hexdigest()


def file_etag(path: str | os.PathLike, size: int, threshold: int, chunksize: int) -> str:
    """The ETag golive's upload of this file would get: plain MD5, or the multipart form above threshold."""
    if size <= threshold:
        return md5_file(path)
    chunk = part_size(size, chunksize)
    digests = []
    with open(path, "rb") as fh:
        while data := fh.read(chunk):
            digests.append(hashlib.md5(data).digest())
    return multipart_etag(digests)

"""Destinations for uploaded files: S3-compatible object storage, or a local directory.

``s3://bucket/prefix`` talks to AWS S3 or any S3-compatible service (MinIO, Aliyun OSS, Volcengine TOS,
moto) through boto3, with ``endpoint_url``, ``region`` and ``addressing_style`` as the knobs those services
need. ``file:///dir`` writes into a local directory (useful for tests, NFS mounts and dry rehearsals).

Both answer the same small interface (``check``, ``put``, ``put_multipart``, ``list``, ``head_md5``) so the
sync engine does not care which one it has. Driver errors are translated where they arrive (dlt's pattern):
5xx, throttling, timeouts and dropped connections become ``TransientError`` (a retry may help); bad
credentials, a missing bucket or an unreachable endpoint at start-up become terminal errors with one line
naming the cause.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import mimetypes
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Literal, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError

log = logging.getLogger(__name__)

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
S3_MAX_PUT = 5 * GiB  # largest object in a single PUT
S3_MAX_OBJECT = 5 * TiB  # largest object at all (multipart)
S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * MiB  # every part but the last
S3_MAX_KEY_BYTES = 1024

# S3 error codes that a retry can fix (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)
_TRANSIENT_CODES = {
    "InternalError", "ServiceUnavailable", "SlowDown", "Throttling", "ThrottlingException",
    "RequestTimeout", "RequestTimeTooSkewed", "RequestLimitExceeded", "BadDigest", "IncompleteBody",
    "OperationAborted", "500", "502", "503", "504",
}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired",
    "AuthorizationHeaderMalformed", "InvalidSecurity", "AccessDenied", "AllAccessDisabled", "403", "401",
}

# Streams of unknown size (backups): written as they are produced (dump -> zstd -> upload) and read back as
# they are restored, so neither side knows the size up front or holds the object in memory. Both backends
# answer the same calls: ``put_stream`` (parts of ``part_size`` uploaded as they fill; one PUT when the stream is small),
# ``iter_object`` (a streaming GET that resumes with a Range request after a dropped connection),
# ``put_bytes`` / ``get_bytes`` for small objects (manifests), ``list_under`` and ``delete_keys``.

#: attempts per part or per resumed GET on top of botocore's own retries (a dropped connection, a 503)
STREAM_ATTEMPTS = 5


def _retry_transient(fn, what: str, attempts: int = STREAM_ATTEMPTS):
    """Call ``fn()``; on ``TransientError`` wait (0.2, 0.4, 0.8 s ...) and try again, ``attempts`` times in all."""
    import time

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt == attempts:
                raise
            log.info("%s: %s (attempt %d of %d, retrying)", what, exc, attempt, attempts)
            time.sleep(0.2 * 2 ** (attempt - 1))


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

    def check(self, create: bool = False) -> None: ...
    def put(self, key: str, data: bytes, md5: bytes, ctype: str) -> str: ...
    def put_multipart(self, key: str, fh: IO[bytes], size: int, chunk: int, md5_hex: str, ctype: str,
                      on_start=None) -> tuple[str, str]: ...
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
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


def open_storage(cfg: StorageConfig) -> Storage:
    """The storage for ``cfg`` (cached per configuration, so clients and their pools are reused)."""
    return _open_storage(cfg)


@functools.lru_cache(maxsize=16)
def _open_storage(cfg: StorageConfig) -> Storage:
    dest = parse_dest(cfg.dest)
    if dest.scheme == "file":
        return LocalStorage(dest)
    return S3Storage(dest, cfg)


# ---------------------------------------------------------------- S3


class S3Storage:
    """An S3 bucket (AWS or compatible) through one shared, thread-safe boto3 client."""

    max_object_size = S3_MAX_OBJECT
    max_single_put = S3_MAX_PUT

    def __init__(self, dest: Destination, cfg: StorageConfig):
        self.dest = dest
        self.cfg = cfg
        self.session, self.client = _make_client(cfg)

    @functools.cached_property
    def _direct(self):
        """Small PUTs without botocore's per-request overhead (``golive.files.direct``), or None."""
        from golive.files.direct import DirectPut

        try:
            return DirectPut(self.session, self.client, self.dest.bucket, max_attempts=self.cfg.max_attempts,
                             transient_codes=_TRANSIENT_CODES)
        except Exception as exc:  # noqa: BLE001 - boto3 does every PUT then, and reports what is wrong
            log.debug("direct PUTs off for %s: %s", self.describe(), exc)
            return None

    def describe(self) -> str:
        where = f" at {self.cfg.endpoint_url}" if self.cfg.endpoint_url else ""
        return f"{self.dest}{where}"

    # -- start-up check: one request that needs the same rights as the run (ListBucket)
    def check(self, create: bool = False) -> None:
        try:
            self.client.list_objects_v2(Bucket=self.dest.bucket, Prefix=self.dest.prefix, MaxKeys=1)
            return
        except Exception as exc:  # noqa: BLE001 - translated below
            err = translate_error(exc, self, at_start=True)
            if not (create and _code(exc) == "NoSuchBucket"):
                raise err from None
        try:
            region = self.client.meta.region_name
            kwargs = {}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.client.create_bucket(Bucket=self.dest.bucket, **kwargs)
            log.info("created bucket %s", self.dest.bucket)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise translate_error(exc, self, at_start=True) from None

    def put(self, key: str, data: bytes, md5: bytes, ctype: str) -> str:
        md5_b64 = base64.b64encode(md5).decode("ascii")
        try:
            direct = self._direct
            etag = direct.put(key, data, md5_b64, ctype) if direct else None
            if etag is None:
                etag = self.client.put_object(Bucket=self.dest.bucket, Key=key, Body=data, ContentType=ctype,
                                              ContentMD5=md5_b64)["ETag"]
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self, key=key) from None
        return etag.strip('"')

    def put_multipart(self, key, fh, size, chunk, md5_hex, ctype, on_start=None):
        """Upload ``size`` bytes from ``fh`` in parts of ``chunk``; each part carries its Content-MD5.

        The whole-file MD5 goes into the object's metadata (``golive-md5``) because a multipart ETag is
        not an MD5. Returns ``(etag, running_md5_hex)``: the caller compares the running MD5 (what was
        actually sent) with ``md5_hex`` (what was hashed before) to catch a file changing mid-upload.
        """
        c = self.client
        try:
            upload_id = c.create_multipart_upload(Bucket=self.dest.bucket, Key=key, ContentType=ctype,
                                                  Metadata={"golive-md5": md5_hex})["UploadId"]
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self, key=key) from None
        if on_start:
            on_start(upload_id)
        parts, digests, running = [], [], hashlib.md5()
        try:
            number, remaining = 0, size
            while remaining > 0:
                data = read_source(fh, min(chunk, remaining), key)
                remaining -= len(data)
                number += 1
                digest = hashlib.md5(data).digest()
                running.update(data)
                resp = c.upload_part(Bucket=self.dest.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                     Body=data, ContentMD5=base64.b64encode(digest).decode("ascii"))
                if resp["ETag"].strip('"') != digest.hex():
                    raise TransientError(f"part {number} of {key} arrived corrupted (ETag mismatch)", key=key)
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                digests.append(digest)
            resp = c.complete_multipart_upload(Bucket=self.dest.bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
        except BaseException as exc:
            self.abort_multipart(key, upload_id)
            if isinstance(exc, GoliveError) or not isinstance(exc, Exception):
                raise
            raise translate_error(exc, self, key=key) from None
        etag = resp["ETag"].strip('"')
        if etag != multipart_etag(digests):
            raise TransientError(f"{key}: the stored object's ETag {etag} does not match the parts sent", key=key)
        return etag, running.hexdigest()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.dest.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 - best effort; a lifecycle rule cleans up the rest
            log.debug("could not abort multipart upload %s of %s: %s", upload_id, key, exc)

    def list(self) -> Iterator[ObjectInfo]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.dest.bucket, Prefix=self.dest.prefix)
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield ObjectInfo(obj["Key"], obj["Size"], obj.get("ETag", "").strip('"') or None)
        except GoliveError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self) from None

    def head_md5(self, key: str) -> str | None:
        """The whole-file MD5 golive stored in a multipart object's metadata (None if absent)."""
        try:
            resp = self.client.head_object(Bucket=self.dest.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate_error(exc, self, key=key) from None
        return resp.get("Metadata", {}).get("golive-md5")

    # -- streams of unknown size (backups): see STREAM_ATTEMPTS
    def put_stream(self, key: str, chunks, part_size: int = 8 * MiB,
                       ctype: str = "application/octet-stream") -> ObjectInfo:
        """Upload the bytes of ``chunks`` (an iterable of ``bytes``) to ``key`` without knowing their size.

        Parts of ``part_size`` go up as they fill, each with its Content-MD5 and retried on transient errors;
        the multipart ETag is checked against the parts sent. A stream shorter than one part is one PUT. On
        any failure the multipart upload is aborted, so nothing half-written stays under ``key``.
        """
        part_size = max(part_size, S3_MIN_PART)
        c, bucket = self.client, self.dest.bucket
        buf = bytearray()
        upload_id = None
        parts: list[dict] = []
        digests: list[bytes] = []
        total = 0

        def send_part(data: bytes) -> None:
            number = len(parts) + 1
            digest = hashlib.md5(data).digest()

            def once():
                try:
                    resp = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                                         ContentMD5=base64.b64encode(digest).decode("ascii"))
                except Exception as exc:  # noqa: BLE001
                    raise translate_error(exc, self, key=key) from None
                if resp["ETag"].strip('"') != digest.hex():
                    raise TransientError(f"part {number} of {key} arrived corrupted (ETag mismatch)", key=key)
                return resp["ETag"]

            etag = _retry_transient(once, f"{key} part {number}")
            parts.append({"PartNumber": number, "ETag": etag})
            digests.append(digest)

        try:
            for data in chunks:
                if not data:
                    continue
                total += len(data)
                buf += data
                while len(buf) >= part_size:
                    if upload_id is None:
                        upload_id = _retry_transient(lambda: self._create_mpu(key, ctype), f"{key} create")
                    send_part(bytes(buf[:part_size]))
                    del buf[:part_size]
            if upload_id is None:  # small: one PUT
                data = bytes(buf)
                etag = _retry_transient(lambda: self.put(key, data, hashlib.md5(data).digest(), ctype), key)
                return ObjectInfo(key, total, etag)
            if buf or not parts:
                send_part(bytes(buf))
            buf = bytearray()

            def complete():
                try:
                    return c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                       MultipartUpload={"Parts": parts})
                except Exception as exc:  # noqa: BLE001
                    raise translate_error(exc, self, key=key) from None

            resp = _retry_transient(complete, f"{key} complete")
        except BaseException:
            if upload_id is not None:
                self.abort_multipart(key, upload_id)
            raise
        etag = resp["ETag"].strip('"')
        if etag != multipart_etag(digests):
            self.delete_keys([key])
            raise TransientError(f"{key}: the stored object's ETag {etag} does not match the parts sent", key=key)
        return ObjectInfo(key, total, etag)

    def _create_mpu(self, key: str, ctype: str) -> str:
        try:
            return self.client.create_multipart_upload(Bucket=self.dest.bucket, Key=key, ContentType=ctype)["UploadId"]
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self, key=key) from None

    def iter_object(self, key: str, chunk: int = 1 * MiB):
        """Yield the bytes of ``key`` in pieces; a dropped connection resumes at the byte reached (Range GET)."""
        offset, size = 0, None
        failures = 0
        while size is None or offset < size:
            try:
                kwargs = {"Range": f"bytes={offset}-"} if offset else {}
                resp = self.client.get_object(Bucket=self.dest.bucket, Key=key, **kwargs)
                if size is None:
                    size = int(resp["ContentLength"]) + offset
                body = resp["Body"]
                while True:
                    try:
                        data = body.read(chunk)
                    except Exception as exc:  # noqa: BLE001 - cut short mid-body (IncompleteRead, reset): resume
                        raise TransientError(f"{key}: the download broke off after {offset} bytes "
                                             f"({type(exc).__name__})", key=key) from None
                    if not data:
                        break
                    offset += len(data)
                    yield data
                if offset < size:
                    raise TransientError(f"{key}: the connection ended after {offset} of {size} bytes", key=key)
            except GeneratorExit:
                raise
            except Exception as exc:  # noqa: BLE001
                err = exc if isinstance(exc, GoliveError) else translate_error(exc, self, key=key)
                if isinstance(exc, Exception) and _code(exc) in ("NoSuchKey", "404"):
                    err = TerminalError(f"{key}: no such object in {self.describe()}", key=key)
                failures += 1
                if not isinstance(err, TransientError) or failures >= STREAM_ATTEMPTS:
                    raise err from None
                import time

                log.info("%s: %s (resuming at byte %d)", key, err, offset)
                time.sleep(0.2 * 2 ** (failures - 1))
            if size == 0:
                return

    def get_bytes(self, key: str) -> bytes | None:
        """The whole (small) object, or None when it does not exist."""
        def once():
            try:
                return self.client.get_object(Bucket=self.dest.bucket, Key=key)["Body"].read()
            except Exception as exc:  # noqa: BLE001
                if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise translate_error(exc, self, key=key) from None

        return _retry_transient(once, key)

    def put_bytes(self, key: str, data: bytes, ctype: str = "application/json") -> str:
        return _retry_transient(lambda: self.put(key, data, hashlib.md5(data).digest(), ctype), key)

    def list_under(self, prefix: str = "", delimiter: str | None = None):
        """Keys under ``dest.prefix + prefix``; with ``delimiter="/"`` the common prefixes (one level) instead."""
        try:
            kwargs = {"Bucket": self.dest.bucket, "Prefix": self.dest.prefix + prefix}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                if delimiter:
                    for p in page.get("CommonPrefixes", ()):
                        yield p["Prefix"]
                for obj in page.get("Contents", ()):
                    yield ObjectInfo(obj["Key"], obj["Size"], obj.get("ETag", "").strip('"') or None)
        except GoliveError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self) from None

    def delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]

            def once():
                try:
                    resp = self.client.delete_objects(Bucket=self.dest.bucket, Delete={"Objects": batch, "Quiet": True})
                except Exception as exc:  # noqa: BLE001
                    raise translate_error(exc, self) from None
                errors = resp.get("Errors") or []
                if errors:
                    raise TerminalError(f"{errors[0].get('Key')}: could not be deleted ({errors[0].get('Code')})")

            _retry_transient(once, "delete")


def _make_client(cfg: StorageConfig):
    import boto3
    import botocore.config

    if cfg.endpoint_url:
        parts = urlsplit(cfg.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"endpoint URL {cfg.endpoint_url!r} is not http(s)://host[:port]")
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"endpoint URL {cfg.endpoint_url!r} has a bad port") from None
    import botocore.exceptions

    secret = (lambda s: s.get_secret_value() if s else None)
    try:
        session = boto3.session.Session(aws_access_key_id=secret(cfg.access_key_id),
                                        aws_secret_access_key=secret(cfg.secret_access_key),
                                        aws_session_token=secret(cfg.session_token))
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(f"AWS profile {exc.kwargs.get('profile', '')!r} not found (check AWS_PROFILE and "
                          "~/.aws/config)") from None
    config = botocore.config.Config(
        # Bodies are not SHA-256 signed: each PUT and part carries its Content-MD5, a signed header the
        # server checks the body against, and golive compares the returned ETag with its own MD5. This
        # is what botocore does over HTTPS; over plain HTTP it would hash every body a second time.
        s3={"addressing_style": cfg.addressing_style, "payload_signing_enabled": False},
        retries={"mode": "standard", "total_max_attempts": cfg.max_attempts},
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        max_pool_connections=cfg.pool_size,
        # golive sends Content-MD5 and compares ETags itself. boto3 >= 1.36 otherwise adds CRC32
        # checksum headers that several S3-compatible services (older MinIO, OSS, TOS) reject.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="golive",
    )
    try:
        client = session.client("s3", endpoint_url=cfg.endpoint_url or None, region_name=cfg.region or None,
                                config=config)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(f"AWS profile {exc.kwargs.get('profile', '')!r} not found (check AWS_PROFILE and "
                          "~/.aws/config)") from None
    except ValueError as exc:  # botocore: "Invalid endpoint: ..."
        raise ConfigError(f"endpoint URL {cfg.endpoint_url!r}: {exc}") from None
    for op in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-sign.s3.{op}", _no_expect_continue)
    return session, client


def _no_expect_continue(request, **kwargs) -> None:
    """Send the body with the headers instead of waiting for ``100 Continue`` first.

    botocore asks for ``Expect: 100-continue`` on every PUT, which costs a round trip per object so
    that a rejected request does not send its body. golive's bodies are already in memory (one file
    under ``multipart_threshold``, or one part), so sending one in vain on an error costs less than
    waiting on every success.
    """
    if "Expect" in request.headers:
        del request.headers["Expect"]


def _code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    return str(resp.get("Error", {}).get("Code") or resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


def translate_error(exc: BaseException, storage: S3Storage, *, key: str | None = None,
                    at_start: bool = False) -> GoliveError:
    """Turn a boto3/botocore exception into golive's hierarchy, with one readable line.

    ``at_start`` marks the first request of a run: a connection failure there means a wrong endpoint or
    an unreachable host (terminal), while the same failure mid-run is a blip worth retrying.
    """
    from botocore import exceptions as bx

    where = storage.describe()
    what = f"{key}: " if key else ""
    if isinstance(exc, GoliveError):
        return exc
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return ConnectionFailed("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                "(or AWS_PROFILE), or use a Prefect Secret block (--credentials-block)")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)) and at_start:
        hint = ""
        if storage.cfg.addressing_style == "virtual":
            hint = " (virtual-host addressing needs DNS for bucket.host; try --addressing-style path)"
        return ConnectionFailed(f"cannot reach {where}: {exc}{hint}")
    if isinstance(exc, (bx.ConnectionError, bx.ReadTimeoutError, bx.ConnectTimeoutError,
                        bx.ResponseStreamingError)) or isinstance(exc, (ConnectionError, TimeoutError)):
        return TransientError(f"{what}connection to {where} failed: {exc}", key=key)
    if isinstance(exc, bx.ParamValidationError):
        return TerminalError(f"{what}{exc}", key=key)
    if isinstance(exc, bx.ClientError):
        code = _code(exc)
        status = (getattr(exc, "response", {}) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "NoSuchBucket" or (at_start and code == "404"):
            return ConfigError(f"bucket {storage.dest.bucket!r} does not exist at "
                               f"{storage.cfg.endpoint_url or 'AWS'} (create it, or pass --create-bucket)")
        if code in _CREDENTIAL_CODES:
            return ConnectionFailed(f"{where} refused the credentials ({code}): check AWS_ACCESS_KEY_ID / "
                                    f"AWS_SECRET_ACCESS_KEY or the bucket policy")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{what}{where} answered {code or status} (will retry)", key=key)
        return TerminalError(f"{what}{where} answered {code}: {exc}", key=key)
    return TerminalError(f"{what}{type(exc).__name__}: {exc}", key=key)


# ---------------------------------------------------------------- file:///dir


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

    def check(self, create: bool = False) -> None:
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

    def put_multipart(self, key, fh, size, chunk, md5_hex, ctype, on_start=None):
        running = hashlib.md5()

        def chunks():
            remaining = size
            while remaining > 0:
                data = read_source(fh, min(chunk, remaining), key)
                remaining -= len(data)
                running.update(data)
                yield data

        etag = self._write(key, chunks())
        return etag, running.hexdigest()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        return None

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

"""S3 and S3-compatible object storage (AWS, MinIO, Aliyun OSS, Volcengine TOS, moto) through one shared boto3 client;
driver errors translated where they arrive (dlt's pattern): 5xx, throttling, timeouts and dropped connections are
``TransientError``, bad credentials, a missing bucket or an unreachable endpoint one terminal line."""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from typing import Iterator
from urllib.parse import urlsplit


from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError, TransientError
from golive.storage.base import (S3_MAX_OBJECT, S3_MAX_PUT, S3_MIN_PART, MiB, Destination, ObjectInfo, StorageConfig,
                                 check_stop, multipart_etag, read_source)

log = logging.getLogger(__name__)

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
        """Small PUTs without botocore's per-request overhead (``golive.storage.direct``), or None."""
        from golive.storage.direct import DirectPut

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
    def check(self, create: bool = False, *, creatable: bool = False) -> None:
        """Raise one line unless the bucket answers; ``create``: make it when missing. ``creatable``: the command
        has ``--create-bucket``, so a missing bucket's message suggests it (commands without it do not)."""
        try:
            self.client.list_objects_v2(Bucket=self.dest.bucket, Prefix=self.dest.prefix, MaxKeys=1)
            return
        except Exception as exc:  # noqa: BLE001 - translated below
            err = translate_error(exc, self, at_start=True)
            if not (create and _code(exc) == "NoSuchBucket"):
                if creatable and isinstance(err, ConfigError) and err.context.get("missing_bucket"):
                    err = ConfigError(f"{err.message}; create it, or pass --create-bucket", missing_bucket=True)
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

    def put_multipart(self, key, fh, size, chunk, md5_hex, ctype, on_start=None, stop=None):
        """Upload ``size`` bytes from ``fh`` in parts of ``chunk``; each part carries its Content-MD5.

        The whole-file MD5 goes into the object's metadata (``golive-md5``) because a multipart ETag is
        not an MD5. Returns ``(etag, running_md5_hex)``: the caller compares the running MD5 (what was
        actually sent) with ``md5_hex`` (what was hashed before) to catch a file changing mid-upload.
        ``stop`` (a ``threading.Event``) set: the upload is aborted before its next part (``Interrupted``), so
        no part is left behind to be billed.
        """
        c = self.client
        try:
            upload_id = c.create_multipart_upload(Bucket=self.dest.bucket, Key=key, ContentType=ctype,
                                                  Metadata={"golive-md5": md5_hex})["UploadId"]
        except Exception as exc:  # noqa: BLE001
            self.abort_strays(key)  # a request carried out whose answer never came made one
            raise translate_error(exc, self, key=key) from None
        if on_start:
            on_start(upload_id)
        parts, digests, running = [], [], hashlib.md5()
        try:
            number, remaining = 0, size
            while remaining > 0:
                check_stop(stop, key)
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
        self.abort_strays(key)
        if etag != multipart_etag(digests):
            raise TransientError(f"{key}: the stored object's ETag {etag} does not match the parts sent", key=key)
        return etag, running.hexdigest()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.dest.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 - best effort; a lifecycle rule cleans up the rest
            log.debug("could not abort multipart upload %s of %s: %s", upload_id, key, exc)

    def open_uploads(self, prefix: str) -> list[tuple[str, str]]:
        """``(key, upload_id)`` of the multipart uploads in progress under ``prefix`` (a full key prefix)."""
        out = []
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.dest.bucket,
                                                                                    Prefix=prefix):
                out += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", ())]
        except Exception as exc:  # noqa: BLE001
            raise translate_error(exc, self) from None
        return out

    def abort_strays(self, key: str, keep: str | None = None) -> int:
        """Abort the multipart uploads of exactly ``key`` but ``keep``: a CreateMultipartUpload whose answer was
        lost (the connection dropped after the server made it) leaves one that golive never learnt the ID of,
        billed until a lifecycle rule removes it. Best effort (one listing); returns how many were aborted."""
        try:
            strays = [u for k, u in self.open_uploads(key) if k == key and u != keep]
        except GoliveError as exc:
            log.debug("could not list the multipart uploads of %s: %s", key, exc)
            return 0
        for upload_id in strays:
            self.abort_multipart(key, upload_id)
        return len(strays)

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
            self.abort_strays(key)  # also those a CreateMultipartUpload whose answer never came made
            raise
        etag = resp["ETag"].strip('"')
        self.abort_strays(key)
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
            where_ = storage.cfg.endpoint_url or "AWS"
            return ConfigError(f"bucket {storage.dest.bucket!r} does not exist at {where_} (check the bucket name "
                               "and --endpoint-url)", missing_bucket=True)
        if code in _CREDENTIAL_CODES:
            return ConnectionFailed(f"{where} refused the credentials ({code}): check AWS_ACCESS_KEY_ID / "
                                    f"AWS_SECRET_ACCESS_KEY or the bucket policy")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{what}{where} answered {code or status}", key=key)
        return TerminalError(f"{what}{where} answered {code}: {exc}", key=key)
    return TerminalError(f"{what}{type(exc).__name__}: {exc}", key=key)



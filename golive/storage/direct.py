"""PutObject without botocore's per-request machinery, for the many small files of an uploads folder.

A ``put_object`` call through boto3 spends about 1.1 ms of CPU besides the transfer (parameter validation,
endpoint rules, some thirty event hooks, the user agent rebuilt, the response parsed); the same signed
request sent over the same client's HTTP session spends about 0.6 ms. Over 1000 files that is half a
second of CPU, on machines where golive shares the cores with the storage server it talks to (moto,
MinIO on the same host).

``DirectPut`` takes what botocore decided once for the client — the bucket's URL (addressing style,
custom endpoint, FIPS and dual-stack endpoints), the region, the credentials, and the HTTP session with
its connection pool, proxies, TLS settings and timeouts — and signs each request with botocore's own
SigV4 signer. Transient failures (5xx, throttling, timeouts, dropped connections) are tried again up to
``max_attempts`` times as botocore's standard retry mode does, and error answers are raised as the
``ClientError`` boto3 would raise, so ``storage.translate_error`` sorts them the same way. A redirect (the
bucket lives in another region, or behind another endpoint) turns the direct path off for the rest of the
run: boto3, which follows redirects, makes that request again and every one after it.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from urllib.parse import quote

log = logging.getLogger(__name__)

# answers that mean "this is not the endpoint or region for the bucket": boto3 knows what to do
_REDIRECT_CODES = {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed",
                   "IllegalLocationConstraintException"}
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")
_MESSAGE = re.compile(rb"<Message>([^<]{0,500})</Message>")


class DirectPut:
    """Signed PutObject requests sent straight over a boto3 S3 client's HTTP session."""

    def __init__(self, session, client, bucket: str, *, max_attempts: int, transient_codes: set[str]):
        """Raises ``ValueError`` for buckets botocore signs its own way (directory buckets, access point
        ARNs), and whatever botocore raises when it cannot build a request (bad bucket name, endpoint)."""
        if bucket.endswith("--x-s3") or ":" in bucket:
            raise ValueError(f"{bucket} is a directory bucket or an ARN: boto3 signs those itself")
        self.base, self.region = _object_url(client, bucket)
        self.config = client.meta.config
        self.credentials = session.get_credentials()
        self.http = client._endpoint.http_session  # the client's own pool, proxies, TLS and timeouts
        self.max_attempts = max_attempts
        self.transient_codes = transient_codes
        self.enabled = self.credentials is not None

    def put(self, key: str, data: bytes, md5_b64: str, ctype: str) -> str | None:
        """PUT ``data`` at ``key``, with up to ``max_attempts`` attempts on transient failures (as
        botocore's standard retry mode makes them). Returns the ETag, or None when boto3 should make the
        request instead (the bucket answered with a redirect, or the direct path is off).

        Raises:
            botocore.exceptions.ClientError: an error answer (after the last attempt, if transient).
            botocore.exceptions.BotoCoreError: a connection failure or timeout on the last attempt.
        """
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import ClientError

        for attempt in range(1, self.max_attempts + 1):
            if not self.enabled:
                return None
            if attempt > 1:  # botocore's standard mode: full jitter, 2^n seconds, at most 20
                time.sleep(random.uniform(0, min(20.0, 2.0 ** (attempt - 2))))
            request = AWSRequest("PUT", self.base + quote(key, safe="/~"), data=data,
                                 headers={"Content-MD5": md5_b64, "Content-Type": ctype})
            request.context["client_config"] = self.config  # payload_signing_enabled=False: UNSIGNED-PAYLOAD
            S3SigV4Auth(self.credentials.get_frozen_credentials(), "s3", self.region).add_auth(request)
            try:
                response = self.http.send(request.prepare())
                body = response.content
            except Exception:  # noqa: BLE001 - connection refused or reset, timeouts
                if attempt == self.max_attempts:
                    raise
                continue
            status, etag = response.status_code, response.headers.get("ETag")
            if status == 200 and etag:
                return etag
            found = _CODE.search(body or b"")
            code = found.group(1).decode("utf-8", "replace") if found else str(status)
            if 300 <= status < 400 or code in _REDIRECT_CODES:
                log.info("%s answered %s for %s: sending the rest through boto3", self.base, code, key)
                self.enabled = False
                return None
            transient = status >= 500 or status == 429 or code in self.transient_codes
            if transient and attempt < self.max_attempts:
                continue
            message = _MESSAGE.search(body or b"")
            raise ClientError({"Error": {"Code": code, "Message": message.group(1).decode("utf-8", "replace")
                                         if message else ""},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")
        return None  # pragma: no cover - the loop returns or raises


def _object_url(client, bucket: str) -> tuple[str, str]:
    """Where and how boto3 PUTs this bucket's objects: the URL without the key, and the signing region.

    boto3 builds and signs a request for a probe key, and a ``before-send`` handler answers it in place of
    the server (as ``botocore.stub`` does), so nothing is sent.
    """
    from botocore.awsrequest import AWSResponse

    probe = f"golive-probe-{uuid.uuid4().hex}"
    seen: list[tuple[str, str]] = []

    class _Empty:
        def stream(self, **kwargs):
            return iter(())

    def answer(request, **kwargs):
        if probe not in request.url:  # another thread's real request
            return None
        seen.append((request.url, request.headers.get("Authorization", b"")))
        return AWSResponse(request.url, 200, {"ETag": '"0"'}, _Empty())

    client.meta.events.register_first("before-send.s3.PutObject", answer)
    try:
        client.put_object(Bucket=bucket, Key=probe, Body=b"")
    finally:
        client.meta.events.unregister("before-send.s3.PutObject", answer)
    url, auth = (seen[0][0].split("?", 1)[0], seen[0][1]) if seen else ("", b"")
    scope = _SCOPE.search(auth.decode() if isinstance(auth, bytes) else auth)
    if not url.endswith("/" + probe) or not scope:
        raise ValueError(f"unexpected object URL {url!r} or signature")
    return url[: -len(probe)], scope.group(1)

"""Small PUTs signed and sent over boto3's HTTP session (golive.storage.direct), through the fault-injecting
proxy in front of moto's S3 server: what goes on the wire, transient answers retried, a redirect handed to
boto3, error answers raised as boto3 would raise them."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from golive.errors import ConnectionFailed
from golive import storage as st
from golive.files import sync


@pytest.fixture
def tree(tmp_path) -> Path:
    src = tmp_path / "uploads"
    for rel, size in (("2024/01/a.jpg", 3000), ("2024/01/b.png", 1000), ("docs/readme.txt", 10),
                      ("相册/猫 photo.webp", 700), ("empty.bin", 0)):
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size))
    return src


def upload(tree, bucket, proxy, tmp_path, **kw) -> sync.BatchResult:
    job = sync.make_job(tree, f"s3://{bucket}/m", endpoint_url=proxy.url, state_dir=tmp_path / "state", **kw)
    plan = sync.plan_upload(job)
    return sync.upload_batch(job, sync.Batch(0, plan.todo))


def puts(proxy):
    return [s for s in proxy.seen if s.method == "PUT"]


def test_puts_carry_content_md5_without_100_continue_or_a_payload_hash(tree, bucket, proxy, tmp_path):
    big = tree / "big.bin"
    big.write_bytes(os.urandom(6 * st.MiB))  # multipart: its parts go through boto3
    result = upload(tree, bucket, proxy, tmp_path, multipart_threshold=5 * st.MiB, multipart_chunksize=5 * st.MiB)
    assert len(result.uploaded) == 6 and result.multipart == 1
    seen = puts(proxy)
    assert len(seen) == 5 + 2  # five single PUTs, two parts
    for s in seen:
        assert "Expect" not in s.headers and s.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
        assert "Content-MD5" in s.headers
    single = [s for s in seen if "partNumber" not in s.path]
    assert all("Botocore" not in s.headers.get("User-Agent", "") for s in single)  # the direct path
    a = next(s for s in single if s.path.endswith("/a.jpg"))
    assert a.headers["Content-MD5"] == base64.b64encode(
        hashlib.md5((tree / "2024/01/a.jpg").read_bytes()).digest()).decode()
    assert a.headers["Content-Type"] == "image/jpeg"


def test_transient_answers_are_retried_within_the_request(tree, bucket, proxy, tmp_path, monkeypatch):
    from golive.storage import direct

    monkeypatch.setattr(direct.time, "sleep", lambda s: None)
    proxy.add(method="PUT", path_re="readme", status=503, code="SlowDown", times=2)
    result = upload(tree, bucket, proxy, tmp_path, max_attempts=3)
    assert len(result.uploaded) == 5 and not result.problems
    assert proxy.count("PUT", status=503) == 2 and proxy.count("PUT", status=200) == 5


def test_a_redirect_hands_this_and_every_later_put_to_boto3(tree, bucket, proxy, tmp_path):
    proxy.add(method="PUT", path_re=r"/a\.jpg", status=301, code="PermanentRedirect", times=1)
    result = upload(tree, bucket, proxy, tmp_path)
    assert len(result.uploaded) == 5 and not result.problems
    first, *rest = puts(proxy)
    assert first.path.endswith("/a.jpg") and first.status == 301
    assert "Botocore" not in first.headers.get("User-Agent", "")
    assert len(rest) == 5 and all(s.status == 200 and "Botocore" in s.headers["User-Agent"] for s in rest)


def test_error_answers_are_raised_once_as_boto3_would(tree, bucket, proxy, tmp_path):
    proxy.add(method="PUT", status=403, code="AccessDenied", times=-1)
    with pytest.raises(ConnectionFailed, match="refused the credentials .AccessDenied."):
        upload(tree, bucket, proxy, tmp_path)
    assert proxy.count("PUT") == 1

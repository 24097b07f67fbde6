"""The files engine (golive.files) against moto's S3 server on loopback: keys, types, verification,
multipart, manifest, re-runs, problems, dry run, verify, file:// destinations."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from golive.errors import ConfigError, SourceError
from golive import storage as st
from golive.files import sync
from golive.files.manifest import Manifest
from golive.files.scan import name_problem, scan_source
from golive.files.verify import verify_files


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    src = tmp_path / "uploads"
    write(src / "2024/01/a.jpg", os.urandom(3000))
    write(src / "2024/01/b.png", os.urandom(1000))
    write(src / "docs/readme.txt", b"hello\n")
    write(src / "docs/backup.tar.gz", os.urandom(500))
    write(src / "相册/猫 photo.webp", os.urandom(700))
    write(src / "noext", b"data")
    write(src / "empty.bin", b"")
    return src


def snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p):
                try:
                    digest = hashlib.md5(Path(p).read_bytes()).hexdigest()
                except OSError:
                    pass
            out[p] = (s.st_size, s.st_mtime_ns, s.st_mode, digest)
    return out


def run(src, dest, endpoint, tmp_path, **kw):
    kw.setdefault("state_dir", tmp_path / "state")
    return sync.upload_folder(src, dest, endpoint_url=endpoint, workers=kw.pop("workers", 4), **kw)


# ---------------------------------------------------------------- layout, types, checksums


def test_keys_types_and_etags(tree, bucket, s3, s3_endpoint, tmp_path):
    report = run(tree, f"s3://{bucket}/site/media", s3_endpoint, tmp_path)
    assert report.ok, report.problems
    assert report.uploaded == 7 and report.unchanged == 0
    objs = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(objs) == {f"site/media/{k}" for k in (
        "2024/01/a.jpg", "2024/01/b.png", "docs/readme.txt", "docs/backup.tar.gz", "相册/猫 photo.webp",
        "noext", "empty.bin")}
    types = {k: s3.head_object(Bucket=bucket, Key=k)["ContentType"] for k in objs}
    assert types["site/media/2024/01/a.jpg"] == "image/jpeg"
    assert types["site/media/docs/readme.txt"].startswith("text/plain")
    assert types["site/media/docs/backup.tar.gz"] == "application/gzip"  # not x-tar + Content-Encoding
    assert types["site/media/相册/猫 photo.webp"] == "image/webp"
    assert types["site/media/noext"] == "application/octet-stream"
    for key, obj in objs.items():
        local = (tree / key.removeprefix("site/media/")).read_bytes()
        assert obj["ETag"].strip('"') == hashlib.md5(local).hexdigest()
    assert any("empty (0-byte)" in n for n in report.notes)
    assert objs["site/media/empty.bin"]["Size"] == 0


def test_multipart_is_verified_and_carries_md5(tmp_path, bucket, s3, s3_endpoint):
    src = tmp_path / "src"
    big = write(src / "video/big.mp4", os.urandom(11 * st.MiB + 123))
    job = sync.make_job(src, f"s3://{bucket}", endpoint_url=s3_endpoint, state_dir=tmp_path / "state",
                        multipart_threshold=5 * st.MiB, multipart_chunksize=5 * st.MiB)
    plan = sync.plan_upload(job)
    [result] = [sync.upload_batch(job, b) for b in plan.batches(1)]
    assert result.uploaded == ["video/big.mp4"] and result.multipart == 1
    head = s3.head_object(Bucket=bucket, Key="video/big.mp4")
    md5 = hashlib.md5(big.read_bytes()).hexdigest()
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["golive-md5"] == md5
    assert head["ContentType"] == "video/mp4"
    entry = Manifest(job.manifest).load()["video/big.mp4"]
    assert entry.md5 == md5 and entry.parts == 3 and entry.etag == head["ETag"].strip('"')
    assert not Manifest(job.manifest).pending()  # no multipart upload left open
    assert verify_files(job).ok


def test_part_sizes_and_limits():
    assert st.part_size(6 * st.GiB, 8 * st.MiB) == 8 * st.MiB  # 768 parts
    big = st.part_size(200 * st.GiB, 8 * st.MiB)
    assert big % st.MiB == 0 and -(-200 * st.GiB // big) <= st.S3_MAX_PARTS
    assert st.part_size(1, 1) == st.S3_MIN_PART
    job = sync.make_job("/tmp", "s3://bucket", multipart_threshold=10 * st.GiB)
    assert job.multipart_threshold == st.S3_MAX_PUT  # never above the single-PUT limit


def test_over_size_files_are_reported(tmp_path, bucket, s3_endpoint):
    src = tmp_path / "src"
    write(src / "ok.txt", b"ok")
    huge = src / "huge.bin"
    with open(huge, "wb") as fh:  # sparse: takes no disk space
        try:
            fh.truncate(st.S3_MAX_OBJECT + 1)
        except OSError:
            pytest.skip("file system cannot hold a sparse 5 TiB file")
    report = run(src, f"s3://{bucket}", s3_endpoint, tmp_path)
    assert report.uploaded == 1
    [p] = report.problems
    assert p.path == "huge.bin" and p.kind == "too-large" and "object limit" in p.reason
    assert report.exit_code == 1


# ---------------------------------------------------------------- re-runs, manifest, resume


def test_rerun_skips_without_head_requests(tree, bucket, proxy, tmp_path):
    first = run(tree, f"s3://{bucket}/p", proxy.url, tmp_path)
    assert first.ok and first.uploaded == 7
    proxy.reset()
    second = run(tree, f"s3://{bucket}/p", proxy.url, tmp_path)
    assert second.ok and second.uploaded == 0 and second.unchanged == 7
    assert proxy.count("HEAD") == 0 and proxy.count("PUT") == 0
    assert proxy.count() <= 1  # the start-up check (one LIST of max 1 key)


def test_touched_but_identical_file_is_not_uploaded(tree, bucket, proxy, tmp_path):
    run(tree, f"s3://{bucket}", proxy.url, tmp_path)
    f = tree / "2024/01/a.jpg"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 5_000_000_000))
    write(tree / "docs/readme.txt", b"changed\n")
    proxy.reset()
    report = run(tree, f"s3://{bucket}", proxy.url, tmp_path)
    assert report.uploaded_paths == ["docs/readme.txt"] and report.unchanged == 6
    assert proxy.count("PUT") == 1


def test_missing_manifest_is_rebuilt_from_a_listing(tree, bucket, proxy, tmp_path):
    write(tree / "big.bin", os.urandom(6 * st.MiB))
    kw = dict(multipart_threshold=5 * st.MiB, multipart_chunksize=5 * st.MiB, state_dir=tmp_path / "s1")
    job = sync.make_job(tree, f"s3://{bucket}", endpoint_url=proxy.url, **kw)
    plan = sync.plan_upload(job)
    for b in plan.batches(2):
        sync.upload_batch(job, b)
    proxy.reset()
    report = run(tree, f"s3://{bucket}", proxy.url, tmp_path, state_dir=tmp_path / "s2")  # no manifest there
    assert report.ok and report.uploaded == 0 and report.unchanged == 8
    assert proxy.count("PUT") == 0 and proxy.count("POST") == 0
    assert proxy.count("HEAD") <= 1  # only the multipart object (part size differs from the default)
    assert any("listing" in n for n in report.notes)
    again = run(tree, f"s3://{bucket}", proxy.url, tmp_path, state_dir=tmp_path / "s2")
    assert again.unchanged == 8


def test_transient_failures_leave_the_rest_recorded(tree, bucket, proxy, tmp_path):
    job = sync.make_job(tree, f"s3://{bucket}", endpoint_url=proxy.url, state_dir=tmp_path / "state",
                        max_attempts=1)
    plan = sync.plan_upload(job)
    batch = sync.Batch(0, plan.todo)
    proxy.add(method="PUT", path_re="readme", status=503, times=1)
    with pytest.raises(sync.TransientError) as info:
        sync.upload_batch(job, batch)
    assert info.value.context["failed"] == ["docs/readme.txt"]
    assert Manifest(job.manifest).count() == 6  # everything else is recorded
    result = sync.upload_batch(job, batch)  # the retry: only the failed file goes up again
    assert sorted(result.uploaded) == sorted(t.rel for t in batch.files)  # counted once, as uploaded
    assert proxy.count("PUT") == 7 + 1


# ---------------------------------------------------------------- problems, never silent


def test_problems_each_get_a_line_and_the_rest_uploads(tmp_path, bucket, s3_endpoint, monkeypatch):
    src = tmp_path / "src"
    write(src / "good.jpg", b"good")
    write(tmp_path / "outside.jpg", b"outside")
    os.symlink(tmp_path / "outside.jpg", src / "link.jpg")
    os.symlink(tmp_path / "nowhere", src / "broken.jpg")
    os.mkfifo(src / "pipe")
    write(Path(os.fsdecode(bytes(src) + b"/bad-\xff.jpg")), b"latin1 name")
    write(src / "ctl\x01.jpg", b"control char")
    deep = src / ("d" * 250) / ("e" * 250) / ("f" * 250) / ("g" * 250) / ("h" * 100)
    write(deep / "long.jpg", b"long key")
    secret = write(src / "secret.jpg", b"no access")
    real_open = os.open

    def deny(path, flags, *a, **k):
        if os.fspath(path) == str(secret):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(sync.os, "open", deny)
    before = snapshot(src)
    report = run(src, f"s3://{bucket}", s3_endpoint, tmp_path)
    assert snapshot(src) == before  # the source is never changed
    assert report.uploaded_paths == ["good.jpg"]
    kinds = {p.path: (p.kind, p.reason) for p in report.problems}
    assert kinds["link.jpg"][0] == "symlink" and "--follow-symlinks" in kinds["link.jpg"][1]
    assert kinds["broken.jpg"][0] == "symlink"
    assert kinds["pipe"][0] == "not-regular"
    assert kinds["secret.jpg"] == ("unreadable", "cannot open (Permission denied)")
    assert any(k == "invalid-name" and "UTF-8" in r for k, r in kinds.values())
    assert any(k == "invalid-name" and "control" in r for k, r in kinds.values())
    assert any(k == "invalid-name" and "1024-byte" in r for k, r in kinds.values())
    assert len(report.problems) == 7 and report.exit_code == 1
    json.dumps(report.model_dump(mode="json"))  # every line is printable / JSON-safe


def test_follow_symlinks_uploads_targets_and_stops_loops(tmp_path, bucket, s3, s3_endpoint):
    src = tmp_path / "src"
    write(src / "a/real.jpg", b"real")
    write(tmp_path / "shared/logo.png", b"logo")
    os.symlink(tmp_path / "shared", src / "shared")
    os.symlink(src / "a", src / "a/loop")
    report = run(src, f"s3://{bucket}", s3_endpoint, tmp_path, follow_symlinks=True)
    assert sorted(report.uploaded_paths) == ["a/real.jpg", "shared/logo.png"]
    assert [p.kind for p in report.problems] == ["symlink"] and "loop" in report.problems[0].reason
    assert s3.get_object(Bucket=bucket, Key="shared/logo.png")["Body"].read() == b"logo"


def test_file_changing_during_upload_is_detected(tree, bucket, s3_endpoint, tmp_path, monkeypatch):
    job = sync.make_job(tree, f"s3://{bucket}", endpoint_url=s3_endpoint, state_dir=tmp_path / "state")
    storage = st.open_storage(job.storage)
    real_put = storage.put

    def put_while_writing(key, data, md5, ctype):
        if key.endswith("a.jpg"):
            with open(tree / "2024/01/a.jpg", "ab") as fh:  # the app writes while golive uploads
                fh.write(b"more")
        return real_put(key, data, md5, ctype)

    monkeypatch.setattr(storage, "put", put_while_writing)
    plan = sync.plan_upload(job)
    results = [sync.upload_batch(job, b) for b in plan.batches(1)]
    problems = [p for r in results for p in r.problems]
    assert [(p.path, p.kind) for p in problems] == [("2024/01/a.jpg", "changed")]
    assert "2024/01/a.jpg" not in Manifest(job.manifest).load()
    monkeypatch.undo()
    report = run(tree, f"s3://{bucket}", s3_endpoint, tmp_path)  # a re-run uploads the new version
    assert report.uploaded_paths == ["2024/01/a.jpg"] and report.ok


def test_name_rules():
    assert name_problem("a/b.jpg", "p/a/b.jpg", 1024) is None
    assert name_problem("中文/照片 1.jpg", "中文/照片 1.jpg", 1024) is None
    assert "control" in name_problem("a\nb", "a\nb", 1024)
    assert "1024" in name_problem("x" * 1100, "x" * 1100, 1024)
    with pytest.raises(SourceError, match="does not exist"):
        scan_source("/nonexistent/uploads")


# ---------------------------------------------------------------- dry run, verify, report, file://


def test_dry_run_changes_nothing(tree, bucket, s3, s3_endpoint, tmp_path):
    report = run(tree, f"s3://{bucket}", s3_endpoint, tmp_path, dry_run=True)
    assert report.dry_run and report.uploaded == 7 and report.uploaded_bytes == sum(
        f.stat().st_size for f in tree.rglob("*") if f.is_file())
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert not (tmp_path / "state").exists()
    run(tree, f"s3://{bucket}", s3_endpoint, tmp_path)
    write(tree / "docs/readme.txt", b"changed\n")
    os.utime(tree / "noext", ns=(1, 1))  # touched, same content: a dry run hashes and says unchanged
    again = run(tree, f"s3://{bucket}", s3_endpoint, tmp_path, dry_run=True)
    assert again.uploaded_paths == ["docs/readme.txt"] and again.unchanged == 6


def test_verify_lists_missing_different_extra(tree, bucket, s3, s3_endpoint, tmp_path):
    assert run(tree, f"s3://{bucket}/m", s3_endpoint, tmp_path).ok
    job = sync.make_job(tree, f"s3://{bucket}/m", endpoint_url=s3_endpoint)
    assert verify_files(job).ok
    s3.delete_object(Bucket=bucket, Key="m/noext")
    s3.put_object(Bucket=bucket, Key="m/docs/readme.txt", Body=b"HELLO\n")  # same size, other bytes
    s3.put_object(Bucket=bucket, Key="m/2024/01/b.png", Body=b"short")
    s3.put_object(Bucket=bucket, Key="m/stray.txt", Body=b"?")
    s3.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"?")  # outside the prefix: not extra
    report = verify_files(job)
    assert report.missing == ["noext"]
    assert {d.path: d.reason for d in report.different} == {
        "docs/readme.txt": "content differs (checksum)",
        "2024/01/b.png": "size: local 1000 bytes, destination 5 bytes"}
    assert report.extra == ["m/stray.txt"]
    assert report.matched == 4 and report.exit_code == 1


def test_report_file_and_file_destination(tree, tmp_path):
    dest_dir = tmp_path / "bucket-dir"
    out = tmp_path / "report.json"
    report = sync.upload_folder(tree, f"file://{dest_dir}/media", state_dir=tmp_path / "state", report_path=out)
    assert report.ok and report.uploaded == 7
    assert (dest_dir / "media/相册/猫 photo.webp").read_bytes() == (tree / "相册/猫 photo.webp").read_bytes()
    data = json.loads(out.read_text())
    assert data["uploaded"] == 7 and data["problems"] == [] and data["dest"].startswith("file://")
    job = sync.make_job(tree, f"file://{dest_dir}/media")
    assert verify_files(job).ok
    (dest_dir / "media/noext").write_bytes(b"DATA")
    assert [d.path for d in verify_files(job).different] == ["noext"]
    assert not list(dest_dir.rglob(".golive-tmp-*"))


def test_bad_destinations():
    with pytest.raises(ConfigError, match="3 to 63"):
        sync.make_job("/tmp", "s3://ab")
    with pytest.raises(ConfigError, match="unknown scheme"):
        sync.make_job("/tmp", "gs://bucket/x")
    with pytest.raises(ConfigError, match="absolute path"):
        sync.make_job("/tmp", "file://relative/dir")


def test_manifest_survives_a_crash_mid_write(tmp_path):
    m = Manifest(tmp_path / "m.sqlite", source="/s", dest="s3://b")
    m.record(sync.Entry("a", "a", 1, 1, "x", "x"))
    # a second process sees committed rows right away (what a resumed run after kill -9 reads)
    conn = sqlite3.connect(tmp_path / "m.sqlite")
    assert conn.execute("select rel from files").fetchall() == [("a",)]
    assert conn.execute("select v from meta where k='dest'").fetchone() == ("s3://b",)

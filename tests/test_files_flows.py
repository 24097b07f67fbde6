"""The Prefect layer for files: retries on transient faults (503, timeouts) injected by a proxy in front
of moto's S3 server, no retries on terminal errors, failed batches reported, credentials from a Secret
block, and the verify flow."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from golive.errors import ConnectionFailed, MigrationFailed, TerminalError, TransientError, ValidationFailed
from golive.files import sync


@pytest.fixture
def src(tmp_path) -> Path:
    root = tmp_path / "uploads"
    for i in range(12):
        p = root / f"d{i % 3}" / f"f{i:02d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(2000 + i))
    return root


@pytest.fixture
def fast_retries(monkeypatch):
    """Shorter task retry delays, so retries are exercised without waiting seconds."""
    import tasks.files as tf

    monkeypatch.setattr(tf, "upload_batch", tf.upload_batch.with_options(retries=2, retry_delay_seconds=0.1))


def params(src, dest, endpoint, tmp_path, **kw):
    from flows.migrate_files import MigrateFilesParams

    return MigrateFilesParams(source=str(src), dest=dest, endpoint_url=endpoint, workers=3,
                              state_dir=str(tmp_path / "state"), **kw)


def test_retry_condition_only_retries_transient_errors():
    from prefect.states import Failed

    from tasks.files import retry_only_transient

    assert retry_only_transient(None, None, Failed(data=TransientError("503 SlowDown")))
    assert not retry_only_transient(None, None, Failed(data=ConnectionFailed("bad key")))
    assert not retry_only_transient(None, None, Failed(data=ValueError("bug")))


def test_503s_are_retried_by_the_batch_task(prefect_api, src, bucket, proxy, tmp_path, s3):
    from flows.migrate_files import migrate_files

    # botocore gets one attempt per request, so only Prefect's task retry can get these files up
    proxy.add(method="PUT", path_re=r"/f0[0-2]\.jpg", status=503, code="SlowDown", times=3)
    report = migrate_files(params(src, f"s3://{bucket}/r", proxy.url, tmp_path, max_attempts=1))
    assert report.ok and report.uploaded == 12
    assert proxy.count("PUT", status=503) == 3
    assert proxy.count("PUT", status=200) == 12
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 12


def test_slow_responses_time_out_and_are_retried(prefect_api, src, bucket, proxy, tmp_path, fast_retries):
    from prefect import flow

    import tasks.files as tf

    job = sync.make_job(src, f"s3://{bucket}", endpoint_url=proxy.url, state_dir=tmp_path / "state", workers=2)
    job = job.model_copy(update={"storage": job.storage.model_copy(update={"read_timeout": 0.3, "max_attempts": 1})})
    proxy.add(method="PUT", status=None, delay=0.8, times=2)  # two responses arrive after the timeout

    @flow(persist_result=False)
    def upload_all():
        plan = tf.plan_upload(job)
        return sync.summarize(job, plan, tf.upload_batches(job, plan.batches(job.workers)), 0)

    report = upload_all()
    assert report.ok and report.uploaded == 12
    for _ in range(50):  # the timed-out requests reach moto late, after their retries
        if proxy.count("PUT") >= 14:
            break
        time.sleep(0.1)
    assert proxy.count("PUT") == 14  # the two slow ones went up twice


def test_terminal_errors_are_not_retried_and_are_reported(prefect_api, src, bucket, proxy, tmp_path,
                                                          fast_retries):
    from flows.migrate_files import migrate_files

    proxy.add(method="PUT", path_re=r"/f05\.jpg", status=400, code="InvalidArgument", times=-1)
    with pytest.raises(MigrationFailed) as info:
        migrate_files(params(src, f"s3://{bucket}", proxy.url, tmp_path))
    report = sync.UploadReport.model_validate(info.value.context["report"])
    assert report.uploaded == 11
    [p] = report.problems
    assert p.path == "d2/f05.jpg" and p.kind == "failed" and "InvalidArgument" in p.reason
    assert proxy.count("PUT", status=400) == 1  # not retried


def test_a_batch_failing_after_its_retries_is_reported_not_lost(prefect_api, src, bucket, proxy, tmp_path,
                                                                 fast_retries):
    from flows.migrate_files import migrate_files

    proxy.add(method="PUT", path_re=r"/f07\.jpg", status=503, times=-1)
    out = tmp_path / "report.json"
    with pytest.raises(MigrationFailed):
        migrate_files(params(src, f"s3://{bucket}", proxy.url, tmp_path, max_attempts=1, report_path=str(out)))
    report = sync.UploadReport.model_validate_json(out.read_text())
    assert report.uploaded == 11
    assert [(p.path, p.kind) for p in report.problems] == [("d1/f07.jpg", "failed")]
    assert "transient" in report.problems[0].reason
    assert proxy.count("PUT", status=503) == 3  # first attempt + 2 task retries


def test_bad_credentials_fail_fast_without_retries(prefect_api, src, bucket, proxy, tmp_path):
    from flows.migrate_files import migrate_files

    proxy.add(status=403, code="InvalidAccessKeyId", times=-1)
    with pytest.raises(ConnectionFailed, match="refused the credentials .InvalidAccessKeyId."):
        migrate_files(params(src, f"s3://{bucket}", proxy.url, tmp_path))
    assert proxy.count() == 1  # the start-up check, once


def test_credentials_from_a_prefect_secret_block(prefect_api, src, bucket, proxy, tmp_path):
    from prefect.blocks.system import Secret

    from flows.migrate_files import migrate_files

    name = "golive-test-" + uuid.uuid4().hex[:8]
    Secret(value={"aws_access_key_id": "BLOCKKEY", "aws_secret_access_key": "s3cr3t-from-block"}).save(name)
    report = migrate_files(params(src, f"s3://{bucket}", proxy.url, tmp_path, credentials_block=name))
    assert report.ok
    assert {s.akid for s in proxy.seen} == {"BLOCKKEY"}
    assert "s3cr3t-from-block" not in report.model_dump_json()
    with pytest.raises(TerminalError, match="not found"):
        migrate_files(params(src, f"s3://{bucket}", proxy.url, tmp_path, credentials_block="no-such-block"))


def test_verify_flow(prefect_api, src, bucket, s3_endpoint, tmp_path, s3):
    from flows.migrate_files import migrate_files
    from flows.verify_files import verify_files

    p = params(src, f"s3://{bucket}", s3_endpoint, tmp_path)
    migrate_files(p)
    assert verify_files(p).matched == 12
    s3.delete_object(Bucket=bucket, Key="d0/f00.jpg")
    with pytest.raises(ValidationFailed) as info:
        verify_files(p)
    assert info.value.context["report"]["missing"] == ["d0/f00.jpg"]


def test_a_prefetched_plan_is_taken_once_by_the_next_run(prefect_api, src, bucket, proxy, tmp_path):
    from flows.migrate_files import job_from_params, migrate_files

    p = params(src, f"s3://{bucket}/pre", proxy.url, tmp_path)
    plan = sync.prefetch_plan(job_from_params(p))  # what the CLI does while Prefect starts
    assert len(plan.todo) == 12 and proxy.count("GET") == 2  # the start-up check and the listing
    report = migrate_files(p)
    assert report.ok and report.uploaded == 12
    assert proxy.count("GET") == 2  # the flow's check and plan tasks asked nothing again
    again = migrate_files(p)  # nothing prefetched this time: its own check (the manifest saves the listing)
    assert again.unchanged == 12 and proxy.count("GET") == 3


def test_flow_parameters_are_stored_as_prefect_would_store_them():
    """``ModelParamsFlow`` skips FastAPI's encoder (0.3-0.5 s of import per CLI run) with the same result."""
    import json

    from fastapi.encoders import jsonable_encoder
    from pydantic import SecretStr

    from flows.migrate_files import MigrateFilesParams, migrate_files
    from flows.rewrite_paths import RewritePathsParams, rewrite_paths

    m = MigrateFilesParams(source="/srv/app/uploads", dest="s3://b/p", credentials_block="blk", workers=3)
    assert migrate_files.serialize_parameters({"params": m}) == {"params": jsonable_encoder(m)}
    r = RewritePathsParams(db=SecretStr("postgresql://app:pw-4711@db/app"), table="images", column="path",
                           to="s3://b/{key}")
    stored = rewrite_paths.serialize_parameters({"params": r})
    assert stored == {"params": jsonable_encoder(r)} and "pw-4711" not in json.dumps(stored)
    assert migrate_files.serialize_parameters({"x": 1, "params": m})["x"] == 1  # other values: Prefect's way


def test_a_flow_run_from_the_cli_does_not_import_fastapi(prefect_api, src, tmp_path):
    import subprocess
    import sys

    code = ("import sys\n"
            "from flows.foreground import run_in_foreground\n"
            "from flows.migrate_files import MigrateFilesParams, migrate_files\n"
            f"run_in_foreground(migrate_files, MigrateFilesParams(source={str(src)!r}, "
            f"dest={(tmp_path / 'out').as_uri()!r}, state_dir={str(tmp_path / 'state')!r}))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"

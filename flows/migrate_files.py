"""Flow: upload an uploads folder to S3-compatible storage (or file:///dir), verified object by object.

Run it from the CLI (``golive migrate files``), from Python (``migrate_files(MigrateFilesParams(...))``)
or from a deployment (entrypoint ``flows/migrate_files.py:migrate_files``); the parameters are one
pydantic model, so the Prefect UI renders them as a form.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from flows.foreground import model_params_flow
from golive.errors import MigrationFailed
from golive.files import sync
from tasks import files as t


class MigrateFilesParams(BaseModel):
    """Parameters of ``migrate_files`` (the CLI options of ``golive migrate files``)."""

    source: str = Field(description="The uploads folder, e.g. ./uploads (never modified)")
    dest: str = Field(description="s3://bucket/prefix or file:///absolute/dir")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, OSS, TOS, moto); empty for AWS")
    region: str | None = Field(None, description="Region; the AWS chain's default when empty")
    addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="S3 addressing style")
    workers: int = Field(8, ge=1, le=256, description="Files uploaded at the same time")
    state_dir: str = Field(sync.DEFAULT_STATE_DIR, description="Where golive keeps the upload manifest")
    follow_symlinks: bool = Field(False, description="Upload what symlinks point to (default: report them)")
    create_bucket: bool = Field(False, description="Create the bucket if it does not exist")
    credentials_block: str | None = Field(None, description=(
        "Name of a Prefect Secret block holding {aws_access_key_id, aws_secret_access_key[, aws_session_token]}; "
        "empty: the standard AWS chain (environment, profile, instance role)"))
    multipart_threshold_mb: int = Field(16, ge=1, le=256, description=(
        "Files above this many MiB go up in parts; smaller ones are read into memory whole (per worker)"))
    multipart_chunk_mb: int = Field(8, ge=5, le=512, description="Part size in MiB (raised to fit 10,000 parts)")
    max_attempts: int = Field(4, ge=1, le=20, description="Attempts per S3 request (botocore) before the "
                                                          "batch fails and is retried as a whole")
    report_path: str | None = Field(None, description="Write the JSON report here")


def load_credentials(block_name: str | None) -> dict | None:
    """AWS credentials from a Prefect Secret block (JSON object), or None for the standard chain."""
    if not block_name:
        return None
    import json

    from prefect.blocks.system import Secret

    from golive.errors import ConfigError

    try:
        value = Secret.load(block_name).get()
    except ValueError as exc:
        raise ConfigError(f"Prefect Secret block {block_name!r} not found: {exc}") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"Secret block {block_name!r} must hold a JSON object with aws_access_key_id and "
                              "aws_secret_access_key") from None
    if not isinstance(value, dict) or not value.get("aws_access_key_id") or not value.get("aws_secret_access_key"):
        raise ConfigError(f"Secret block {block_name!r} must hold aws_access_key_id and aws_secret_access_key")
    return value


def job_from_params(p: MigrateFilesParams) -> sync.UploadJob:
    return sync.make_job(p.source, p.dest, endpoint_url=p.endpoint_url, region=p.region,
                         addressing_style=p.addressing_style, workers=p.workers, state_dir=p.state_dir,
                         follow_symlinks=p.follow_symlinks, create_bucket=p.create_bucket,
                         multipart_threshold=p.multipart_threshold_mb << 20,
                         multipart_chunksize=p.multipart_chunk_mb << 20,
                         credentials=load_credentials(p.credentials_block), max_attempts=p.max_attempts)


@model_params_flow(name="migrate-files", persist_result=False, log_prints=False)
def migrate_files(params: MigrateFilesParams) -> sync.UploadReport:
    """Upload ``params.source`` to ``params.dest``; every file ends up uploaded and verified, skipped as
    unchanged, or listed in the report with a reason. Fails (after writing the report) if any file did
    not make it; the exception carries the report as ``.context["report"]``."""
    started = time.time()
    # 1. Credentials and a destination that answers
    job = job_from_params(params)
    t.check_destination(job)
    # 2. Scan the source; compare with the manifest (or one listing of the destination)
    plan = t.plan_upload(job)
    # 3. Upload batches, at most `workers` at a time, each retried on transient errors
    results = t.upload_batches(job, plan.batches(job.workers))
    # 4. Report
    report = sync.summarize(job, plan, results, started)
    sync.write_report(report, params.report_path)
    if not report.ok:
        raise MigrationFailed(f"{len(report.problems)} file(s) not uploaded: {report.summary()}",
                              report=report.model_dump(mode="json"))
    return report

"""Flow: upload an uploads folder to S3-compatible storage (or file:///dir), verified object by object.

Run it from the CLI (``golive migrate files``), from Python (``migrate_files(MigrateFilesParams(...))``)
or from a deployment (entrypoint ``flows/migrate_files.py:migrate_files``); the parameters are one
pydantic model, so the Prefect UI renders them as a form.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from flows.artifacts import publish_upload
from flows.foreground import model_params_flow
from golive.errors import MigrationFailed
from golive.files import sync
from tasks import files as t


class MigrateFilesParams(BaseModel):
    """Parameters of ``migrate_files`` and ``verify_files`` (the CLI options of ``golive migrate files``).

    The bucket is ``dest`` (with ``endpoint_url``, ``region``, ``addressing_style`` and the AWS chain or
    ``credentials_block``), or a prefect-aws ``S3Bucket`` block named in ``bucket_block``, which brings its
    own credentials, region and endpoint; fields given here win over the block's.
    """

    source: str = Field(title="Uploads folder", description="The folder to upload, e.g. /srv/app/uploads "
                                                            "(only read, never modified)")
    dest: str = Field("", title="Destination", description=(
        "s3://bucket/prefix or file:///absolute/dir; leave empty when Bucket block names an S3Bucket block"))
    bucket_block: str | None = Field(None, title="Bucket block", description=(
        "Name of a prefect-aws S3Bucket block (bucket, folder and credentials); instead of Destination"))
    credentials_block: str | None = Field(None, title="Credentials block", description=(
        "Name of a prefect-aws AwsCredentials or MinIOCredentials block, or of a Secret block holding "
        "{aws_access_key_id, aws_secret_access_key[, aws_session_token]} (aws-credentials/NAME, secret/NAME "
        "pick the type); empty: the bucket block's, or the standard AWS chain (environment, profile, role)"))
    endpoint_url: str | None = Field(None, title="Endpoint URL", description=(
        "S3-compatible endpoint (MinIO, OSS, TOS, moto), e.g. https://oss-cn-hangzhou.aliyuncs.com; empty for AWS"))
    region: str | None = Field(None, title="Region", description="Region; the AWS chain's default when empty")
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", title="Addressing style", description="S3 addressing style: virtual for OSS/TOS, path for MinIO")
    workers: int = Field(8, ge=1, le=256, title="Workers", description="Files uploaded at the same time")
    state_dir: str = Field(sync.DEFAULT_STATE_DIR, title="State folder", description=(
        "Where golive keeps the upload manifest (relative to the worker's working directory)"))
    follow_symlinks: bool = Field(False, title="Follow symlinks",
                                  description="Upload what symlinks point to (default: report them)")
    create_bucket: bool = Field(False, title="Create bucket", description="Create the bucket if it does not exist")
    multipart_threshold_mb: int = Field(16, ge=1, le=256, title="Multipart threshold (MiB)", description=(
        "Files above this many MiB go up in parts; smaller ones are read into memory whole (per worker)"))
    multipart_chunk_mb: int = Field(8, ge=5, le=512, title="Part size (MiB)",
                                    description="Part size in MiB (raised to fit 10,000 parts)")
    max_attempts: int = Field(4, ge=1, le=20, title="Attempts per request", description=(
        "Attempts per S3 request (botocore) before the batch fails and is retried as a whole"))
    report_path: str | None = Field(None, title="Report file", description="Write the JSON report here")


def load_credentials(block_name: str | None) -> dict | None:
    """AWS keys from a block (see ``flows.credentials.load_credentials``), or None for the standard chain."""
    from flows.credentials import load_credentials as load

    return load(block_name)


def job_from_params(p: MigrateFilesParams) -> sync.UploadJob:
    """The upload job: the parameters, completed by the blocks they name (blocks are read only when named)."""
    if p.bucket_block and p.dest:
        from golive.errors import ConfigError

        raise ConfigError(f"give Destination ({p.dest}) or Bucket block ({p.bucket_block}), not both")
    blocks = None
    if p.bucket_block or p.credentials_block:
        from flows.credentials import s3_settings

        blocks = s3_settings(credentials_block=p.credentials_block, bucket_block=p.bucket_block)
    dest = blocks.dest if p.bucket_block else p.dest
    style = p.addressing_style
    if style == "auto" and blocks and blocks.addressing_style:
        style = blocks.addressing_style
    return sync.make_job(p.source, dest, endpoint_url=p.endpoint_url or (blocks and blocks.endpoint_url),
                         region=p.region or (blocks and blocks.region), addressing_style=style,
                         workers=p.workers, state_dir=p.state_dir,
                         follow_symlinks=p.follow_symlinks, create_bucket=p.create_bucket,
                         multipart_threshold=p.multipart_threshold_mb << 20,
                         multipart_chunksize=p.multipart_chunk_mb << 20,
                         credentials=blocks.credentials if blocks else None, max_attempts=p.max_attempts)


@model_params_flow(name="migrate-files", persist_result=False, log_prints=False)
def migrate_files(params: MigrateFilesParams) -> sync.UploadReport:
    """Upload ``params.source`` to ``params.dest``; every file ends up uploaded and verified, skipped as
    unchanged, or listed in the report with a reason. Fails (after writing the report) if any file did
    not make it; the exception carries the report as ``.context["report"]``.

    Args:
        params: The uploads folder, the bucket (or a bucket block), credentials and upload options.
    """
    started = time.time()
    # 1. Credentials and a destination that answers
    job = job_from_params(params)
    t.check_destination(job)
    # 2. Scan the source; compare with the manifest (or one listing of the destination)
    plan = t.plan_upload(job)
    # 3. What an earlier run uploaded (the manifest, confirmed by the listing): Cached batches; then upload
    #    the rest in batches, at most `workers` at a time, each retried on transient errors
    t.show_uploaded(job, plan.batches(job.workers, files=plan.done))
    results = t.upload_batches(job, plan.batches(job.workers))
    # 4. Report
    report = sync.summarize(job, plan, results, started)
    sync.write_report(report, params.report_path)
    publish_upload(report)
    if not report.ok:
        raise MigrationFailed(f"{len(report.problems)} file(s) not uploaded: {report.summary()}",
                              report=report.model_dump(mode="json"))
    return report

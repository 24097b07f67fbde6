"""Flow: rewrite a file-path column to object keys or URLs, in primary-key batches, reversibly.

Only rows whose file the upload manifest records as uploaded and verified are changed; the others are
reported. Old and new values go to ``_golive_path_map`` in the same transaction as each batch.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field, SecretStr

from flows.artifacts import publish_rewrite
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from golive.files import rewrite as rw
from golive.files import sync
from tasks import files as t


class RewritePathsParams(BaseModel):
    """Parameters of ``rewrite_paths`` (the options of ``golive rewrite-paths``)."""

    db: SecretStr = Field(title="Database", description=(
        "The app's database: postgresql://..., mysql://..., sqlite:///app.db or embedded://DIR, or block:NAME "
        "(a Prefect Secret block holding the URL, so no password is stored with the run)"))
    table: str = Field(title="Table", description="Table holding the file paths, e.g. images")
    column: str = Field(title="Column", description="Column holding the file paths, e.g. path")
    to: str = Field("", title="New value template", description=(
        "s3://bucket/{key} or https://cdn.example.com/{key}; placeholders {key}, {path}, {bucket}"))
    strip_prefix: str = Field("", title="Strip prefix", description=(
        "Part of the stored value before the path under the uploads folder, e.g. uploads/"))
    dest: str | None = Field(None, title="Upload destination", description=(
        "Which upload to trust (its s3://bucket/prefix); default: from the template"))
    manifest: str | None = Field(None, title="Manifest file", description="Path of the upload manifest to trust")
    state_dir: str = Field(sync.DEFAULT_STATE_DIR, title="State folder",
                           description="Where golive keeps upload manifests")
    batch_size: int = Field(1000, ge=1, le=100_000, title="Batch size", description="Rows per transaction")
    reverse: bool = Field(False, title="Reverse", description="Put back the values golive replaced")
    dry_run: bool = Field(False, title="Dry run", description="Count and show samples; change nothing")
    report_path: str | None = Field(None, title="Report file", description="Write the JSON report here")


@model_params_flow(name="rewrite-paths", persist_result=False, log_prints=False)
def rewrite_paths(params: RewritePathsParams) -> rw.RewriteReport:
    """Rewrite (or reverse) ``params.table.params.column``; returns counts and samples.

    Args:
        params: The database, the table and column, the new value's template and the upload to trust.
    """
    started = time.time()
    db = resolve_url(params.db, "db")  # block:NAME: the URL it holds, in this process only
    # 1. Options, manifest and table
    job = rw.make_rewrite_job(db.get_secret_value(), params.table, params.column, to=params.to,
                              strip_prefix=params.strip_prefix, manifest=params.manifest, dest=params.dest,
                              state_dir=params.state_dir, batch_size=params.batch_size, reverse=params.reverse)
    pk = t.check_rewrite_target(job)
    report = rw.new_report(job, params.dry_run, started)
    # 2. Batches in key order, one transaction each
    after = None
    while True:
        batch = t.rewrite_batch(job, pk, after, params.dry_run)
        if batch.scanned:
            report.add(batch)
        if batch.last_pk is None or batch.scanned < job.batch_size:
            break
        after = batch.last_pk
    # 3. Report
    rw.finish(job, report, params.dry_run)
    report.seconds = round(time.time() - started, 3)
    sync.write_report(report, params.report_path)
    publish_rewrite(report)
    return report

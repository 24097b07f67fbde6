"""Flow ``archive-database``: stream a database's change log into object storage, continuously.

PostgreSQL: its WAL through ``pg_receivewal`` on a replication slot, plus base backups (``pg_basebackup``);
MySQL/MariaDB: its binlog through ``mariadb-binlog --raw``, plus golive's consistent dumps with their binlog
position. The bucket is at most ``flush_seconds`` behind the server. The deployment runs it on a schedule with a
concurrency limit of one: when the process dies, the next scheduled run starts it again (the archive's lock
refuses a second archiver while the first one's heartbeat is fresh).
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field, SecretStr

from flows.artifacts import artifact_key
from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from golive import archive as ar
from golive.report import write_json
from tasks.archive import run_archiver


class ArchiveParams(BaseModel):
    db: SecretStr = Field(title="Database", description="postgresql://… or mysql://… (a user with replication "
                                                        "rights), or block:NAME")
    to: str = Field(title="Where", description="s3://bucket/prefix or file:///dir (the archive is <to>/archive/<name>)")
    name: str | None = Field(None, title="Name", description="The archive's name (default: the database's)")
    flush_seconds: float = Field(30, gt=0, le=60, title="Flush every (s)", description="The RPO: what is in the "
                                                                                       "bucket is at most this far behind")
    marker_seconds: float = Field(60, ge=0, title="Marker row every (s)", description="0: none (drills check them)")
    base_every_hours: float = Field(24, ge=0, title="Base backup every (h)")
    spool_dir: str | None = Field(None, title="Spool directory", description="Kept across restarts (default "
                                                                             "~/.golive/archive/<name>)")
    seconds: float | None = Field(None, title="Stop after (s)", description="Empty: run until cancelled")
    create_bucket: bool = Field(False, title="Create the bucket")
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage and keys")
    report_path: str | None = Field(None, title="Report file")


@model_params_flow(name="archive-database", persist_result=False, log_prints=False)
def archive_database(params: ArchiveParams) -> dict:
    """Stream the database's change log into object storage until cancelled.

    Args:
        params: The database, where its archive goes, how often to flush, mark and take base backups.
    """
    # 1. Run the archiver (receiver, segments, flushes, markers, base backups) until cancelled
    options = ar.ArchiveOptions(name=params.name, flush_seconds=params.flush_seconds,
                                marker_seconds=params.marker_seconds, base_every_hours=params.base_every_hours,
                                spool_dir=params.spool_dir, seconds=params.seconds, create_bucket=params.create_bucket,
                                encryption_key=encryption_key(params.storage), storage=storage_options(params.storage))
    result = run_archiver(resolve_secret(params.db), params.to, options)
    # 2. Report: the recovery window it leaves
    report = result.model_dump(mode="json")
    w = result.window
    create_markdown_artifact(f"# Archive {result.name}\n\n- {result.url}\n- recovery window: {w.get('earliest')} to "
                             f"{w.get('latest')}\n- {result.segments_stored} segments stored, {result.flushes} "
                             f"flushes, {result.restarts} receiver restarts, worst flush lag "
                             f"{result.max_flush_lag_seconds} s",
                             key=artifact_key("archive", None, result.name), description="recovery window")
    if params.report_path:
        write_json(params.report_path, report)
    return report

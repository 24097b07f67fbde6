"""Flow ``prune-backups``: apply a grandfather-father-son retention policy to the backups under a URL."""

from __future__ import annotations

from pydantic import BaseModel, Field

from flows.backup_params import StorageParams, storage_options
from flows.foreground import model_params_flow
from golive import backup as bk
from golive.report import write_json
from tasks.backup import run_prune


class PruneParams(BaseModel):
    at: str = Field(title="Backups at", description="s3://bucket/prefix or file:///dir")
    retention: bk.RetentionPolicy = Field(default_factory=bk.RetentionPolicy, title="Retention policy")
    dry_run: bool = Field(False, title="Dry run", description="Only list what would be removed")
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage")
    report_path: str | None = Field(None, title="Report file")


@model_params_flow(name="prune-backups", persist_result=False, log_prints=False)
def prune_backups(params: PruneParams) -> dict:
    """Delete the backups the retention policy does not keep (never the newest verified one).

    Args:
        params: Where the backups are, the retention policy, and dry_run to only list what would go.
    """
    # 1. Keep what the policy keeps (and the newest verified backup); delete the rest, manifests first
    result = run_prune(params.at, params.retention, params.dry_run, storage_options(params.storage))
    # 2. Report
    report = result.model_dump(mode="json")
    if params.report_path:
        write_json(params.report_path, report)
    return report

"""Flow ``restore-database``: restore a backup into a database (refused when it is not empty unless
``force``), then compare it with the manifest. For manual runs from the Prefect UI."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import BaseModel, Field, SecretStr

from flows.backup_database import artifact_key
from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from golive import backup as bk
from golive.report import write_json
from tasks.backup import run_restore


class RestoreParams(BaseModel):
    source: str = Field(title="Backup", description="s3://bucket/prefix/<ID> or …/latest (file:///dir/<ID> alike)")
    target: SecretStr = Field(title="Target database", description="URL, or block:NAME (a Secret block holding it)")
    force: bool = Field(False, title="Replace a non-empty target", description=(
        "Everything in the target is dropped first; afterwards it equals the backup"))
    jobs: int = Field(2, ge=1, le=32, title="Parallel restore workers")
    no_owner: bool = Field(False, title="PostgreSQL: skip owners and privileges")
    scratch_dir: str | None = Field(None, title="Scratch directory", description="Where objects are downloaded first")
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage and keys")
    report_path: str | None = Field(None, title="Report file")


@model_params_flow(name="restore-database", persist_result=False, log_prints=False)
def restore_database(params: RestoreParams) -> dict:
    """Restore a backup into a database and compare it with the backup's manifest.

    Args:
        params: The backup, the target database (a URL or block:NAME) and the restore options.
    """
    # 1. Check every object, restore, compare row counts (Great Expectations) and the schema fingerprint
    result = run_restore(params.source, resolve_secret(params.target),
                         bk.RestoreOptions(force=params.force, jobs=params.jobs, no_owner=params.no_owner,
                                           scratch_dir=params.scratch_dir, encryption_key=encryption_key(params.storage),
                                           storage=storage_options(params.storage)))
    # 2. Report
    report = {"ok": result.ok, "id": result.id, "url": result.url, "target": result.target, "checks": result.checks,
              "problems": result.problems, "timings": result.timings}
    create_markdown_artifact("\n".join([f"# Restore of {result.id} into {result.target}: "
                                        f"{'OK' if result.ok else 'FAILED'}", ""]
                                       + [f"- {c}" for c in result.checks] + [f"- **{p}**" for p in result.problems]),
                             key=artifact_key(result.manifest.name) + "-restore", description=f"restore of {result.id}")
    if params.report_path:
        write_json(params.report_path, report)
    if not result.ok:
        return Failed(message="restored database differs from the backup: " + "; ".join(result.problems[:3]),
                      data=report)
    return report

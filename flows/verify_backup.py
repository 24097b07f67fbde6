"""Flow ``verify-backup``: restore a backup into a scratch database, check it against its manifest (object
hashes, row counts with Great Expectations, schema fingerprint), drop the scratch, record the verdict."""

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
from tasks.backup import run_verify


class VerifyParams(BaseModel):
    url: str = Field(title="Backup", description="s3://bucket/prefix/<ID> or …/latest (file:///dir/<ID> alike)")
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage and keys")
    scratch: SecretStr | None = Field(None, title="Scratch server", description=(
        "Where to restore (a temporary database is made and dropped); empty: embedded PostgreSQL / the backup's "
        "own MySQL server / a temp file; may be block:NAME"))
    scratch_dir: str | None = Field(None, title="Scratch directory")
    jobs: int = Field(2, ge=1, le=32, title="Parallel restore workers")
    report_path: str | None = Field(None, title="Report file")


@model_params_flow(name="verify-backup", persist_result=False, log_prints=False)
def verify_backup(params: VerifyParams) -> dict:
    """Restore a backup into a scratch database and check it against its manifest.

    Args:
        params: The backup to verify (s3://…/<ID> or …/latest), the scratch database and how to reach storage.
    """
    # 1. Restore into a scratch database and check it (the verdict goes into the manifest)
    scratch = SecretStr(resolve_secret(params.scratch)) if params.scratch else None
    result = run_verify(params.url, bk.VerifyOptions(scratch=scratch, scratch_dir=params.scratch_dir, jobs=params.jobs,
                                                     encryption_key=encryption_key(params.storage),
                                                     storage=storage_options(params.storage)))
    # 2. Report
    report = {"ok": result.ok, "id": result.id, "url": result.url,
              "verification": result.verification.model_dump(mode="json"), "timings": result.timings}
    v = result.verification
    create_markdown_artifact("\n".join([f"# Verification of {result.id}: {v.status.upper()}", ""]
                                       + [f"- {c}" for c in v.checks] + [f"- **{p}**" for p in v.problems]),
                             key=artifact_key(result.manifest.name) + "-verify",
                             description=f"{v.status}: {result.id}")
    if params.report_path:
        write_json(params.report_path, report)
    if not result.ok:
        return Failed(message=f"backup {result.id} failed verification: " + "; ".join(v.problems[:3]), data=report)
    return report

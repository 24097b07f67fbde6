"""Flow ``drill-archive``: the nightly proof of an archive. Restore to a random moment inside the recovery window
into a scratch, check it (recovery reached the moment, integrity, marker rows before and after it), record the RTO
and RPO, then apply the retention window. A failed drill, a gap or a stale archive fails the run and notifies."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import BaseModel, Field, SecretStr

from flows.artifacts import artifact_key
from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from golive.archive.notify import notify_drill
from golive.report import write_json
from tasks.archive import run_drill, run_prune


class DrillParams(BaseModel):
    at: str = Field(title="Archive", description="s3://bucket/prefix/archive/<name> (file:///dir/archive/<name> alike)")
    to_time: str | None = Field(None, title="Moment", description="Empty: a random moment inside the window; or "
                                                                  "'2026-12-06 16:04:00+08'")
    scratch: SecretStr | None = Field(None, title="Scratch server", description=(
        "MySQL: the server to restore into (a temporary database is made and dropped); may be block:NAME. "
        "PostgreSQL: unused (a scratch cluster on a free port)"))
    scratch_dir: str | None = Field(None, title="Scratch directory")
    keep_window: str | None = Field(None, title="Keep a recovery window of", description="e.g. 14d; empty: prune "
                                                                                         "nothing")
    notify: list[SecretStr] = Field(default_factory=list, title="Notify", description=(
        "Webhooks told when the drill fails ([slack|feishu|dingtalk|wecom|json+]https://…, block:NAME parts)"))
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage and keys")
    report_path: str | None = Field(None, title="Report file")


@model_params_flow(name="drill-archive", persist_result=False, log_prints=False)
def drill_archive(params: DrillParams) -> dict:
    """Restore the archive to a moment inside its window, check it, record RTO/RPO, prune, notify on failure.

    Args:
        params: The archive, the moment (or a random one), where to restore, the retention window, who to tell.
    """
    storage = storage_options(params.storage)
    # 1. The drill: restore to a moment into a scratch, check it, record it
    d = run_drill(params.at, to_time=params.to_time,
                  scratch=resolve_secret(params.scratch) if params.scratch else None,
                  storage=storage, encryption_key=encryption_key(params.storage), scratch_dir_parent=params.scratch_dir)
    report = {"ok": d.status == "passed", "at": params.at, "drill": d.model_dump(mode="json")}
    # 2. Retention: keep the recovery window (only after a drill that passed)
    if params.keep_window and d.status == "passed":
        report["prune"] = run_prune(params.at, params.keep_window, storage).model_dump(mode="json")
    # 3. Report and notify
    create_markdown_artifact("\n".join([f"# Drill of {params.at}: {d.status.upper()}", "",
                                        f"- moment: {d.target:%Y-%m-%d %H:%M:%S} UTC, RTO {d.rto_seconds:.1f} s, "
                                        f"RPO {d.rpo_seconds} s"]
                                       + [f"- {c}" for c in d.checks] + [f"- **{p}**" for p in d.problems]),
                             key=artifact_key("archive-drill", None, params.at.rstrip("/").rsplit("/", 1)[-1]),
                             description=f"{d.status}: RTO {d.rto_seconds:.1f} s")
    if params.notify and d.status != "passed":
        report["notifications"] = [n.model_dump() for n in notify_drill(
            [resolve_secret(v) for v in params.notify], params.at, d)]
    if params.report_path:
        write_json(params.report_path, report)
    if d.status != "passed":
        return Failed(message=f"drill of {params.at} failed: " + "; ".join(d.problems[:3]), data=report)
    return report

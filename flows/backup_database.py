"""Flow ``backup-database``: back up a database, then verify the backup by restoring it, then prune old
backups, as the parameters say. The nightly deployment in prefect.yaml runs this.

Run it with ``golive backup`` (CLI), from the Prefect UI, or ``prefect deployment run
backup-database/backup-database-nightly``. Credentials: ``db`` may be ``block:NAME`` (a Prefect Secret block
holding the URL); S3 credentials come from a Secret block (``storage.credentials_block``) or the worker's
environment.
"""

from __future__ import annotations


from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed
from pydantic import BaseModel, Field, SecretStr

from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from golive import backup as bk
from golive.errors import GoliveError
from golive.report import write_json
from golive.urls import mask
from tasks.backup import run_backup, run_prune, run_verify


class BackupParams(BaseModel):
    """Parameters of ``backup-database``."""

    db: SecretStr = Field(title="Database", description="postgresql://…, mysql://…, sqlite:///path, or block:NAME "
                                                         "(a Prefect Secret block holding the URL)")
    to: str = Field(title="Backups go to", description="s3://bucket/prefix or file:///dir (each backup: <to>/<ID>)")
    name: str | None = Field(None, title="Name", description="Name in the backup IDs (default: the database's name)")
    compress: str = Field("zstd:1", title="Compression", description="zstd, zstd:LEVEL (1-19) or none")
    storage: StorageParams = Field(default_factory=StorageParams, title="Storage and keys")
    create_bucket: bool = Field(False, title="Create the bucket if missing")
    verify: bool = Field(True, title="Verify", description="Restore the new backup into a scratch database and check it")
    scratch: SecretStr | None = Field(None, title="Scratch server", description=(
        "Where verify restores (a temporary database is made and dropped): empty = an embedded PostgreSQL for "
        "PostgreSQL, the backup's own server for MySQL, a temp file for SQLite; may be block:NAME"))
    scratch_dir: str | None = Field(None, title="Scratch directory", description="Local space for verify (default: temp)")
    prune: bool = Field(False, title="Prune", description="Apply the retention policy afterwards")
    retention: bk.RetentionPolicy = Field(default_factory=bk.RetentionPolicy, title="Retention policy")
    report_path: str | None = Field(None, title="Report file", description="Write the JSON report here (on the worker)")


def artifact_key(name: str) -> str:
    """``backup-<name>`` (``flows.artifacts.artifact_key``: one key per database)."""
    from flows.artifacts import artifact_key as key

    return key("backup", None, name or "db")


@model_params_flow(name="backup-database", persist_result=False, log_prints=False)
def backup_database(params: BackupParams) -> dict:
    """Back up, verify, prune. A failed run (backup failed, verification failed, or it could not run: the report's
    ``not_verified`` says why) carries the report.

    Args:
        params: The database (a URL or block:NAME), where backups go, encryption, verification and retention.
    """
    storage = storage_options(params.storage)
    key = encryption_key(params.storage)
    # 1. Backup: dump -> zstd -> (encrypt) -> upload; manifest last
    db = resolve_secret(params.db)
    result = run_backup(db, params.to,
                        bk.BackupOptions(name=params.name, compress=params.compress, encryption_key=key, storage=storage,
                                         scratch_dir=params.scratch_dir, create_bucket=params.create_bucket))
    report = {"ok": True, "backup": summary(result)}
    # 2. Verify: restore into a scratch database, compare counts and schema, record it in the manifest
    #    on the backup's own server with the backup's credentials unless a scratch server is given
    if params.verify:
        scratch = SecretStr(resolve_secret(params.scratch)) if params.scratch else None
        try:
            verified = run_verify(result.url, bk.VerifyOptions(scratch=scratch, own_server=SecretStr(db),
                                                                scratch_dir=params.scratch_dir, encryption_key=key,
                                                                storage=storage))
        except GoliveError as exc:  # it could not run (no scratch server, refused credentials): say so
            report["ok"] = False
            report["not_verified"] = mask(str(exc))
        else:
            report["verification"] = verified.verification.model_dump(mode="json")
            report["ok"] = verified.ok
            result.manifest.verification = verified.verification
    # 3. Prune what the retention policy does not keep (never the newest verified backup)
    if params.prune and report["ok"]:
        pruned = run_prune(params.to, params.retention, False, storage)
        report["prune"] = pruned.model_dump(mode="json")
    # 4. Report: artifacts and the JSON file
    publish(result, report)
    if params.report_path:
        write_json(params.report_path, report)
    if "not_verified" in report:
        return Failed(message=f"backup {result.id} written, not verified: {report['not_verified']}", data=report)
    if not report["ok"]:
        return Failed(message=f"backup {result.id} failed verification: "
                              + "; ".join(report["verification"]["problems"][:3]), data=report)
    return report


def summary(result: bk.BackupResult) -> dict:
    m = result.manifest
    return {"id": result.id, "url": result.url, "engine": m.engine, "database": m.database, "tool": m.tool.model_dump(),
            "server_version": m.server_version, "tables": len(m.tables), "rows": m.rows, "raw_bytes": m.raw_bytes,
            "stored_bytes": m.stored_bytes, "seconds": m.duration_seconds, "compression": m.compression,
            "encrypted": m.encryption is not None, "warnings": m.warnings, "timings": result.timings}


def publish(result: bk.BackupResult, report: dict) -> None:
    """A table artifact of the backup's tables and sizes, and a markdown summary (keyed by the database)."""
    m = result.manifest
    sizes = {o.table: o for o in m.objects if o.table}
    rows = [{"table": t.name, "rows": t.rows, "raw bytes": sizes[t.name].raw_size if t.name in sizes else "",
             "stored bytes": sizes[t.name].size if t.name in sizes else ""} for t in m.tables]
    key = artifact_key(m.name)
    create_table_artifact(table=rows, key=key + "-tables", description=f"Tables of backup {m.id}")
    create_markdown_artifact(markdown(result, report), key=key,
                             description=("OK" if report["ok"] else "FAILED") + f": backup {m.id}")


def markdown(result: bk.BackupResult, report: dict) -> str:
    m = result.manifest
    v = m.verification
    lines = [f"# Backup {m.id}", "", f"**{'OK' if report['ok'] else 'FAILED'}**", "",
             "| | |", "|---|---|",
             f"| database | {m.engine} `{m.database}` ({mask(m.source)}), server {m.server_version} |",
             f"| stored at | `{result.url}` |",
             f"| tool | {m.tool.name} {m.tool.version} |",
             f"| tables / rows | {len(m.tables)} / {m.rows} |",
             f"| size | {m.raw_bytes} bytes raw, {m.stored_bytes} stored ({m.compression}"
             f"{', AES-256-GCM' if m.encryption else ''}) |",
             f"| duration | {m.duration_seconds:.1f} s |",
             f"| verified | {v.status + ' in ' + format(v.seconds, '.1f') + ' s' if v else 'not verified'} |"]
    if "not_verified" in report:
        lines += ["", f"**Backup written, not verified:** {report['not_verified']}"]
    if v and v.problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in v.problems]
    if v and v.checks:
        lines += ["", "## Checks", ""] + [f"- {c}" for c in v.checks]
    if "prune" in report:
        p = report["prune"]
        lines += ["", f"Pruned: {len(p['removed'])} removed, {len(p['kept'])} kept."]
    return "\n".join(lines)

"""Flow ``release``: a schema release that rolls itself back.

Pre-check → lint → backup (the ``backup-database`` flow, as a subflow) → migrate (one task per migration) →
validate → health → on any failure after the backup: rollback (down-migrations, or the ``restore-database``
flow as a subflow) and health again → notify. Artifacts, keyed by the database: ``release-<db>`` (the
summary and the final state), ``release-<db>-precheck``, ``release-<db>-lint``, ``release-<db>-timeline``.
A release that did not release ends as a Failed state whose message says what failed, what was rolled
back, and what state the database is in; its data is the report.

Run it with ``golive release`` (CLI), or from CI: ``prefect deployment run release/release --params … --watch``
(deployment ``release`` in prefect.yaml). ``db`` (and any ``notify`` URL part) may be ``block:NAME``.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed
from pydantic import Field, SecretStr

from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.artifacts import artifact_key
from flows.credentials import resolve_secret, resolve_url
from flows.foreground import model_params_flow
from flows.maintenance import DatabaseParam
from golive.release import report as rr
from golive.release.model import BackupRef, Failure, ReleaseOptions, ReleaseSettings
from golive.release.runner import Release
from golive.urls import mask
from tasks.release import (apply_migration, begin_release, check_health, lint_release, notify_release,
                           precheck_release, rollback_undo, validate_release)


class ReleaseParams(ReleaseSettings, DatabaseParam):
    """Parameters of ``release``: the database, then the settings of ``golive release``."""

    storage: StorageParams = Field(default_factory=StorageParams, title="Backup storage and keys")


@model_params_flow(name="release", persist_result=False, log_prints=False)
def release(params: ReleaseParams) -> dict:
    """Release the pending migrations onto the database; roll back on any failure; notify.

    Args:
        params: the database (a URL or block:NAME, a Prefect Secret block holding it), the migrations
            (KIND:PATH on the worker), where the backup goes, the health checks, the notifications and the limits,
            as the options of ``golive release``.
    """
    rel = Release(resolve_url(params.db, "db"), options(params))
    try:
        # 1. Pre-check: connectivity, version, disk, privileges, the release lock (held to the end), pending, drift
        step(rel, precheck_release, rel)
        # 2. Lint the pending SQL, sized by the live tables
        step(rel, lint_release, rel)
        if rel.go:
            # 3. Backup: the journal row first (the backup holds it), then the backup-database flow
            step(rel, begin_release, rel)
            if not rel.failed:
                backup(rel, params)
            # 4. Migrate: one task per pending migration, until one fails
            for m in rel.pending:
                if rel.failed:
                    break
                step(rel, apply_migration, rel, m)
            # 5. Validate: the app's checks and Great Expectations row counts
            step(rel, validate_release, rel)
            # 6. Health: the app answers 2xx
            step(rel, check_health, rel, "release")
            # 7. Rollback on any failure after the backup (down, or the restore-database flow), then health again
            if rel.needs_rollback:
                rollback(rel, params)
        # 8. Notify: the summary to each webhook
        rel.conclude()
        step(rel, notify_release, rel, notify_targets(params))
    finally:
        report = rel.finish()
    # 9. Report: artifacts keyed by the database; a Failed state unless released
    publish(report)
    if report.exit_code != 0:
        return Failed(message=report.statement, data=report.as_dict())
    return report.as_dict()


def options(params: ReleaseParams) -> ReleaseOptions:
    settings = params.model_dump(exclude={"db", "storage"})
    settings["notify"] = [SecretStr(n.get_secret_value()) for n in params.notify]
    return ReleaseOptions(**settings, storage=storage_options(params.storage), encryption_key=encryption_key(params.storage))


def step(rel: Release, task, *args):
    """Run one task; a task that crashed is recorded as that step's failure (never left unsaid)."""
    state = task(*args, return_state=True)
    if state.is_failed() or state.is_crashed():
        exc = state.result(raise_on_failure=False)
        rel.crashed(task.name, exc)
        return None
    return state.result()


def backup(rel: Release, params: ReleaseParams) -> None:
    from flows.backup_database import BackupParams, backup_database

    rel.event("backup", "start", f"backing up to {params.backup_to} (flow backup-database)")
    state = backup_database(BackupParams(db=SecretStr(rel.url.raw), to=params.backup_to, name=rel.backup_name(),
                                         verify=params.verify_backup, prune=False, storage=params.storage),
                            return_state=True)
    value = state.result(raise_on_failure=False)
    if isinstance(value, dict) and "backup" in value and state.is_completed():
        b = value["backup"]
        v = value.get("verification") or {}
        rel.backed_up(BackupRef(id=b["id"], url=b["url"], verified=v.get("status"), rows=b["rows"],
                                stored_bytes=b["stored_bytes"], seconds=b["seconds"]))
        return
    rel.backup_failed(state.message or _first(value))


def rollback(rel: Release, params: ReleaseParams) -> None:
    rb = rel.rollback_plan()
    if rb.method == "restore":
        from flows.restore_database import RestoreParams, restore_database

        rel.before_restore()
        state = restore_database(RestoreParams(source=rel.report.backup.url, target=SecretStr(rel.url.raw), force=True,
                                               storage=params.storage), return_state=True)
        value = state.result(raise_on_failure=False)
        if isinstance(value, dict):
            rb = rel.restored(bool(value.get("ok")), value.get("checks", []), value.get("problems", []))
        else:
            rb = rel.restored(False, [], [], f"the restore failed: {_first(value)}")
    else:
        rb = step(rel, rollback_undo, rel) or rel.report.rollback
    if rb.ok:
        step(rel, check_health, rel, "rollback")


def notify_targets(params: ReleaseParams) -> list[str]:
    """The notify values with ``block:NAME`` parts read from their Prefect Secret blocks (never stored)."""
    from golive.release.notify import split_kind

    out = []
    for n in params.notify:
        raw = n.get_secret_value().strip()
        kind, rest = split_kind(raw)
        if rest.startswith("block:"):
            rest = resolve_secret(rest)
            raw = rest if kind == "json" else f"{kind}+{rest}"
        out.append(raw)
    return out


def _first(value) -> str:
    text = str(value).strip()
    return mask(text.splitlines()[0] if text else type(value).__name__)


def publish(report) -> None:
    """The summary, the pre-check table, the lint findings and the timeline, keyed by the database."""
    key = artifact_key("release", None, report.dbname or "db")
    create_markdown_artifact(rr.markdown(report), key=key, description=f"{report.state}: {report.statement[:200]}")
    create_table_artifact(rr.precheck_rows(report), key=f"{key}-precheck", description=f"Pre-check of {report.release_id}")
    create_table_artifact(rr.lint_rows(report) or [{"rule": "", "severity": "", "finding": "no findings"}],
                          key=f"{key}-lint", description=f"Lint findings of {report.release_id}")
    create_table_artifact(rr.timeline_rows(report), key=f"{key}-timeline", description=f"Timeline of {report.release_id}")


__all__ = ["release", "ReleaseParams", "Failure"]

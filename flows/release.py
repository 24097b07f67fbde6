"""Flow ``release``: a schema release that rolls itself back.

The steps are ``golive.release.steps.STEPS``, declared once and run here as tasks (``tasks.release.TASKS``), the
backup as the ``backup-database`` flow and a rollback by restore as the ``restore-database`` flow (subflows):
pre-check → lint → begin → backup → migrate (one task per migration) → validate → health → on any failure after the
backup: rollback (plan; down-migrations, or the restore) and health again → conclude → notify. Artifacts, keyed by
the database: ``release-<db>`` (the summary and the final state), ``release-<db>-precheck``, ``release-<db>-lint``,
``release-<db>-timeline``. A release that did not release ends as a Failed state whose message says what failed,
what was rolled back, and what state the database is in; its data is the report.

Run it with ``golive release`` (CLI), or from CI: ``prefect deployment run release/release --params … --watch``
(deployment ``release`` in prefect.yaml). ``db`` (and any ``notify`` URL part) may be ``block:NAME``.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed
from prefect.utilities.annotations import quote
from pydantic import Field, SecretStr

from flows.artifacts import artifact_key
from flows.backup_params import StorageParams, encryption_key, storage_options
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from flows.maintenance import DatabaseParam
from golive.release import report as rr
from golive.release import rollback as rb
from golive.release.model import BackupRef, Failure, ReleaseOptions, ReleaseSettings
from golive.release.state import ReleaseState, start
from golive.release.steps import Step, backed_up, backup_failed, backup_name, crashed, drive, finish
from golive.urls import mask
from tasks.release import TASKS


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
    state = start(resolve_url(params.db, "db"), options(params))
    try:
        # 1-8. The release's steps, in order: tasks, and the backup and restore subflows
        state = drive(state, lambda step, state, *args: run(step, state, params, *args))
    finally:
        report = finish(state)
    # 9. Report: artifacts keyed by the database; a Failed state unless released
    publish(report)
    if report.exit_code != 0:
        return Failed(message=report.statement, data=report.as_dict())
    return report.as_dict()


def run(step: Step, state: ReleaseState, params: ReleaseParams, *args) -> ReleaseState:
    """One step: its subflow (backup, restore) or its task; a task that crashed is recorded as that step's
    failure (never left unsaid)."""
    if step.name in SUBFLOWS:
        return SUBFLOWS[step.name](state, params)
    done = TASKS[step.name](quote(state), *args, return_state=True)  # quote: the state goes as it is, not copied
    if done.is_failed() or done.is_crashed():
        return crashed(state, step.name, done.result(raise_on_failure=False))
    return done.result()


def options(params: ReleaseParams) -> ReleaseOptions:
    settings = params.model_dump(exclude={"db", "storage"})
    settings["notify"] = [SecretStr(n.get_secret_value()) for n in params.notify]
    return ReleaseOptions(**settings, storage=storage_options(params.storage), encryption_key=encryption_key(params.storage))


def backup(state: ReleaseState, params: ReleaseParams) -> ReleaseState:
    """The backup: the backup-database flow, as a subflow."""
    from flows.backup_database import BackupParams, backup_database

    state.event("backup", "start", f"backing up to {params.backup_to} (flow backup-database)")
    done = backup_database(BackupParams(db=SecretStr(state.url.raw), to=params.backup_to, name=backup_name(state),
                                        verify=params.verify_backup, prune=False, storage=params.storage),
                           return_state=True)
    value = done.result(raise_on_failure=False)
    if isinstance(value, dict) and "backup" in value and done.is_completed():
        b = value["backup"]
        v = value.get("verification") or {}
        return backed_up(state, BackupRef(id=b["id"], url=b["url"], verified=v.get("status"), rows=b["rows"],
                                          stored_bytes=b["stored_bytes"], seconds=b["seconds"]))
    return backup_failed(state, done.message or _first(value))


def restore(state: ReleaseState, params: ReleaseParams) -> ReleaseState:
    """A rollback by restore: the restore-database flow, as a subflow."""
    from flows.restore_database import RestoreParams, restore_database

    rb.before_restore(state)
    done = restore_database(RestoreParams(source=state.report.backup.url, target=SecretStr(state.url.raw), force=True,
                                          storage=params.storage), return_state=True)
    value = done.result(raise_on_failure=False)
    if isinstance(value, dict):
        return rb.restored(state, bool(value.get("ok")), value.get("checks", []), value.get("problems", []))
    return rb.restored(state, False, [], [], f"the restore failed: {_first(value)}")


#: the steps the flow runs as flows of their own
SUBFLOWS = {"backup": backup, "restore": restore}


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

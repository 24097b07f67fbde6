"""Flow: compare an uploads folder with its destination (missing / different / extra), like rclone check."""

from __future__ import annotations

from flows.artifacts import publish_verify
from flows.foreground import model_params_flow
from flows.migrate_files import MigrateFilesParams, job_from_params
from golive.errors import ValidationFailed
from golive.files import sync
from golive.files.verify import VerifyReport
from tasks import files as t


@model_params_flow(name="verify-files", persist_result=False, log_prints=False)
def verify_files(params: MigrateFilesParams) -> VerifyReport:
    """Fails when anything is missing or different (the report is in ``.context["report"]``).

    Args:
        params: The uploads folder and its bucket, as given to migrate-files.
    """
    # 1. Credentials and a destination that answers
    job = job_from_params(params)
    # 2. Hash and compare every file
    report = t.verify_files(job)
    # 3. Report
    sync.write_report(report, params.report_path)
    publish_verify(report)
    if not report.ok:
        raise ValidationFailed(f"destination differs from source: {report.summary()}",
                               report=report.model_dump(mode="json"))
    return report

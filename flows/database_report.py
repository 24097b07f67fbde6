"""Flow: a health report of one database (PostgreSQL or MySQL/MariaDB), with sizes over time.

Run it with ``golive report db`` (CLI) or from the daily ``database-report`` deployment. It leaves a
markdown artifact ``db-report-<database>`` (findings, most serious first, with the SQL that fixes each)
and, when asked, HTML / Markdown / JSON files. The run fails when a finding is at least as serious as
``fail_on`` (critical by default) or a check could not run.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import Field, SecretStr

from flows.credentials import resolve_secret
from flows.foreground import model_params_flow
from flows.maintenance import DatabaseParam, artifact_key
from golive.health import render
from golive.health.model import ReportOptions
from tasks.health import record_history, run_checks, write_report


class DatabaseReportParams(ReportOptions, DatabaseParam):
    """Parameters of ``database-report``: the database, where to write the report, and the report's options."""

    out: list[str] = Field(default_factory=list, title="Write to", description=(
        "Files to write on the machine that runs the flow: .html (standalone page with charts), .md, .json"))


@model_params_flow(name="database-report", persist_result=False, log_prints=False)
def database_report(params: DatabaseReportParams) -> dict:
    """Check the database, keep its sizes over time, and report every finding with its fix.

    Args:
        params: The database (a URL or block:NAME), where the reports go, and the thresholds.
    """
    for path in params.out:
        render.format_of(path)  # a wrong extension fails before anything runs
    db = SecretStr(resolve_secret(params.db))
    options = ReportOptions(**params.model_dump(exclude={"db", "out"}))
    # 1. Sizes, growth since the previous report, and every check
    report = run_checks(db, options)
    # 2. History: record this report's sizes, read the sizes over time
    report = record_history(db, report, options)
    # 3. Render: the files asked for, and the artifact keyed by the database
    files = write_report(report, params.out)
    create_markdown_artifact(render.to_markdown(report), key=artifact_key("db-report", report.dbname),
                             description=f"Database report of {report.dbname}: {report.summary()}")
    data = {**render.as_dict(report), "files": files}
    # 4. Fail on serious findings (fail_on) and on checks that could not run
    if report.exit_code:
        return Failed(message=f"{report.dbname}: {report.summary()}", data=data)
    return data

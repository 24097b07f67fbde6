"""``golive validate`` and ``golive expectations generate``: prove a migrated copy, manage the suites."""

from __future__ import annotations

import os
from typing import Optional

import typer

from golive.cli import app, expectations_app
from golive.cli._common import echo, handle_errors, note_prefect_api, resolve_block, status


@app.command("validate", rich_help_panel="Database")
@handle_errors
def validate(
    source: str = typer.Option(..., "--source", "-s", help="The database the target was migrated from (URL, path or block:NAME)."),
    target: str = typer.Option(..., "--target", "-t", help="postgresql://… or mysql://… (or block:NAME)"),
    tables: Optional[list[str]] = typer.Option(None, "--tables", help="Only these tables (comma-separated or repeated)."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the validation report (JSON) here."),
    schema: str = typer.Option("public", "--schema", help="Target schema the tables were migrated into."),
    expectations: Optional[str] = typer.Option(None, "--expectations", help=(
        "Directory of the expectation suites, one folder per source database (default golive-runs/expectations).")),
    out: Optional[str] = typer.Option(None, "--out", help="Results and Data Docs directory "
                                                            "(default golive-runs/validation/<db>-<schema>-<time>)."),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="Key ranges compared at the same time."),
    data_docs: bool = typer.Option(True, "--data-docs/--no-data-docs", help="Build the Data Docs site."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines."),
) -> None:
    """Check that the target holds exactly the source's rows and values (content checksums per key range) and
    meets its Great Expectations suites (row counts, keys, NOT NULL, UNIQUE, orphans). Exit 1 when anything differs."""
    from golive import commands
    from golive.validation import gx_worker
    from golive.validation.options import ValidateOptions

    # Great Expectations' helper process imports it (3 s) while Prefect starts and the source is read
    gx_worker.prestart()
    options = ValidateOptions(tables=tables, target_schema=schema, expectations_dir=expectations, output_dir=out,
                              report=report, workers=workers, data_docs=data_docs)
    src, dst = commands.database_urls(resolve_block(source), resolve_block(target))
    commands.check_target_connects(dst)
    result = run_flow(src.raw, dst.raw, options, verbose=verbose)
    if data_docs:
        gx_worker.wait_docs()  # built by the helper while the flow run was being closed
    show_result(result)
    raise typer.Exit(0 if result.get("ok") else 1)


def run_flow(source: str, target: str, options, *, verbose: bool = False) -> dict:
    """Run the validation flow in this process; return the report even when validation fails.

    The source is read and the suites loaded while Prefect starts up; a bad table name is refused
    before any flow run exists.
    """
    import threading

    from pydantic import SecretStr

    from golive import commands
    from golive.validation import prepare

    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    note_prefect_api()
    prepared: dict = {}

    def prefetch() -> None:
        try:
            prepared["setup"] = prepare.prefetch(*commands.database_urls(source, target), options)
        except BaseException as exc:  # re-raised in the main thread
            prepared["error"] = exc

    worker = threading.Thread(target=prefetch, name="golive-validation-prepare", daemon=True)
    worker.start()
    from flows.foreground import run_in_foreground
    from flows.validate import validate_migration

    worker.join()
    if "error" in prepared:
        raise prepared["error"]

    state = run_in_foreground(validate_migration, source=SecretStr(source), target=SecretStr(target),
                              options=options, return_state=True)
    return report_of(state)


def report_of(state) -> dict:
    """The validation report of a finished flow run: its return value, or the failure's report."""
    from golive.errors import GoliveError, ValidationFailed

    value = state.result(raise_on_failure=False)
    if isinstance(value, dict):
        return value
    if isinstance(value, ValidationFailed) and "report" in value.context:
        return value.context["report"]
    if isinstance(value, GoliveError):
        raise value
    if isinstance(value, BaseException):
        raise value
    raise RuntimeError(f"validation flow ended {state.type.value} without a report")


def show_result(rep: dict) -> None:
    from rich.table import Table

    from golive.cli._common import console

    t = Table(title="Validation", title_justify="left")
    for col, just in (("table", "left"), ("source rows", "right"), ("rejected", "right"), ("target rows", "right"),
                      ("content", "left"), ("expectations", "left")):
        t.add_column(col, justify=just)
    for x in rep.get("tables", []):
        content = x["content"] if x["content"] != "differs" else "[red]differs[/]"
        exp = f"{x['expectations_passed']} met" + (f", [red]{x['expectations_failed']} failed[/]"
                                                    if x["expectations_failed"] else "")
        t.add_row(x["table"], str(x["source_rows"]), str(x["rejected_rows"]),
                  "" if x["target_rows"] is None else str(x["target_rows"]), content, exp)
    console.print(t)
    for f in rep.get("failures", [])[:30]:
        echo(f"[red]FAILED[/] {f}", soft_wrap=True)
    if len(rep.get("failures", [])) > 30:
        echo(f"  ... and {len(rep['failures']) - 30} more (see the JSON report)")
    if rep.get("data_docs"):
        echo(f"Data Docs: {rep['data_docs']}")
    if rep.get("results_dir"):
        echo(f"Results:   {rep['results_dir']}")
    status_ = "[green]OK[/]" if rep.get("ok") else "[red]FAILED[/]"
    echo(f"{status_}: {rep.get('summary', '')} ({rep.get('seconds', 0):.1f} s)")


@expectations_app.command("generate")
@handle_errors
def generate(
    source: str = typer.Option(..., "--source", "-s", help="The source database URL (or block:NAME)."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help=(
        "The migrated database (or block:NAME): its recorded plan gives the names and keys exactly "
        "(without it, the source is planned afresh).")),
    schema: str = typer.Option("public", "--schema", help="Target schema."),
    tables: Optional[list[str]] = typer.Option(None, "--tables", help="Only these tables."),
    directory: Optional[str] = typer.Option(None, "--dir", help=(
        "Where the suites are written, in a folder per source database (default golive-runs/expectations).")),
    identifiers: str = typer.Option("preserve", "--identifiers", help="preserve or snake (as the migration used)."),
) -> None:
    """(Re)generate one Great Expectations suite per table from the source schema, keeping hand-written expectations."""
    from golive.validation import suites as gs
    from golive.validation.options import ValidateOptions

    options = ValidateOptions(tables=tables, target_schema=schema, identifiers=identifiers, expectations_dir=directory)
    from golive import commands
    from golive.validation.prepare import expectations_dir

    with status("Reading the source schema"):
        plan, chosen = _plan_for_suites(source, target, options)
    folder = expectations_dir(commands.parse_source(source), options)
    with status(f"Writing {len(chosen)} suites to {folder}"):
        written = gs.ensure_suites(plan, folder, chosen, regenerate=True)
    for table, suite in written.items():
        generated = sum(1 for e in suite["expectations"] if "golive" in (e.get("meta") or {}))
        kept = len(suite["expectations"]) - generated
        echo(f"  {gs.suite_path(folder, suite['name'])}: {generated} generated"
             + (f", {kept} kept (hand-written)" if kept else ""))


def _plan_for_suites(source: str, target: str | None, options):
    from golive import commands
    from golive.migrate import planning
    from golive.config import MigrateOptions
    from golive.urls import parse_url
    from golive.validation import prepare

    from golive.dialects import dialect_of

    src = commands.parse_source(source)
    dialect_of(src).check(src)
    plan = None
    if target:
        src, dst = commands.database_urls(source, target)
        found = prepare.find_run(src, dst, options.target_schema)
        plan = found[0] if found else None
    if plan is None:
        dst = commands.parse_target(target) if target else parse_url("postgresql://localhost/golive", role="target")
        plan = planning.build_plan(src, dst, MigrateOptions(target_schema=options.target_schema,
                                                            identifiers=options.identifiers))
    return plan, prepare._select(plan, options.tables)

"""Flow: validate a migrated database: content checksums per key range and Great Expectations suites per table.

Run it with ``golive validate`` (CLI), as step 6 of ``migrate-database``, or from the Prefect UI. The flow
run fails (and the CLI exits 1) when anything differs; a markdown artifact summarises each table and
says where the Data Docs are.
"""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.states import Failed
from pydantic import SecretStr

from flows.artifacts import artifact_key
from flows.credentials import resolve_url
from flows.foreground import model_params_flow

from golive.model.plan import MigrationPlan
from golive.validation import gx_worker, jobs, report as vreport
from golive.validation.options import ValidateOptions
from tasks.validate import build_report, compare_range, prepare_validation, run_expectations


@model_params_flow(name="validate-migration", persist_result=False, log_prints=False)
def validate_migration(source: SecretStr, target: SecretStr, options: ValidateOptions = ValidateOptions(),
                       plan: MigrationPlan | None = None, run_key: str | None = None) -> dict:
    """Prove that the target holds exactly the source's rows and values; name every difference.

    Args:
        source: The migrated database: sqlite:///app.db (or a path), or block:NAME, a Prefect Secret block
            holding the URL.
        target: The copy: postgresql://user@host/db, or block:NAME (a Secret block holding the URL, so no
            password is stored with the run).
        options: Tables, schema, where suites and results live, parallelism.
        plan: The migration's plan (empty: read from the target's _golive schema).
        run_key: The migration run whose rejects are expected to be missing (empty: the latest).

    Returns the validation report; when something differs, a Failed state carrying that report.
    """
    source, target = resolve_url(source, "source"), resolve_url(target, "target")  # block:NAME: its URL, here only
    result = run_validation(source, target, options, plan, run_key)
    if not result.ok:  # a failed run for the UI and for `prefect deployment run --watch` in CI
        get_run_logger().error("Validation failed: %s", "; ".join(result.failures[:5]))
        return Failed(message=f"validation failed: {result.failures[0]}"
                      + (f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""),
                      data=result.report())
    return result.report()


def run_validation(source, target, options: ValidateOptions, plan: MigrationPlan | None = None,
                   run_key: str | None = None):
    """The steps, as tasks of the calling flow (this one, or ``migrate-database`` as its step 6)."""
    t0 = time.perf_counter()
    # Great Expectations takes seconds to import: its helper process starts now, while the source is read
    gx_worker.prestart()

    # 1. Prepare: the migration's plan and rejects, source row counts, key ranges, orphans, suites
    setup = prepare_validation(source, target, options, plan, run_key)

    # 2. Expectations (Great Expectations) run alongside 3. the content comparisons
    expectations = run_expectations.submit(target, setup, options.data_docs)
    checks = compare_ranges(source, target, setup, options)
    gx_result = expectations.result()

    # 4. Report: JSON and a markdown artifact
    timings = {"prepare": setup.seconds, **gx_result.get("seconds", {})}
    result = build_report(setup, checks, gx_result, _masked(source), _masked(target), time.perf_counter() - t0,
                          options, timings)
    create_markdown_artifact(vreport.markdown(result),
                             key=artifact_key("validation-summary", target, schema=options.target_schema),
                             description=("Validation passed" if result.ok else "Validation FAILED")
                             + f": {result.summary}")
    return result


def compare_ranges(source, target, setup, options: ValidateOptions) -> list:
    """At most ``workers`` comparisons in flight, biggest tables first."""
    specs = {s.source: s for s in setup.specs}
    queue = jobs(setup)
    running, done = set(), []
    while queue or running:
        while queue and len(running) < options.workers:
            table, i = queue.pop(0)
            running.add(compare_range.submit(source, target, specs[table], i, options.max_differences))
        fut = next(as_completed(list(running)))
        running.discard(fut)
        done.append(fut.result())
    return done


def _masked(url) -> str:
    from golive.urls import secret
    from golive.urls import mask

    return mask(secret(url))


def validate_copy(source, target, plan: MigrationPlan, options) -> dict:
    """Step 6 of ``migrate-database``: the validation steps as tasks of the migration's flow run, on its own
    plan and rejects.

    Returns the validation report (keys ``ok``, ``summary``, ``failures``, ...) for the migration
    report; a failed validation is reported there (exit code 1), never raised.
    """
    from pathlib import Path

    from golive.urls import mask

    out = str(Path(options.report).with_suffix("")) + "-validation" if options.report else None
    vopts = ValidateOptions(target_schema=plan.target_schema, identifiers=plan.identifiers, output_dir=out,
                            workers=options.workers, chunk_rows=options.chunk_rows)
    try:
        return run_validation(source, target, vopts, plan, plan.run_key).report()
    except Exception as exc:  # the copy is done: report why it could not be validated
        message = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        get_run_logger().error("Validation could not run: %s", message)
        return {"ok": False, "summary": f"validation could not run: {message}",
                "failures": [f"validation could not run: {message}"]}

"""Flow: migrate a SQLite database into PostgreSQL, chunk by chunk, with keys, validation and a report.

Run it with ``golive migrate db`` (CLI), from the Prefect UI (deployment ``migrate-database``), or in CI
with ``prefect deployment run migrate-database/migrate-database --param source=... --param target=...``.
"""

from __future__ import annotations

import time

from prefect.states import Failed
from prefect.utilities.annotations import opaque
from pydantic import SecretStr

from flows.copy_steps import copy_and_link, publish, source_snapshot
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from golive.config import MigrateOptions
from tasks.migrate import (count_source_rows, create_views, final_statements, plan_migration, prepare_target,
                           write_report)


@model_params_flow(name="migrate-database", persist_result=False, log_prints=False)
def migrate_database(source: SecretStr, target: SecretStr, options: MigrateOptions = MigrateOptions()) -> dict:
    """Migrate a database (SQLite, MySQL/MariaDB or PostgreSQL) into PostgreSQL or MySQL/MariaDB.

    Args:
        source: source URL (``sqlite:///app.db``, ``mysql://…``, ``postgresql://…``), or block:NAME (a
            Prefect Secret block holding the URL).
        target: target URL (``postgresql://user@host/db``, ``mysql://…``), or block:NAME (a Secret block
            holding the URL, so no password is stored with the run).
        options: what to copy and how (tables, schema, dry run, workers, ...).
    """
    if options.online:  # the app keeps writing: capture, copy, catch up, cut over (flows/migrate_online.py)
        from flows.migrate_online import migrate_online

        return migrate_online(source=source, target=target, options=options)
    t0 = time.perf_counter()
    source, target = resolve_url(source, "source"), resolve_url(target, "target")  # block:NAME: its URL, here only
    # 1. Plan: schema, value profile, type decisions, chunks (or the interrupted run's plan)
    plan = plan_migration(source, target, options)
    if options.dry_run:  # it ends as the run would: refused (tables exist) or failed (rejects beyond max_rejects)
        from golive.commands import dry_run_outcome

        outcome = dry_run_outcome(target, plan, options)
        report = {"ok": not outcome["exit_code"], "dry_run": True, "exit_code": outcome["exit_code"],
                  "problem": outcome["problem"], "existing_tables": outcome["existing"], "plan": plan.model_dump()}
        return Failed(message=outcome["problem"], data=report) if outcome["problem"] else report

    # 2. Prepare the target: tables without keys, registered as a run (or check the resumed one)
    prepared = prepare_target(target, plan, options)
    plan.warnings.extend(prepared.warnings)

    # 3. Copy every chunk, all readers in one snapshot of the source; as soon as a table is in, build its keys
    #    and indexes; as soon as a table and its parents have keys, add and validate its foreign keys (all
    #    while other tables still copy)
    with source_snapshot(source, plan, options) as snapshot:
        chunks, steps = copy_and_link(source, target, plan, options.workers, snapshot)

    # 4. Views (and what comes last: triggers, sequences); meanwhile count the source again
    counted = count_source_rows.submit(source, [t.source for t in plan.tables], plan.source_fingerprint,
                                       plan.context())
    steps.append(create_views(target, plan, final_statements(source, plan)))

    # 5. Report: invariants per table, rejects file, run marked complete or failed
    counts = counted.result()
    # 6. Validate (content checksums per key range, Great Expectations suites); the report counts it
    validation = None
    if options.validate_after:
        from flows.validate import validate_copy  # imported when used: --no-validate runs start sooner

        validation = validate_copy(source, target, plan, options)
    # opaque: not one upstream link per chunk in the task run (10,000 tables: a 2.8 MB event, over Prefect's 1.5 MB)
    report = write_report(target, plan, options, opaque(chunks), opaque(steps), counts, time.perf_counter() - t0,
                          validation)
    publish(report)
    if not report["ok"]:  # a failed run for the UI and for `prefect deployment run --watch` in CI
        return Failed(message="; ".join(report["errors"][:3]) or "migration failed", data=report)
    return report


def on_dask(address: str | None = None, workers: int = 4):
    """This flow with its tasks on Dask: a running scheduler at ``address``, or a local cluster of processes.

    Point the Dask workers at a real Prefect server (PREFECT_API_URL); in ephemeral mode each worker
    would start its own temporary one.
    """
    from prefect_dask import DaskTaskRunner

    kwargs = {"address": address} if address else {
        "cluster_kwargs": {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}}
    return migrate_database.with_options(task_runner=DaskTaskRunner(**kwargs))

"""Flow: move a database while the app keeps writing: capture, copy, catch up, cut over in seconds.

Run by ``golive migrate db --online`` (``migrate-database`` hands over to it when ``options.online``) or from the
Prefect UI (deployment ``migrate-database-online``). Each step is resumable: the same command after a crash goes on
from where the target's bookkeeping says the run stands (copying, catching up, fenced, cut over).
"""

from __future__ import annotations

import time

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.states import Failed
from prefect.utilities.annotations import opaque
from pydantic import SecretStr

from flows.artifacts import artifact_key
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from flows.copy_steps import copy_and_link, publish, source_snapshot
from golive import commands, progress
from golive.config import MigrateOptions
from golive.migrate import online
from golive.units import parse_duration
from tasks.migrate import (create_views, final_statements, plan_migration, prepare_target,
                           write_report)
from tasks.online import catch_up, check_ahead, check_capture, cut_over, end_capture


@model_params_flow(name="migrate-database-online", persist_result=False, log_prints=False)
def migrate_online(source: SecretStr, target: SecretStr, options: MigrateOptions = MigrateOptions(online=True)) -> dict:
    """Migrate a database while the app keeps writing: changes are captured from before the copy and applied until
    the target is within ``max_lag`` (or a person asks: ``golive migrate cutover``); then the source is fenced,
    drained, identities set, and the cut-over command runs. The write freeze is measured and reported.

    Args:
        source: source URL (``sqlite:///app.db``, ``mysql://…``, ``postgresql://…``) or block:NAME.
        target: target URL (``postgresql://…``, ``mysql://…``) or block:NAME.
        options: what to copy and how; ``cutover``, ``max_lag`` and ``cutover_command`` say when and how to switch.
    """
    t0 = time.perf_counter()
    source, target = resolve_url(source, "source"), resolve_url(target, "target")
    logger = get_run_logger()
    dst = commands.parse_target(target)
    # 1. Plan, and what the source's capture needs (every missing thing one line, before anything is written)
    plan = plan_migration(source, target, options)
    check_capture(source, plan, options.keyless)
    state = online.start_over(commands.parse_source(source), dst, plan, options)
    chunks, steps = [], []
    phases = {"plan": round(time.perf_counter() - t0, 2)}  # where the run's time went (the report's online.phases)
    mark = time.perf_counter()

    # 2. Capture from a moment the copy's snapshot is consistent with, and copy inside that snapshot; a run that
    #    crashed during the copy copies the rest in a new snapshot (every change since is captured)
    if state is None:
        with online.begin(commands.parse_source(source), dst, plan, workers=options.workers) as (snapshot, state):
            prepared = prepare_target(target, plan, options)
            plan.warnings.extend(prepared.warnings)
            chunks, steps = copy_and_link(source, target, plan, options.workers, snapshot)
    elif state.status == "capturing":
        prepare_target(target, plan, options)
        with source_snapshot(source, plan, options) as snapshot:
            chunks, steps = copy_and_link(source, target, plan, options.workers, snapshot)
    else:
        chunks = online.copied_chunks(dst, plan)
    if state.status == "capturing":
        steps.append(create_views(target, plan, final_statements(source, plan)))
        state.status = "copied"
        online.save_state(dst, state)
    phases["copy"], mark = round(time.perf_counter() - mark, 2), time.perf_counter()

    # 3. Catch up until the lag is within max_lag (auto) or the cut-over is asked for (manual)
    max_lag = parse_duration(options.max_lag, name="--max-lag")
    bar = create_progress_artifact(progress=0.0, key=artifact_key("migration-lag", target, schema=plan.target_schema),
                                   description="online migration: catching up")
    ahead = 0  # rows compared value by value before the fence (the cut-over then compares only the rest)
    ahead_s = 0.0
    while state.status == "copied":
        manual = options.cutover == "manual"
        state, lag = catch_up(source, target, plan, state, seconds=2.0 if manual else 5.0, wait=manual)
        progress.emit("lag", pending=lag.pending, seconds=lag.seconds, applied=state.meta.get("changes_applied", 0))
        update_progress_artifact(bar, progress=100.0 if not lag.pending else max(1.0, 100.0 - lag.pending / 100),
                                 description=f"{lag.pending} changes pending, {lag.seconds:.1f} s behind")
        logger.info("catching up: %d changes pending, %.1f s behind", lag.pending, lag.seconds)
        if options.validate_after and options.cutover_check == "changed":  # the cut-over then checks only the rest
            t_ahead = time.perf_counter()
            compared, left = check_ahead(source, target, plan, state)
            ahead, ahead_s = ahead + compared, ahead_s + time.perf_counter() - t_ahead
            if compared:
                logger.info("compared ahead: %d changed rows, %d left for the cut-over", compared, left)
        if options.cutover == "auto" and lag.seconds <= max_lag and lag.pending < online.BATCH:
            break
        if options.cutover == "manual" and online.cutover_requested(dst, plan.run_key):
            logger.info("the cut-over was asked for")
            break

    phases["catch_up"] = round(time.perf_counter() - mark - ahead_s, 2)
    phases["check_ahead"], mark = round(ahead_s, 2), time.perf_counter()

    # 4. Cut over: fence, drain, identities, the command; then remove the capture (the fence stays: the app moved)
    if state.status in ("copied", "fenced"):
        progress.emit("phase", name="the cut-over")
        result = cut_over(source, target, plan, state, options.cutover_command or "",
                          full=options.cutover_check == "full", workers=options.workers, chunk_rows=options.chunk_rows,
                          verify=options.validate_after)
        logger.info("cut over: the write freeze lasted %.2f s", result["freeze_seconds"])
    else:
        result = {"freeze_seconds": state.freeze_seconds, "drained_to": state.applied, "identities": []}
    result["checked_ahead"] = ahead
    phases["cut_over"], mark = round(time.perf_counter() - mark, 2), time.perf_counter()
    online.clear_request(dst, plan.run_key)
    state = online.load_state(dst, plan.run_key) or state
    if "removed" not in state.meta:
        result["removed"] = end_capture(source, target, plan, state)
    phases["end_capture"] = round(time.perf_counter() - mark, 2)
    result["phases"] = phases

    # 5. Report, with what the catch-up applied and refused. The proof is the cut-over's check, made with the source
    #    fenced and before the app switched (after it, the target takes the app's writes: no longer comparable)
    validation = {"ok": True, "summary": f"{result.get('checked_rows', 0)} rows compared value by value at the "
                                          f"cut-over ({options.cutover_check}), source fenced"
                                          + (f", after {ahead} compared ahead while the app wrote" if ahead else "")
                  } if options.validate_after else None
    report = write_report(target, plan, options, opaque(chunks), opaque(steps), None, time.perf_counter() - t0,
                          validation)  # opaque: no upstream link per chunk (see migrate_database)
    state = online.load_state(dst, plan.run_key) or state
    online_report(report, state, result, options)
    publish(report)
    create_table_artifact(table=[{"write freeze (s)": result["freeze_seconds"],
                                  "changes applied": state.meta.get("changes_applied", 0),
                                  "refused": len(state.meta.get("rejects", []))}],
                          key=artifact_key("migration-cutover", target, schema=plan.target_schema),
                          description="online migration: the cut-over")
    if not report["ok"]:
        return Failed(message="; ".join(report["errors"][:3]) or "migration failed", data=report)
    return report


def online_report(report: dict, state, result: dict, options: MigrateOptions) -> None:
    """The online part of the report: the write freeze, the changes applied, every row the target refused."""
    rejects = state.meta.get("rejects", [])
    report["online"] = {**result, "changes_applied": state.meta.get("changes_applied", 0), "rejects": rejects,
                        "applied_to": state.applied, "fenced_at": state.fenced_at}
    if rejects:
        report["rows_rejected"] = report.get("rows_rejected", 0) + len(rejects)
        if report["rows_rejected"] > options.max_rejects:
            report["ok"] = False
            report["exit_code"] = report.get("exit_code") or 2
            report["errors"].append(f"{len(rejects)} changed rows refused by the target during the catch-up "
                                    "(online.rejects names each)")


def hand_over(source: SecretStr, target: SecretStr, options: MigrateOptions):
    """``migrate-database`` with ``options.online``: this flow, as a subflow (parameters stay secret)."""
    return migrate_online(source=source, target=target, options=options, return_state=True)

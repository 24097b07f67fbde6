"""``golive maintenance`` and ``golive report db``: keep a live database healthy, and say how healthy it is.

Thin: parse the options, check the URL and the connection (one line and exit 2 when wrong, before Prefect
starts), run the flow (a dry run runs the engine's plan alone), print what happened, exit 0 (all done /
nothing serious), 1 (something planned was not done / a serious finding) or 2 (bad input).
"""

from __future__ import annotations

import os
from typing import Optional

import typer

from golive.cli import app, report_app
from golive.cli._common import console, echo, handle_errors, note

_DB = typer.Option(..., "--db", help="postgresql://… or mysql://… (also embedded://DIR, or block:NAME for a Prefect "
                                     "Secret block holding the URL).")
_THRESHOLD = typer.Option(None, "--threshold", help="Any threshold as NAME=VALUE (repeatable), e.g. "
                                                     "unused_min_days=14, long_query_seconds=30; sizes accept 10MB.")
_VERBOSE = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines, and every object below thresholds.")


def thresholds(pairs: list[str] | None, **named) -> dict:
    """Thresholds from ``--threshold NAME=VALUE`` pairs and the named options that were given."""
    import difflib

    from golive.errors import ConfigError
    from golive.health.model import Thresholds
    from golive.units import parse_size

    fields = Thresholds.model_fields
    out = {k: v for k, v in named.items() if v is not None}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            raise ConfigError(f"--threshold {pair!r}: " + ("write NAME=VALUE" if not sep else f"no threshold {name!r}")
                              + (f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(fields)}"))
        out[name] = parse_size(value.strip(), name=name) if name.endswith("_bytes") else value.strip()
    for name in list(out):
        if name.endswith("_bytes") and isinstance(out[name], str):
            out[name] = parse_size(out[name], name=name)
    try:
        return Thresholds(**out).model_dump()
    except ValueError as exc:  # pydantic: one readable line
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ["?"], "msg": str(exc)}
        raise ConfigError(f"threshold {first['loc'][0]}: {first['msg']}") from None


def _resolve(db: str) -> str:
    from golive.cli._common import resolve_block

    return resolve_block(db)


def _check_connects(db: str):
    from golive.health.report import connect, parse_db

    url = parse_db(db)
    connect(url).close()
    return url


def _quiet(verbose: bool) -> None:
    # golive prints its own summary; Prefect's console lines (still sent to the API) only with --verbose
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _run(flow_fn, params, verbose: bool) -> dict:
    from golive.errors import GoliveError

    from golive.cli.files import _note_prefect

    _note_prefect()
    from flows.foreground import run_in_foreground

    state = run_in_foreground(flow_fn, params, return_state=True)
    value = state.result(raise_on_failure=False)
    if isinstance(value, dict):
        return value
    if isinstance(value, GoliveError) or isinstance(value, BaseException):
        raise value
    raise RuntimeError(f"{flow_fn.name} ended {state.type.value} without a report")


# ---------------------------------------------------------------------------------------------- maintenance

@app.command("maintenance", rich_help_panel="Maintenance and report")
@handle_errors
def maintenance_cmd(
    tasks: Optional[list[str]] = typer.Argument(None, help="vacuum-analyze, analyze, reindex, refresh-views, "
                                                           "purge-soft-deleted, vacuum-full (PostgreSQL); analyze, "
                                                           "optimize, purge-soft-deleted (MySQL). None: the safe "
                                                           "default set.", show_default=False),
    db: str = _DB,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would run and why (the numbers); change nothing."),
    lock_timeout: str = typer.Option("5s", "--lock-timeout", help="Longest wait for a lock, per statement; a "
                                                                  "statement that cannot get it is skipped and reported."),
    max_duration: str = typer.Option("1h", "--max-duration", help="Stop the whole run by then (running statements "
                                                                  "are cancelled; the rest is reported as not done)."),
    lock_wait: str = typer.Option("0s", "--lock-wait", help="Wait this long for another maintenance run to finish."),
    min_dead_tuples: Optional[int] = typer.Option(None, "--min-dead-tuples", help="vacuum-analyze: at least this many "
                                                                                  "dead tuples [1000] ..."),
    dead_ratio: Optional[float] = typer.Option(None, "--dead-ratio", help="... and this share of dead tuples [0.1]."),
    min_changes: Optional[int] = typer.Option(None, "--min-changes", help="analyze: rows changed since the last "
                                                                          "ANALYZE [1000] ..."),
    analyze_ratio: Optional[float] = typer.Option(None, "--analyze-ratio", help="... as a share of the rows [0.1]."),
    bloat_ratio: Optional[float] = typer.Option(None, "--bloat-ratio", help="reindex: estimated wasted share of an "
                                                                            "index [0.3] ..."),
    min_bloat: Optional[str] = typer.Option(None, "--min-bloat", help="... and wasted bytes [10MB]."),
    table_bloat_ratio: Optional[float] = typer.Option(None, "--table-bloat-ratio", help="vacuum-full: wasted share "
                                                                                        "of a table [0.5] ..."),
    min_table_bloat: Optional[str] = typer.Option(None, "--min-table-bloat", help="... and wasted bytes [10MB]."),
    fragmentation_ratio: Optional[float] = typer.Option(None, "--fragmentation-ratio", help="optimize: data_free as "
                                                                                            "a share of the table [0.2] ..."),
    min_free: Optional[str] = typer.Option(None, "--min-free", help="... and data_free bytes [32MB]."),
    threshold: Optional[list[str]] = _THRESHOLD,
    table: Optional[list[str]] = typer.Option(None, "--table", help="purge-soft-deleted: a table to purge (repeatable)."),
    column: str = typer.Option("deleted_at", "--column", help="purge-soft-deleted: the soft-delete timestamp column."),
    older_than: str = typer.Option("30d", "--older-than", help="purge-soft-deleted: rows soft-deleted longer ago go."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000, help="purge-soft-deleted: rows per "
                                                                                  "transaction."),
    pause: str = typer.Option("100ms", "--pause", help="purge-soft-deleted: pause between batches."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the JSON report to this file."),
    verbose: bool = _VERBOSE,
) -> None:
    """Vacuum, analyze, reindex, refresh materialized views and purge soft-deleted rows, safely on a live database:
    a lock timeout on every statement, a maximum duration, never two runs at once."""
    from golive.maintenance.model import MaintenanceOptions, MaintenanceReport
    from golive.maintenance.runner import preflight

    _quiet(verbose)
    t = thresholds(threshold, min_dead_tuples=min_dead_tuples, dead_ratio=dead_ratio, min_changes=min_changes,
                   analyze_ratio=analyze_ratio, bloat_ratio=bloat_ratio, min_bloat_bytes=min_bloat,
                   table_bloat_ratio=table_bloat_ratio, min_table_bloat_bytes=min_table_bloat,
                   fragmentation_ratio=fragmentation_ratio, min_free_bytes=min_free)
    _known_tasks(tasks or [])
    options = MaintenanceOptions(tasks=tasks or [], dry_run=dry_run, lock_timeout=lock_timeout,
                                 max_duration=max_duration, lock_wait=lock_wait, thresholds=t, purge_tables=table or [],
                                 purge_column=column, older_than=older_than, batch_size=batch_size, pause=pause,
                                 report_path=report)
    plain = _resolve(db)
    preflight(plain, options)  # bad input is refused before Prefect starts
    if dry_run:
        from golive.maintenance.runner import run

        result = run(plain, options)
    else:
        from pydantic import SecretStr

        from flows.maintenance import MaintenanceParams, maintenance

        data = _run(maintenance, MaintenanceParams(db=SecretStr(db), **options.model_dump()), verbose)
        result = MaintenanceReport.model_validate(data)
    show_maintenance(result, verbose=verbose)
    raise typer.Exit(result.exit_code)


def _known_tasks(tasks: list[str]) -> None:
    import difflib

    from golive.errors import ConfigError
    from golive.maintenance.model import ALL_TASKS

    known = sorted(ALL_TASKS)
    for t in tasks:
        if t not in known:
            close = difflib.get_close_matches(t, known, n=1)
            raise ConfigError(f"unknown maintenance task {t!r}" + (f" (did you mean {close[0]}?)" if close else "")
                              + f"; tasks: {', '.join(known)}")


def _effect(r) -> str:
    """Before -> after, in the numbers that matter for the task."""
    from golive.units import human_bytes, human_count

    b, a = r.before, r.after
    if r.task in ("vacuum-analyze", "vacuum-full", "analyze") and "n_dead_tup" in a:
        out = f"dead tuples {human_count(b.get('n_dead_tup', 0))} → {human_count(a['n_dead_tup'])}"
        if r.task == "vacuum-full":
            out += f", {human_bytes(b.get('bytes', 0))} → {human_bytes(a.get('bytes', 0))}"
        return out
    if r.task == "reindex" and a.get("bytes") is not None:
        return f"{human_bytes(b.get('bytes', 0))} → {human_bytes(a['bytes'])}"
    if r.task == "reindex" and a.get("dropped"):
        return f"dropped ({human_bytes(b.get('bytes', 0))})"
    if r.task == "purge-soft-deleted" and "deleted" in a:
        return (f"{human_count(a['deleted'])} deleted in {a['batches']} batches, {human_count(a['young_rows_kept'])} "
                f"younger kept, {human_count(a['old_rows_left'])} left")
    if r.task == "refresh-views" and a:
        return f"populated: {a.get('ispopulated')}"
    if r.task in ("optimize",) and "data_free" in a:
        return f"data_free {human_bytes(b.get('data_free', 0))} → {human_bytes(a['data_free'])}"
    return ""


def show_maintenance(rep, *, verbose: bool = False) -> None:
    from rich.table import Table

    p = rep.plan
    echo(f"[bold]{'Dry run: ' if rep.dry_run else ''}maintenance of {p.dbname}[/] ({p.engine} {p.server_version}) — "
         f"tasks: {', '.join(p.tasks)}")
    results = {f"{r.task}:{r.target}": r for r in rep.results}
    t = Table(show_edge=False, pad_edge=False)
    for col in ("task", "object", "result", "why" if rep.dry_run else "effect / why", "s"):
        t.add_column(col, overflow="fold", justify="right" if col == "s" else "left")
    for a in p.to_run:
        r = results.get(a.key)
        if r is None:
            t.add_row(a.task, a.target, "[cyan]would run[/]" if rep.dry_run else "[red]not started[/]",
                      a.reason + (f"\n[dim]{'; '.join(a.sql[:2])}  — {a.lock}[/]" if rep.dry_run else ""), "")
        else:
            style = {"done": "green", "skipped": "yellow", "failed": "red"}[r.status]
            detail = _effect(r) if r.status == "done" else r.reason
            t.add_row(a.task, a.target, f"[{style}]{r.status}[/]", detail or a.reason, f"{r.seconds:.2f}")
    if p.to_run:
        console.print(t)
    else:
        echo("nothing over the thresholds: nothing to do")
    below = [a for a in p.actions if not a.run]
    if below:
        shown = below if verbose else below[:10]
        echo(f"[dim]below thresholds or not applicable ({len(below)}):[/]")
        for a in shown:
            console.print(f"  {a.task} {a.target}: {a.reason}", markup=False, highlight=False, soft_wrap=True,
                          style="dim")
        if len(below) > len(shown):
            echo(f"  [dim]... and {len(below) - len(shown)} more (--verbose or --report FILE)[/]")
    for n in p.notes:
        note(n)
    if rep.dry_run:
        echo(f"[cyan]{rep.summary()}[/]")
    else:
        echo(f"{'[green]ok[/]' if rep.ok else '[red]INCOMPLETE[/]'}: {rep.summary()}")


# ---------------------------------------------------------------------------------------------- report db

@report_app.command("db")
@handle_errors
def report_db_cmd(
    db: str = _DB,
    out: Optional[list[str]] = typer.Option(None, "--out", help="Write the report to FILE.html (a standalone page "
                                                                "with charts), FILE.md or FILE.json (repeatable)."),
    history: bool = typer.Option(True, "--history/--no-history", help="Record this report's sizes in the database "
                                                                       "(growth and charts over time)."),
    fail_on: str = typer.Option("critical", "--fail-on", help="Exit 1 on a finding this serious: critical, warning "
                                                              "or never."),
    top: int = typer.Option(10, "--top", min=1, max=100, help="How many of the largest tables and indexes to list."),
    threshold: Optional[list[str]] = _THRESHOLD,
    verbose: bool = _VERBOSE,
) -> None:
    """Health report of a PostgreSQL or MySQL/MariaDB database: every finding with its severity, evidence and the SQL
    that fixes it; sizes over time. Exit 1 on a critical finding (see --fail-on) or a check that could not run."""
    from pydantic import SecretStr

    from golive.errors import ConfigError
    from golive.health import render
    from golive.health.model import DbReport

    _quiet(verbose)
    if fail_on not in ("critical", "warning", "never"):
        raise ConfigError(f"--fail-on must be critical, warning or never, not {fail_on!r}")
    for path in out or []:
        render.format_of(path)
    t = thresholds(threshold)
    _check_connects(_resolve(db))
    from flows.database_report import DatabaseReportParams, database_report

    params = DatabaseReportParams(db=SecretStr(db), out=out or [], history=history, fail_on=fail_on, top=top,
                                  thresholds=t)
    data = _run(database_report, params, verbose)
    rep = DbReport.model_validate(data)
    show_report(rep, data.get("files", []))
    raise typer.Exit(rep.exit_code)


def show_report(rep, files: list[str]) -> None:
    from rich.table import Table

    from golive.health.model import SEVERITY_ORDER
    from golive.units import human_bytes

    echo(f"[bold]Database report: {rep.dbname}[/] ({rep.engine} {rep.server_version}, "
         f"{human_bytes(rep.database_bytes)}, {len(rep.checks)} checks)")
    style = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan", "ok": "green"}
    t = Table(show_edge=False, pad_edge=False)
    for col in ("severity", "check", "object", "finding"):
        t.add_column(col, overflow="fold")
    rows = [(c, f) for c in rep.checks for f in c.findings if f.severity != "ok"]
    for c in rep.checks:
        if c.error:
            t.add_row(f"[{style['error']}]error[/]", c.id, "", c.summary)
    for c, f in sorted(rows, key=lambda cf: (SEVERITY_ORDER[cf[1].severity], cf[0].id)):
        t.add_row(f"[{style[f.severity]}]{f.severity}[/]", c.id, f.object, f.message)
    console.print(t)
    for path in files:
        echo(f"written: {path}")
    colour = "red" if rep.exit_code else "green"
    echo(f"[{colour}]{rep.summary()}[/] ({rep.seconds:.1f} s; fixes: --out report.html, .md or .json)")

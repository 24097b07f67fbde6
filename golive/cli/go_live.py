"""``golive go-live``: the whole go-live from one ``golive.toml`` (``init`` writes one, ``status`` shows it).

Thin: read the config, run the ``go-live`` flow here (or, for ``--dry-run``, every step's dry run without a
flow run), print one line per step, exit 0 (every step done), 1 (a step failed: it is named) or 2 (bad input).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape

from golive.cli import app
from golive.cli._common import console, echo, handle_errors, note

go_live_app = typer.Typer(help="The whole go-live as one resumable run, from golive.toml.", invoke_without_command=True)
app.add_typer(go_live_app, name="go-live", rich_help_panel="Go-live")

_CONFIG = typer.Option("golive.toml", "--config", "-c", help="The go-live's configuration (golive go-live init).")
_MARK = {"done": "[green]done[/]", "skipped": "[dim]done before[/]", "failed": "[red]FAILED[/]",
         "running": "[cyan]running[/]", "pending": "[dim]pending[/]"}


@go_live_app.callback()
@handle_errors
def go_live_cmd(
    ctx: typer.Context,
    config: str = _CONFIG,
    dry_run: bool = typer.Option(False, "--dry-run", help="Run every step's dry run; print one plan; write nothing."),
    restart: bool = typer.Option(False, "--restart", help="Forget which steps are done; start at the pre-check."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines too."),
) -> None:
    """Pre-check, backup, migrate the database, validate, upload and verify the files, rewrite the paths,
    report. Run it again after a failure or a crash: it resumes at the first unfinished step."""
    if ctx.invoked_subcommand is not None:
        return
    from golive.go_live.config import load_config

    cfg = load_config(config)
    if dry_run:
        raise typer.Exit(_dry_run(cfg))
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    from golive.cli._common import note_prefect_api

    note_prefect_api()
    from flows.foreground import run_in_foreground
    from flows.go_live import go_live
    from golive import progress
    from golive.go_live.report import TITLES

    def on_event(event: str, **data) -> None:
        if event == "go-live-note":
            echo(f"  [yellow]note[/] {escape(data['message'])}")
        elif event == "go-live-step":
            if data["status"] == "running":
                echo(f"[bold]{TITLES[data['step']]}[/] ...")
            else:  # lines name config keys ("[migrate] max_rejects"): printed, not read as markup
                echo(f"  {_MARK[data['status']]} {escape(data['line'])}", soft_wrap=True)

    stop = progress.listen(on_event)
    try:
        state = run_in_foreground(go_live, config=cfg, restart=restart, return_state=True)
    finally:
        stop()
    report = state.result(raise_on_failure=False)
    if isinstance(report, BaseException):
        raise report
    _show_report(report)
    raise typer.Exit(0 if report["ok"] else 1)


def _dry_run(cfg) -> int:
    from flows.go_live import resolve_config
    from golive.go_live import preview
    from golive.report import write_json

    r = resolve_config(cfg)
    plan = preview.dry_run(r)
    write_json(r.run_dir() / "dry-run.json", plan)
    from golive.go_live.report import TITLES

    echo(f"[bold]Go-live plan[/] (dry run: nothing was written) for {len(cfg.steps())} steps:")
    for step, s in plan["steps"].items():
        echo(f"\n[bold]{TITLES.get(step, step)}[/]")
        for line in s.get("lines", []):
            console.print(f"  {line}", markup=False, soft_wrap=True)
        if s.get("line"):
            console.print(f"  {s['line']}", markup=False, soft_wrap=True)
        for key in ("renamed", "skipped", "notes", "warnings", "problems"):
            items = s.get(key) or []
            for item in items[:15]:
                console.print(f"    {key[:-1] if key.endswith('s') else key}: {item}", markup=False, soft_wrap=True)
            if len(items) > 15:
                echo(f"    ... and {len(items) - 15} more {key}")
        for c in s.get("columns", []):
            for sm in c.get("samples", []):
                console.print(f"    {c['table']}.{c['column']} key {sm['key']}: {sm['before']} -> {sm['after']}",
                              markup=False, soft_wrap=True)
            for sm in c.get("missing_samples", []):
                console.print(f"    missing file: key {sm['key']}: {sm['value']}", markup=False, soft_wrap=True)
    echo("")
    if plan["errors"]:
        echo(f"[red]The go-live would fail[/] ({len(plan['errors'])} problem(s)):")
        for e in plan["errors"][:20]:
            console.print(f"  - {e}", markup=False, soft_wrap=True)
    else:
        echo("[green]Every step is ready.[/] Run it without --dry-run.")
    note(f"Plan written to {r.run_dir() / 'dry-run.json'}")
    return 0 if plan["ok"] else 1


def _show_report(report: dict) -> None:
    echo("")
    status = "[green]go-live complete[/]" if report["ok"] else f"[red]go-live stopped at {report['failed_step']}[/]"
    echo(f"{status} in {report.get('seconds', 0):.1f} s")
    console.print(report["state"], markup=False, soft_wrap=True)
    for k, v in report["where"].items():
        console.print(f"  {k}: {v}", markup=False, soft_wrap=True)
    if not report["ok"]:
        echo("Fix the cause and run the same command again: finished steps are not repeated.")


@go_live_app.command("init")
@handle_errors
def init_cmd(
    path: str = typer.Argument("golive.toml", help="Where to write the example."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented golive.toml to fill in."""
    from golive.errors import ConfigError
    from golive.go_live.config import EXAMPLE

    p = Path(path)
    if p.exists() and not force:
        raise ConfigError(f"{p} exists (add --force to overwrite it)")
    p.write_text(EXAMPLE, encoding="utf-8")
    echo(escape(f"Wrote {p}: fill in [source], [target] and [[rewrite]], then "
                f"`golive go-live --config {p} --dry-run`."))


@go_live_app.command("status")
@handle_errors
def status_cmd(config: str = _CONFIG) -> None:
    """Which steps of this configuration's go-live are done, failed or still to do."""
    from rich.table import Table

    from golive.go_live.config import load_config
    from golive.go_live.report import TITLES, line, state_sentence
    from golive.go_live.state import Journal

    cfg = load_config(config)
    journal = Journal(Path(cfg.state_dir).absolute(), cfg.key())
    t = Table(title=f"go-live {journal.key} ({journal.path})", title_justify="left")
    for col in ("step", "status", "finished", "outcome"):
        t.add_column(col)
    rows = []
    for step in cfg.steps():
        e = journal.data["steps"].get(step, {})
        status = e.get("status", "pending")
        rows.append({"step": step, "status": status, "error": e.get("error")})
        outcome = e.get("error") if status == "failed" else line(step, e.get("summary")) if e.get("summary") else ""
        t.add_row(TITLES[step], _MARK.get(status, status), e.get("finished_at") or "", outcome or "")
    console.print(t)
    console.print(state_sentence(rows), markup=False, soft_wrap=True)

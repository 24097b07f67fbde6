"""``golive release``: a schema release that rolls itself back.

Thin: parse the options (bad input: one line and exit 2 before Prefect starts), run the ``release`` flow in
this process (``--dry-run`` and ``--lint-only`` run the engine alone: no Prefect, nothing changed), print the
pre-check, the lint findings, the migrations and the timeline, and exit with the release's code: 0 released,
1 failed and rolled back cleanly, 2 refused before changing anything, 3 failed and the rollback failed too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from golive.cli import app
from golive.cli._common import console, echo, err_console, handle_errors
from golive.urls import mask

_STATUS = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


@app.command("release", rich_help_panel="Releases")
@handle_errors
def release_cmd(
    db: str = typer.Option(..., "--db", help="postgresql://… or mysql://… (also embedded://DIR, or block:NAME for a "
                                             "Prefect Secret block holding the URL)."),
    migrations: str = typer.Option(..., "--migrations", help="KIND:PATH: sql:DIR (NNN_name.sql [+ NNN_name.down.sql]), "
                                                             "alembic:DIR (the app's alembic.ini), prisma:DIR "
                                                             "(prisma/migrations)."),
    backup_to: Optional[str] = typer.Option(None, "--backup-to", help="s3://bucket/prefix or file:///dir: the "
                                                                      "release's backup (default: file://<state "
                                                                      "dir>/backups, as go-live).", show_default=False),
    state_dir: str = typer.Option("golive-runs", "--state-dir", help="Where golive keeps its state; the backup goes "
                                                                     "to its backups/ unless --backup-to."),
    verify_backup: bool = typer.Option(False, "--verify-backup", help="Restore the backup into a scratch database and "
                                                                      "check it before migrating."),
    rollback: str = typer.Option("restore", "--rollback", help="restore (the backup) or down (down-migrations when "
                                                               "every applied migration has one, else restore)."),
    health_url: Optional[list[str]] = typer.Option(None, "--health-url", help="Polled after the migrations until it "
                                                                               "answers 2xx (repeatable)."),
    health_cmd: Optional[str] = typer.Option(None, "--health-cmd", help="A shell command that must exit 0 (non-HTTP "
                                                                        "checks)."),
    health_timeout: str = typer.Option("60s", "--health-timeout", help="How long the health checks may take."),
    check_sql: Optional[str] = typer.Option(None, "--check-sql", help="A file of queries that must return no rows "
                                                                      "after the migrations."),
    rows_may_change: Optional[list[str]] = typer.Option(None, "--rows-may-change", help="A table whose row count the "
                                                                                        "release may change "
                                                                                        "(repeatable)."),
    notify: Optional[list[str]] = typer.Option(None, "--notify", help="Webhook: https://… (generic JSON), "
                                                                      "slack+https://…, feishu+…, lark+…, dingtalk+…, "
                                                                      "wecom+…; the URL part may be env:VAR or "
                                                                      "block:NAME (repeatable)."),
    lint_only: bool = typer.Option(False, "--lint-only", help="Pre-check the migrations and lint them; run nothing (CI "
                                                              "on pull requests)."),
    allow: Optional[list[str]] = typer.Option(None, "--allow", help="A lint rule whose findings do not block "
                                                                    "(repeatable)."),
    large_table: str = typer.Option("10MB", "--large-table", help="Locking findings on tables this large block; on "
                                                                  "smaller ones they warn."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Pre-check, lint and the plan of what would run; change "
                                                          "nothing."),
    lock_timeout: str = typer.Option("5s", "--lock-timeout", help="lock_timeout of every migration statement (0: wait "
                                                                  "forever)."),
    lock_retries: int = typer.Option(5, "--lock-retries", min=0, max=50, help="Retries (1 s, 2 s, 4 s …) of what only "
                                                                              "timed out waiting for its lock."),
    statement_timeout: Optional[str] = typer.Option(None, "--statement-timeout", help="statement_timeout of every "
                                                                                      "migration statement."),
    timeout: str = typer.Option("30m", "--timeout", help="Overall time limit of the migrations."),
    long_transaction: str = typer.Option("60s", "--long-transaction", help="Pre-check: list transactions open longer "
                                                                           "(fail when they lock a changed table)."),
    resolve_interrupted: bool = typer.Option(False, "--resolve-interrupted", help="Accept the state an interrupted "
                                                                                  "release left and go on."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint of --backup-to."),
    region: Optional[str] = typer.Option(None, "--region", help="Region of --backup-to."),
    addressing_style: str = typer.Option("auto", "--addressing-style", help="S3 addressing: auto, path or virtual."),
    credentials_block: Optional[str] = typer.Option(None, "--credentials-block", help="Prefect Secret block with "
                                                                                      "aws_access_key_id/…"),
    encrypt_key_file: Optional[str] = typer.Option(None, "--encrypt-key-file", help="Encrypt the backup (32-byte key "
                                                                                    "file)."),
    encrypt_key_block: Optional[str] = typer.Option(None, "--encrypt-key-block", help="Prefect Secret block holding "
                                                                                      "the key."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the JSON report to this file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines."),
) -> None:
    """Release schema migrations with a safety net: pre-check, lint, backup, migrate, validate, health check, and
    on any failure roll back (down-migrations or the backup) and say exactly what state the database is in."""
    from pydantic import SecretStr

    from golive.errors import ConfigError
    from golive.release.model import ReleaseReport, ReleaseSettings

    if rollback not in ("restore", "down"):
        raise ConfigError(f"--rollback must be restore or down, not {rollback!r}")
    if addressing_style not in ("auto", "path", "virtual"):
        raise ConfigError(f"--addressing-style must be auto, path or virtual, not {addressing_style!r}")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    if not backup_to and not lint_only:  # as go-live does: a backup is what a failed release rolls back to
        backup_to = f"file://{Path(state_dir).absolute() / 'backups'}"  # the output's "backup:" line names it
    settings = ReleaseSettings(
        migrations=migrations, backup_to=backup_to, verify_backup=verify_backup, rollback=rollback,
        health_urls=health_url or [], health_cmd=health_cmd, health_timeout=health_timeout, check_sql=check_sql,
        rows_may_change=rows_may_change or [], notify=[SecretStr(n) for n in notify or []], allow=allow or [],
        large_table=large_table, lint_only=lint_only, dry_run=dry_run, lock_timeout=lock_timeout,
        lock_retries=lock_retries, statement_timeout=statement_timeout, timeout=timeout,
        long_transaction=long_transaction, resolve_interrupted=resolve_interrupted, report_path=report)
    storage = dict(endpoint_url=endpoint_url, region=region, addressing_style=addressing_style,
                   credentials_block=credentials_block, encrypt_key_file=encrypt_key_file,
                   encrypt_key_block=encrypt_key_block)
    if dry_run or lint_only:
        rep = _preview(db, settings, storage)
    else:
        _check_input(db, settings, storage)  # one line and exit 2 before Prefect starts
        from flows.backup_params import StorageParams
        from flows.release import ReleaseParams, release

        from golive.cli.maintenance import _run

        params = ReleaseParams(db=SecretStr(db), **settings.model_dump(exclude={"notify"}),
                               notify=settings.notify, storage=StorageParams(**storage))
        rep = ReleaseReport.model_validate(_run(release, params, verbose))
    show(rep, settings)
    if rep.exit_code:  # the statement names the state itself ("refused before …", "failed and rolled back: …")
        err_console.print(_statement(rep, "bold red"), soft_wrap=True)
    raise typer.Exit(rep.exit_code)


def _statement(rep, colour: str) -> str:
    """The statement with its first words (the state: "released", "dry run", "refused before …") in colour."""
    from rich.markup import escape

    head, sep, rest = mask(rep.statement).partition(": ")
    return f"[{colour}]{escape(head)}[/]{sep}{escape(rest)}"


def _engine_options(settings, storage: dict):
    """ReleaseOptions without Prefect when no Prefect block is named (the dry run and lint need none)."""
    from golive.backup import StorageOptions
    from golive.release.model import ReleaseOptions

    if storage.get("credentials_block") or storage.get("encrypt_key_block"):
        from flows.backup_params import StorageParams, encryption_key, storage_options

        p = StorageParams(**storage)
        return ReleaseOptions(**settings.model_dump(), storage=storage_options(p), encryption_key=encryption_key(p))
    key = None
    if storage.get("encrypt_key_file"):
        from pydantic import SecretStr

        from golive.backup.crypto import read_key_file

        key = SecretStr(read_key_file(storage["encrypt_key_file"]).hex())
    data = settings.model_dump()
    data["notify"] = settings.notify
    return ReleaseOptions(**data, storage=StorageOptions(endpoint_url=storage["endpoint_url"], region=storage["region"],
                                                         addressing_style=storage["addressing_style"]),
                          encryption_key=key)


def _plain_db(db: str) -> str:
    from golive.cli.maintenance import _resolve

    return _resolve(db)


def _check_input(db: str, settings, storage: dict) -> None:
    from golive.release.state import close, runtime, start

    if db.strip().startswith("block:"):
        from golive.release.migrations import parse_spec

        parse_spec(settings.migrations)
        return
    state = start(db, _engine_options(settings, storage))
    try:
        runtime(state).source.load()
    finally:
        close(state)


def _preview(db: str, settings, storage: dict):
    from golive.release.runner import run_release

    return run_release(_plain_db(db), _engine_options(settings, storage))


def show(rep, settings) -> None:
    from rich.table import Table

    echo(f"[bold]Release {rep.release_id}[/] of {rep.dbname or rep.database} ({rep.engine} {rep.server_version}) — "
         f"{rep.migrations}")
    t = Table(show_edge=False, pad_edge=False, title="pre-check", title_justify="left")
    for col in ("status", "check", "result"):
        t.add_column(col, overflow="fold")
    for c in rep.prechecks:
        t.add_row(_STATUS[c.status], c.id, mask(c.message))
    console.print(t)
    if rep.findings:
        t = Table(show_edge=False, pad_edge=False, title="lint", title_justify="left")
        for col in ("severity", "rule", "where", "finding"):
            t.add_column(col, overflow="fold")
        for f in rep.findings:
            sev = ("[yellow]allowed[/]" if f.allowed and f.severity == "error" else
                   "[bold red]error[/]" if f.severity == "error" else "[yellow]warning[/]")
            t.add_row(sev, f.rule, f"{f.migration}:{f.line}", f"{f.message}\n[dim]fix: {f.fix}[/]")
        console.print(t)
    if settings.dry_run and rep.plan:
        echo("[bold]plan[/] (nothing was changed):")
        for line in rep.steps:
            echo(f"  {line}")
    if rep.runs:
        t = Table(show_edge=False, pad_edge=False, title="migrations", title_justify="left")
        for col in ("migration", "status", "statements", "attempts", "s"):
            t.add_column(col, justify="right" if col in ("statements", "attempts", "s") else "left")
        style = {"applied": "green", "failed": "red", "rolled-back": "yellow", "not-run": "dim"}
        for r in rep.runs:
            t.add_row(r.label, f"[{style[r.status]}]{r.status}[/]", str(r.statements), str(r.attempts),
                      f"{r.seconds:.2f}")
        console.print(t)
    if not settings.dry_run and not settings.lint_only and len(rep.timeline) > 3:
        echo("[bold]timeline[/]")
        for e in rep.timeline:
            colour = {"failed": "red", "warn": "yellow", "retry": "yellow", "ok": "green"}.get(e.status, "dim")
            console.print(f"  {e.t:7.1f} s  [{colour}]{e.step:<16}[/] {mask(e.message)}", soft_wrap=True,
                          highlight=False)
    for n in rep.notifications:
        echo(f"notify {n.target}: {'[green]sent[/]' if n.ok else '[red]failed[/] ' + n.detail}")
    for w in rep.warnings:
        echo(f"[yellow]warning:[/] {w}")
    if rep.backup:
        echo(f"backup: {rep.backup.url}" + (f" (verified: {rep.backup.verified})" if rep.backup.verified else "")
             + f"; restore it with: golive restore --from {rep.backup.url} --to …")
    colour = {0: "green", 1: "yellow"}.get(rep.exit_code, "bold red")
    echo(_statement(rep, colour))

"""``golive backup``, ``golive restore`` and ``golive backups list|verify|prune``.

Thin: parse options, run the flow (``backup-database``, ``restore-database``, ``verify-backup``,
``prune-backups``) in this process, print the outcome. ``backups list`` and ``prune --dry-run`` need no flow
run. Exit codes: 0 done (and verified); 1 a verification or the post-restore checks failed; 2 bad input or a
failure (wrong password, unreachable server, damaged backup, full scratch disk), printed as one line; 3 (``golive
backup``) the backup was written but its verification could not run ("backup written, not verified: <why>").
"""

from __future__ import annotations

import json
import os
from typing import Optional

import typer

from golive.cli import app
from golive.cli._common import console, echo, handle_errors, note

#: ``golive backup``'s exit code when the backup was written but its verification could not run
NOT_VERIFIED = 3

backups_app = typer.Typer(help="List, verify and prune backups.", no_args_is_help=True)
app.add_typer(backups_app, name="backups", rich_help_panel="Backups")

_ENDPOINT = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint (MinIO, OSS, TOS...).")
_REGION = typer.Option(None, "--region", help="Region (default: the AWS chain's).")
_STYLE = typer.Option("auto", "--addressing-style", help="S3 addressing: auto, path or virtual.")
_CREDS = typer.Option(None, "--credentials-block", help="Prefect Secret block with aws_access_key_id/aws_secret_access_key.")
_KEYFILE = typer.Option(None, "--encrypt-key-file", help="32-byte key file (raw, hex or base64): AES-256-GCM.")
_KEYBLOCK = typer.Option(None, "--encrypt-key-block", help="Prefect Secret block holding the key.")
_SCRATCH = typer.Option(None, "--scratch", help="Server to verify on (a temporary database is made and dropped); "
                                                "default: embedded PostgreSQL / the backup's own MySQL server.")
_SCRATCH_DIR = typer.Option(None, "--scratch-dir", help="Local scratch directory (default: the temp dir).")
_REPORT = typer.Option(None, "--report", help="Write a JSON report to this file.")
_VERBOSE = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines.")


def _storage(endpoint_url, region, addressing_style, credentials_block, key_file, key_block):
    from flows.backup_params import StorageParams

    return StorageParams(endpoint_url=endpoint_url, region=region, addressing_style=_style(addressing_style),
                         credentials_block=credentials_block, encrypt_key_file=key_file, encrypt_key_block=key_block)


def _style(value: str) -> str:
    from golive.errors import ConfigError

    if value not in ("auto", "path", "virtual"):
        raise ConfigError(f"--addressing-style must be auto, path or virtual, not {value!r}")
    return value


def _quiet(verbose: bool) -> None:
    """Keep Prefect's console lines out of the terminal (they still reach the API); before Prefect is imported."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _run(flow_fn, params, verbose: bool):
    """Run a flow here; returns its report (also of a failed run); raises the error of a crashed one."""
    _quiet(verbose)
    from golive.cli.files import _note_prefect

    _note_prefect()
    from flows.foreground import run_in_foreground

    state = run_in_foreground(flow_fn, params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 20):.1f} MiB"


def _write(report_path: str | None, data: dict) -> None:
    if report_path:
        from golive.report import write_json

        write_json(report_path, data)


@app.command("backup", rich_help_panel="Backups")
@handle_errors
def backup_cmd(
    db: str = typer.Option(..., "--db", help="postgresql://…, mysql://…, sqlite:///app.db, or block:NAME."),
    to: str = typer.Option(..., "--to", help="s3://bucket/prefix or file:///dir (the backup is <to>/<ID>)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name in the backup ID (default: the database's)."),
    compress: str = typer.Option("zstd:1", "--compress", help="zstd, zstd:LEVEL (1-19) or none."),
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    create_bucket: bool = typer.Option(False, "--create-bucket", help="Create the bucket if it does not exist."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Restore the new backup into a scratch database "
                                                                   "and check it (recorded in the manifest)."),
    scratch: Optional[str] = _SCRATCH,
    scratch_dir: Optional[str] = _SCRATCH_DIR,
    prune: bool = typer.Option(False, "--prune", help="Apply the retention policy (--keep-*) afterwards."),
    keep_last: int = typer.Option(0, "--keep-last", min=0),
    keep_daily: int = typer.Option(7, "--keep-daily", min=0),
    keep_weekly: int = typer.Option(4, "--keep-weekly", min=0),
    keep_monthly: int = typer.Option(12, "--keep-monthly", min=0),
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Back up a database (PostgreSQL, MySQL/MariaDB, SQLite) to S3 or a directory: streamed, hashed, verified."""
    _quiet(verbose)
    from pydantic import SecretStr

    from flows.backup_database import BackupParams, backup_database
    from golive.backup import RetentionPolicy
    from golive.backup.naming import parse_location
    from golive.backup.stream import parse_compression

    parse_location(to, want_backup=False)  # bad input: one line before Prefect starts
    parse_compression(compress)
    params = BackupParams(db=SecretStr(db), to=to, name=name, compress=compress, create_bucket=create_bucket,
                          storage=_storage(endpoint_url, region, addressing_style, credentials_block, encrypt_key_file,
                                           encrypt_key_block),
                          verify=verify, scratch=SecretStr(scratch) if scratch else None, scratch_dir=scratch_dir,
                          prune=prune, retention=RetentionPolicy(keep_last=keep_last, keep_daily=keep_daily,
                                                                 keep_weekly=keep_weekly, keep_monthly=keep_monthly),
                          report_path=report)
    rep = _run(backup_database, params, verbose)
    b = rep["backup"]
    echo(f"[bold]{b['id']}[/] -> {b['url']}")
    echo(f"  {b['engine']} {b['database']} (server {b['server_version']}), {b['tables']} tables, {b['rows']} rows")
    echo(f"  {_mib(b['raw_bytes'])} raw -> {_mib(b['stored_bytes'])} stored ({b['compression']}"
         f"{', encrypted' if b['encrypted'] else ''}) in {b['seconds']:.1f} s")
    echo(f"  dumped with {b['tool']['name']} {b['tool']['version']}" + (f" ({b['tool']['path']})" if b['tool'].get('path') else ""))
    for w in b.get("warnings", []):
        echo(f"  [yellow]warning:[/] {w}")
    v = rep.get("verification")
    if v:
        _show_verification(v)
    if "prune" in rep:
        echo(f"  pruned: {len(rep['prune']['removed'])} removed, {len(rep['prune']['kept'])} kept")
    if "not_verified" in rep:  # the backup exists; proving it could not run
        from rich.markup import escape

        console.print(f"[yellow]backup written, not verified[/]: {escape(rep['not_verified'])}", markup=True,
                      highlight=False, soft_wrap=True)
        raise typer.Exit(NOT_VERIFIED)
    echo(("[green]ok[/]" if rep["ok"] else "[red]FAILED[/]") + f": backup {b['id']}"
         + (" verified" if v and rep["ok"] else ""))
    raise typer.Exit(0 if rep["ok"] else 1)


def _show_verification(v: dict) -> None:
    colour = "green" if v["status"] == "passed" else "red"
    echo(f"  verification [{colour}]{v['status']}[/] in {v['seconds']:.1f} s (scratch {v['scratch']})")
    for c in v.get("checks", []):
        echo(f"    - {c}")
    for p in v.get("problems", []):
        console.print(f"    [red]- {p}[/]", markup=True, highlight=False, soft_wrap=True)


@app.command("restore", rich_help_panel="Backups")
@handle_errors
def restore_cmd(
    source: str = typer.Option(..., "--from", help="s3://bucket/prefix/<ID> or …/latest (file:///dir/<ID> alike); "
                                                   "with --to-time: …/archive/<name>."),
    target: Optional[str] = typer.Option(None, "--to", help="Target database URL (or block:NAME)."),
    to_time: Optional[str] = typer.Option(None, "--to-time", help="Point-in-time: '2026-12-06 16:04:00+08' or "
                                                                  "latest, from an archive (golive archive start)."),
    to_dir: Optional[str] = typer.Option(None, "--to-dir", help="With --to-time, PostgreSQL: recover a whole "
                                                                "cluster into this new directory and start it."),
    port: Optional[int] = typer.Option(None, "--port", help="With --to-dir: the recovered server's port."),
    force: bool = typer.Option(False, "--force", help="Replace everything in a non-empty target."),
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, max=32, help="Parallel restore workers."),
    no_owner: bool = typer.Option(False, "--no-owner", help="PostgreSQL: do not restore owners and privileges."),
    scratch_dir: Optional[str] = _SCRATCH_DIR,
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Restore a backup into a database (checks every object first; ends comparing counts and schema)."""
    _quiet(verbose)
    from pydantic import SecretStr

    from flows.restore_database import RestoreParams, restore_database
    from golive.backup.naming import parse_location
    from golive.errors import ConfigError

    storage = _storage(endpoint_url, region, addressing_style, credentials_block, encrypt_key_file, encrypt_key_block)
    if to_time is not None or to_dir is not None:
        from golive.cli.archive import restore_to_time_cmd

        if to_time is None:
            raise ConfigError("--to-dir restores an archive to a moment: give --to-time (or latest)")
        restore_to_time_cmd(source, to_time, target, to_dir, port, scratch_dir, storage, report)
        raise typer.Exit(0)
    if target is None:
        raise ConfigError("give the database to restore into: --to URL")
    parse_location(source, want_backup=True)
    params = RestoreParams(source=source, target=SecretStr(target), force=force, jobs=jobs, no_owner=no_owner,
                           scratch_dir=scratch_dir, report_path=report,
                           storage=_storage(endpoint_url, region, addressing_style, credentials_block,
                                            encrypt_key_file, encrypt_key_block))
    rep = _run(restore_database, params, verbose)
    echo(f"[bold]{rep['id']}[/] -> {rep['target']}")
    for c in rep["checks"]:
        echo(f"  - {c}")
    for p in rep["problems"]:
        console.print(f"  [red]- {p}[/]", markup=True, highlight=False, soft_wrap=True)
    t = rep.get("timings", {})
    echo(("[green]ok[/]" if rep["ok"] else "[red]DIFFERENT[/]") + f": restored in {t.get('total', 0):.1f} s "
         f"(download {t.get('download', 0):.1f} s, restore {t.get('restore', 0):.1f} s, checks {t.get('checks', 0):.1f} s)")
    raise typer.Exit(0 if rep["ok"] else 1)


@backups_app.command("list")
@handle_errors
def list_cmd(
    at: str = typer.Option(..., "--at", help="s3://bucket/prefix or file:///dir"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
) -> None:
    """List the backups under a URL: id, time, size, duration, verified?, age."""
    from flows.backup_params import storage_options
    from golive.backup import list_backups

    res = list_backups(at, storage_options(_storage(endpoint_url, region, addressing_style, credentials_block,
                                                    None, None)))
    if as_json:
        typer.echo(json.dumps(res.model_dump(mode="json"), indent=2))
        raise typer.Exit(0)
    from rich.table import Table

    t = Table(title=f"Backups at {res.at}", title_justify="left")
    for col, just in (("id", "left"), ("time (UTC)", "left"), ("size", "right"), ("duration", "right"),
                      ("rows", "right"), ("verified", "left"), ("age", "right")):
        t.add_column(col, justify=just)
    for b in reversed(res.backups):
        ver = {"passed": "[green]passed[/]", "failed": "[red]FAILED[/]"}.get(b.verified, "[yellow]no[/]")
        t.add_row(b.id, b.started_at[:19].replace("T", " "), _mib(b.stored_bytes), f"{b.duration_seconds:.1f} s",
                  str(b.rows), ver, _age(b.age_seconds))
    from rich.console import Console

    (console if console.is_terminal else Console(width=200, highlight=False)).print(t)  # piped: whole IDs
    if res.incomplete:
        note(f"{len(res.incomplete)} incomplete (objects without a manifest, not backups): "
             + ", ".join(res.incomplete[:5]))
    echo(f"{len(res.backups)} backup(s)")
    from golive.archive import archive_status, archives_under

    storage = storage_options(_storage(endpoint_url, region, addressing_style, credentials_block, None, None))
    windows = [archive_status(u, storage) for u in archives_under(at, storage)]
    if windows:  # point-in-time archives kept beside the backups (golive archive start --to the same place)
        from golive.cli.archive import show_windows

        show_windows(windows)
        if not all(w.ok for w in windows):
            raise typer.Exit(1)


def _age(s: float) -> str:
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


@backups_app.command("verify")
@handle_errors
def verify_cmd(
    url: str = typer.Argument(..., help="s3://bucket/prefix/<ID> or …/latest"),
    scratch: Optional[str] = _SCRATCH,
    scratch_dir: Optional[str] = _SCRATCH_DIR,
    jobs: int = typer.Option(2, "--jobs", "-j", min=1, max=32),
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Restore a backup into a scratch database and check it; the verdict goes into its manifest."""
    _quiet(verbose)
    from pydantic import SecretStr

    from flows.verify_backup import VerifyParams, verify_backup
    from golive.backup.naming import parse_location

    parse_location(url, want_backup=True)
    params = VerifyParams(url=url, scratch=SecretStr(scratch) if scratch else None, scratch_dir=scratch_dir, jobs=jobs,
                          report_path=report, storage=_storage(endpoint_url, region, addressing_style,
                                                               credentials_block, encrypt_key_file, encrypt_key_block))
    rep = _run(verify_backup, params, verbose)
    echo(f"[bold]{rep['id']}[/]")
    _show_verification(rep["verification"])
    echo(("[green]ok[/]: verified" if rep["ok"] else "[red]FAILED[/]: the backup did not pass verification"))
    raise typer.Exit(0 if rep["ok"] else 1)


@backups_app.command("prune")
@handle_errors
def prune_cmd(
    at: str = typer.Option(..., "--at", help="s3://bucket/prefix or file:///dir"),
    keep_last: int = typer.Option(0, "--keep-last", min=0, help="Keep the N newest."),
    keep_daily: int = typer.Option(7, "--keep-daily", min=0, help="Newest of each of the last N days with backups."),
    keep_weekly: int = typer.Option(4, "--keep-weekly", min=0, help="Newest of each of the last N ISO weeks."),
    keep_monthly: int = typer.Option(12, "--keep-monthly", min=0, help="Newest of each of the last N months."),
    keep_yearly: int = typer.Option(0, "--keep-yearly", min=0, help="Newest of each of the last N years."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Delete backups a grandfather-father-son policy does not keep (never the newest verified one)."""
    _quiet(verbose)
    from flows.backup_params import storage_options
    from golive.backup import RetentionPolicy, prune_backups
    from golive.backup.naming import parse_location

    parse_location(at, want_backup=False)
    policy = RetentionPolicy(keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly,
                             keep_monthly=keep_monthly, keep_yearly=keep_yearly)
    store = _storage(endpoint_url, region, addressing_style, credentials_block, None, None)
    if dry_run:
        rep = prune_backups(at, policy, dry_run=True, storage=storage_options(store)).model_dump(mode="json")
        _write(report, rep)
    else:
        from flows.prune_backups import PruneParams, prune_backups as flow

        rep = _run(flow, PruneParams(at=at, retention=policy, storage=store, report_path=report), verbose)
    verb = "would remove" if dry_run else "removed"
    for backup_id in rep["removed"]:
        echo(f"  {verb} {backup_id}")
    for backup_id, why in sorted(rep["kept"].items(), reverse=True):
        echo(f"  keep {backup_id} ({', '.join(why)})")
    echo(f"{'[cyan]dry run[/]' if dry_run else '[green]ok[/]'}: {len(rep['kept'])} kept, {len(rep['removed'])} {verb}")
    raise typer.Exit(0)

"""``golive archive start|base|status|drill|prune|forget`` and ``golive restore --to-time``: point-in-time recovery.

``start`` and ``drill`` run their flows (``archive-database``, ``drill-archive``) in this process; ``status``,
``base``, ``prune`` and ``forget`` need no flow run. Exit codes: 0 done; 1 a drill failed, or ``status`` found a gap
or a stale archive; 2 bad input or a failure, one line.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from golive.cli import app
from golive.cli._common import console, echo, handle_errors, note
from golive.cli.backup import (_CREDS, _ENDPOINT, _KEYBLOCK, _KEYFILE, _REGION, _REPORT, _SCRATCH_DIR, _STYLE,
                               _VERBOSE, _quiet, _run, _storage, _write)

archive_app = typer.Typer(help="Point-in-time recovery: a continuous archive of the change log.", no_args_is_help=True)
app.add_typer(archive_app, name="archive", rich_help_panel="Backups")

_AT = typer.Option(..., "--at", help="s3://bucket/prefix/archive/<name> (or the prefix: every archive under it).")


def _when(t) -> str:
    return "-" if t is None else str(t)[:23].replace("T", " ") + " UTC"


@archive_app.command("start")
@handle_errors
def start_cmd(
    db: str = typer.Option(..., "--db", help="postgresql://… or mysql://… (replication rights), or block:NAME."),
    to: str = typer.Option(..., "--to", help="s3://bucket/prefix or file:///dir (the archive is <to>/archive/<name>)."),
    name: Optional[str] = typer.Option(None, "--name", help="The archive's name (default: the database's)."),
    flush_seconds: float = typer.Option(30, "--flush-seconds", min=1, max=60,
                                        help="Store the segment being written at least this often (the RPO)."),
    marker_seconds: float = typer.Option(60, "--marker-seconds", min=0, help="A marker row this often (0: none)."),
    base_every: float = typer.Option(24, "--base-every-hours", min=0, help="A new base backup this often."),
    spool_dir: Optional[str] = typer.Option(None, "--spool-dir", help="Local spool, kept across restarts "
                                                                      "(default ~/.golive/archive/<name>)."),
    seconds: Optional[float] = typer.Option(None, "--for", min=1, help="Stop after this many seconds "
                                                                       "(default: until Ctrl-C / SIGTERM)."),
    create_bucket: bool = typer.Option(False, "--create-bucket", help="Create the bucket if it does not exist."),
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Stream the database's change log (PostgreSQL WAL, MySQL binlog) into S3, at most --flush-seconds behind."""
    _quiet(verbose)
    from pydantic import SecretStr

    from flows.archive_database import ArchiveParams, archive_database
    from golive.backup.naming import parse_location

    parse_location(to, want_backup=False)
    params = ArchiveParams(db=SecretStr(db), to=to, name=name, flush_seconds=flush_seconds,
                           marker_seconds=marker_seconds, base_every_hours=base_every, spool_dir=spool_dir,
                           seconds=seconds, create_bucket=create_bucket, report_path=report,
                           storage=_storage(endpoint_url, region, addressing_style, credentials_block,
                                            encrypt_key_file, encrypt_key_block))
    rep = _run(archive_database, params, verbose)
    w = rep["window"]
    echo(f"[bold]{rep['name']}[/] -> {rep['url']}")
    echo(f"  {rep['segments_stored']} segments stored, {rep['flushes']} flushes, {rep['restarts']} receiver "
         f"restarts in {rep['seconds']:.0f} s (worst flush lag {rep['max_flush_lag_seconds']} s)")
    echo(f"  recovery window: {_when(w['earliest'])} to {_when(w['latest'])}")
    echo("[green]ok[/]: archive stopped")


@archive_app.command("base")
@handle_errors
def base_cmd(
    db: str = typer.Option(..., "--db", help="The archived database (or block:NAME)."),
    to: str = typer.Option(..., "--to", help="The same --to as golive archive start."),
    name: Optional[str] = typer.Option(None, "--name", help="The archive's name (default: the database's)."),
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
) -> None:
    """Take a base backup into an archive now (the archiver takes one every --base-every-hours itself)."""
    from flows.backup_params import encryption_key, storage_options
    from golive.archive import ArchiveOptions, take_base
    from golive.urls import resolve_secret

    sp = _storage(endpoint_url, region, addressing_style, credentials_block, encrypt_key_file, encrypt_key_block)
    b = take_base(resolve_secret(db), to, ArchiveOptions(name=name, storage=storage_options(sp),
                                                         encryption_key=encryption_key(sp)))
    echo(f"[green]ok[/]: base backup {b.id}: {b.stored_bytes / (1 << 20):.1f} MiB stored in {b.seconds:.1f} s; "
         f"restorable from {_when(b.end_time)}")


@archive_app.command("status")
@handle_errors
def status_cmd(
    at: str = _AT,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
) -> None:
    """The recovery window of each archive (earliest and latest restorable moment), its lag, gaps and last drill."""
    from flows.backup_params import storage_options
    from golive.archive import archive_status, archives_under

    storage = storage_options(_storage(endpoint_url, region, addressing_style, credentials_block, None, None))
    urls = [at.rstrip("/")] if "/archive/" in at.rstrip("/") + "/" else archives_under(at, storage)
    if not urls:
        echo(f"no archives under {at}")
        raise typer.Exit(0)
    windows = [archive_status(u, storage) for u in urls]
    if as_json:
        typer.echo(json.dumps([w.model_dump(mode="json") for w in windows], indent=2))
    else:
        show_windows(windows)
    raise typer.Exit(0 if all(w.ok for w in windows) else 1)


def show_windows(windows) -> None:
    for w in windows:
        state = "[green]ok[/]" if w.ok else "[red]PROBLEM[/]"
        echo(f"[bold]{w.name}[/] ({w.engine}, {w.source}) {state}")
        echo(f"  recovery window: {_when(w.earliest)} to {_when(w.latest)}; lag {w.lag_seconds} s"
             + ("; [red]stale[/]: no flush for over 5 minutes (is the archiver running?)" if w.stale else ""))
        echo(f"  {w.bases} base backup(s), {w.segments} segments, {w.stored_bytes / (1 << 20):.1f} MiB stored")
        for g in w.gaps:
            console.print(f"  [red]gap:[/] {g}", markup=True, highlight=False, soft_wrap=True)
        if w.last_drill:
            d = w.last_drill
            echo(f"  last drill {_when(d['at'])}: {d['status']} (moment {_when(d['target'])}, RTO {d['rto_seconds']} s,"
                 f" RPO {d['rpo_seconds']} s)")
        else:
            note("  no drill yet: golive archive drill --at " + w.url)


@archive_app.command("drill")
@handle_errors
def drill_cmd(
    at: str = _AT,
    to_time: Optional[str] = typer.Option(None, "--to-time", help="The moment (default: a random one in the window)."),
    scratch: Optional[str] = typer.Option(None, "--scratch", help="MySQL: the server to restore into (a temporary "
                                                                  "database is made and dropped)."),
    scratch_dir: Optional[str] = _SCRATCH_DIR,
    keep_window: Optional[str] = typer.Option(None, "--keep-window", help="Then prune to this recovery window (14d)."),
    notify: list[str] = typer.Option([], "--notify", help="Webhook told when the drill fails (as golive release)."),
    encrypt_key_file: Optional[str] = _KEYFILE,
    encrypt_key_block: Optional[str] = _KEYBLOCK,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
    verbose: bool = _VERBOSE,
) -> None:
    """Restore to a moment inside the window into a scratch and check it; records RTO and RPO."""
    _quiet(verbose)
    from pydantic import SecretStr

    from flows.drill_archive import DrillParams, drill_archive
    from golive.archive import split_archive_url

    split_archive_url(at)
    params = DrillParams(at=at, to_time=to_time, scratch=SecretStr(scratch) if scratch else None,
                         scratch_dir=scratch_dir, keep_window=keep_window, notify=[SecretStr(n) for n in notify],
                         report_path=report, storage=_storage(endpoint_url, region, addressing_style,
                                                              credentials_block, encrypt_key_file, encrypt_key_block))
    rep = _run(drill_archive, params, verbose)
    d = rep["drill"]
    colour = "green" if d["status"] == "passed" else "red"
    echo(f"drill [{colour}]{d['status']}[/]: moment {_when(d['target'])}, RTO {d['rto_seconds']:.1f} s, "
         f"RPO {d['rpo_seconds']} s")
    for c in d["checks"]:
        echo(f"  - {c}")
    for p in d["problems"]:
        console.print(f"  [red]- {p}[/]", markup=True, highlight=False, soft_wrap=True)
    if "prune" in rep:
        p = rep["prune"]
        echo(f"  pruned: {len(p['removed_bases'])} base(s), {p['removed_segments']} segments")
    raise typer.Exit(0 if rep["ok"] else 1)


@archive_app.command("prune")
@handle_errors
def prune_cmd(
    at: str = _AT,
    keep_window: str = typer.Option(..., "--keep-window", help="Keep every moment of this window restorable (14d)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; remove nothing."),
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    credentials_block: Optional[str] = _CREDS,
    report: Optional[str] = _REPORT,
) -> None:
    """Remove base backups and segments no restore inside the window needs."""
    from flows.backup_params import storage_options
    from golive.archive import prune_archive, split_archive_url

    split_archive_url(at)
    r = prune_archive(at, keep_window, dry_run=dry_run,
                      storage=storage_options(_storage(endpoint_url, region, addressing_style, credentials_block,
                                                       None, None)))
    _write(report, r.model_dump(mode="json"))
    verb = "would remove" if dry_run else "removed"
    echo(f"{'[cyan]dry run[/]' if dry_run else '[green]ok[/]'}: {verb} {len(r.removed_bases)} base(s) and "
         f"{r.removed_segments} segments ({r.removed_bytes / (1 << 20):.1f} MiB); kept from base {r.keep_from}")


@archive_app.command("forget")
@handle_errors
def forget_cmd(
    db: str = typer.Option(..., "--db", help="The archived database (or block:NAME)."),
    name: Optional[str] = typer.Option(None, "--name", help="The archive's name (default: the database's)."),
) -> None:
    """Remove what archiving added to the server (PostgreSQL: its replication slot, which holds WAL back)."""
    from golive.backup.naming import clean_name
    from golive.dialects import dialect_of, resolve
    from golive.urls import as_url

    url = resolve(as_url(db, role="database"))
    lines = dialect_of(url).archive.forget(url, name=clean_name(name or url.database or "db"))
    for line in lines:
        echo(f"  {line}")
    echo(f"[green]ok[/]: {len(lines)} thing(s) removed")


def restore_to_time_cmd(source: str, to_time: str, target: str | None, to_dir: str | None, port: int | None,
                        scratch_dir: str | None, storage_params, report: str | None) -> None:
    """``golive restore --from …/archive/<name> --to-time …``: called by ``golive restore``."""
    from flows.backup_params import encryption_key, storage_options
    from golive.archive import restore_to_time, split_archive_url

    split_archive_url(source)
    if to_dir and port is None:
        from golive.archive.drill import _free_port

        port = _free_port()
    r = restore_to_time(source, to_time, to_url=target, to_dir=to_dir, port=port,
                        storage=storage_options(storage_params), encryption_key=encryption_key(storage_params),
                        scratch=scratch_dir)
    _write(report, r.model_dump(mode="json"))
    echo(f"[bold]{r.url}[/] at {r.target} -> {r.where}")
    echo(f"  base {r.base} + {r.segments} segments; {r.reached}")
    if to_dir:
        echo(f"  the recovered server runs on port {r.details.get('port', port)} (data directory {to_dir}); stop it "
             f"with pg_ctl -D {to_dir} stop")
    echo(f"[green]ok[/]: restored to {r.target} in {r.seconds:.1f} s")

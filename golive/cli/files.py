"""``golive migrate files``, ``golive verify files`` and ``golive rewrite-paths``.

Thin: parse options, run the flow (or, for ``--dry-run`` and ``verify``, the engine function, which needs
no Prefect run), print a summary, exit 0 (all good), 1 (files missing, different or not uploaded) or 2
(bad input). A re-run with nothing to do is decided from the manifest alone and starts no flow run.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import typer

from golive.cli import app, migrate_app, verify_app
from golive.cli._common import console, echo, handle_errors

MAX_LINES = 50

_SOURCE = typer.Option(..., "--source", help="The uploads folder (only read, never changed).")
_DEST = typer.Option(..., "--dest", help="s3://bucket/prefix or file:///absolute/dir")
_ENDPOINT = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint (MinIO, OSS, TOS...).")
_REGION = typer.Option(None, "--region", help="Region (default: the AWS chain's).")
_STYLE = typer.Option("auto", "--addressing-style", help="S3 addressing: auto, path or virtual.")
_WORKERS = typer.Option(8, "--workers", min=1, max=256, help="Files transferred at the same time.")
_REPORT = typer.Option(None, "--report", help="Write a JSON report to this file.")
_STATE = typer.Option("golive-runs", "--state-dir", help="Where golive keeps upload manifests.")
_FOLLOW = typer.Option(False, "--follow-symlinks", help="Upload what symlinks point to (default: report them).")


def _style(value: str) -> str:
    from golive.errors import ConfigError

    if value not in ("auto", "path", "virtual"):
        raise ConfigError(f"--addressing-style must be auto, path or virtual, not {value!r}")
    return value


def _quiet_prefect() -> None:
    # golive prints its own summary and one line per error; Prefect's console lines (and tracebacks of
    # failed runs) would drown them. The Prefect API still receives every log line.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _print_lines(title: str, lines: list[str], style: str = "red") -> None:
    if not lines:
        return
    echo(f"[{style}]{title} ({len(lines)}):[/]")
    for line in lines[:MAX_LINES]:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if len(lines) > MAX_LINES:
        echo(f"  ... and {len(lines) - MAX_LINES} more (all of them are in --report FILE)")


def show_upload(report, where: str) -> None:
    from golive.files.scan import human_bytes

    verb = "would upload" if report.dry_run else "uploaded"
    echo(f"[bold]{report.source}[/] -> [bold]{where}[/]")
    echo(f"  {verb:<13}{report.uploaded:>8} files  {human_bytes(report.uploaded_bytes):>10}")
    echo(f"  {'unchanged':<13}{report.unchanged:>8} files  {human_bytes(report.unchanged_bytes):>10}")
    if report.dry_run and report.uploaded_paths:
        _print_lines("would upload", report.uploaded_paths[:20] + (
            [f"... ({len(report.uploaded_paths) - 20} more)"] if len(report.uploaded_paths) > 20 else []), "cyan")
    _print_lines("not uploaded", [p.line() for p in report.problems])
    for n in report.notes:
        echo(f"  [dim]note: {n}[/]")
    if report.dry_run:
        status = "[cyan]dry run[/]" + ("" if report.ok else " [red](would be incomplete)[/]")
    else:
        status = "[green]ok[/]" if report.ok else "[red]INCOMPLETE[/]"
    echo(f"{status}: {report.summary()} in {report.seconds:.1f} s")


@migrate_app.command("files")
@handle_errors
def migrate_files_cmd(
    source: str = _SOURCE,
    dest: str = _DEST,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    workers: int = _WORKERS,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be uploaded or skipped, and the bytes."),
    report: Optional[str] = _REPORT,
    state_dir: str = _STATE,
    follow_symlinks: bool = _FOLLOW,
    create_bucket: bool = typer.Option(False, "--create-bucket", help="Create the bucket if it does not exist."),
    credentials_block: Optional[str] = typer.Option(
        None, "--credentials-block", help="Prefect block with the keys: AwsCredentials, MinIOCredentials, or a Secret "
                     "holding aws_access_key_id/aws_secret_access_key (secret/NAME picks the type)."),
    multipart_threshold_mb: int = typer.Option(16, "--multipart-threshold-mb", min=1, max=256,
                                               help="Files above this many MiB go up in parts (smaller ones are read into memory whole)."),
    multipart_chunk_mb: int = typer.Option(8, "--multipart-chunk-mb", min=5, max=512, help="Part size in MiB."),
) -> None:
    """Upload an uploads folder to S3-compatible storage, verifying every object."""
    from golive.files import sync

    started = time.time()
    _style(addressing_style)
    opts = dict(endpoint_url=endpoint_url, region=region, addressing_style=addressing_style, workers=workers,
                state_dir=state_dir, follow_symlinks=follow_symlinks, create_bucket=create_bucket,
                multipart_threshold_mb=multipart_threshold_mb, multipart_chunk_mb=multipart_chunk_mb)
    where = dest + (f" at {endpoint_url}" if endpoint_url else "")
    if dry_run:
        credentials = None
        if credentials_block:
            from flows.migrate_files import load_credentials

            credentials = load_credentials(credentials_block)
        job = sync.make_job(source, dest, credentials=credentials, **_job_options(opts))
        sync.check_destination(job)
        result = sync.dry_run_report(job, sync.plan_upload(job, dry_run=True), started)
        sync.write_report(result, report)
    else:
        try:
            result = upload(source, dest, report=report, credentials_block=credentials_block, started=started, **opts)
        except KeyboardInterrupt:
            raise _interrupted(source, dest, endpoint_url, state_dir) from None
    show_upload(result, where)
    raise typer.Exit(result.exit_code)


def _interrupted(source: str, dest: str, endpoint_url: str | None, state_dir: str) -> typer.Exit:
    """Ctrl-C: the upload stopped (multipart uploads aborted); say what is kept and how to go on. Exit 130."""
    from rich.markup import escape

    from golive.cli._common import err_console
    from golive.files.manifest import manifest_path

    manifest = manifest_path(os.path.abspath(state_dir), os.path.abspath(source), dest, endpoint_url)
    err_console.print(f"[yellow]interrupted[/]: the files uploaded and verified so far are recorded in "
                      f"{escape(str(manifest))}; run the same command again to upload the rest (nothing is sent "
                      "twice)", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(130)


def _job_options(opts: dict) -> dict:
    """``sync.make_job`` arguments from the flow's parameters (MiB options in bytes)."""
    out = {k: v for k, v in opts.items() if not k.startswith("multipart_")}
    if "multipart_threshold_mb" in opts:
        out["multipart_threshold"] = opts["multipart_threshold_mb"] << 20
    if "multipart_chunk_mb" in opts:
        out["multipart_chunksize"] = opts["multipart_chunk_mb"] << 20
    return out


def upload(source: str, dest: str, *, report: str | None = None, credentials_block: str | None = None,
           started: float | None = None, **opts):
    """``golive migrate files`` without the printing: the ``migrate_files`` flow, run here, unless the
    manifest shows there is nothing to do. ``opts`` are the flow's parameters. Returns the ``UploadReport``
    (also when files failed); raises ``GoliveError`` on bad input."""
    from golive.files import sync

    started = started or time.time()
    job = sync.make_job(source, dest, **_job_options(opts))
    # Nothing to do? The manifest alone can tell (no listing, no flow run, no Prefect start-up).
    if os.path.exists(job.manifest) and _manifest_reconciled(job):
        plan = sync.plan_upload(job, offline=True)
        if not plan.todo:
            result = sync.summarize(job, plan, [], started)
            sync.write_report(result, report)
            return result

    # Check the destination, scan and plan in a thread while Prefect is imported; the flow's tasks take
    # that plan. A bad endpoint, bucket or credentials still ends in one line before any flow run exists.
    planned = None if credentials_block else _in_background(sync.prefetch_plan, job)
    _quiet_prefect()
    _note_prefect()  # before Prefect is imported: the golive server, when this command starts it, starts now
    from flows.migrate_files import MigrateFilesParams, migrate_files
    from golive.errors import MigrationFailed

    if planned is not None:
        planned.result()
    params = MigrateFilesParams(source=source, dest=dest, credentials_block=credentials_block, report_path=report,
                                **opts)
    try:
        return _run_flow(migrate_files, params)
    except MigrationFailed as exc:
        return sync.UploadReport.model_validate(exc.context["report"])


def _in_background(fn, *args):
    """Start ``fn(*args)`` in a thread; returns a future (``.result()`` re-raises its exception)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="golive-plan")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _manifest_reconciled(job) -> bool:
    from golive.files.manifest import Manifest

    m = Manifest(job.manifest, create=False)
    try:
        return m.reconciled
    finally:
        m.close()


def _run_flow(flow_fn, params):
    from flows.foreground import run_in_foreground

    return run_in_foreground(flow_fn, params)


#: set once the note about Prefect's temporary server has been printed (by this module or the demo)
EPHEMERAL_NOTED = {"done": False}


def _note_prefect() -> None:
    from golive.cli._common import note_prefect_api

    if not EPHEMERAL_NOTED["done"]:
        EPHEMERAL_NOTED["done"] = True  # one temporary server serves every flow run of the process
        note_prefect_api()


@verify_app.command("files")
@handle_errors
def verify_files_cmd(
    source: str = _SOURCE,
    dest: str = _DEST,
    endpoint_url: Optional[str] = _ENDPOINT,
    region: Optional[str] = _REGION,
    addressing_style: str = _STYLE,
    workers: int = _WORKERS,
    report: Optional[str] = _REPORT,
    follow_symlinks: bool = _FOLLOW,
    multipart_threshold_mb: int = typer.Option(16, "--multipart-threshold-mb", min=1, max=256,
                                               help="As used for the upload (multipart ETags)."),
    multipart_chunk_mb: int = typer.Option(8, "--multipart-chunk-mb", min=5, max=512,
                                           help="As used for the upload (multipart ETags)."),
) -> None:
    """Compare an uploads folder with its destination: missing, different, extra (exit 1 on missing/different)."""
    from golive.files import sync
    from golive.files.verify import verify_files

    _style(addressing_style)
    job = sync.make_job(source, dest, endpoint_url=endpoint_url, region=region, addressing_style=addressing_style,
                        workers=workers, follow_symlinks=follow_symlinks,
                        multipart_threshold=multipart_threshold_mb << 20, multipart_chunksize=multipart_chunk_mb << 20)
    result = verify_files(job)
    sync.write_report(result, report)
    echo(f"[bold]{result.source}[/] vs [bold]{dest}[/]" + (f" at {endpoint_url}" if endpoint_url else ""))
    _print_lines("missing", result.missing)
    _print_lines("different", [f"{d.path}: {d.reason}" for d in result.different])
    _print_lines("extra (in the destination only)", result.extra, "yellow")
    _print_lines("not compared", [p.line() for p in result.not_compared], "yellow")
    status = "[green]ok[/]" if result.ok else "[red]DIFFERENT[/]"
    echo(f"{status}: {result.summary()} in {result.seconds:.1f} s")
    raise typer.Exit(result.exit_code)


@app.command("rewrite-paths", rich_help_panel="Files")
@handle_errors
def rewrite_paths_cmd(
    db: str = typer.Option(..., "--db", help="Database URL: sqlite:///app.db, postgresql://..., mysql://..., "
                                             "embedded://DIR, or block:NAME"),
    table: str = typer.Option(..., "--table", help="Table holding the file paths."),
    column: str = typer.Option(..., "--column", help="Column holding the file paths."),
    to: str = typer.Option("", "--to", help="New value: 's3://bucket/{key}' or 'https://cdn.example.com/{key}'."),
    strip_prefix: str = typer.Option("", "--strip-prefix", help="Leading part of the value before the path "
                                                                "under the uploads folder, e.g. uploads/"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show counts and sample before/after; change nothing."),
    reverse: bool = typer.Option(False, "--reverse", help="Put back the values golive replaced."),
    dest: Optional[str] = typer.Option(None, "--dest", help="Which upload to trust (its s3:// destination)."),
    manifest: Optional[str] = typer.Option(None, "--manifest", help="Which upload manifest to trust."),
    state_dir: str = _STATE,
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000, help="Rows per transaction."),
    report: Optional[str] = _REPORT,
) -> None:
    """Rewrite a file-path column to object keys or URLs, only for files uploaded and verified."""
    result = rewrite(db, table, column, to=to, strip_prefix=strip_prefix, dry_run=dry_run, reverse=reverse,
                     dest=dest, manifest=manifest, state_dir=state_dir, batch_size=batch_size, report=report)
    show_rewrite(result)
    raise typer.Exit(result.exit_code)


def rewrite(db: str, table: str, column: str, *, dry_run: bool = False, report: str | None = None, **opts):
    """``golive rewrite-paths`` without the printing: the ``rewrite_paths`` flow, run here (a dry run needs
    no flow run). ``opts`` are the flow's other parameters. Returns the ``RewriteReport``."""
    from golive.files import rewrite as rw
    from golive.files import sync

    job = rw.make_rewrite_job(db, table, column, **opts)  # bad options: one line, before Prefect starts
    if dry_run:
        result = rw.rewrite_paths(job, dry_run=True)
        sync.write_report(result, report)
        return result
    _quiet_prefect()
    from flows.rewrite_paths import RewritePathsParams, rewrite_paths

    _note_prefect()
    return _run_flow(rewrite_paths, RewritePathsParams(db=db, table=table, column=column, report_path=report, **opts))


def show_rewrite(r) -> None:
    done = "restored" if r.reverse else "rewritten"
    verb = f"to be {done}" if r.dry_run else done
    echo(f"[bold]{r.table}.{r.column}[/] in {r.db}" + ("" if r.reverse else f" -> {r.to}"))
    echo(f"  {'rows scanned':<24}{r.scanned:>8}")
    echo(f"  {verb:<24}{r.rewritten:>8}")
    if not r.reverse:
        echo(f"  {'already rewritten':<24}{r.already:>8}")
        echo(f"  {'file not uploaded':<24}{r.missing:>8}")
    else:
        echo(f"  {'changed since rewrite':<24}{r.changed_since:>8}")
    echo(f"  {'left alone (other)':<24}{r.other:>8}")
    if r.samples:
        echo("sample:")
        for s in r.samples:
            console.print(f"  [{s.pk}] {s.before} -> {s.after}", markup=False, highlight=False, soft_wrap=True)
    _print_lines("not rewritten, file not uploaded and verified" if not r.reverse else "not restored",
                 [f"[{s.pk}] {s.before}: {s.reason}" for s in r.missing_samples]
                 + ([f"... {max(r.missing, r.changed_since) - len(r.missing_samples)} more"]
                    if max(r.missing, r.changed_since) > len(r.missing_samples) else []))
    if r.other_samples:
        _print_lines("left alone", [f"[{s.pk}] {s.before!r}: {s.reason}" for s in r.other_samples], "yellow")
    status = "[green]ok[/]" if r.exit_code == 0 else "[red]INCOMPLETE[/]"
    if r.dry_run:
        status = "[cyan]dry run[/]" + ("" if r.exit_code == 0 else " [red](would be incomplete)[/]")
    echo(f"{status}: {r.rewritten} row(s) {verb} in {r.seconds:.1f} s")

"""``golive demo``: a sample app (SQLite + uploads) migrated end to end into embedded services."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from golive.cli import app
from golive.cli._common import PREFECT_SERVER, echo, handle_errors, status

BUCKET = "golive-demo"


@app.command("demo", rich_help_panel="Go-live")
@handle_errors
def demo(
    directory: Path = typer.Option(Path("demo"), "--dir", help="Where the sample app and the embedded services live."),
    users: int = typer.Option(500, "--users", min=1, help="Size of the sample app."),
) -> None:
    """Build a sample app, migrate its database into an embedded PostgreSQL (pgserver) and its uploads into
    an embedded S3 (moto), then point images.path at the uploaded objects, showing every step."""
    from golive import sample
    from golive.dialects import dialect_of, resolve
    from golive.urls import parse_url
    from golive.cli.db import run_flow, show_report
    from golive.cli.files import EPHEMERAL_NOTED, rewrite, show_rewrite, show_upload, upload
    from golive.config import MigrateOptions

    directory = directory.resolve()
    db = directory / "app.db"
    uploads = directory / "uploads"
    with status(f"Building the sample app in {directory}"):
        counts = sample.build(db, users=users, uploads=uploads)
    echo(f"  {sum(counts.values())} rows in {len(counts)} tables: "
         + ", ".join(f"{t} {n}" for t, n in counts.items()) + f"; {counts.get('images', 0)} files in {uploads}")

    # 1. The database
    with status("Starting the embedded PostgreSQL 16 (pgserver)"):
        target = resolve(parse_url(f"embedded://{directory / 'pgdata'}?database=app"))
    options = MigrateOptions(drop_existing=True, max_rejects=2, report=str(directory / "report.json"))
    echo(f"\n[bold]golive migrate db --source {db} --target {target.masked} --drop-existing --max-rejects 2[/]")
    rep = run_flow(f"sqlite:///{db}", target.raw, options)  # notes Prefect's temporary server if it starts one
    EPHEMERAL_NOTED["done"] = True
    show_report(rep)

    # 2. The uploads, to an S3 server in this process (moto), in memory for as long as the demo runs
    with status("Starting an embedded S3 server (moto, in memory)"):
        endpoint = _start_s3()
    dest = f"s3://{BUCKET}/uploads"
    state = directory / "golive-runs"
    echo(f"\n[bold]golive migrate files --source {uploads} --dest {dest} --endpoint-url {endpoint} "
         f"--create-bucket[/]")
    files = upload(str(uploads), dest, endpoint_url=endpoint, create_bucket=True, state_dir=str(state),
                   report=str(directory / "files-report.json"))
    show_upload(files, f"{dest} at {endpoint}")

    # 3. The paths in the PostgreSQL copy: object URLs, only for files uploaded and verified
    to = f"s3://{BUCKET}/{{key}}"
    echo(f"\n[bold]golive rewrite-paths --db {target.masked} --table images --column path --strip-prefix uploads/ "
         f"--to '{to}'[/]")
    paths = rewrite(target.raw, "images", "path", to=to, strip_prefix="uploads/", manifest=files.manifest)
    show_rewrite(paths)

    client = dialect_of(target).session.client(target)
    echo("")
    echo("[bold]Where everything went[/]")
    echo(f"  PostgreSQL: {target.masked}")
    echo(f"  look at it: {client} -c 'SELECT id, path FROM images LIMIT 3'")
    echo(f"  S3:         {files.uploaded + files.unchanged} objects under {dest}/ at {endpoint} "
         "(moto, in memory: gone when the demo ends)")
    echo(f"  images.path: {paths.rewritten + paths.already} rows now name their object "
         f"(s3://{BUCKET}/uploads/...); `--reverse` puts the old paths back")
    echo(f"  reports:    {directory / 'report.json'}, {directory / 'files-report.json'}")
    docs = (rep.get("validation") or {}).get("data_docs")
    if docs:
        echo(f"  Data Docs:  {docs} (Great Expectations' validation results, open it in a browser)")
    if rep.get("rejects"):
        echo(f"  rejects:    {rep['rejects']} (the demo allows 2: --max-rejects 2)")
    pgdata = directory / "pgdata"
    running = [r for r in dialect_of(target).running_servers() if r.data_dir == pgdata]
    pid = f" (pid {running[0].pid})" if running else ""
    echo(f"  [bold]still running[/]: the embedded PostgreSQL{pid} in {pgdata}, for you to look at the copy; "
         f"stop it with `golive embedded stop {pgdata}` (the data stays; `golive embedded status` lists them)")
    prefect = PREFECT_SERVER.get("state")
    if prefect is not None:
        echo(f"  [bold]still running[/]: the golive Prefect server (pid {prefect.pid}), whose UI at {prefect.ui} "
             "shows these runs and reports; later golive commands use it; stop it with `golive server stop`")
    elif os.environ.get("PREFECT_API_URL"):
        echo(f"  Prefect:    the runs are on {os.environ['PREFECT_API_URL']}")
    raise typer.Exit(max(rep.get("exit_code", 1), files.exit_code, paths.exit_code))


def _start_s3() -> str:
    """Start moto's S3 server on a free loopback port, in this process; returns its endpoint URL.

    Its credentials are test/test: the demo's process uses them whatever the environment holds, so it
    can never reach a real AWS account.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"

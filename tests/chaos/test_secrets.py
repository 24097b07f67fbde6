"""Secrets: golive's main commands run with known passwords (a PostgreSQL role's and a MariaDB user's, in URLs and in
a Prefect Secret block) and known S3 keys; then every byte golive wrote is searched for them: stdout, stderr, the
state folder (journals, reports, manifests, GX Data Docs, rejects), HOME, TMPDIR, the backups in the bucket, and what
the Prefect API stored (flow-run parameters, task runs, logs, artifacts). Zero hits.

A password never has to be on the command line either: ``~/.pgpass`` and ``~/.my.cnf`` (a temporary HOME),
``PGPASSWORD`` and ``MYSQL_PWD``, and blocks (docs/credentials.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

#: the unique part of every secret: whatever form a leak takes (quoted, escaped, in a URL), it holds this
TOKEN = uuid.uuid4().hex
#: passwords with what breaks naive quoting: URL delimiters, quotes, an option file's comment and escape characters
PG_PW = f"pg{TOKEN}@:/?#%' \";\\x"
MY_PW = f"my{TOKEN}@:/?#%' \";\\x"
S3_SECRET = f"s3{TOKEN}"


def forms(secret: str) -> list[str]:
    """The ways a secret can appear: as is, URL-quoted, JSON-escaped, and its unique core."""
    return [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], TOKEN]


def hits(data: bytes | str, where: str) -> list[str]:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [f"{where}: {form!r}" for s in (PG_PW, MY_PW, S3_SECRET) for form in forms(s) if form in text]


def scan_tree(root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                out += hits(path.read_bytes(), str(path))
    return out


@pytest.fixture(scope="module")
def world(mysql_admin_url, s3_endpoint, prefect_api, tmp_path_factory):
    """A PostgreSQL role and a MariaDB user with the passwords above (dropped afterwards), the MariaDB source database
    (users, images naming uploaded files), an uploads folder, a bucket, and Prefect Secret blocks holding the target
    URL and the S3 keys."""
    import warnings

    import boto3
    import pgserver
    import psycopg
    import pymysql
    from prefect.blocks.system import Secret
    from psycopg import sql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    tag = uuid.uuid4().hex[:8]
    name = f"golive_sec_{tag}"
    root = tmp_path_factory.mktemp("secrets")
    # the machine's PostgreSQL trusts every local login: a throwaway server of our own checks the role's password
    pgdir = tmp_path_factory.mktemp("secpg")
    srv = pgserver.get_server(str(pgdir), cleanup_mode="stop")
    admin = parse_url(mysql_admin_url)
    kw = {**connect_kwargs(admin), "database": None}
    try:
        with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(PG_PW)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
            hba = conn.execute("SHOW hba_file").fetchone()[0]
            rules = Path(hba).read_text(encoding="utf-8")
            Path(hba).write_text(f"local all {name} scram-sha-256\n" + rules, encoding="utf-8")
            conn.execute("SELECT pg_reload_conf()")
        my_host = admin.host or "127.0.0.1"
        with pymysql.connect(**kw, autocommit=True) as conn, conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"CREATE USER '{name}'@'{host.replace('%', '%%')}' IDENTIFIED BY %s", (MY_PW,))
                cur.execute(f"GRANT ALL ON `golive\\_sec\\_{tag}%`.* TO '{name}'@'{host}'")
                cur.execute(f"GRANT ALL ON `golive\\_verify\\_%`.* TO '{name}'@'{host}'")
                cur.execute(f"GRANT RELOAD, PROCESS, REPLICATION CLIENT ON *.* TO '{name}'@'{host}'")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE DATABASE `{name}_r` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{name}`")
            cur.execute("CREATE TABLE users (id int PRIMARY KEY, email varchar(100) NOT NULL UNIQUE)")
            cur.execute("CREATE TABLE images (id int PRIMARY KEY, user_id int REFERENCES users(id), path varchar(200))")
            cur.executemany("INSERT INTO users VALUES (%s, %s)", [(i, f"u{i}@example.com") for i in range(1, 6)])
            cur.executemany("INSERT INTO images VALUES (%s, %s, %s)",
                            [(i, i, f"uploads/2024/{i}.jpg") for i in range(1, 4)])
        uploads = root / "in" / "uploads"
        (uploads / "2024").mkdir(parents=True)
        for i in range(1, 4):
            (uploads / "2024" / f"{i}.jpg").write_bytes(os.urandom(100 + i))
        bucket = f"golive-sec-{tag}"
        boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        pg = f"postgresql://{name}:{quote(PG_PW, safe='')}@/{name}?host={pgdir}"
        my = f"mysql://{name}:{quote(MY_PW, safe='')}@{my_host}:{admin.port or 3306}/{name}"
        Secret(value=pg).save(f"golive-sec-db-{tag}")
        Secret(value={"aws_access_key_id": f"AKIA{tag.upper()}", "aws_secret_access_key": S3_SECRET}).save(
            f"golive-sec-s3-{tag}")
        home, work, tmp = root / "home", root / "work", root / "tmp"
        for d in (home, work, tmp):
            d.mkdir()
        yield dict(tag=tag, name=name, pg=pg, my=my, pgdir=pgdir, my_host=my_host, my_port=admin.port or 3306,
                   bucket=bucket, endpoint=s3_endpoint, root=root, uploads=uploads, home=home, work=work, tmp=tmp)
    finally:
        srv.cleanup()
        with pymysql.connect(**kw, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}_r`")
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{name}'@'{host}'")


def _prefect_records(since: dt.datetime) -> str:
    """Every flow run created since ``since``, its task runs, logs and artifacts, as the API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterId, FlowRunFilterStartTime, LogFilter,
                                                LogFilterFlowRunId)

    async def every(read, **kw):  # the API returns at most 200 at a time
        out = []
        while True:
            page = await read(**kw, limit=200, offset=len(out))
            out += page
            if len(page) < 200:
                return out

    async def read():
        async with get_client() as client:
            runs = await every(client.read_flow_runs, flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=since)))
            ids = [r.id for r in runs]
            tasks = await every(client.read_task_runs, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            arts = await every(client.read_artifacts,
                               artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
            logs = await every(client.read_logs, log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
            names = {r.name for r in runs}
            return names, json.dumps([[r.model_dump(mode="json") for r in runs],
                                      [t.model_dump(mode="json") for t in tasks],
                                      [a.model_dump(mode="json") for a in arts],
                                      [lg.model_dump(mode="json") for lg in logs]])

    names, text = asyncio.run(read())
    return len(names), text


def test_no_secret_in_anything_golive_wrote(golive, world):
    """go-live (backup, migrate, validate, files, verify files, rewrite paths, report), restore, release (its
    migrations out of order on disk, two with a byte-order mark) and report db: passwords in URLs or a block, S3 keys
    in a block."""
    w = world
    since = dt.datetime.now(dt.timezone.utc)
    env = {"HOME": str(w["home"]), "TMPDIR": str(w["tmp"])}
    s3block = f"golive-sec-s3-{w['tag']}"
    cfg = w["root"] / "in" / "golive.toml"
    cfg.write_text(f"""\
state_dir = "state"
[source]
database = {json.dumps(w['my'])}
uploads = {json.dumps(str(w['uploads']))}
[target]
database = "block:golive-sec-db-{w['tag']}"
bucket = "s3://{w['bucket']}/media"
endpoint_url = "{w['endpoint']}"
addressing_style = "path"
credentials_block = "{s3block}"
[[rewrite]]
table = "images"
column = "path"
strip_prefix = "uploads/"
template = "s3://{w['bucket']}/{{key}}"
[backup]
to = "s3://{w['bucket']}/backups"
""")
    mig = w["root"] / "in" / "migrations"  # out of order on disk (1, 10, 2), two with a byte-order mark
    mig.mkdir()
    bom = b"\xef\xbb\xbf"
    (mig / "10_view.sql").write_bytes(bom + b"CREATE VIEW user_notes AS SELECT id, note FROM users;\n")
    (mig / "2_index.sql").write_bytes(bom + b"CREATE INDEX users_note ON users (note);\r\n")
    (mig / "1_add_note.sql").write_bytes(b"ALTER TABLE users ADD COLUMN note text;\n")
    out: list[tuple[str, object]] = []

    def run(*args, code: int = 0):
        res = golive(*args, env=env, cwd=w["work"], timeout=300)
        out.append((" ".join(map(str, args[:2])), res))
        assert res.code == code, res
        return res

    run("go-live", "--config", cfg)
    s3 = ("--endpoint-url", w["endpoint"], "--credentials-block", s3block)
    run("restore", "--from", f"s3://{w['bucket']}/backups/latest", "--to", w["my"] + "_r", *s3)
    run("release", "--db", w["pg"], "--migrations", f"sql:{mig}", "--report", w["work"] / "release.json")
    runs = json.loads((w["work"] / "release.json").read_text())["runs"]
    assert [r["version"] for r in runs if r["status"] == "applied"] == ["1", "2", "10"], runs
    run("report", "db", "--db", w["pg"], "--out", w["work"] / "report.html", "--out", w["work"] / "report.json")

    found = []
    assert hits(cfg.read_text(), "the search finds") and hits(w["pg"], "the search finds")  # it would see them
    for what, res in out:
        found += hits(res.out, f"{what} stdout") + hits(res.err, f"{what} stderr")
    for d in (w["work"], w["home"], w["tmp"]):
        found += scan_tree(d)
    assert (w["work"] / "state").is_dir() and list((w["work"] / "state").rglob("*.html")), "no GX Data Docs written"
    import boto3

    s3c = boto3.client("s3", endpoint_url=w["endpoint"], region_name="us-east-1")
    for o in s3c.list_objects_v2(Bucket=w["bucket"])["Contents"]:
        if o["Key"].endswith((".json", ".sql", ".txt")) or "manifest" in o["Key"]:
            found += hits(s3c.get_object(Bucket=w["bucket"], Key=o["Key"])["Body"].read(), f"s3 {o['Key']}")
    runs, stored = _prefect_records(since)
    assert runs >= 5, runs
    found += hits(stored, "Prefect API")
    assert not found, "\n".join(found)


def test_credentials_without_a_password_on_the_command_line(golive, world, tmp_path):
    """~/.pgpass and ~/.my.cnf in HOME, then PGPASSWORD and MYSQL_PWD: the same URLs without passwords connect."""
    w = world
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    esc = PG_PW.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"*:*:{w['name']}:{w['name']}:{esc}\n")
    pgpass.chmod(0o600)
    mycnf = home / ".my.cnf"
    mycnf.write_text('[client]\npassword="' + MY_PW.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
    mycnf.chmod(0o600)
    src = f"mysql://{w['name']}@{w['my_host']}:{w['my_port']}/{w['name']}"
    dst = f"postgresql://{w['name']}@/{w['name']}?host={w['pgdir']}"
    args = ("migrate", "db", "--source", src, "--target", dst, "--dry-run", "--drop-existing")
    res = golive(*args, env={"HOME": str(home)}, timeout=120)
    assert res.code == 0 and "Plan" in res.out, res
    empty = tmp_path / "empty-home"
    empty.mkdir()
    res = golive(*args, env={"HOME": str(empty), "PGPASSWORD": PG_PW, "MYSQL_PWD": MY_PW}, timeout=120)
    assert res.code == 0 and "Plan" in res.out, res
    res = golive(*args, env={"HOME": str(empty)}, timeout=120)  # and without either: refused, in one line
    assert res.code == 2 and "error:" in res.err and "Traceback" not in res.all, res
    assert not hits(res.all, "stderr")

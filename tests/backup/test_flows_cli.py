"""The Prefect layer and the CLI end to end: the backup-database flow (backup -> verify in an embedded
PostgreSQL -> prune) with its artifacts, a failed verification as a Failed run, the nightly deployment from
prefect.yaml as the Prefect API stores it, and the commands (exit codes, one-line errors, no secrets)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from pydantic import SecretStr

from conftest import ROOT

from .conftest import my_connect, sqlite_content


def test_backup_flow_verifies_in_embedded_postgres_and_prunes(prefect_api, pg_new, tmp_path):
    from flows.backup_database import BackupParams, backup_database
    from golive.backup import RetentionPolicy, list_backups

    url = pg_new()
    with psycopg.connect(url, autocommit=True) as conn:  # no extensions: the embedded PostgreSQL can take it
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM "
                     "generate_series(1, 500) g; CREATE INDEX t_v ON t (v)")
    to = f"file://{tmp_path}/b"
    name = "flow-" + uuid.uuid4().hex[:6]
    params = BackupParams(db=SecretStr(url), to=to, name=name, prune=True,
                          retention=RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0))
    first = backup_database(params)
    report = backup_database(params)
    assert report["ok"] and report["verification"]["status"] == "passed", report
    assert "golive-verify-" in report["verification"]["scratch"]  # the embedded PostgreSQL's socket there
    assert "schema fingerprint matches" in report["verification"]["checks"]
    assert report["prune"]["removed"] == [first["backup"]["id"]]
    listing = list_backups(to)
    assert [b.id for b in listing.backups] == [report["backup"]["id"]] and listing.backups[0].verified == "passed"

    from prefect.client.orchestration import get_client

    async def artifacts():
        async with get_client() as client:
            return [a.key for a in await client.read_artifacts()]

    keys = asyncio.run(artifacts())
    assert f"backup-{name}" in keys and f"backup-{name}-tables" in keys


def test_verify_flow_fails_on_a_damaged_backup(prefect_api, sqlite_app, tmp_path):
    from flows.verify_backup import VerifyParams, verify_backup
    from golive.backup import backup_database

    result = backup_database(sqlite_app, f"file://{tmp_path}/b")
    obj = tmp_path / "b" / result.id / "database.sqlite.zst"
    data = bytearray(obj.read_bytes())
    data[100] ^= 1
    obj.write_bytes(bytes(data))
    state = verify_backup(VerifyParams(url=result.url), return_state=True)
    assert state.is_failed() and "database.sqlite" in state.message
    assert state.result(raise_on_failure=False)["verification"]["status"] == "failed"


def test_nightly_deployment_as_the_api_stores_it(prefect_api):
    prefect = str(Path(sys.executable).parent / "prefect")
    pool = f"gbk-pool-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PREFECT_CLI_PROMPT": "false"}
    run = lambda *a: subprocess.run([prefect, *a], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run("work-pool", "create", pool, "--type", "process").returncode == 0
    try:
        res = run("--no-prompt", "deploy", "--name", "backup-database", "--pool", pool)
        assert res.returncode == 0, res.stdout + res.stderr
        from prefect.client.orchestration import get_client

        async def read():
            async with get_client() as client:
                return await client.read_deployment_by_name("backup-database/backup-database")

        dep = asyncio.run(read())
        sched = dep.schedules[0].schedule
        assert sched.cron == "15 3 * * *" and sched.timezone == "UTC" and dep.schedules[0].active
        assert dep.parameters["params"]["db"] == "block:golive-backup-db" and dep.parameters["params"]["prune"]
    finally:
        run("work-pool", "delete", pool)


def test_cli_backup_list_verify_restore(golive, sqlite_app, tmp_path):
    to = f"file://{tmp_path}/b"
    res = golive("backup", "--db", sqlite_app, "--to", to, "--name", "app")
    assert res.code == 0, res
    assert "verification passed" in res.out and "sqlite3 online backup API" in res.out
    res = golive("backups", "list", "--at", to)
    assert res.code == 0 and "passed" in res.out and "-app" in res.out, res
    listing = json.loads(golive("backups", "list", "--at", to, "--json").out)
    assert len(listing["backups"]) == 1
    res = golive("backups", "verify", f"{to}/latest")
    assert res.code == 0 and "passed" in res.out, res
    target = f"sqlite:///{tmp_path}/restored.db"
    res = golive("restore", "--from", f"{to}/latest", "--to", target)
    assert res.code == 0 and "row counts of 2 of 2 tables match" in res.out, res
    assert sqlite_content(target) == sqlite_content(sqlite_app)
    res = golive("restore", "--from", f"{to}/latest", "--to", target)
    assert res.code == 2 and "is not empty" in res.err and "--force" in res.err and len(res.err.strip().splitlines()) == 1
    res = golive("backups", "prune", "--at", to, "--dry-run")
    assert res.code == 0 and "1 kept, 0 would remove" in res.out, res


def test_cli_wrong_passwords_exit_2_in_one_line_never_printed(golive, my_app, mysql_admin_url, tmp_path):
    user = "gbk_pw_" + uuid.uuid4().hex[:6]
    db = my_app.rsplit("/", 1)[1]
    admin = my_connect(mysql_admin_url, database=False)
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'RightPass1'")
        cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
        cur.execute(f"GRANT SELECT ON mysql.proc TO '{user}'@'%'")  # SHOW CREATE PROCEDURE of root's routine
    try:
        res = golive("backup", "--db", f"mysql://{user}:WrongPass9@127.0.0.1/{db}", "--to", f"file://{tmp_path}/b")
        assert res.code == 2, res
        assert "access denied" in res.err and len(res.err.strip().splitlines()) == 1
        assert "WrongPass9" not in res.all and not (tmp_path / "b").exists()
        res = golive("backup", "--db", f"mysql://{user}:RightPass1@127.0.0.1/{db}", "--to", f"file://{tmp_path}/b",
                     "--no-verify", "--encrypt-key-file", _key(tmp_path, "k1", "11"))
        assert res.code == 0 and "RightPass1" not in res.all, res
        res = golive("restore", "--from", f"file://{tmp_path}/b/latest", "--to", f"sqlite:///{tmp_path}/x.db")
        assert res.code == 2 and "is of a mysql database" in res.err, res
        res = golive("backups", "verify", f"file://{tmp_path}/b/latest", "--encrypt-key-file", _key(tmp_path, "k2", "22"),
                     "--scratch", f"mysql://{user}:RightPass1@127.0.0.1/{db}")
        assert res.code == 2 and "was encrypted with key" in res.err and len(res.err.strip().splitlines()) == 1, res
        assert "RightPass1" not in res.all
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def test_cli_mysql_backup_with_a_password_verifies_by_default_or_says_it_did_not(golive, my_app, mysql_admin_url,
                                                                                  tmp_path):
    """The default scratch server is the backup's own: verified with the backup's credentials (from the URL, or
    MYSQL_PWD). A verification that cannot run is "backup written, not verified: <why>", exit 3, and the backup is
    there, unverified."""
    user = "gbk_v_" + uuid.uuid4().hex[:6]
    db = my_app.rsplit("/", 1)[1]
    admin = my_connect(mysql_admin_url, database=False)
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'Verify-Pass1'")
        cur.execute(f"GRANT ALL ON *.* TO '{user}'@'%'")  # the scratch database is created on the same server
    try:
        to = f"file://{tmp_path}/b"
        res = golive("backup", "--db", f"mysql://{user}:Verify-Pass1@127.0.0.1/{db}", "--to", to)
        assert res.code == 0 and "verification passed" in res.out, res
        assert "Verify-Pass1" not in res.all
        # the password in the environment, as the mysql client reads it: the same
        res = golive("backup", "--db", f"mysql://{user}@127.0.0.1/{db}", "--to", to, env={"MYSQL_PWD": "Verify-Pass1"})
        assert res.code == 0 and "verification passed" in res.out, res
        # a scratch server that refuses: written, not verified, exit 3
        res = golive("backup", "--db", f"mysql://{user}:Verify-Pass1@127.0.0.1/{db}", "--to", to,
                     "--scratch", f"mysql://{user}:Wrong-Pass2@127.0.0.1/{db}")
        assert res.code == 3, res
        line = [x for x in res.out.splitlines() if "not verified" in x]
        assert line and line[0].startswith("backup written, not verified: ") and "access denied" in line[0], res
        assert "Verify-Pass1" not in res.all and "Wrong-Pass2" not in res.all
        listing = json.loads(golive("backups", "list", "--at", to, "--json").out)["backups"]
        assert sorted(str(b["verified"]) for b in listing) == ["None", "passed", "passed"]
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def _key(tmp_path, name: str, byte: str) -> str:
    path = tmp_path / name
    path.write_text(byte * 32)
    return str(path)

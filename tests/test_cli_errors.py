"""Bad input gets one readable line naming the cause, a non-zero exit, and no password anywhere."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import CASES

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"


def one_error_line(res) -> str:
    lines = [x for x in res.err.strip().splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error:")]
    assert len(errors) == 1, res
    assert "Traceback" not in res.all, res
    return errors[0]


@pytest.fixture
def sqlite_db(tmp_path):
    p = tmp_path / "app.db"
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO t VALUES (1, 'a')")
    db.commit()
    db.close()
    return p


def test_missing_source_file(golive, pg_url, tmp_path):
    res = golive("migrate", "db", "--source", tmp_path / "nope.db", "--target", pg_url)
    assert res.code == 2 and "no such file" in one_error_line(res)


def test_source_is_not_sqlite(golive, pg_url, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a database\n")
    res = golive("migrate", "db", "--source", p, "--target", pg_url)
    assert res.code == 2 and "not a SQLite database" in one_error_line(res)


def test_source_is_empty(golive, pg_url, tmp_path):
    p = tmp_path / "empty.db"
    p.write_bytes(b"")
    res = golive("migrate", "db", "--source", p, "--target", pg_url)
    assert res.code == 2 and "empty file" in one_error_line(res)


def test_source_is_corrupt(golive, pg_url, tmp_path, sqlite_db):
    data = bytearray(sqlite_db.read_bytes())
    data[100:4096] = b"\xde\xad" * ((4096 - 100) // 2)  # keep the header, destroy the schema page
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(bytes(data))
    res = golive("migrate", "db", "--source", bad, "--target", pg_url)
    assert res.code == 2
    line = one_error_line(res)
    assert "corrupt.db" in line and ("malformed" in line or "not a database" in line), line


def test_unknown_url_scheme(golive, sqlite_db):
    res = golive("migrate", "db", "--source", sqlite_db, "--target", "mongodb://u:hunter22@h/db")
    assert res.code == 2
    line = one_error_line(res)
    assert "unknown scheme 'mongodb'" in line and "hunter22" not in res.all


def test_unsupported_target(golive, sqlite_db, tmp_path):
    res = golive("migrate", "db", "--source", sqlite_db, "--target", f"sqlite:///{tmp_path / 'copy.db'}")
    assert res.code == 2 and "golive writes PostgreSQL and MySQL/MariaDB databases, not sqlite" in one_error_line(res)


def test_connection_refused(golive, sqlite_db):
    res = golive("migrate", "db", "--source", sqlite_db, "--target", "postgresql://postgres:s3cr3tpw@127.0.0.1:1/db")
    assert res.code == 2
    line = one_error_line(res)
    assert "connection refused" in line and "127.0.0.1:1" in line
    assert "s3cr3tpw" not in res.all and "***" in line


def test_unknown_host(golive, sqlite_db):
    res = golive("migrate", "db", "--source", sqlite_db, "--target",
                 "postgresql://postgres:s3cr3tpw@no-such-host.invalid/db")
    assert res.code == 2
    line = one_error_line(res)
    assert "unknown host" in line and "s3cr3tpw" not in res.all


def test_database_does_not_exist(golive, sqlite_db, pg_admin_url):
    url = pg_admin_url.rsplit("/", 1)[0] + "/golive_no_such_db"
    res = golive("migrate", "db", "--source", sqlite_db, "--target", url)
    assert res.code == 2 and "database golive_no_such_db does not exist" in one_error_line(res)


def test_unknown_table(golive, sqlite_db, pg_url):
    res = golive("migrate", "db", "--source", sqlite_db, "--target", pg_url, "--tables", "tt")
    assert res.code == 2 and "source has no table 'tt'; did you mean 't'?" in one_error_line(res)


@pytest.fixture(scope="module")
def password_pg(tmp_path_factory):
    """An embedded PostgreSQL whose role golive_pw must log in with a password (scram-sha-256)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver
    import psycopg

    d = tmp_path_factory.mktemp("pwpg")
    srv = pgserver.get_server(str(d), cleanup_mode="stop")
    with psycopg.connect(srv.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE ROLE golive_pw LOGIN PASSWORD 'right-password'")
        conn.execute("CREATE DATABASE app OWNER golive_pw")
        hba = conn.execute("SHOW hba_file").fetchone()[0]
        with open(hba, encoding="utf-8") as fh:
            rules = fh.read()
        with open(hba, "w", encoding="utf-8") as fh:
            fh.write("local all golive_pw scram-sha-256\n" + rules)
        conn.execute("SELECT pg_reload_conf()")
    yield f"postgresql://golive_pw:%s@/app?host={d}"
    srv.cleanup()


def test_wrong_password(golive, sqlite_db, password_pg):
    res = golive("migrate", "db", "--source", sqlite_db, "--target", password_pg % "wrong-password")
    assert res.code == 2
    line = one_error_line(res)
    assert "password authentication failed for user golive_pw" in line
    assert "wrong-password" not in res.all


def test_right_password_never_printed(golive, password_pg, tmp_path):
    url = password_pg % "right-password"
    report = tmp_path / "r.json"
    res = golive("migrate", "db", "--source", CHINOOK, "--target", url, "--report", report, "--tables",
                 "Artist,Album", "--no-validate", "--drop-existing")
    assert res.code == 0, res
    assert "right-password" not in res.all
    assert "right-password" not in report.read_text()
    assert json.loads(report.read_text())["target"].startswith("postgresql://golive_pw:***@")
    # nor in what Prefect stored for the flow run (parameters are secrets)
    import asyncio

    from prefect.client.orchestration import get_client

    async def params():
        async with get_client() as client:
            runs = await client.read_flow_runs(limit=5)
            return [json.dumps(r.parameters, default=str) for r in runs]

    assert all("right-password" not in p for p in asyncio.run(params()))

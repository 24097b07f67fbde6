"""What a new user reads (issue 24): suggestions that fit the command, synopses that list every option, markup that
does not eat words, each state said once, no schema for engines without schemas, flags without a type, and
``golive --help`` grouped by job."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest

from conftest import CASES, ROOT

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"
WIDE = {"COLUMNS": "200"}


def test_a_missing_bucket_suggests_create_bucket_only_where_there_is_one(golive, s3_endpoint, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.txt").write_text("a")
    nope = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}"
    r = golive("verify", "files", "--source", uploads, "--dest", nope, "--endpoint-url", s3_endpoint)
    assert r.code == 2 and "does not exist" in r.err and "--create-bucket" not in r.err, r
    r = golive("backups", "list", "--at", f"{nope}/app", "--endpoint-url", s3_endpoint)
    assert r.code == 2 and "does not exist" in r.err and "--create-bucket" not in r.err, r
    # the commands that have it say so
    r = golive("migrate", "files", "--source", uploads, "--dest", nope, "--endpoint-url", s3_endpoint)
    assert r.code == 2 and "pass --create-bucket" in r.err, r
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    r = golive("backup", "--db", f"sqlite:///{db}", "--to", f"{nope}/app", "--endpoint-url", s3_endpoint)
    assert r.code == 2 and "pass --create-bucket" in r.err, r


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z](?![\w*-])", help_text)) - {"--help"}


def test_the_backup_synopsis_lists_every_option(golive):
    r = golive("backup", "--help", env=WIDE)
    assert r.code == 0, r
    synopsis = (ROOT / "docs" / "backups.md").read_text().split("golive restore", 1)[0]
    missing = _options(r.out) - _options(synopsis)
    assert not missing, f"docs/backups.md's synopsis of golive backup lacks {sorted(missing)}"


def test_go_live_init_prints_the_tables_to_fill_in(golive, tmp_path):
    r = golive("go-live", "init", tmp_path / "golive.toml")
    assert r.code == 0, r
    assert "fill in [source], [target] and [[rewrite]], then" in r.out, r


def test_flags_show_no_value_and_help_groups_commands_by_job(golive):
    r = golive("migrate", "files", "--help", env=WIDE)
    assert r.code == 0 and "--dry-run" in r.out and "--create-bucket" in r.out, r
    assert "<bool>" not in r.out, r
    assert "<str>" in r.out  # options that take a value still say which
    r = golive("--help", env=WIDE)
    assert r.code == 0, r
    panels = ["Go-live", "Database", "Files", "Backups", "Releases", "Maintenance and report", "Server"]
    at = [r.out.find(f"─ {p} ─") for p in panels]
    assert all(i >= 0 for i in at) and at == sorted(at), (at, r.out)
    section = {p: r.out[a:b] for p, a, b in zip(panels, at, at[1:] + [len(r.out)])}
    expected = {"Go-live": ["go-live", "demo"], "Database": ["migrate", "validate", "expectations"],
                "Files": ["verify", "rewrite-paths"], "Backups": ["backup", "restore", "backups"],
                "Releases": ["release"], "Maintenance and report": ["maintenance", "report"],
                "Server": ["server", "embedded"]}
    for panel, commands in expected.items():
        for c in commands:
            assert re.search(rf"│ {re.escape(c)} ", section[panel]), (panel, c, r.out)


@pytest.fixture
def my_target(mysql_admin_url):
    import pymysql

    from conftest import _with_db
    from golive.urls import parse_url

    name = "gux_" + uuid.uuid4().hex[:10]
    u = parse_url(mysql_admin_url)
    conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.user, password=u.password or "", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield _with_db(mysql_admin_url, name)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def test_no_schema_named_for_a_mysql_target(golive, my_target, pg_url):
    args = ("migrate", "db", "--source", CHINOOK, "--tables", "Genre,MediaType")
    r = golive(*args, "--target", my_target, "--dry-run")
    assert r.code == 0, r
    assert "(schema" not in r.out and "nothing was written" in r.out, r
    r = golive(*args, "--target", my_target, "--no-validate")
    assert r.code == 0 and "rows written to mysql://" in r.out and "(schema" not in r.out, r
    r = golive(*args, "--target", pg_url, "--dry-run")  # PostgreSQL has schemas: named
    assert r.code == 0 and "(schema public)" in r.out, r

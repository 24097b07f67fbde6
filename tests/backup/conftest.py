"""Fixtures for the backup tests: one database per engine (prefix ``gbk_``), a bucket, and comparisons of
content that do not trust golive (pg_dump text, CHECKSUM TABLE, SQLite's iterdump)."""

from __future__ import annotations

import subprocess
import uuid

import psycopg
import pymysql
import pytest

from conftest import _with_db
from golive.urls import parse_url

from . import appdb


def new_pg(admin: str) -> str:
    name = "gbk_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_db(admin, name)


def drop_pg(admin: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_new(pg_admin_url):
    """A factory of empty PostgreSQL databases, all dropped afterwards."""
    made = []

    def make() -> str:
        made.append(new_pg(pg_admin_url))
        return made[-1]

    yield make
    for url in made:
        drop_pg(pg_admin_url, url)


@pytest.fixture
def pg_app(pg_new) -> str:
    return appdb.build_pg(pg_new())


def my_connect(url: str, database: bool = True):
    u = parse_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.user or "root", password=u.password or "",
                           database=u.database if database else None, charset="utf8mb4", autocommit=True)


@pytest.fixture
def my_new(mysql_admin_url):
    made = []

    def make() -> str:
        name = "gbk_" + uuid.uuid4().hex[:10]
        conn = my_connect(mysql_admin_url, database=False)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        conn.close()
        made.append(_with_db(mysql_admin_url, name))
        return made[-1]

    yield make
    conn = my_connect(mysql_admin_url, database=False)
    with conn.cursor() as cur:
        for url in made:
            cur.execute(f"DROP DATABASE IF EXISTS `{url.rsplit('/', 1)[1]}`")
    conn.close()


@pytest.fixture
def my_app(my_new) -> str:
    url = my_new()
    conn = my_connect(url)
    appdb.build_mysql(conn)
    conn.close()
    return url


@pytest.fixture
def sqlite_app(tmp_path) -> str:
    return appdb.build_sqlite(tmp_path / "app.db")


# ---------------------------------------------------------------- content, compared without golive

def pg_content(url: str) -> dict:
    """Schema (pg_dump --schema-only) and every table's rows in a canonical order, plus large objects."""
    schema = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "-d", url], capture_output=True, text=True,
                            check=True).stdout
    schema = "\n".join(ln for ln in schema.splitlines() if not ln.startswith(("--", "\\restrict", "\\unrestrict")))
    out = {"schema": schema}
    with psycopg.connect(url) as conn:
        for s, t in conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                                 "('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall():
            out[f"{s}.{t}"] = conn.execute(f'SELECT md5(coalesce(string_agg(x::text, E\'\\n\' ORDER BY x::text), \'\')), '
                                           f'count(*) FROM "{s}"."{t}" x').fetchone()
        out["sequences"] = conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall()
        out["large objects"] = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
        out["matview"] = conn.execute("SELECT sum(n) FROM image_counts").fetchone()
    return out


def my_content(url: str) -> dict:
    conn = my_connect(url)
    out = {}
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        tables = sorted(cur.fetchall())
        for t, kind in tables:
            cur.execute(f"SHOW CREATE TABLE `{t}`")
            out[f"ddl {t}"] = cur.fetchone()[1]
            if kind == "BASE TABLE":
                cur.execute(f"CHECKSUM TABLE `{t}`")
                out[f"checksum {t}"] = cur.fetchone()[1]
                cur.execute(f"SELECT COUNT(*) FROM `{t}`")
                out[f"rows {t}"] = cur.fetchone()[0]
        cur.execute("SELECT TRIGGER_NAME, ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA = DATABASE()")
        out["triggers"] = sorted(cur.fetchall())
        cur.execute("SELECT ROUTINE_NAME, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
                    "WHERE ROUTINE_SCHEMA = DATABASE()")
        out["routines"] = sorted(cur.fetchall())
    conn.close()
    return out


def sqlite_content(url: str) -> list[str]:
    import sqlite3

    db = sqlite3.connect(parse_url(url).path)
    try:
        return list(db.iterdump())
    finally:
        db.close()

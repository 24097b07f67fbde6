"""Fixtures of the maintenance and report tests: databases named gmt_* (PostgreSQL and MariaDB), the
deliberately unhealthy scenarios, and a concurrent writer."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from conftest import _with_db


@pytest.fixture
def pg_db(pg_admin_url) -> str:
    """A fresh PostgreSQL database gmt_<random> for one test; dropped afterwards."""
    name = "gmt_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def my_db(mysql_admin_url) -> str:
    """A fresh MariaDB/MySQL database gmt_<random> for one test; dropped afterwards."""
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    name = "gmt_" + uuid.uuid4().hex[:10]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database")
    conn = pymysql.connect(**kw, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    base = mysql_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()

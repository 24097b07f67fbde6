"""Into MySQL/MariaDB: SQLite (Chinook, Sakila, the quirks), PostgreSQL (arrays, jsonb, uuid, enums, timestamptz,
numeric, bytea) and MySQL (another database) copied and validated; resume; a non-strict server loses nothing."""

from __future__ import annotations

import json
import uuid

import psycopg
import pymysql
import pytest

from conftest import CASES
from fixtures import mysql_quirks, quirks
from helpers import migrate


def _admin(mysql_admin_url: str, *stmts: str, database: str | None = None):
    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw["database"] = database
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        with conn.cursor() as cur:
            out = None
            for s in stmts:
                cur.execute(s)
                out = cur.fetchall()
            return out
    finally:
        conn.close()


@pytest.fixture
def my_db(mysql_admin_url):
    """A factory of fresh, empty MariaDB databases (URLs), dropped afterwards."""
    made = []

    def make() -> str:
        name = "golive_mt_" + uuid.uuid4().hex[:8]
        _admin(mysql_admin_url, f"CREATE DATABASE `{name}`")
        made.append(name)
        return mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"

    yield make
    for name in made:
        _admin(mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def q(url: str, sql: str, *args):
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/test"
    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    kw = connect_kwargs(parse_url(admin))
    kw["database"] = name
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.mark.parametrize("case, rows", [("chinook/Chinook_Sqlite.sqlite", 15607), ("sakila/sakila.sqlite", 47273)])
def test_sqlite_samples_value_for_value(case, rows, my_db, prefect_api, tmp_path):
    url = my_db()
    rep = migrate(str(CASES / case), url, report=str(tmp_path / "r.json"))
    assert rep["ok"], rep["errors"]
    assert rep["rows_written"] == rows
    val = rep["validation"]
    assert val["ok"] and "content identical" in val["summary"], val["failures"]
    if case.startswith("chinook"):
        assert q(url, "SELECT Name FROM Track WHERE TrackId = 3435") == [("Cavalleria Rusticana \\ Act \\ Intermezzo Sinfonico",)]
        create = q(url, "SHOW CREATE TABLE Invoice")[0][1]
        assert "utf8mb4" in create and "AUTO_INCREMENT=" in create and "FOREIGN KEY" in create
        assert q(url, "SELECT COUNT(*) FROM _golive_runs WHERE status = 'complete'") == [(1,)]


def test_sqlite_quirks_lose_nothing(my_db, prefect_api, tmp_path):
    src = quirks.build(tmp_path / "q.db")
    url = my_db()
    rep = migrate(src, url, report=str(tmp_path / "r.json"))
    for t in rep["tables"]:
        assert t["rows_read"] == t["rows_written"] + t["rows_rejected"], t
    rejects = [json.loads(x) for x in open(rep["rejects"], encoding="utf-8")]
    reasons = {(r["table"], r["key"].get("id")): r for r in rejects}
    assert reasons[("bad", 2)]["column"] == "n"  # text in an integer column
    assert reasons[("bad", 4)]["reason"] == "text is not valid UTF-8"
    assert "moment" in reasons[("bad", 5)]["reason"]  # 'now': a relative date word, named as such
    assert reasons[("bad", 7)]["column"] == "j"  # invalid JSON
    assert ("bad", 3) not in reasons  # a NUL byte: MySQL text holds it (PostgreSQL's would not)
    assert rep["validation"]["ok"], rep["validation"]["failures"]
    # 4-byte characters, booleans, identities
    types = dict(q(url, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = 'User'"))
    assert types["isAdmin"] == "tinyint(1)" and types["createdAt"] == "datetime(6)"
    assert any("moments stored as DATETIME(6) in UTC" in w for w in rep["warnings"])
    assert any("partial index order_paid" in w for w in rep["warnings"])
    assert any(s["name"] == "user_email_lower" and "MariaDB has none" in s["reason"] for s in rep["skipped"])


PG_FIXTURE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE things (id serial PRIMARY KEY, tags text[], doc jsonb, uid uuid, m mood, seen timestamptz,
  price numeric(12,3), wide numeric, photo bytea, flag boolean, span interval, note varchar(30) UNIQUE);
INSERT INTO things (tags, doc, uid, m, seen, price, wide, photo, flag, span, note) VALUES
 (ARRAY['a', 'b "q"', NULL], '{"k": [1, 2.5], "é": null}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
  '2024-01-02 03:04:05.123456+02', 12.345, 1.5, '\\x00ff10', true, '100:00:00', 'first'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (ARRAY[]::text[], '[]', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'sad', 'infinity', -0.001, 1e-20, '', false,
  '-00:00:01.5', 'third'),
 ('{x}', '"s"', NULL, 'ok', '1999-12-31 23:59:59+00', 0, 123456789012345678901234567890123456789, NULL, NULL,
  '1 mon', 'fourth');
SELECT setval('things_id_seq', 100);
"""


def test_postgresql_into_mysql(pg_url, my_db, prefect_api, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(PG_FIXTURE)
    url = my_db()
    rep = migrate(pg_url, url, report=str(tmp_path / "r.json"))
    rejects = {r["key"]["id"]: r for r in (json.loads(x) for x in open(rep["rejects"], encoding="utf-8"))}
    # infinity, an interval of months and a numeric wider than DECIMAL(65,30) are rejected with the reason
    assert "infinity" in rejects[3]["reason"] and rejects[3]["column"] == "seen"
    assert rejects[4]["column"] in ("wide", "span")
    assert set(rejects) == {3, 4}
    types = dict(q(url, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_NAME = 'things'"))
    assert types["uid"] == "char(36)" and types["m"] == "enum('sad','ok','happy')" and types["flag"] == "tinyint(1)"
    assert types["seen"] == "datetime(6)" and types["price"] == "decimal(12,3)" and types["span"] == "time(6)"
    row = q(url, "SELECT tags, doc, uid, m, seen, price, HEX(photo), flag, span FROM things WHERE id = 1")[0]
    assert json.loads(row[0]) == ["a", 'b "q"', None] and json.loads(row[1]) == {"k": [1, 2.5], "é": None}
    assert row[2] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and row[3] == "happy"
    assert str(row[4]) == "2024-01-02 01:04:05.123456" and str(row[5]) == "12.345" and row[6] == "00FF10"
    assert row[7] == 1 and str(row[8]) == "4 days, 4:00:00"
    # the next id continues after the sequence (100), not after max(id)
    q(url, "INSERT INTO things (note) VALUES ('new')")
    assert q(url, "SELECT id FROM things WHERE note = 'new'") == [(101,)]
    assert rep["validation"]["ok"], rep["validation"]["failures"]


def test_mysql_into_another_mysql_database(mysql_admin_url, my_db, prefect_api, tmp_path):
    name = "golive_my_" + uuid.uuid4().hex[:8]
    src = mysql_quirks.build(mysql_admin_url, name)
    try:
        url = my_db()
        rep = migrate(src, url, report=str(tmp_path / "r.json"))
        assert rep["validation"]["ok"], rep["validation"]["failures"]
        assert rep["rows_rejected"] == 0, rep.get("rejects")
        # the ENUM's '' error value (an app in non-strict mode stored it) arrives as the same value
        assert q(url, "SELECT status, status + 0 FROM texts WHERE id = 4") == [("", 0)]
        assert any("error value" in w for w in rep["warnings"]), rep["warnings"]
        cols = ("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, IS_NULLABLE, COLUMN_DEFAULT, "
                "REPLACE(REPLACE(EXTRA, 'VIRTUAL GENERATED', 'GENERATED'), 'STORED GENERATED', 'GENERATED') "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE '\\_golive%' "
                "ORDER BY BINARY TABLE_NAME, ORDINAL_POSITION")
        assert q(url, cols) == q(src, cols)  # types, character sets, collations, defaults, ON UPDATE, generated
        keys = ("SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE "
                "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE '\\_golive%' "
                "ORDER BY BINARY TABLE_NAME, BINARY INDEX_NAME, 4")
        assert q(url, keys) == q(src, keys)  # prefix indexes and FULLTEXT kept
        assert q(url, "SELECT must, born FROM moments WHERE id = 3") == q(src, "SELECT must, born FROM moments WHERE id = 3")
    finally:
        mysql_quirks.drop(mysql_admin_url, name)


def test_resume_after_a_crash_between_create_table_and_the_first_chunk(my_db, prefect_api, tmp_path):
    """MySQL's DDL commits at once: a run recorded as 'preparing' (tables made, nothing copied) resumes by
    making them again."""
    url = my_db()
    src = str(CASES / "chinook" / "Chinook_Sqlite.sqlite")
    first = migrate(src, url, tables=["Artist", "Album"])
    assert first["ok"]
    q(url, "UPDATE _golive_runs SET status = 'preparing'")
    q(url, "DELETE FROM _golive_chunks")
    q(url, "DROP TABLE Album")
    rep = migrate(src, url, tables=["Artist", "Album"])
    assert rep["ok"] and rep["rows_written"] == 622, rep["errors"]
    assert q(url, "SELECT COUNT(*) FROM Album") == [(347,)]


def test_a_non_strict_server_still_loses_nothing(mysql_admin_url, pg_url, my_db, prefect_api, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, at timestamp, n numeric(5,2), s varchar(3))")
        conn.execute("INSERT INTO t VALUES (1, 'infinity', 1.5, 'abc'), (2, '2024-01-01', 2.25, 'x')")
    url = my_db()
    old = _admin(mysql_admin_url, "SELECT @@GLOBAL.sql_mode")[0][0]
    _admin(mysql_admin_url, "SET GLOBAL sql_mode = ''")
    try:
        rep = migrate(pg_url, url, report=str(tmp_path / "r.json"))
    finally:
        _admin(mysql_admin_url, f"SET GLOBAL sql_mode = '{old}'")
    (r,) = [json.loads(x) for x in open(rep["rejects"], encoding="utf-8")]
    assert r["key"] == {"id": 1} and "infinity" in r["reason"]  # not a silent 0000-00-00
    assert q(url, "SELECT id, n, s FROM t") == [(2, __import__("decimal").Decimal("2.25"), "x")]


@pytest.mark.parametrize("target, words", [
    ("mysql://root:Wr0ng-Pass@127.0.0.1:3306/test", "access denied"),
    ("mysql://root@127.0.0.1:3306/golive_no_such_db", "does not exist"),
])
def test_bad_target_is_one_line_exit_2(golive, target, words, mysql_admin_url):
    res = golive("migrate", "db", "--source", str(CASES / "chinook" / "Chinook_Sqlite.sqlite"), "--target", target)
    assert res.code == 2, res
    lines = [x for x in res.err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and words in lines[0].lower(), res
    assert "Wr0ng-Pass" not in res.all


def test_kill_9_mid_copy_and_resume(my_db, golive, tmp_path):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    src = tmp_path / "ev.db"
    db = sqlite3.connect(src)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, note TEXT)")
    db.executemany("INSERT INTO events VALUES (?, ?, ?)", ((i, i % 97, f"note {i}") for i in range(1, 300_001)))
    db.commit()
    db.close()
    url = my_db()
    cmd = [sys.executable, "-m", "golive", "migrate", "db", "--source", str(src), "--target", url, "--chunk-rows",
           "20000", "--workers", "1", "--no-validate"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env=dict(os.environ, GOLIVE_READ_AHEAD="0"))
    deadline, copied = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            copied = q(url, "SELECT COUNT(*) FROM _golive_chunks")[0][0]
        except Exception:
            copied = 0
        if copied >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert copied >= 2 and q(url, "SELECT COUNT(*) FROM events")[0][0] < 300_000
    res = golive("migrate", "db", "--source", src, "--target", url, "--chunk-rows", "20000", "--report",
                 tmp_path / "r.json", timeout=300)
    assert res.code == 0, res
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["resumed"] and rep["rows_written"] == 300_000 and rep["validation"]["ok"]
    assert q(url, "SELECT COUNT(*), COUNT(DISTINCT id), SUM(n) FROM events") == [
        (300_000, 300_000, sum(i % 97 for i in range(1, 300_001)))]


def test_a_plan_bigger_than_max_allowed_packet_is_stored_compressed_and_read_back(my_db):
    """10,000 tables into MariaDB failed at 'preparing the target database: MySQL server has gone away': the plan
    (25 MB of JSON) was one statement, over the server's max_allowed_packet (16 MB by default). A plan over 1 MB is
    stored zlib-compressed; one stored plain by an earlier version still reads."""
    import json

    from golive.dialects.mysql.bookkeeping import PACKED, MySQLBookkeeping
    from golive.dialects.mysql.session import connect
    from golive.urls import parse_url

    url = my_db()
    conn = connect(parse_url(url))
    try:
        packet = q(url, "SELECT @@max_allowed_packet")[0][0]
        plan = {"run_key": "big", "tables": [{"source": f"t{i:05d}", "careful_sql": "x" * 100 + str(i)}
                                             for i in range(packet // 100 + 1)]}
        text = json.dumps(plan)
        assert len(text) > packet
        book = MySQLBookkeeping(conn)
        book.ensure()
        book.start_run("big", "db", text, "fp")
        conn.commit()
        assert book.get_run("big")["plan"] == plan
        assert q(url, "SELECT LEFT(plan, 12) FROM _golive_runs")[0][0] == PACKED
        small = {"run_key": "old", "tables": []}
        with conn.cursor() as cur:
            cur.execute("INSERT INTO _golive_runs (run_key, target_schema, status, plan) VALUES ('old', 'db', "
                        "'copying', %s)", (json.dumps(small),))
        conn.commit()
        assert book.get_run("old")["plan"] == small
    finally:
        conn.close()

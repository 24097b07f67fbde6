"""The pieces: statement splitting, the PostgreSQL lint rules sized by a live database, notifications received in
each payload shape (signed where the robot signs), Prisma's checksum comparison, lock timeouts retried with
backoff, a long transaction holding a lock on a changed table."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time

import psycopg
import pytest

from golive.release.migrations.prisma import checksum, matches
from golive.release.model import Check, Failure, MigrationRun, ReleaseReport, Rollback
from golive.release.notify import notify_all, parse_target
from golive.release.sqltext import split

from .conftest import pg_exec, run_engine, write


def test_split_knows_quotes_comments_dollar_quoting_and_delimiter():
    sql = """-- a comment; not a statement
CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN RAISE NOTICE 'a;b'; RETURN NEW; END $body$ LANGUAGE plpgsql;
INSERT INTO t VALUES ('it''s; fine', E'back\\'slash;');  /* block; comment */
SELECT "odd;name" FROM t;
"""
    st = split(sql, "postgresql")
    assert [s.line for s in st] == [2, 3, 4]
    assert st[0].text.endswith("LANGUAGE plpgsql") and "'it''s; fine'" in st[1].text
    my = split("DELIMITER $$\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END$$\n"
               "DELIMITER ;\nINSERT INTO t VALUES ('a\\';b'); # mysql comment;\nSELECT 1;", "mysql")
    assert len(my) == 3 and my[0].text.endswith("END") and my[1].text == "INSERT INTO t VALUES ('a\\';b')"


def test_postgresql_lint_rules_use_live_sizes(pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE big (id bigint PRIMARY KEY, name varchar(20), n int, note text)",
            "INSERT INTO big SELECT g, 'n', g, repeat('x', 100) FROM generate_series(1, 20000) g",
            "CREATE TABLE empty (id int PRIMARY KEY, v text)", "ANALYZE big")
    lines = [
        "CREATE INDEX big_n ON big (n);",                                    # 1 index-not-concurrent
        "CREATE INDEX CONCURRENTLY big_n2 ON big (n);",                      # 2 fine
        "ALTER TABLE big ADD COLUMN token uuid DEFAULT gen_random_uuid();",  # 3 volatile-default
        "ALTER TABLE big ADD COLUMN flag boolean DEFAULT false;",            # 4 fine (PostgreSQL 11+)
        "ALTER TABLE big ALTER COLUMN n SET NOT NULL;",                      # 5 set-not-null
        "ALTER TABLE big ALTER COLUMN n TYPE bigint;",                       # 6 alter-type-rewrite
        "ALTER TABLE big ALTER COLUMN name TYPE varchar(50);",               # 7 fine: no rewrite
        "ALTER TABLE big ADD CONSTRAINT big_n_fk FOREIGN KEY (n) REFERENCES big (id);",  # 8 constraint-not-valid
        "ALTER TABLE big ADD CONSTRAINT big_n_pos CHECK (n > 0) NOT VALID;",  # 9 fine
        "ALTER TABLE big ADD CONSTRAINT big_note_uq UNIQUE (note);",          # 10 unique-constraint-index
        "ALTER TABLE big DROP COLUMN note;",                                  # 11 drop-column (rows: error)
        "ALTER TABLE empty DROP COLUMN v;",                                   # 12 drop-column (empty: warning)
        "ALTER TABLE big RENAME COLUMN name TO title;",                       # 13 rename
        "UPDATE big SET n = n + 1;",                                          # 14 unbatched-dml (20k rows)
        "DELETE FROM big WHERE id = 5;",                                      # 15 fine: EXPLAIN says 1 row
        "CREATE TABLE fresh (id int);",                                       # 16
        "CREATE INDEX fresh_id ON fresh (id);",                               # 17 fine: a new table
        "TRUNCATE empty;",                                                    # 18 truncate (empty: warning)
        "DROP TABLE big;",                                                    # 19 drop-table
    ]
    mig = write(tmp_path / "m", {"001_all.sql": "\n".join(lines) + "\n"})
    rep = run_engine(pg_db, migrations=f"sql:{mig}", dry_run=True, large_table="1MB")
    got = {(f.line, f.rule, f.severity) for f in rep.findings if f.rule != "no-lock-timeout"}
    assert got == {(1, "index-not-concurrent", "error"), (3, "volatile-default", "error"), (5, "set-not-null", "error"),
                   (6, "alter-type-rewrite", "error"), (8, "constraint-not-valid", "error"),
                   (10, "unique-constraint-index", "error"), (11, "drop-column", "error"),
                   (12, "drop-column", "warning"), (13, "rename", "error"), (14, "unbatched-dml", "error"),
                   (18, "truncate", "warning"), (19, "drop-table", "error")}, sorted(got)
    f6 = next(f for f in rep.findings if f.line == 6)
    assert "(now integer)" in f6.message and f6.table == "public.big" and f6.table_bytes > 1_000_000
    assert next(f for f in rep.findings if f.rule == "no-lock-timeout").severity == "warning"


def _report() -> ReleaseReport:
    return ReleaseReport(release_id="20261202T120000Z-abcd", database="postgresql://app:***@db/app", dbname="app",
                         engine="postgresql", migrations="sql:migrations", kind="sql", state="rolled-back", exit_code=1,
                         statement="failed and rolled back: …", failed=Failure(step="migrate", migration="002_x",
                                                                               message="boom"),
                         rollback=Rollback(method="restore", why="default", ok=True, message="restored"),
                         runs=[MigrationRun(version="001", label="001_a", status="applied")],
                         prechecks=[Check(id="connectivity", status="pass", message="ok")])


def test_notifications_in_each_payload_shape(hooks, monkeypatch):
    monkeypatch.setenv("GRL_WECOM_HOOK", f"{hooks.url}/wecom/send?key=K")
    values = [f"{hooks.url}/generic?token=T", f"slack+{hooks.url}/slack/T000/B000/XXX",
              f"feishu+{hooks.url}/feishu/hook/abc?secret=fs-secret", f"lark+{hooks.url}/lark/hook/abc",
              f"dingtalk+{hooks.url}/dingtalk/robot/send?access_token=AT&secret=SEC123", "wecom+env:GRL_WECOM_HOOK",
              f"dingtalk+{hooks.url}/refuse"]
    results = notify_all(values, _report())
    assert [r.ok for r in results] == [True, True, True, True, True, True, False]
    assert "sign not match" in results[-1].detail
    assert all("token" not in r.target and "secret" not in r.target and "AT" not in r.target for r in results)
    got = {g["path"].split("/")[1]: g for g in hooks.got}
    assert got["generic"]["body"]["state"] == "rolled-back" and got["generic"]["body"]["exit_code"] == 1
    assert got["generic"]["body"]["applied"] == ["001_a"] and got["generic"]["query"] == {"token": "T"}
    slack = got["slack"]["body"]
    assert slack["blocks"][0]["type"] == "header" and "FAILED, rolled back" in slack["text"]
    feishu = got["feishu"]["body"]
    assert feishu["msg_type"] == "post" and feishu["content"]["post"]["en_us"]["title"].endswith("FAILED, rolled back")
    key = f"{feishu['timestamp']}\nfs-secret".encode()
    assert feishu["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "secret" not in got["feishu"]["query"]
    assert "sign" not in got["lark"]["body"] and got["lark"]["body"]["msg_type"] == "post"
    ding = got["dingtalk"]
    assert ding["body"]["msgtype"] == "markdown" and "### " in ding["body"]["markdown"]["text"]
    ts, sign = ding["query"]["timestamp"], ding["query"]["sign"]
    want = base64.b64encode(hmac.new(b"SEC123", f"{ts}\nSEC123".encode(), hashlib.sha256).digest()).decode()
    assert sign == want and "secret" not in ding["query"] and ding["query"]["access_token"] == "AT"
    assert got["wecom"]["body"]["msgtype"] == "markdown" and got["wecom"]["query"] == {"key": "K"}
    with pytest.raises(Exception, match="GRL_NOT_SET"):
        parse_target("slack+env:GRL_NOT_SET")


def test_prisma_checksums_compare_as_prisma_does():
    script = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
    assert checksum(script) == hashlib.sha256(script.encode()).hexdigest()
    assert matches(script, checksum(script.replace("\n", "\r\n")))  # line endings either way
    digest = hashlib.sha256(script.encode()).digest()
    old = "".join(f"{b:x}" for b in digest)  # the checksums of old Prisma versions: no zero padding
    assert len(old) < 64 and matches(script, old)
    assert not matches(script + "-- x\n", checksum(script))


def test_lock_timeouts_are_retried_with_backoff(pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE busy (id int PRIMARY KEY)")
    mig = write(tmp_path / "m", {"001_col.sql": "ALTER TABLE busy ADD COLUMN v int;\n"})
    holder = psycopg.connect(pg_db)
    holder.execute("LOCK TABLE busy IN ACCESS SHARE MODE")  # an app transaction reading the table
    threading.Timer(2.5, holder.rollback).start()
    t0 = time.monotonic()
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", lock_timeout="300ms",
                     long_transaction="10s")
    holder.close()
    assert rep.exit_code == 0, rep.statement
    retries = [e.message for e in rep.timeline if e.status == "retry"]
    assert len(retries) >= 2 and "retry 1 of 5 in 1 s" in retries[0] and "retry 2 of 5 in 2 s" in retries[1]
    assert rep.runs[0].attempts == len(retries) + 1 and time.monotonic() - t0 >= 2.5
    # with no retries left, it fails cleanly: nothing of it applied, nothing to undo
    mig2 = write(tmp_path / "m", {"002_col.sql": "ALTER TABLE busy ADD COLUMN w int;\n"})
    holder = psycopg.connect(pg_db)
    holder.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
    try:
        rep = run_engine(pg_db, migrations=f"sql:{mig2}", backup_to=f"file://{tmp_path}/b", lock_timeout="200ms",
                         lock_retries=0, long_transaction="1h")
    finally:
        holder.close()
    assert rep.exit_code == 1 and rep.rollback.method == "nothing-to-undo" and rep.rollback.ok, rep.statement
    assert "could not get its lock within lock_timeout after 1 attempts" in rep.runs[0].error


def test_a_long_transaction_locking_a_changed_table_refuses(pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE hot (id int PRIMARY KEY)", "CREATE TABLE cold (id int PRIMARY KEY)")
    holder = psycopg.connect(pg_db)
    holder.execute("SELECT * FROM hot")
    time.sleep(1.2)
    try:
        mig = write(tmp_path / "m", {"001_a.sql": "ALTER TABLE cold ADD COLUMN v int;\n"})
        rep = run_engine(pg_db, migrations=f"sql:{mig}", dry_run=True, long_transaction="1s")
        assert next(c for c in rep.prechecks if c.id == "long-transactions").status == "warn"
        mig = write(tmp_path / "m2", {"001_a.sql": "ALTER TABLE hot ADD COLUMN v int;\n"})
        rep = run_engine(pg_db, migrations=f"sql:{mig}", dry_run=True, long_transaction="1s")
        lt = next(c for c in rep.prechecks if c.id == "long-transactions")
        assert lt.status == "fail" and "hold locks on tables the migrations change" in lt.message and rep.exit_code == 2
    finally:
        holder.close()

"""Online migration from MariaDB (binlog capture) into PostgreSQL and into MariaDB, while an app keeps writing.

The source is a throwaway MariaDB with ``--log-bin --binlog-format=ROW`` (``mysql_server.py``), started once per
session; the app writes as a user with a password and without SUPER or READ_ONLY ADMIN, so the fence applies to
it. Targets are fresh databases of the machine's PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from golive.config import MigrateOptions
from golive.dialects import dialect_of
from golive.errors import TerminalError
from golive.migrate import copy as copying, online, planning, target as tgt
from golive.model.capture import CaptureNotReady, CaptureState, SchemaChanged
from golive.urls import parse_url

from .conftest import Writer
from .mysql_server import mariadb_binlog_server

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"customers": 1, "orders": 1, "tags": 2}  # the key's columns come first
OPTIONS = dict(chunk_rows=700, workers=2)

SCHEMA = [
    """CREATE TABLE customers (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL,
       email VARCHAR(200) NOT NULL UNIQUE, created DATETIME(6) NOT NULL, balance DECIMAL(12,2) NOT NULL DEFAULT 0,
       status ENUM('new','active','gone') NOT NULL DEFAULT 'new') AUTO_INCREMENT = 3000000000""",
    """CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT UNSIGNED NOT NULL,
       total DECIMAL(10,2), note TEXT, payload BLOB, placed DATETIME(3) NULL,
       CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
       ON UPDATE CASCADE ON DELETE RESTRICT)""",
    """CREATE TABLE tags (code VARCHAR(20) NOT NULL, lang CHAR(2) NOT NULL, label VARCHAR(100),
       hits INT NOT NULL DEFAULT 0, PRIMARY KEY (code, lang))""",
]


# ---------------------------------------------------------------------- servers and databases


@pytest.fixture(scope="session")
def binlog_server():
    with mariadb_binlog_server() as srv:
        yield srv


def _fill(conn, customers: int = 1500) -> None:
    rnd = random.Random(7)
    with conn.cursor() as cur:
        for s in SCHEMA:
            cur.execute(s)
        cur.executemany("INSERT INTO customers (name, email, created, balance, status) VALUES (%s, %s, %s, %s, %s)",
                        [(f"customer {i} é", f"c{i}@example.org", dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i),
                          Decimal(i) / 4, rnd.choice(["new", "active"])) for i in range(customers)])
        cur.execute("SELECT id FROM customers")
        ids = [r[0] for r in cur.fetchall()]
        cur.executemany("INSERT INTO orders (customer_id, total, note, payload, placed) VALUES (%s, %s, %s, %s, %s)",
                        [(rnd.choice(ids), Decimal(rnd.randint(1, 99999)) / 100, f"note {i}\n\t'q'",
                          rnd.randbytes(rnd.randint(0, 40)), dt.datetime(2024, 5, 1, 12, 0, 0, 123000))
                         for i in range(customers * 2)])
        cur.executemany("INSERT INTO tags (code, lang, label) VALUES (%s, %s, %s)",
                        [(f"t{i}", lang, f"label {i}") for i in range(200) for lang in ("en", "fr")])


@pytest.fixture
def source(binlog_server):
    """A fresh source database with the app's schema and rows: ``(admin URL, app URL, name)``."""
    url = binlog_server.make_db()
    name = parse_url(url).database
    conn = binlog_server.connect(name)
    try:
        _fill(conn)
    finally:
        conn.close()
    yield url, binlog_server.app_url(name), name
    binlog_server.admin("SET GLOBAL read_only = OFF", f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mariadb_target(mysql_admin_url):
    """A fresh database of the machine's MariaDB."""
    from golive.dialects.mysql.session import connect_kwargs

    name = "golive_on_" + uuid.uuid4().hex[:8]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw["database"] = None
    conn = pymysql.connect(**kw, autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    yield mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def target(request):
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_target")


# ---------------------------------------------------------------------- the app, and golive's steps


def app_writer(app_url: str, *, pause: float = 0.002):
    """Writes like an app (inserts, updates, deletes, key changes, an ON UPDATE CASCADE, multi-statement
    transactions) until a write fails; one connection, as the app user."""
    u = parse_url(app_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password_text, database=u.database,
                           autocommit=True)
    rnd = random.Random(11)

    def one(cur, sql, *args):
        cur.execute(sql, args)
        return cur.fetchone()

    def write(n: int) -> None:
        time.sleep(pause)
        with conn.cursor() as cur:
            op = n % 10
            if op in (0, 1):
                cur.execute("INSERT INTO customers (name, email, created, balance) VALUES (%s, %s, NOW(6), %s)",
                            (f"new {n}", f"n{n}-{rnd.random()}@example.org", Decimal(n % 1000) / 8))
            elif op in (2, 3):
                cur.execute("INSERT INTO orders (customer_id, total, note, payload, placed) SELECT id, %s, %s, %s, "
                            "NOW(3) FROM customers WHERE id >= %s ORDER BY id LIMIT 1",
                            (Decimal(n % 5000) / 10, f"order {n}", rnd.randbytes(12), 3000000000 + rnd.randint(0, 1600)))
            elif op in (4, 5):
                cur.execute("UPDATE orders SET total = total + 1, note = CONCAT(note, '+') WHERE id >= %s "
                            "ORDER BY id LIMIT 1", (rnd.randint(1, 3000 + n),))
            elif op == 6:
                cur.execute("DELETE FROM orders WHERE id >= %s ORDER BY id LIMIT 1", (rnd.randint(1, 3000 + n),))
            elif op == 7:
                cur.execute("INSERT INTO tags (code, lang, label) VALUES (%s, %s, 'x') ON DUPLICATE KEY UPDATE "
                            "hits = hits + 1", (f"t{rnd.randint(0, 260)}", rnd.choice(["en", "fr", "de"])))
            elif op == 8:  # a key change, in a transaction with another write
                row = one(cur, "SELECT code, lang FROM tags WHERE code LIKE 't%%' ORDER BY RAND() LIMIT 1")
                cur.execute("BEGIN")
                if row:
                    cur.execute("UPDATE tags SET code = %s WHERE code = %s AND lang = %s", (f"k{n}", *row))
                cur.execute("UPDATE customers SET balance = balance - 1 WHERE id >= %s ORDER BY id LIMIT 1",
                            (3000000000 + rnd.randint(0, 1600),))
                cur.execute("COMMIT")
            elif n % 40 == 9:  # the key of a parent: ON UPDATE CASCADE changes its orders, unseen in the binlog
                cur.execute("UPDATE customers SET id = id - 2000000000 WHERE id >= %s ORDER BY id LIMIT 1",
                            (3000000000 + rnd.randint(0, 1600),))
            else:
                cid = 3000000000 + rnd.randint(0, 1600 + n // 5)
                cur.execute("DELETE FROM customers WHERE id = %s AND NOT EXISTS (SELECT 1 FROM orders WHERE "
                            "customer_id = %s)", (cid, cid))
                cur.execute("UPDATE customers SET status = 'active', email = CONCAT(email, '.') WHERE id >= %s "
                            "ORDER BY id LIMIT 1", (cid,))

    write.close = conn.close
    return write


def copy_online(source: str, target: str, options: MigrateOptions | None = None):
    """Plan, check, begin capture and copy inside its snapshot (as ``conftest.move_online`` does); returns
    ``(plan, state)`` with the state saved in the target."""
    s, d = parse_url(source), parse_url(target)
    options = options or MigrateOptions(**OPTIONS)
    plan = planning.build_plan(s, d, options)
    online.check(s, plan)
    with dialect_of(s).capture.begin(s, plan, workers=2) as (snapshot, state):
        tgt.prepare(d, plan, options)
        online.save_state(d, state)
        for tp in plan.tables:
            for ch in tp.chunks:
                copying.copy_chunk(s, d, plan.context(), tp, ch, snapshot=snapshot)
            tgt.finish_table(d, plan.schema_of(tp), tp)
        for tp in plan.tables:
            if tp.foreign_keys:
                tgt.link_table(d, plan.schema_of(tp), tp.target, tp.foreign_keys)
    return plan, state


def catch_up_while_writing(source: str, target: str, plan, state, *, seconds: float = 3.0):
    """The catch-up rounds the flow runs while the app keeps writing (each round ends at the source's head as of
    its start: the lag is never zero), for ``seconds``."""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        online.catch_up(parse_url(source), parse_url(target), plan, state, seconds=t_end - time.monotonic(),
                        batch=400)
        time.sleep(0.05)


def _values(v):
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(v, set):
        return ",".join(sorted(v))
    return v


def table_rows(url: str, table: str) -> list[tuple]:
    u = parse_url(url)
    if u.dialect == "postgresql":
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
    else:
        conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.user, password=u.password_text or "",
                               database=u.database)
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                cur.execute(f"SELECT * FROM `{table}`")
                rows = cur.fetchall()
        finally:
            conn.close()
    return sorted((tuple(_values(v) for v in r) for r in rows), key=lambda r: r[:TABLES[table]])


def assert_equal(source: str, target: str) -> None:
    for t in TABLES:
        src, dst = table_rows(source, t), table_rows(target, t)
        assert len(src) == len(dst), f"{t}: {len(src)} rows in the source, {len(dst)} in the target"
        diff = [(a, b) for a, b in zip(src, dst) if a != b]
        assert not diff, f"{t}: {len(diff)} rows differ, first: {diff[0]}"


def app_write_refused(app_url: str) -> str:
    u = parse_url(app_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password_text, database=u.database,
                           autocommit=True)
    try:
        with pytest.raises(pymysql.err.MySQLError) as exc:
            conn.cursor().execute("UPDATE tags SET hits = hits + 1 WHERE lang = 'en'")
        return str(exc.value)
    finally:
        conn.close()


# ---------------------------------------------------------------------- tests


def test_writer_during_copy_and_catch_up_then_cut_over(source, target, binlog_server):
    admin, app, _ = source
    write = app_writer(app)
    try:
        with Writer(write) as w:
            plan, state = copy_online(admin, target)
            catch_up_while_writing(admin, target, plan, state)
            assert w.n > 100 and w.refused is None, (w.n, w.refused)
            result = online.cut_over(parse_url(admin), parse_url(target), plan, state, command="true")
            w.thread.join(timeout=10)
        assert w.refused, "the app kept writing after the fence"
    finally:
        write.close()
    assert state.status == "cut-over" and result["freeze_seconds"] < 30
    assert "read-only" in app_write_refused(app)
    assert_equal(admin, target)
    assert online.load_state(parse_url(target), plan.run_key).applied == state.applied
    cap = dialect_of(parse_url(admin)).capture
    assert cap.leftovers(parse_url(admin))  # the fence stays on after a cut-over, and is named
    assert cap.end(parse_url(admin), state, keep_fence=True) == []
    # removing every leftover, with no run recorded
    assert cap.end(parse_url(admin), CaptureState(run_key="", engine="mysql")) == [
        "the fence (read_only = ON): lifted, the source takes writes again"]
    assert cap.leftovers(parse_url(admin)) == []


CATCH_UP = """
import sys
from golive.migrate import online
from golive.model.plan import MigrationPlan
from golive.urls import parse_url
s, d = parse_url(sys.argv[1]), parse_url(sys.argv[2])
plan = MigrationPlan.model_validate_json(open(sys.argv[3]).read())
state = online.load_state(d, plan.run_key)
while True:
    online.catch_up(s, d, plan, state, seconds=1, batch=int(sys.argv[4]))
"""


def test_kill_9_during_catch_up_then_resume(source, target, tmp_path):
    admin, app, _ = source
    write = app_writer(app)
    d = parse_url(target)
    try:
        with Writer(write) as w:
            plan, state = copy_online(admin, target)
            (tmp_path / "plan.json").write_text(plan.model_dump_json())
            seen = {state.applied}
            proc = subprocess.Popen([sys.executable, "-c", CATCH_UP, admin, target, str(tmp_path / "plan.json"), "7"],
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)
            try:
                t_end = time.monotonic() + 120
                while len(seen) < 4 and time.monotonic() < t_end and proc.poll() is None:
                    time.sleep(0.05)
                    seen.add(online.load_state(d, plan.run_key).applied)
                time.sleep(random.uniform(0, 0.3))
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            assert len(seen) >= 4, "the catch-up in the subprocess did not apply batches"
            resumed = online.load_state(d, plan.run_key)  # the same command again: from the state in the target
            catch_up_while_writing(admin, target, plan, resumed)
            online.cut_over(parse_url(admin), d, plan, resumed)
            w.thread.join(timeout=10)
    finally:
        write.close()
    assert w.refused and w.n > 100
    assert_equal(admin, target)


def test_alter_table_during_capture_stops_the_run(source, pg_url, binlog_server):
    admin, app, name = source
    plan, state = copy_online(admin, pg_url)
    write = app_writer(app, pause=0)
    for n in range(30):
        write(n)
    binlog_server.admin("ALTER TABLE orders ADD COLUMN extra INT", database=name)
    write(2)
    with pytest.raises(SchemaChanged) as exc:
        online.catch_up(parse_url(admin), parse_url(pg_url), plan, state)
    msg = str(exc.value)
    assert "table orders altered: ALTER TABLE orders ADD COLUMN extra INT" in msg and "\n" not in msg
    # what came before the ALTER is applied; the next read stops at it again
    with pytest.raises(SchemaChanged):
        online.catch_up(parse_url(admin), parse_url(pg_url), plan, state)

    # a DDL the binlog does not show (sql_log_bin = 0): the row events' column count gives it away
    plan, state = copy_online(admin, pg_url, MigrateOptions(**OPTIONS, drop_existing=True))
    binlog_server.admin("SET SESSION sql_log_bin = 0", "ALTER TABLE tags ADD COLUMN quiet INT", database=name)
    write(7)
    write.close()
    with pytest.raises(SchemaChanged, match="table tags now has 5 columns in the binlog where the copy has 4"):
        online.catch_up(parse_url(admin), parse_url(pg_url), plan, state)


def test_abort_leaves_the_source_as_it_was(source, pg_url, binlog_server):
    admin, app, name = source
    s, d = parse_url(admin), parse_url(pg_url)
    plan, state = copy_online(admin, pg_url)
    write = app_writer(app, pause=0)
    for n in range(20):
        write(n)
    write.close()
    online.catch_up(s, d, plan, state)
    before = {t: table_rows(admin, t) for t in TABLES}
    objects = binlog_server.admin("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
                                  f"TABLE_SCHEMA = '{name}' ORDER BY 1")
    with pytest.raises(TerminalError, match="the cut-over command failed"):
        online.cut_over(s, d, plan, state, command="false")
    assert "read-only" in app_write_refused(app)  # the failed cut-over leaves the source fenced
    removed = online.abort(s, d, state)
    assert removed == ["the fence (read_only = ON): lifted, the source takes writes again"]
    assert binlog_server.admin("SELECT @@global.read_only") == [(0,)]
    assert dialect_of(s).capture.leftovers(s) == []
    assert {t: table_rows(admin, t) for t in TABLES} == before
    assert binlog_server.admin("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
                               f"TABLE_SCHEMA = '{name}' ORDER BY 1") == objects
    write = app_writer(app, pause=0)  # the app writes again
    write(4)
    write.close()
    assert online.load_state(d, plan.run_key).status == "aborted"


def test_tables_without_a_key_and_cascades_refused_by_name(source, pg_url, binlog_server):
    admin, _, name = source
    binlog_server.admin("CREATE TABLE audit_log (at DATETIME, what TEXT)",
                        "CREATE TABLE order_lines (id INT PRIMARY KEY, order_id BIGINT NOT NULL, CONSTRAINT "
                        "fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE)",
                        database=name)
    s = parse_url(admin)
    plan = planning.build_plan(s, parse_url(pg_url), MigrateOptions(**OPTIONS))
    with pytest.raises(CaptureNotReady) as exc:
        online.check(s, plan)
    msg = str(exc.value)
    assert "tables without a primary key: audit_log" in msg and "\n" not in msg
    assert "foreign key fk_lines_order of order_lines (ON DELETE CASCADE)" in msg
    problems = dialect_of(s).capture.check(s, plan, keyless=True)
    assert len(problems) == 1 and "fk_lines_order" in problems[0]


def test_settings_and_grants_missing_refused_with_the_fix(binlog_server, mysql_admin_url, pg_url):
    # the machine's own MariaDB: log_bin is off (and stays so: nothing here changes its settings)
    from golive.dialects.mysql.session import connect_kwargs

    name = "golive_nobin_" + uuid.uuid4().hex[:8]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw["database"] = None
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}`")
        conn.cursor().execute(f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v TEXT)")
        url = parse_url(mysql_admin_url.rsplit("/", 1)[0] + f"/{name}")
        plan = planning.build_plan(url, parse_url(pg_url), MigrateOptions())
        with pytest.raises(CaptureNotReady) as exc:
            online.check(url, plan)
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
    msg = str(exc.value)
    assert "log_bin is off" in msg and "log_bin = mysql-bin" in msg and "my.cnf" in msg and "\n" not in msg

    # a binlog server whose user lacks the replication grants, and a session-level STATEMENT format
    url = binlog_server.make_db()
    db = parse_url(url).database
    binlog_server.admin("CREATE TABLE t (id INT PRIMARY KEY)", database=db)
    binlog_server.admin("DROP USER IF EXISTS 'reader'@'%'", "CREATE USER 'reader'@'%' IDENTIFIED BY 'r-pw'",
                        f"GRANT SELECT ON `{db}`.* TO 'reader'@'%'")
    reader = parse_url(f"mysql://reader:r-pw@127.0.0.1:{binlog_server.port}/{db}")
    plan = planning.build_plan(reader, parse_url(pg_url), MigrateOptions())
    problems = dialect_of(reader).capture.check(reader, plan)
    assert any(p.startswith("the user 'reader'@'%' may not read the binlog: GRANT REPLICATION SLAVE, "
                            "REPLICATION CLIENT ON *.* TO 'reader'@'%'") for p in problems), problems
    assert any("GRANT READ_ONLY ADMIN ON *.* TO 'reader'@'%'" in p for p in problems), problems
    assert "r-pw" not in " ".join(problems)
    binlog_server.admin(f"DROP DATABASE `{db}`", "DROP USER 'reader'@'%'")


def test_statement_format_write_stops_the_run(source, pg_url, binlog_server):
    admin, _, name = source
    s, d = parse_url(admin), parse_url(pg_url)
    plan, state = copy_online(admin, pg_url)
    binlog_server.admin("SET SESSION binlog_format = 'STATEMENT'", "UPDATE tags SET hits = 5 WHERE code = 't1'",
                        database=name)
    with pytest.raises(TerminalError, match="table tags was written by a statement logged as text"):
        online.catch_up(s, d, plan, state)


def test_a_compressed_binlog_is_refused_never_skipped(source, pg_url, binlog_server, monkeypatch):
    """MariaDB's log_bin_compress: refused by the pre-check; turned on during capture, the catch-up stops with the
    fix at the first compressed event (no reader golive has reads them: skipping one would lose its rows)."""
    admin, _, name = source
    s, d = parse_url(admin), parse_url(pg_url)
    plan, state = copy_online(admin, pg_url)
    try:
        binlog_server.admin("SET GLOBAL log_bin_compress = ON")
        problems = dialect_of(s).capture.check(s, plan)
        assert any(p.startswith("log_bin_compress is ON: golive cannot read compressed binlog events") and
                   "SET GLOBAL log_bin_compress = OFF" in p for p in problems), problems
        binlog_server.admin("SET GLOBAL log_bin_compress_min_len = 10")
        binlog_server.admin("UPDATE tags SET label = 'compressed' WHERE code = 't1' AND lang = 'en'", database=name)
        with pytest.raises(TerminalError, match="compressed events .* turn it off"):
            online.catch_up(s, d, plan, state)  # golive's own reader
        from golive.dialects.mysql import binlog

        with monkeypatch.context() as m:  # the library, which would skip them
            m.setattr(binlog, "_wire_events", _unreadable)
            with pytest.raises(TerminalError, match="compressed events .* turn it off"):
                online.catch_up(s, d, plan, state)
    finally:
        binlog_server.admin("SET GLOBAL log_bin_compress = OFF", "SET GLOBAL log_bin_compress_min_len = 256")


def _capturing(admin: str, pg_url: str):
    """Capture begun on ``admin``'s database (nothing copied): ``(source, plan, capture, state)``."""
    s = parse_url(admin)
    plan = planning.build_plan(s, parse_url(pg_url), MigrateOptions(**OPTIONS))
    cap = dialect_of(s).capture
    with cap.begin(s, plan, workers=1) as (_, state):
        pass
    return s, plan, cap, state


def test_a_cascade_to_an_unsigned_key_above_2_31_finds_the_children(source, binlog_server, pg_url, monkeypatch):
    """Without FULL metadata the binlog carries an UNSIGNED value signed: the parent's new key is corrected before
    its ON UPDATE CASCADE children are looked up by it (golive's reader and the library alike)."""
    from golive.dialects.mysql import binlog

    admin, _, name = source
    s, plan, cap, state = _capturing(admin, pg_url)
    cid = binlog_server.admin("SELECT MIN(customer_id) FROM orders", database=name)[0][0]
    binlog_server.admin(f"UPDATE customers SET id = 3500000000 WHERE id = {cid}", database=name)
    children = {("orders", (r[0],), False) for r in binlog_server.admin(
        "SELECT id FROM orders WHERE customer_id = 3500000000", database=name)}
    assert children
    wire = cap.changes(s, state, state.applied, limit=1000)
    monkeypatch.setattr(binlog, "_wire_events", _unreadable)
    library = cap.changes(s, state, state.applied, limit=1000)
    for batch in (wire, library):
        got = [(c.table, c.key, c.deleted) for c in batch.changes]
        assert got[:2] == [("customers", (3500000000,), False), ("customers", (cid,), True)]
        assert set(got[2:]) == children


def test_binlog_keys_match_the_rows_read_back(source, binlog_server, pg_url):
    """An UNSIGNED key above 2^31 (the binlog carries it signed without FULL metadata), composite string keys and
    a key change: each key the capture hands over finds its row again."""
    admin, _, name = source
    s, plan, cap, state = _capturing(admin, pg_url)
    try:  # a binlog rotated in between, and FULL metadata (column names, signedness) from the middle on
        binlog_server.admin("UPDATE customers SET balance = 1 WHERE id = 3000000005", "FLUSH BINARY LOGS",
                            "UPDATE tags SET code = 'renamed' WHERE code = 't3' AND lang = 'fr'",
                            "SET GLOBAL binlog_row_metadata = FULL", database=name)
        binlog_server.admin("DELETE FROM orders WHERE id = 2", "UPDATE customers SET id = 7 WHERE id = 3000000009",
                            database=name)
        batch = cap.changes(s, state, state.applied, limit=100)
        assert cap.changes(s, state, batch.position, limit=100).changes == []
    finally:
        binlog_server.admin("SET GLOBAL binlog_row_metadata = NO_LOG")
    got = [(c.table, c.key, c.deleted) for c in batch.changes]
    assert got[:4] == [("customers", (3000000005,), False), ("tags", ("renamed", "fr"), False),
                       ("tags", ("t3", "fr"), True), ("orders", (2,), True)]
    # the parent's key change, and the children its ON UPDATE CASCADE moved (not in the binlog: read back)
    assert got[4:6] == [("customers", (7,), False), ("customers", (3000000009,), True)]
    cascaded = binlog_server.admin("SELECT id FROM orders WHERE customer_id = 7", database=name)
    assert cascaded and sorted(got[6:]) == sorted(("orders", (r[0],), False) for r in cascaded)
    assert batch.position.split(":")[0] != state.applied.split(":")[0]
    tp = {t.source: t for t in plan.tables}
    found = dialect_of(s).source.read_keys(s, plan, tp["tags"], [("renamed", "fr"), ("t3", "fr")])
    assert [k for k, _ in found] == [("renamed", "fr")]


def test_a_write_after_the_fence_fails_the_drain_loudly(source, pg_url, binlog_server):
    """A session with READ_ONLY ADMIN (here: ALL PRIVILEGES) ignores read_only: the drain sees its write."""
    admin, app, name = source
    s, d = parse_url(admin), parse_url(pg_url)
    plan, state = copy_online(admin, pg_url)
    online.fence(s, d, state)
    assert "read-only" in app_write_refused(app)
    binlog_server.admin("UPDATE tags SET hits = 99 WHERE code = 't5'", database=name)
    with pytest.raises(TerminalError, match="a write to tags reached the source after the fence"):
        online.catch_up(s, d, plan, state)
    online.fence(s, d, state)  # the same command again, once that writer stopped: the write is applied
    online.catch_up(s, d, plan, state)
    assert_equal(admin, pg_url)
    assert online.abort(s, d, state) == ["the fence (read_only = ON): lifted, the source takes writes again"]


WIDE = """CREATE TABLE wide (id BIGINT UNSIGNED NOT NULL, code VARCHAR(300) NOT NULL, t TINYINT, s SMALLINT UNSIGNED,
    m MEDIUMINT, i INT, f FLOAT, d DOUBLE, n1 DECIMAL(5,2), n2 DECIMAL(30,10), n3 DECIMAL(10,0), dt DATE, tm TIME(3),
    dtm DATETIME(6), ts TIMESTAMP(2) NULL, y YEAR, c CHAR(70), b BINARY(4), vb VARBINARY(20), tx TEXT, bl BLOB,
    lt LONGTEXT, j JSON, e ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10), PRIMARY KEY (id, code))"""


def _unreadable(*a, **k):
    from golive.dialects.mysql.binlog_wire import Unsupported

    raise Unsupported("the test reads with the library")


@pytest.mark.parametrize("metadata", ["NO_LOG", "FULL"])
def test_fast_key_reader_agrees_with_the_library(binlog_server, pg_url, monkeypatch, metadata):
    """The keys golive's own reader reads from the row images' bytes are the ones the library decodes, for every
    column type around them (NULLs, wide strings, decimals, fractional times), with and without FULL metadata; a
    batch cut short ends at a transaction, the next goes on from there."""
    from golive.dialects.mysql import binlog

    url = binlog_server.make_db()
    name = parse_url(url).database
    binlog_server.admin(WIDE, "CREATE TABLE small (k TINYINT PRIMARY KEY, c CHAR(70) NOT NULL, UNIQUE (c))",
                        "CREATE TABLE chars (c CHAR(70) NOT NULL PRIMARY KEY, v INT)", database=name)
    s = parse_url(url)
    plan = planning.build_plan(s, parse_url(pg_url), MigrateOptions())
    cap = dialect_of(s).capture
    with cap.begin(s, plan, workers=1) as (_, state):
        pass
    rnd = random.Random(3)
    conn = binlog_server.connect(name)
    try:
        binlog_server.admin(f"SET GLOBAL binlog_row_metadata = {metadata}")
        with conn.cursor() as cur:
            for n in range(40):
                full = n % 3 != 0
                cur.execute(
                    "INSERT INTO wide VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s, %s, %s, %s, %s, %s, b'1010101010')",
                    (2 ** 63 + n if n % 2 else n, ("ü" * rnd.randint(0, 290)) + str(n), -n if full else None,
                     60000 + n if full else None, -8000000 + n, 2 ** 31 - 1 - n, 1.5, 2.25, Decimal("-123.45"),
                     Decimal("12345678901234567890.0123456789"), Decimal(n), dt.date(2024, 2, 29), "-838:59:59.5",
                     dt.datetime(2024, 5, 1, 1, 2, 3, n), dt.datetime(2024, 5, 1, 1, 2, 3, 120000) if full else None,
                     2024, "c" * (n % 70), b"\x00\xff\x01\x02", rnd.randbytes(n % 20), "t" * n if full else None,
                     rnd.randbytes(300 * n), "L" * 70000 if n == 5 else "l", '{"a": [1, 2]}', "b", "x,z"))
                cur.execute("INSERT INTO small VALUES (%s, %s)", (-n, f"{'é' * 60}{n}"))
                cur.execute("INSERT INTO chars VALUES (%s, %s)", (f"{'ж' * 65}{n}", n))
            cur.execute("UPDATE wide SET code = CONCAT(code, '!'), i = NULL WHERE id % 4 = 1")
            cur.execute("UPDATE small SET k = k - 50 WHERE k > -10")
            cur.execute("UPDATE chars SET c = CONCAT('x', c) WHERE v < 10")
            cur.execute("DELETE FROM wide WHERE id % 5 = 0")
            cur.execute("DELETE FROM chars WHERE v > 30")
    finally:
        conn.close()
        binlog_server.admin("SET GLOBAL binlog_row_metadata = NO_LOG")
    from golive.dialects.mysql import binlog_wire

    rows, seen = binlog_wire.Reader.rows, []
    monkeypatch.setattr(binlog_wire.Reader, "rows", lambda self, *a: seen.append(rows(self, *a)) or seen[-1])
    wire = cap.changes(s, state, state.applied, limit=100000)  # off the wire
    assert seen and None not in seen
    monkeypatch.setattr(binlog, "_wire_events", _unreadable)  # the library reads the range, every column decoded
    slow = cap.changes(s, state, state.applied, limit=100000)
    assert len(slow.changes) == 40 * 3 + 3 * 2 * 10 + 8 + 9  # a key change: the new key and the old one
    assert wire.changes == slow.changes and wire.position == slow.position
    assert wire.oldest_at == slow.oldest_at and wire.pending == slow.pending
    small = cap.changes(s, state, state.applied, limit=7)  # whole transactions, then the rest from where it ended
    monkeypatch.undo()
    part = cap.changes(s, state, state.applied, limit=7)
    assert (part.changes, part.position) == (small.changes, small.position)
    rest = cap.changes(s, state, part.position, limit=100000)
    assert part.changes + rest.changes == slow.changes and rest.position == slow.position
    assert ("wide", (2 ** 63 + 1, str(wire.changes[3].key[1])), False) == (
        wire.changes[3].table, wire.changes[3].key, wire.changes[3].deleted)
    binlog_server.admin(f"DROP DATABASE `{name}`")


@pytest.mark.parametrize("statement, schema, said", [
    ("ALTER TABLE orders ADD COLUMN x INT", "shop", "table orders altered"),
    ("alter online ignore table `shop`.`Orders` drop column y", "other", "table orders altered"),
    ("DROP TABLE IF EXISTS `tags`, `x` /* generated by server */", "shop", "table tags dropped"),
    ("RENAME TABLE orders TO orders_old, orders_new TO orders", "shop", "table orders renamed"),
    ("TRUNCATE TABLE shop.tags", "mysql", "table tags truncated"),
    ("CREATE OR REPLACE TABLE tags (id INT)", "shop", "table tags replaced"),
    ("CREATE UNIQUE INDEX ix ON orders (note(10))", "shop", "table orders given an index"),
    ("DROP INDEX ix ON `orders`", "shop", "table orders stripped of an index"),
    ("/*!40000 ALTER TABLE `tags` DISABLE KEYS */", "shop", "table tags altered"),
    ("DROP DATABASE IF EXISTS `shop`", "", "the database shop was dropped"),
    ("ALTER TABLE other ADD COLUMN x INT", "shop", None),
    ("ALTER TABLE elsewhere.orders ADD COLUMN x INT", "shop", None),
    ("DROP TEMPORARY TABLE IF EXISTS orders", "shop", None),
    ("CREATE TABLE orders_copy LIKE orders", "shop", None),
    ("OPTIMIZE TABLE orders", "shop", None),
    ("GRANT SELECT ON shop.* TO 'x'@'%'", "shop", None),
])
def test_ddl_of_a_copied_table_is_recognised(statement, schema, said):
    from golive.dialects.mysql.binlog import ddl_change

    got = ddl_change(statement, schema, "shop", ["orders", "tags"])
    assert (got is None) if said is None else got.startswith(said + ":"), got


def test_the_command_moves_a_live_mysql_app_through_the_flow(golive, source, pg_url, tmp_path):
    """``golive migrate db --online`` end to end (CLI, Prefect flow, the copy's tasks in the capture's snapshot)."""
    admin, app, _ = source
    write = app_writer(app)
    try:
        with Writer(write) as w:
            r = golive("migrate", "db", "-s", admin, "-t", pg_url, "--online", "--cutover-command", "true",
                       "--report", tmp_path / "r.json")
            w.thread.join(timeout=10)
    finally:
        write.close()
    assert r.code == 0, r
    assert w.refused and w.n > 20, (w.n, w.refused)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["online"]["changes_applied"] > 0, rep["online"]
    assert rep["online"]["checked_rows"] + rep["online"]["checked_ahead"] > 0, rep["online"]  # at the cut-over or ahead
    assert_equal(admin, pg_url)

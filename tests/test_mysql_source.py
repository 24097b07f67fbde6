"""MySQL/MariaDB -> PostgreSQL on the machine's MariaDB: one test per rule of the README's MySQL table, Chinook
value for value against its own PostgreSQL edition, resume after kill -9, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from conftest import CASES, _with_db
from fixtures import mysql_quirks
from helpers import column_types, execute, migrate, rows, scalar


def _mysql(admin: str, *stmts: str, database: str | None = None):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    kw = connect_kwargs(parse_url(admin))
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
def pg_db(pg_admin_url):
    """A factory of fresh PostgreSQL databases, dropped afterwards."""
    made = []

    def make() -> str:
        name = "golive_t_" + uuid.uuid4().hex[:10]
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _with_db(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def quirks(tmp_path_factory, pg_admin_url, mysql_admin_url, prefect_api):
    name = "golive_my_" + uuid.uuid4().hex[:8]
    src = mysql_quirks.build(mysql_admin_url, name)
    pgname = "golive_q_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{pgname}"')
    url = _with_db(pg_admin_url, pgname)
    tmp = tmp_path_factory.mktemp("myq")
    report = migrate(src, url, report=str(tmp / "report.json"))
    yield report, url, src
    mysql_quirks.drop(mysql_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{pgname}" WITH (FORCE)')


def test_every_row_written_or_rejected_with_reasons(quirks):
    report, url, src = quirks
    for t in report["tables"]:
        assert t["rows_read"] == t["rows_written"] + t["rows_rejected"], t
        assert scalar(url, f'SELECT count(*) FROM "{t["target"]}"') == t["rows_written"]
    lines = [json.loads(x) for x in open(report["rejects"], encoding="utf-8")]
    got = {(r["table"], r["key"]["id"]): r for r in lines}
    for table, expected in mysql_quirks.EXPECTED_REJECTS.items():
        for rid, (column, words) in expected.items():
            r = got[(table, rid)]
            assert r["column"] == column and words in r["reason"].lower(), r
    assert report["exit_code"] == 1 and report["rows_rejected"] == 2
    # the copy validates: rejected rows are expected to be missing, every other value is identical
    assert report["validation"]["ok"], report["validation"]["failures"]


def test_integers_booleans_bits(quirks):
    report, url, _ = quirks
    assert column_types(url, "flags") == {"id": "integer", "active": "boolean", "level": "smallint",
                                          "bit1": "boolean", "bits": "bit varying(5)"}
    assert rows(url, "SELECT id, active, level, bit1, bits FROM flags ORDER BY id") == [
        (1, True, 0, True, "10101"), (2, False, 2, False, "00001"), (3, True, None, None, None)]
    assert any("flags.level: TINYINT(1) holds 1 values other than 0/1" in w for w in report["warnings"])
    types = column_types(url, "nums")
    assert types == {"id": "bigint", "small": "smallint", "mid": "integer", "big": "bigint", "huge": "numeric(20,0)",
                     "price": "numeric(10,2)", "f": "real", "d": "double precision", "y": "smallint"}
    assert rows(url, "SELECT huge::text, big, price::text, d FROM nums WHERE id = 1") == [
        ("18446744073709551615", 4294967295, "12.50", 0.30000000000000004)]
    # AUTO_INCREMENT=1000: ids already handed out are never reused
    assert scalar(url, "INSERT INTO nums (small) VALUES (1) RETURNING id") == 1000


def test_dates_zero_dates_times(quirks):
    report, url, _ = quirks
    assert column_types(url, "moments") == {"id": "integer", "born": "date", "seen": "timestamp without time zone",
                                            "stamp": "timestamp with time zone", "must": "date", "dur": "interval",
                                            "short": "time without time zone"}
    got = {r[0]: r[1:] for r in rows(url, "SELECT id, born::text, seen::text, stamp::text, must::text, dur::text, "
                                          "short::text FROM moments")}
    assert got[1] == ("2024-02-29", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.5+00", "2024-01-01",
                      "100:00:00", "12:30:00")
    assert got[2][4] == "-12:00:00"
    assert got[3] == (None, None, None, None, None, None)  # zero dates: NULL
    assert got[4][:2] == (None, None)  # zero in date (2024-00-15): NULL
    w = "\n".join(report["warnings"])
    assert "moments.born: 2 zero dates" in w and "moments.must: 1 zero dates in a NOT NULL column written as NULL" in w


def test_text_enum_set_json_binary(quirks):
    report, url, _ = quirks
    types = column_types(url, "texts")
    assert types["code"] == "character varying(5)" and types["status"] == "text" and types["perms"] == "text[]"
    assert types["doc"] == "jsonb" and types["raw"] == "bytea" and types["shape"] == "bytea"
    got = {r[0]: r[1:] for r in rows(url, "SELECT id, code, name, body, legacy, status, perms, doc, raw FROM texts")}
    assert got[1][:5] == ("ab", "it's \"q\", comma", "multi\nline\ttab \\ back", "café", "paid")
    assert got[1][5] == ["read", "admin"] and got[1][6] == {"k": [1, 2], "é": None}
    assert bytes(got[1][7]).hex() == "00112233445566778899aabbccddeeff"
    assert got[3][1:4] == ("🙂 emoji", "Zoë 会议", "naïve") and got[2][5] == []
    assert got[4][4] == ""  # the ENUM's '' error value, allowed by the CHECK
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(url, "INSERT INTO texts (id, status) VALUES (9, 'other')")
    assert any("geometry copied as WKB" in w for w in report["warnings"])


def test_defaults_on_update_generated_checks(quirks):
    report, url, _ = quirks
    before = scalar(url, "SELECT updated FROM touched WHERE id = 1")
    execute(url, "UPDATE touched SET note = 'changed' WHERE id = 1")
    assert scalar(url, "SELECT updated FROM touched WHERE id = 1") > before  # ON UPDATE CURRENT_TIMESTAMP
    assert rows(url, "SELECT total, label FROM touched WHERE id = 1") == [(2, "n-changed")]  # generated, stored
    assert scalar(url, "INSERT INTO touched (id, note) VALUES (5, 'x') RETURNING created IS NOT NULL")
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(url, "INSERT INTO touched (id, note) VALUES (-1, 'neg')")


def test_indexes_names_views_and_what_is_reported(quirks):
    report, url, _ = quirks
    skipped = {(s["kind"], s["name"]): s["reason"] for s in report["skipped"]}
    assert "FULLTEXT" in skipped[("index", "body_ft")]
    assert ("trigger", "child_ins") in skipped and ("procedure", "do_nothing") in skipped
    assert ("event", "nightly") in skipped and ("view", "odd_view") in skipped
    assert any("index slug_prefix: UNIQUE over a prefix (slug(10))" in w for w in report["warnings"])
    assert scalar(url, "SELECT count(*) FROM pg_indexes WHERE indexname IN ('title_prefix', 'slug_prefix')") == 2
    assert rows(url, 'SELECT * FROM "Users"') == [(1, "Upper")]
    assert rows(url, 'SELECT id, email FROM "users" ORDER BY id')[0] == (1, "lower@example.com")
    assert rows(url, 'SELECT "select", "group" FROM "order"') == [("from", 7)]
    assert rows(url, "SELECT * FROM paid_texts") == [(1, "it's \"q\", comma")]
    assert rows(url, "SELECT count(*) FROM nokey") == [(3,)]
    # foreign keys after the data, with their actions
    execute(url, "DELETE FROM parent WHERE id = 1")
    assert rows(url, "SELECT id FROM child ORDER BY id") == [(2,), (3,)]
    assert "snapshot" in report["consistency"]


def test_mixed_collations_and_latin1_read_as_written(quirks):
    """A table mixing collations (utf8mb4_nopad_bin, general_ci, unicode_ci, JSON's utf8mb4_bin, latin1_bin,
    utf8mb3) reads (it was "Illegal mix of collations for operation 'concat'", error 1271), and an all-latin1 table's
    text arrives as the characters it holds."""
    report, url, _ = quirks
    got = rows(url, "SELECT id, code, name, title, doc, legacy, old3, kind, tags, seen::text FROM mixed ORDER BY id")
    assert got[0] == (1, "Ab ", "Zoë", "it's", {"k": "é"}, "café", "naïve", "b", ["x", "y"], "2024-01-02 03:04:05")
    assert got[1][:2] == (2, "ab") and got[1][2:] == (None,) * 8
    assert rows(url, "SELECT id, name, note FROM latin ORDER BY id") == [(1, "café", "crème brûlée"), (2, "plain", None)]


def test_a_generated_column_the_target_refuses_is_copied_as_a_plain_column(quirks):
    """``UNHEX(SHA2(json, 256))`` translates to ``sha256(jsonb)``, which PostgreSQL has not: the column is a plain
    one with the values MySQL computed (the README's rule for untranslatable generated columns), not a refusal."""
    import hashlib

    report, url, _ = quirks
    assert column_types(url, "hashed")["h"] == "bytea"
    assert scalar(url, "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'hashed'::regclass AND attname = 'h'") == ""
    got = dict(rows(url, "SELECT id, h FROM hashed"))
    assert bytes(got[1]) == hashlib.sha256(b"[1, 2]").digest()
    assert bytes(got[2]) == hashlib.sha256('{"a": "é"}'.encode()).digest()
    assert any(w.startswith("hashed.h: generated column copied as a plain column (values kept): the target refuses")
               for w in report["warnings"]), report["warnings"]


def test_golive_bookkeeping_is_never_app_data(quirks):
    """golive's own tables in the source (a database golive filled, validated, released, rewrote) stay behind,
    each reported as skipped."""
    report, url, _ = quirks
    skipped = {(s["kind"], s["name"]): s["reason"] for s in report["skipped"]}
    for table in mysql_quirks.BOOKKEEPING_TABLES:
        assert skipped.get(("table", table)) == "golive's own bookkeeping", (table, skipped)
    assert not [t for t in report["tables"] if t["source"].startswith("_golive")]
    assert scalar(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '\\_golive%%'") == 0


def test_a_mariadb_golive_filled_moves_on_to_postgresql(mysql_admin_url, pg_db, prefect_api, tmp_path):
    """SQLite -> MariaDB with golive, then that MariaDB -> PostgreSQL: golive's bookkeeping stays behind (its
    _golive_source_orphans' generated column broke the target), the tables golive made (utf8mb4_nopad_bin text
    beside a JSON column) read, and the foreign keys keep their names (not renamed for their indexes')."""
    from golive import sample

    name = "golive_rt_" + uuid.uuid4().hex[:8]
    _mysql(mysql_admin_url, f"CREATE DATABASE `{name}`")
    try:
        app = tmp_path / "app.db"
        sample.build(app, users=40, images_per_user=2, bad_rows=False)
        mariadb = mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
        assert migrate(app, mariadb)["ok"]
        own = sorted(r[0] for r in _mysql(mysql_admin_url, "SHOW TABLES LIKE '\\_golive%'", database=name))
        assert {"_golive_runs", "_golive_chunks"} <= set(own), own
        target = pg_db()
        report = migrate(mariadb, target)
        assert report["ok"], report["errors"]
        skipped = {(s["kind"], s["name"]): s["reason"] for s in report["skipped"]}
        assert all(skipped.get(("table", t)) == "golive's own bookkeeping" for t in own), skipped
        assert scalar(target, "SELECT count(*) FROM users") == 40
        assert scalar(target, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_golive%%'") == 0
        # MySQL names a foreign key's index after it: the key keeps its name on the target all the same
        fks = {r[0] for r in _mysql(mysql_admin_url, "SELECT CONSTRAINT_NAME FROM information_schema."
                                    "REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()", database=name)}
        assert fks and {r[0] for r in rows(target, "SELECT conname FROM pg_constraint WHERE contype = 'f'")} == fks
        assert not [r for r in report["renamed"] if r["kind"] == "constraint"], report["renamed"]
    finally:
        _mysql(mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def test_chinook_mysql_equals_its_postgresql_edition(mysql_admin_url, pg_db, prefect_api, tmp_path):
    """Chinook from its MySQL script, copied with --identifiers snake, holds exactly the rows of Chinook's own
    PostgreSQL script (whose names are snake_case)."""
    name = "golive_ch_" + uuid.uuid4().hex[:8]
    script = (CASES / "chinook" / "Chinook_MySql.sql").read_text(encoding="utf-8").replace("`Chinook`", f"`{name}`")
    from golive.urls import parse_url

    u = parse_url(mysql_admin_url)
    subprocess.run(["mariadb", "-h", u.host or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.user or "root"],
                   input=script, text=True, check=True, capture_output=True)
    try:
        reference = pg_db()
        ref_script = (CASES / "chinook" / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
        ref_script = "\n".join(line for line in ref_script.splitlines()
                               if not line.startswith(("\\c", "DROP DATABASE", "CREATE DATABASE")))
        with psycopg.connect(reference, autocommit=True) as conn:
            conn.execute(ref_script)
        target = pg_db()
        report = migrate(f"mysql://{u.user or 'root'}@{u.host}:{u.port or 3306}/{name}", target, identifiers="snake")
        assert report["ok"], report["errors"]
        tables = [r[0] for r in rows(reference, "SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = 'public' ORDER BY 1")]
        assert len(tables) == 11
        for t in tables:
            ref_cols = [r[0] for r in rows(reference, "SELECT column_name FROM information_schema.columns WHERE "
                                                      "table_name = %s ORDER BY ordinal_position", t)]
            # Where the two scripts themselves store different values, both sides are normalised: the
            # PostgreSQL script's N'…' literals are char(n), whose trailing spaces PostgreSQL drops on the way
            # into varchar ('Edinburgh ' arrives as 'Edinburgh'), and the MySQL script's 'Rusticana \ Act'
            # loses its backslashes to MySQL's string escapes; MySQL and golive's copy keep what MySQL holds
            cols = ", ".join(f"replace(rtrim({c}::text), E'\\\\', '')" for c in ref_cols)
            want = rows(reference, f"SELECT {cols} FROM {t} ORDER BY 1, 2")
            got = rows(target, f"SELECT {cols} FROM {t} ORDER BY 1, 2")
            assert got == want, t
    finally:
        _mysql(mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def _events_db(admin: str, name: str, n: int) -> str:
    _mysql(admin, f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}`")
    _mysql(admin, "CREATE TABLE events (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40))",
           f"INSERT INTO events SELECT seq, seq % 97, CONCAT('note ', seq) FROM seq_1_to_{n}", database=name)
    return admin.rsplit("/", 1)[0] + f"/{name}"


def test_kill_9_and_resume_then_a_changed_source_is_refused(mysql_admin_url, pg_db, golive, tmp_path):
    name = "golive_ev_" + uuid.uuid4().hex[:8]
    src = _events_db(mysql_admin_url, name, 300_000)
    target = pg_db()
    try:
        cmd = [sys.executable, "-m", "golive", "migrate", "db", "--source", src, "--target", target,
               "--chunk-rows", "20000", "--workers", "1", "--no-validate", "--report", str(tmp_path / "r.json")]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        copied = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                copied = scalar(target, "SELECT count(*) FROM _golive.chunks")
            except Exception:
                copied = 0
            if copied >= 2:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert copied >= 2 and scalar(target, "SELECT count(*) FROM events") < 300_000
        res = golive("migrate", "db", "--source", src, "--target", target, "--chunk-rows", "20000",
                     "--report", tmp_path / "r2.json", timeout=300)
        assert res.code == 0, res
        rep = json.loads((tmp_path / "r2.json").read_text())
        assert rep["resumed"] and rep["rows_written"] == 300_000 and rep["validation"]["ok"]
        assert sum(t["resumed_chunks"] for t in rep["tables"]) >= 2
        assert rows(target, "SELECT count(*), count(DISTINCT id), sum(n) FROM events") == [
            (300_000, 300_000, sum(i % 97 for i in range(1, 300_001)))]
        # interrupted again, then the source changes in a chunk already copied: resuming is refused
        execute(target, "UPDATE _golive.runs SET status = 'copying'")
        _mysql(mysql_admin_url, "UPDATE events SET note = 'changed' WHERE id = 5", database=name)
        res = golive("migrate", "db", "--source", src, "--target", target, "--chunk-rows", "20000")
        assert res.code == 2 and "changed since the interrupted run" in res.err and "chunk 0 of events" in res.err, res
    finally:
        _mysql(mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.mark.parametrize("url, words", [
    ("mysql://root:Wr0ng-Pass@127.0.0.1:3306/test", "access denied"),
    ("mysql://root@127.0.0.1:3306/golive_no_such_db", "does not exist"),
    ("mysql://root:Wr0ng-Pass@127.0.0.1:1/test", "connection refused"),
    ("mysql://root@no-such-host.invalid/test", "unknown host"),
])
def test_bad_input_is_one_line_exit_2(golive, pg_url, url, words, mysql_admin_url):
    res = golive("migrate", "db", "--source", url, "--target", pg_url)
    assert res.code == 2, res
    lines = [x for x in res.err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and words in lines[0].lower(), res
    assert "Wr0ng-Pass" not in res.all

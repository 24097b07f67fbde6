"""Every MySQL and PostgreSQL schema an app can have copies, or golive says why before it starts.

Legacy MySQL defaults (one column per form ``COLUMN_DEFAULT`` shows) into PostgreSQL and into MariaDB: the run
succeeds, each default is decided with its reason, and an INSERT that relies on every default gives the same
values on both sides. A PostgreSQL database whose public objects read a second schema: every schema is copied by
default; a narrowed set is refused in the plan, naming the object and the fix. PostgreSQL enums, domains and
identity columns that lead no key, into MariaDB. SQLite's refusals as the user's choice.
"""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest

from conftest import CASES, _with_db
from fixtures import fidelity
from helpers import migrate, rows

#: a text of each column's value both engines print alike (booleans as 0/1, bit strings as 0s and 1s, sets as
#: their members joined by commas)
MY_TEXT = {"flag": "BIN(`flag` + 0)", "bits": "LPAD(BIN(`bits` + 0), 8, '0')", "tiny": "CAST(`tiny` AS CHAR)"}
PG_TEXT = {"flag": "CASE WHEN flag THEN '1' ELSE '0' END", "tiny": "CASE WHEN tiny THEN '1' ELSE '0' END",
           "perms": "array_to_string(perms, ',')", "perms2": "array_to_string(perms2, ',')",
           "perms0": "array_to_string(perms0, ',')"}


@pytest.fixture
def legacy(mysql_admin_url):
    url, name = fidelity.mysql_legacy(mysql_admin_url)
    yield url
    fidelity.drop_mysql(mysql_admin_url, name)


@pytest.fixture
def pg_db(pg_admin_url):
    made = []

    def make() -> str:
        name = "golive_f_" + uuid.uuid4().hex[:10]
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _with_db(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def my_db(mysql_admin_url):
    made = []

    def make() -> str:
        name = "golive_f_" + uuid.uuid4().hex[:8]
        conn = fidelity.mysql_admin(mysql_admin_url)
        conn.cursor().execute(f"CREATE DATABASE `{name}`")
        conn.close()
        made.append(name)
        return mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"

    yield make
    for name in made:
        fidelity.drop_mysql(mysql_admin_url, name)


def my_rows(url: str, sql: str, *args) -> list[tuple]:
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    conn = pymysql.connect(**connect_kwargs(parse_url(url)), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


def _my_defaults_row(url: str) -> dict:
    """Insert a row that leaves every column but ``nn_null`` to its default; return its values as text."""
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    conn = pymysql.connect(**connect_kwargs(parse_url(url)), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # as the legacy app ran
            cur.execute("INSERT INTO legacy (nn_null) VALUES ('defaults')")
            cols = [c for c, _, _ in fidelity.MYSQL_DEFAULTS]
            cur.execute("SELECT " + ", ".join(MY_TEXT.get(c, f"CAST(`{c}` AS CHAR)") for c in cols)
                        + " FROM legacy WHERE nn_null = 'defaults'")
            return dict(zip(cols, cur.fetchone()))
    finally:
        conn.close()


def _pg_defaults_row(url: str) -> dict:
    cols = [c for c, _, _ in fidelity.MYSQL_DEFAULTS]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO legacy (nn_null) VALUES ('defaults')")
        got = conn.execute("SELECT " + ", ".join(PG_TEXT.get(c, f"{c}::text") for c in cols)
                           + " FROM legacy WHERE nn_null = 'defaults'").fetchone()
    return dict(zip(cols, got))


def _check_defaults(source: dict, target: dict, *, zero_in_target) -> None:
    """Each default gives the same value on both sides (by its kind)."""
    for col, _, kind in fidelity.MYSQL_DEFAULTS:
        s, t = source[col], target[col]
        if kind == "moment":
            assert t is not None and s is not None, col
        elif kind == "uuid":
            assert len(t) == 36 and len(s) == 36 and t != s, col  # a new one on each side
        elif kind == "zero":
            assert s.startswith(("0000-00-00", "2000-00-00")) and t == zero_in_target(s), (col, s, t)
        elif col in ("price", "ratio"):
            assert float(s) == float(t), (col, s, t)
        else:
            assert s == t, (col, s, t)


def test_legacy_mysql_defaults_into_postgresql(legacy, pg_db, prefect_api, tmp_path):
    target = pg_db()
    report = migrate(legacy, target, report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    (table,) = report["tables"]
    assert table["rows_read"] == table["rows_written"] == 3 and not table["rows_rejected"]
    defaults = dict(rows(target, "SELECT column_name, column_default FROM information_schema.columns "
                                 "WHERE table_name = 'legacy'"))
    for col, _, kind in fidelity.MYSQL_DEFAULTS:
        assert (defaults[col] is None) == (kind in ("zero", "none")), (col, defaults[col])
    nullable = dict(rows(target, "SELECT column_name, is_nullable FROM information_schema.columns "
                                 "WHERE table_name = 'legacy'"))
    assert nullable["created"] == nullable["born"] == "YES"  # a zero date is NULL here (--zero-dates null)
    _check_defaults(_my_defaults_row(legacy), _pg_defaults_row(target), zero_in_target=lambda s: None)
    assert any("default '0000-00-00' is a zero date" in w for w in report["warnings"]), report["warnings"]


def test_legacy_mysql_defaults_into_mariadb_are_the_same(legacy, my_db, prefect_api, tmp_path):
    target = my_db()
    report = migrate(legacy, target, report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    sql = ("SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
           "DATABASE() AND TABLE_NAME = 'legacy' ORDER BY ORDINAL_POSITION")
    assert my_rows(target, sql) == my_rows(legacy, sql)  # every default, as the source has it
    _check_defaults(_my_defaults_row(legacy), _my_defaults_row(target), zero_in_target=lambda s: s)


def test_a_zero_date_default_follows_zero_dates(legacy, pg_db, prefect_api, tmp_path):
    target = pg_db()
    report = migrate(legacy, target, zero_dates="epoch")
    assert report["ok"], report["errors"]
    defaults = dict(rows(target, "SELECT column_name, column_default FROM information_schema.columns "
                                 "WHERE table_name = 'legacy'"))
    assert defaults["born"].startswith("'1970-01-01'") and defaults["created"].startswith("'1970-01-01 00:00:00'")
    assert rows(target, "SELECT count(*) FROM legacy WHERE born = '1970-01-01'") == [(2,)]
    other = pg_db()
    report = migrate(legacy, other, zero_dates="reject", max_rejects=10)
    assert any("dropped (--zero-dates reject)" in w for w in report["warnings"]), report["warnings"]
    assert rows(other, "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'legacy' "
                       "AND column_name = 'born'") == [("NO",)]


def test_the_dry_run_shows_each_default_and_why(legacy, pg_url, golive):
    res = golive("migrate", "db", "--source", legacy, "--target", pg_url, "--dry-run")
    assert res.code == 0, res.all
    out = res.out
    assert "default '0000-00-00' -> none" in out and "zero date" in out
    assert "default 'read,write' -> ARRAY['read', 'write']::text[]" in out
    assert "default b'1' -> true" in out and "default uuid() -> (gen_random_uuid())::text  (a new UUID)" in out
    assert "default current_timestamp() -> CURRENT_TIMESTAMP  (the current moment)" in out


# ---------------------------------------------------------------------- PostgreSQL: schemas, enums, domains


@pytest.fixture
def pg_source(pg_db):
    url = pg_db()
    fidelity.pg_schemas(url)
    return url


def test_every_schema_is_copied_by_default(pg_source, pg_db, prefect_api, tmp_path):
    target = pg_db()
    report = migrate(pg_source, target)
    assert report["ok"], report["errors"]
    assert rows(target, "SELECT count(*) FROM billing.invoices") == [(2,)]
    assert rows(target, "SELECT sum(total) FROM public.invoice_totals") == [(210,)]
    assert rows(target, "SELECT count(*) FROM public.big_invoices") == [(1,)]
    with psycopg.connect(target, autocommit=True) as conn:  # the sequence of another schema still serves public
        conn.execute("INSERT INTO billing.invoices (total) VALUES (5)")
        assert conn.execute("SELECT no FROM billing.invoices WHERE total = 5").fetchone()[0] >= 1000
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO public.people (name, invoice_id) VALUES ('x', 999)")


def test_a_narrowed_schema_set_that_reads_another_is_refused_in_the_plan(pg_source, pg_url, golive):
    res = golive("migrate", "db", "--source", pg_source, "--target", pg_url, "--source-schema", "public", "--dry-run")
    assert res.code == 2, res.all
    line = [x for x in res.err.splitlines() if x.startswith("error:")]
    assert len(line) == 1, res.err
    assert "view public.invoice_totals reads billing.invoices" in line[0]
    assert "--source-schema public,billing" in line[0] and "--exclude" in line[0]
    assert rows(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_enums_domains_and_identities_into_mariadb(pg_source, my_db, prefect_api, tmp_path):
    target = my_db()
    report = migrate(pg_source, target, report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    types = dict(my_rows(target, "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
                                 "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'people'"))
    assert types["feeling"] == "enum('sad','ok','happy')"  # the labels, in order
    checks = {r[0] for r in my_rows(target, "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                                            "WHERE CONSTRAINT_SCHEMA = DATABASE()")}
    assert any("`qty` > 0" in c for c in checks), checks  # the domain's CHECK, on the column
    assert any("identity column does not lead the primary key" in w for w in report["warnings"])
    keys = my_rows(target, "SHOW INDEX FROM events")
    assert any(r[4] == "seq" and r[3] == 1 for r in keys), keys  # a key MySQL's AUTO_INCREMENT can lead
    # an INSERT relying on the defaults gives the same values on both sides
    my_rows(target, "INSERT INTO people (name) VALUES ('new')")
    with psycopg.connect(pg_source, autocommit=True) as conn:
        conn.execute("INSERT INTO people (name) VALUES ('new')")
        want = conn.execute("SELECT feeling::text, feeling2::text, qty FROM people WHERE name = 'new'").fetchone()
    assert my_rows(target, "SELECT feeling, feeling2, qty FROM people WHERE name = 'new'") == [tuple(want)]
    import pymysql

    with pytest.raises(pymysql.err.MySQLError, match="CONSTRAINT"):
        my_rows(target, "INSERT INTO people (name, qty) VALUES ('bad', 0)")  # the domain's CHECK holds


def test_chinook_postgresql_script_into_mariadb(pg_db, my_db, prefect_api, tmp_path):
    source = pg_db()
    script = (CASES / "chinook" / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    script = "\n".join(line for line in script.splitlines()
                       if not line.startswith(("\\c", "DROP DATABASE", "CREATE DATABASE")))
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(script)
    target = my_db()
    report = migrate(source, target)
    assert report["ok"], report["errors"]
    counts = {t["source"]: t["rows_written"] for t in report["tables"]}
    assert counts["invoice_line"] == 2240 and counts["track"] == 3503 and sum(counts.values()) == 15607


# ---------------------------------------------------------------------- SQLite: the user's choice


@pytest.fixture
def odd_sqlite(tmp_path):
    path = tmp_path / "odd.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT)")
    db.execute("INSERT INTO t VALUES (1, 5, 'ok'), (2, 'abc', CAST(x'e9746521' AS TEXT)), (3, NULL, 'fine')")
    db.commit()
    db.close()
    return path


def test_sqlite_refusals_become_choices(odd_sqlite, pg_db, prefect_api):
    strict = migrate(odd_sqlite, pg_db(), max_rejects=5)
    assert [t["rows_rejected"] for t in strict["tables"]] == [1]  # the default stays strict
    target = pg_db()
    chose = migrate(odd_sqlite, target, invalid_text="bytes", type_mismatch="widen")
    assert chose["ok"] and chose["tables"][0]["rows_rejected"] == 0, chose["errors"]
    assert rows(target, "SELECT n, s FROM t ORDER BY id") == [("5", b"ok"), ("abc", b"\xe9te!"), (None, b"fine")]
    target = pg_db()
    decoded = migrate(odd_sqlite, target, invalid_text="cp1252", type_mismatch="widen")
    assert decoded["ok"], decoded["errors"]
    assert rows(target, "SELECT s FROM t WHERE id = 2") == [("éte!",)]

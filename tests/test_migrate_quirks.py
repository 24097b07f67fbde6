"""End to end on a database with one of every quirk (tests/fixtures/quirks.py), against the real PostgreSQL."""

from __future__ import annotations

import json
import math

import pytest

from fixtures import quirks
from helpers import column_types, migrate, rows, scalar


@pytest.fixture(scope="module")
def quirky(tmp_path_factory, pg_admin_url, prefect_api):
    """The quirks database migrated once into a fresh PostgreSQL database; yields (report, url, tmpdir)."""
    import uuid

    import psycopg

    tmp = tmp_path_factory.mktemp("quirks")
    src = quirks.build(tmp / "quirks.db")
    name = "golive_q_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from conftest import _with_db

    url = _with_db(pg_admin_url, name)
    report = migrate(src, url, report=str(tmp / "report.json"))
    yield report, url, tmp
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_row_is_written_or_rejected(quirky):
    report, url, tmp = quirky
    for t in report["tables"]:
        assert t["rows_read"] == t["rows_written"] + t["rows_rejected"], t
        target_rows = scalar(url, f'SELECT count(*) FROM "{t["target"]}"')
        assert target_rows == t["rows_written"], t
    # only chunks the target refused were redone row by row: clean tables took the fast path
    assert {t["source"] for t in report["tables"] if t["careful_chunks"]} == {"bad"}
    # rejected rows make the run fail unless allowed
    assert report["ok"] is False and report["exit_code"] == 1
    assert report["rows_rejected"] == len(quirks.EXPECTED_REJECTS)


def test_rejects_name_key_column_value_and_reason(quirky):
    report, url, tmp = quirky
    lines = [json.loads(x) for x in open(report["rejects"], encoding="utf-8")]
    by_id = {r["key"]["id"]: r for r in lines}
    assert set(by_id) == set(quirks.EXPECTED_REJECTS)
    for rid, (column, words) in quirks.EXPECTED_REJECTS.items():
        r = by_id[rid]
        assert r["table"] == "bad" and r["column"] == column
        assert words.lower() in r["reason"].lower(), r
        assert r["value"] is not None
    assert by_id[3]["value"] == "a\\x00b"  # NUL shown escaped, never dropped
    assert by_id[4]["value"] == "x'61ff62'"  # invalid UTF-8 shown as hex
    # clean rows of the same chunk arrived, converted faithfully
    got = rows(url, "SELECT id, n, t, b, r::text FROM bad ORDER BY id")
    assert got == [(1, 1, "clean", True, "1.5"), (9, 9, 'he said "hi",\nthen left', False, "NaN"),
                   (10, 2**62, "big", True, "0")]


def test_names_kept_as_the_orm_made_them(quirky):
    report, url, tmp = quirky
    tables = {r[0] for r in rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"User", "order", "types", "kv", "tree"} <= tables
    assert set(column_types(url, "order")) >= {"id", "user", "select", "total", "placed"}
    assert column_types(url, "User")["createdAt"] == "timestamp with time zone"
    # names over 63 bytes: shortened deterministically, reported, no collisions
    renamed = {r["source"]: r["target"] for r in report["renamed"]}
    long_t = renamed[quirks.LONG_TABLE]
    assert len(long_t.encode()) <= 63 and long_t in tables
    c1, c2 = renamed[quirks.LONG_COL_1], renamed[quirks.LONG_COL_2]
    assert c1 != c2 and set(column_types(url, long_t)) == {c1, c2}


def test_types_from_declared_type_and_values(quirky):
    report, url, tmp = quirky
    t = column_types(url, "types")
    assert t == {
        "id": "bigint", "a_int11": "integer", "b_nvarchar": "character varying(120)", "c_double": "double precision",
        "d_short": "smallint", "e_autoinc": "integer", "f_nocase": "text", "g_untyped": "text", "h_blob": "bytea",
        "i_date": "date", "j_date_time": "timestamp with time zone",  # a DATE holding times of day widens
        "k_varchar5": "text",  # VARCHAR(5) holding 7 characters widens
        "l_dec": "numeric",  # DECIMAL(5,2) holding 1.005 widens
        "m_bool": "boolean", "n_big": "bigint", "o_epoch_s": "timestamp with time zone",
        "p_ts": "timestamp with time zone", "q_real": "double precision", "r_uuid": "uuid", "s_bool": "boolean",
    }
    assert column_types(url, "order")["total"] == "numeric(10,2)"
    got = rows(url, "SELECT a_int11, b_nvarchar, c_double, h_blob, i_date::text, j_date_time, k_varchar5, "
                    "l_dec::text, m_bool, n_big, o_epoch_s, p_ts, q_real, r_uuid::text, s_bool FROM types ORDER BY id")
    r1, r2, r3 = got
    assert r1[0] == 11 and r1[1] == "Zoë 🙂" and r1[2] == 1.5 and bytes(r1[3]) == b"\x00\xff"
    assert r1[4] == "2024-02-29" and r1[6] == "abc" and r1[7] == "1.25" and r1[8] is True and r1[9] == 3_000_000_000
    assert r1[10].isoformat() == "2024-01-02T03:04:05+00:00"  # epoch seconds
    assert r2[2] == -2.5e300 and r2[5].isoformat() == "2024-01-01T10:00:00+00:00" and r2[6] == "toolong"
    assert r2[7] == "1.005" and r2[10].isoformat() == "2024-01-02T03:04:05.123000+00:00"  # epoch ms
    assert r2[11].isoformat() == "2024-01-02T03:04:05.500000+00:00" and math.isinf(r2[12])
    assert bytes(r2[3]) == b"as text" and r1[13] == r2[13] == "123e4567-e89b-12d3-a456-426614174000"
    assert r3[14] is True and all(v is None for v in r3[:14])  # NULLs stay NULL; default applied only by the app


def test_timestamps_in_every_format_mean_the_same_instant(quirky):
    report, url, tmp = quirky
    placed = dict(rows(url, 'SELECT id, placed FROM "order" ORDER BY id'))
    same = {placed[i].isoformat() for i in (1, 2, 3, 5)}
    assert same == {"2024-01-02T03:04:05+00:00"}
    assert placed[4].isoformat() == "2024-01-02T03:04:05.123000+00:00" and placed[6] is None
    created = dict(rows(url, 'SELECT id, "createdAt" FROM "User"'))
    assert created["ck1"].isoformat() == "2023-11-14T22:13:20.123000+00:00"  # Prisma's epoch ms


def test_text_survives_quotes_newlines_and_null_lookalikes(quirky):
    report, url, tmp = quirky
    notes = dict(rows(url, 'SELECT id, note FROM "order"'))
    assert notes[1] == 'first, "quoted"\nline two' and notes[2] is None and notes[3] == "" and notes[6] == "NULL"


def test_keys_indexes_identity_and_defaults(quirky):
    report, url, tmp = quirky
    cons = {r[0]: r[1] for r in rows(url, "SELECT conname, contype FROM pg_constraint c JOIN pg_namespace n "
                                          "ON n.oid = c.connamespace WHERE n.nspname = 'public'")}
    assert cons["order_pkey"] == "p" and cons["parent2_pkey"] == "p" and cons["kv_pkey"] == "p"
    assert cons["order_user_fkey"] == "f" and cons["tree_parent_id_fkey"] == "f" and cons["child2_pa_pb_fkey"] == "f"
    fk = scalar(url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'order_user_fkey'")
    assert "ON DELETE CASCADE" in fk and "ON UPDATE CASCADE" in fk
    fk2 = scalar(url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'child2_pa_pb_fkey'")
    assert fk2 == 'FOREIGN KEY (pa, pb) REFERENCES parent2(a, b) ON DELETE SET NULL'
    idx = {r[0]: r[1] for r in rows(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    assert "UNIQUE" in idx["User_email_key"] and "lower(email)" in idx["user_email_lower"]
    assert "DESC" in idx["order_placed_desc"] and "WHERE (status = 'paid'::text)" in idx["order_paid"]
    # identity above max(id) and above the AUTOINCREMENT high-water mark (a deleted row had id 7)
    assert scalar(url, 'INSERT INTO "order" ("user", total) VALUES (\'ck1\', 1) RETURNING id') == 8
    assert scalar(url, "INSERT INTO tree (name) VALUES ('new') RETURNING id") == 4
    d = dict(rows(url, "SELECT column_name, column_default FROM information_schema.columns WHERE table_name = 'order'"))
    assert d["note"] == "'it''s new'::text" and d["status"] == "'draft'::text" and d["created"] == "CURRENT_TIMESTAMP"
    assert dict(rows(url, "SELECT column_name, column_default FROM information_schema.columns "
                          "WHERE table_name = 'User'"))["isAdmin"] == "false"
    with pytest.raises(Exception):  # the unique index works
        rows(url, 'INSERT INTO "User" (id, email) VALUES (\'x\', \'Ann@example.com\')')


def test_missing_parents_orphans_views_triggers_checks_reported(quirky):
    report, url, tmp = quirky
    skipped = {(s["kind"], s["name"]): s["reason"] for s in report["skipped"]}
    assert "ghost" in skipped[("foreign key", "orphaned(ghost_id) -> ghost")]
    assert ("trigger", "order_touch") in skipped
    assert "group_concat" in skipped[("view", "email_list")]
    assert scalar(url, "SELECT count(*) FROM paid_orders") == 2  # a view that runs on PostgreSQL is created
    warnings = "\n".join(report["warnings"])
    assert "CHECK (status IN" in warnings
    assert "orphan_child_tree_id_fkey: 1 rows" in warnings  # orphans keep the key NOT VALID, reported
    assert scalar(url, "SELECT convalidated FROM pg_constraint WHERE conname = 'orphan_child_tree_id_fkey'") is False
    assert scalar(url, "SELECT count(*) FROM orphan_child") == 2


def test_column_named_rowid(quirky):
    report, url, tmp = quirky
    assert rows(url, "SELECT rowid, oid, name FROM legacy ORDER BY oid DESC LIMIT 2") == [("r-0", 100, "n0"),
                                                                                      ("r-1", 99, "n1")]
    assert rows(url, "SELECT count(*) FROM legacy") == [(50,)]


def test_integral_real_in_integer_column_is_converted(quirky):
    report, url, tmp = quirky
    assert rows(url, "SELECT id, n FROM ints_real ORDER BY id") == [(1, 1), (2, 3), (3, None)]
    t = next(t for t in report["tables"] if t["source"] == "ints_real")
    assert t["rows_rejected"] == 0


def test_rerun_without_drop_existing_is_refused(quirky, golive):
    report, url, tmp = quirky
    res = golive("migrate", "db", "--source", tmp / "quirks.db", "--target", url)
    assert res.code == 2, res
    assert "already" in res.err and "--drop-existing" in res.err
    assert len(res.err.strip().splitlines()) == 1, res.err

"""The SQLite copy's last fidelity gaps (issue 9): numbers widen within numbers, defaults as SQLite reads them,
foreign keys left by an interrupted table rebuild, text in a legacy encoding, NULL keys filled from the rowid."""

from __future__ import annotations

import json
import sqlite3

import pytest

from golive.migrate.defaults import translate_default
from golive.model.types import CT, TargetType
from helpers import column_types, migrate, rows, scalar


def _db(path, *stmts, params=()):
    db = sqlite3.connect(path)
    for s in stmts:
        db.execute(s)
    for sql, args in params:
        db.execute(sql, args)
    db.commit()
    db.close()
    return str(path)


def test_integer_column_holding_fractions_becomes_numeric(tmp_path, pg_url, prefect_api):
    src = _db(tmp_path / "a.db", "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount integer, qty INT)",
              "INSERT INTO orders VALUES (1, 2.99, 1), (2, 10, 2), (3, 0.5, 3), (4, NULL, 'x')")
    rep = migrate(src, pg_url, max_rejects=1)
    assert column_types(pg_url, "orders")["amount"] == "numeric"
    assert rows(pg_url, "SELECT id, amount::text FROM orders ORDER BY id") == [(1, "2.99"), (2, "10"), (3, "0.5")]
    assert any(w.startswith("orders.amount:") and "2 REAL values with a fraction" in w and "numeric" in w
               for w in rep["warnings"]), rep["warnings"]
    # text in a number column stays a reject (a kind mismatch)
    (r,) = [json.loads(x) for x in open(rep["rejects"], encoding="utf-8")]
    assert r["key"] == {"id": 4} and r["column"] == "qty"
    assert rep["validation"]["ok"], rep["validation"]["failures"]


@pytest.mark.parametrize("raw, ct, sql, note", [
    ('""', CT.TEXT, "''", None),
    ('"draft"', CT.TEXT, "'draft'", None),
    ("0", CT.TIMESTAMP_TZ, "'1970-01-01 00:00:00'", "epoch"),
    ("1700000000", CT.TIMESTAMP_TZ, "'2023-11-14 22:13:20'", "epoch"),
    ("0", CT.DATE, "'1970-01-01'", "epoch"),
    ("'\"0\"'", CT.INTEGER, None, 'the text "0" with its quotes'),
])
def test_defaults_as_sqlite_reads_them(raw, ct, sql, note):
    got, why = translate_default(raw, TargetType(ct=ct))
    assert got == sql
    assert (why is None) if note is None else (note in why), why


def test_defaults_on_a_real_table(tmp_path, pg_url, prefect_api):
    src = _db(tmp_path / "d.db", 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT DEFAULT "", seen DATETIME DEFAULT 0, '
                                 "n INTEGER DEFAULT '\"0\"')", "INSERT INTO t (id, n) VALUES (1, 5)")
    rep = migrate(src, pg_url)
    assert rep["ok"], rep["errors"]
    d = dict(rows(pg_url, "SELECT column_name, column_default FROM information_schema.columns WHERE table_name = 't'"))
    assert d["name"] == "''::text" and d["seen"].startswith("'1970-01-01 00:00:00+00'") and d["n"] is None
    assert any("t.n:" in w and "with its quotes" in w for w in rep["warnings"])
    assert scalar(pg_url, "INSERT INTO t (id) VALUES (2) RETURNING seen = 'epoch'::timestamptz")


def test_foreign_key_to_an_old_rebuild_table_says_what_it_meant(tmp_path, pg_url, prefect_api):
    src = _db(tmp_path / "f.db", "CREATE TABLE auth_permission (id INTEGER PRIMARY KEY, name TEXT)",
              'CREATE TABLE auth_group_permissions (id INTEGER PRIMARY KEY, permission_id INTEGER '
              'REFERENCES "auth_permission__old" (id))',
              "INSERT INTO auth_permission VALUES (1, 'can add')", "INSERT INTO auth_group_permissions VALUES (1, 1)")
    rep = migrate(src, pg_url)
    (skip,) = [s for s in rep["skipped"] if s["kind"] == "foreign key"]
    assert "auth_permission__old" in skip["reason"] and "almost certainly meant 'auth_permission'" in skip["reason"]
    assert 'ALTER TABLE "auth_group_permissions" ADD FOREIGN KEY ("permission_id") REFERENCES "auth_permission" ("id")' \
        in skip["reason"]
    assert any("almost certainly meant" in w for w in rep["warnings"])


def test_invalid_utf8_rejected_or_decoded_from_a_legacy_encoding(tmp_path, pg_admin_url, pg_url, prefect_api):
    src = _db(tmp_path / "e.db", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
              params=[("INSERT INTO notes VALUES (1, ?)", ("plain",)),
                      ("INSERT INTO notes VALUES (2, CAST(? AS TEXT))", (b"caf\xe9",)),
                      ("INSERT INTO notes VALUES (3, CAST(? AS TEXT))", (b"\x93quoted\x94",))])
    rep = migrate(src, pg_url, report=str(tmp_path / "r1.json"))
    assert rep["rows_rejected"] == 2 and {r["reason"] for r in rep["reject_summary"]} == {"text is not valid UTF-8"}
    rep = migrate(src, pg_url, drop_existing=True, text_encoding_fallback="cp1252", report=str(tmp_path / "r2.json"))
    assert rep["ok"] and rep["rows_rejected"] == 0, rep["errors"]
    assert rows(pg_url, "SELECT body FROM notes ORDER BY id") == [("plain",), ("café",), ("\u201cquoted\u201d",)]
    assert rep["converted"] == [{"table": "notes", "what": "body: decoded from cp1252", "count": 2}]
    assert rep["validation"]["ok"], rep["validation"]["failures"]


def test_null_primary_keys_rejected_or_filled_from_the_rowid(tmp_path, pg_url, prefect_api):
    src = _db(tmp_path / "k.db", "CREATE TABLE items (id integer auto_increment primary key, name TEXT)",
              "INSERT INTO items (rowid, id, name) VALUES (1, 1, 'a'), (2, NULL, 'b'), (3, 3, 'c'), (4, NULL, 'd')")
    rep = migrate(src, pg_url, report=str(tmp_path / "r1.json"))
    assert rep["rows_rejected"] == 2 and any("NULL values in the primary key" in w for w in rep["warnings"])
    rep = migrate(src, pg_url, drop_existing=True, null_keys="rowid", report=str(tmp_path / "r2.json"))
    assert rep["ok"], rep["errors"]
    assert rows(pg_url, "SELECT id, name FROM items ORDER BY id") == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    assert any("2 NULL values of the primary key filled from the rowid" in w for w in rep["warnings"])
    assert rep["validation"]["ok"], rep["validation"]["failures"]

"""Content comparison of every key kind, against the real PostgreSQL, without Prefect.

The copies are made with golive's own engine (plan, prepare, copy each chunk, keys, foreign keys), then
the target is changed behind golive's back and the comparison must name the table and the key.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from golive.migrate import copy as copying, planning, target as tgt
from golive.config import MigrateOptions
from golive.urls import parse_url
from golive.validation import check_range, prepare
from golive.validation.options import ValidateOptions

SCHEMA = """
CREATE TABLE parent (a INTEGER NOT NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (a, b));
CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n REAL) WITHOUT ROWID;
CREATE TABLE log (at DATETIME, msg TEXT, meta JSON);
CREATE TABLE big (id INTEGER PRIMARY KEY, parent_a INTEGER, label TEXT, score REAL, at DATETIME,
                  FOREIGN KEY (parent_a, label) REFERENCES parent (a, b));
"""


def build(path, big_rows=30_000):
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO parent VALUES (?, ?, ?)", [(i % 7, f"b{i}", f"v{i}") for i in range(60)])
    db.executemany("INSERT INTO kv VALUES (?, ?, ?)", [(f"key-{i:03d}-é", f"value {i}", i / 3) for i in range(80)]
                   + [("Z", "upper", None), ("a", "lower", 1.0)])
    db.executemany("INSERT INTO log VALUES (?, ?, ?)",
                   [(f"2024-01-{1 + i % 28:02d} 10:00:00", "same" if i % 10 == 0 else f"msg {i}",
                     '{"level": "info", "n": %d}' % i) for i in range(50)] + [(None, None, None)] * 2)
    db.executemany("INSERT INTO big VALUES (?, ?, ?, ?, ?)",
                   [(i, i % 7 if i % 5 else None, f"b{i % 60}", i * 0.25, f"2024-02-{1 + i % 28:02d}T0{i % 10}:00:00Z")
                    for i in range(1, big_rows + 1)])
    db.execute("INSERT INTO big VALUES (900000, NULL, 'bad', 'not a number', '2024-01-01')")  # rejected
    db.commit()
    db.close()
    return path


def copy(src, pg_url, **options):
    """Copy with golive's engine (what the migration flow's tasks call), chunks of ``chunk_rows``."""
    s, d = parse_url(str(src)), parse_url(pg_url)
    opts = MigrateOptions(**options)
    plan = planning.build_plan(s, d, opts)
    tgt.prepare(d, plan, opts)
    for tp in plan.tables:
        for ch in tp.chunks:
            copying.copy_chunk(s, d, plan.context(), tp, ch)
        tgt.finish_table(d, plan.target_schema, tp)
    for tp in plan.tables:
        if tp.foreign_keys:
            tgt.link_table(d, plan.target_schema, tp.target, tp.foreign_keys)
    return plan


@pytest.fixture
def copied(tmp_path, pg_url):
    src = build(tmp_path / "src.db")
    plan = copy(src, pg_url, chunk_rows=8_000)
    return src, pg_url, plan


def compare(src, pg_url, tables=None, chunk_rows=8_000):
    s, d = parse_url(str(src)), parse_url(pg_url)
    setup = prepare.prepare(s, d, ValidateOptions(tables=tables, chunk_rows=chunk_rows, output_dir=str(src) + ".out",
                                                  expectations_dir=str(src) + ".exp"))
    checks = [check_range(s, d, spec, i) for spec in setup.specs for i in range(max(1, len(spec.ranges)))]
    return setup, checks


def diffs(checks, table=None):
    return [(d.table, d.kind, d.key, d.column) for c in checks for d in c.differences if table in (None, d.table)]


def sql(url, *stmts):
    with psycopg.connect(url, autocommit=True) as conn:
        for s in stmts:
            conn.execute(s)


def test_every_key_kind_compares_equal(copied):
    src, url, plan = copied
    setup, checks = compare(src, url)
    kinds = {s.source: s.kind for s in setup.specs}
    assert kinds == {"parent": "intkey", "kv": "sorted", "log": "bag", "big": "rowid"}
    assert setup.rejected_rows == {"big": 1}  # the rejected row is expected to be missing
    assert diffs(checks) == []
    assert sum(c.source_rows for c in checks) == 60 + 82 + 52 + 30_000
    assert all(c.narrowed == 0 for c in checks)
    assert len([c for c in checks if c.table == "big"]) == len(plan.table("big").chunks) >= 4


def test_changed_value_is_narrowed_to_its_key(copied):
    src, url, _ = copied
    sql(url, "UPDATE big SET score = score + 0.5 WHERE id = 12345", "UPDATE parent SET v = 'x' WHERE a = 3 AND b = 'b10'",
        "UPDATE kv SET n = 0 WHERE k = 'key-007-é'")
    _, checks = compare(src, url)
    assert sorted(diffs(checks)) == [("big", "value", {"id": 12345}, "score"),
                                     ("kv", "value", {"k": "key-007-é"}, "n"),
                                     ("parent", "value", {"a": 3, "b": "b10"}, "v")]
    assert max(c.narrowed for c in checks if c.table == "big") >= 3  # bisection, not a row-by-row scan


def test_deleted_and_extra_rows(copied):
    src, url, _ = copied
    sql(url, "DELETE FROM big WHERE id = 20000", "INSERT INTO big (id, label) VALUES (999999, 'new')",
        "DELETE FROM kv WHERE k = 'Z'", "INSERT INTO parent VALUES (99, 'zz', NULL)")
    _, checks = compare(src, url)
    assert sorted(diffs(checks)) == [("big", "extra", {"id": 999999}, None), ("big", "missing", {"id": 20000}, None),
                                     ("kv", "missing", {"k": "Z"}, None),
                                     ("parent", "extra", {"a": 99, "b": "zz"}, None)]


def test_table_without_key_compared_as_multiset(copied):
    src, url, _ = copied
    sql(url, "UPDATE log SET msg = 'changed' WHERE ctid = (SELECT ctid FROM log WHERE msg = 'msg 7')")
    _, checks = compare(src, url, tables=["log"])
    got = [d for c in checks for d in c.differences]
    assert sorted(d.kind for d in got) == ["extra", "missing"]
    missing = next(d for d in got if d.kind == "missing")
    assert missing.key == {"rowid": 8} and "msg 7" in missing.detail
    assert "log: content: row rowid=8 is in the source but missing from the target" == missing.message()


def test_json_compared_as_postgresql_normalises_it(copied):
    src, url, _ = copied
    # jsonb reorders keys and spaces: equal. A changed number is not.
    sql(url, """UPDATE log SET meta = '{"n": 3, "level": "info"}' WHERE meta->>'n' = '3'""")
    _, checks = compare(src, url, tables=["log"])
    assert diffs(checks) == []
    sql(url, """UPDATE log SET meta = '{"n": 33, "level": "info"}' WHERE meta->>'n' = '3'""")
    _, checks = compare(src, url, tables=["log"])
    assert sorted(k for _, k, _, _ in diffs(checks)) == ["extra", "missing"]


def test_a_source_changed_after_the_copy_is_reported(copied):
    src, url, _ = copied
    db = sqlite3.connect(src)
    db.execute("UPDATE big SET label = 'later' WHERE id = 3")
    db.execute("INSERT INTO big (id, label) VALUES (5000000, 'beyond the planned ranges')")
    db.commit()
    db.close()
    _, checks = compare(src, url, tables=["big"])
    assert sorted(diffs(checks)) == [("big", "missing", {"id": 5000000}, None), ("big", "value", {"id": 3}, "label")]


def test_target_without_golive_records_is_planned_from_the_source(copied):
    """A target golive did not record (its _golive schema dropped): the source is planned afresh."""
    src, url, _ = copied
    sql(url, "DROP SCHEMA _golive CASCADE")
    setup, checks = compare(src, url, tables=["kv", "parent"])
    assert setup.run_key is None and setup.rejected_rows == {}
    assert diffs(checks) == []


def test_other_schema_and_gx_suites_in_process(tmp_path, pg_url):
    """Tables in a non-public schema; the suites run in this process too (``in_process=True``)."""
    from golive.validation import run_expectations

    src = build(tmp_path / "src.db", big_rows=500)
    copy(src, pg_url, target_schema="app")
    s, d = parse_url(str(src)), parse_url(pg_url)
    setup = prepare.prepare(s, d, ValidateOptions(target_schema="app", output_dir=str(tmp_path / "out"),
                                                  expectations_dir=str(tmp_path / "exp")))
    assert all(spec.schema_name == "app" for spec in setup.specs)
    checks = [check_range(s, d, spec, i) for spec in setup.specs for i in range(max(1, len(spec.ranges)))]
    assert diffs(checks) == []
    out = run_expectations(d, setup, data_docs=False, in_process=True)
    assert out["outcomes"] and all(o.success for o in out["outcomes"]), [o for o in out["outcomes"] if not o.success]
    assert len(list((tmp_path / "exp").glob("src-*/app.big.json"))) == 1

"""Every engine's checksums are a side of the same contract, and a MySQL target is a side like any other.

The comparer builds its queries from what each side says (``golive.dialects.base.Checksums.Side``); these tests
check that each registered dialect declares every piece it needs, and that a MySQL target answers the same
questions a PostgreSQL one does, down to the multiset comparison of a table without a key holding JSON.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid

import pymysql
import pytest

from golive.dialects import all_dialects
from golive.dialects.base import Checksums

#: what a side must say itself (the contract has no default for these)
SIDE_METHODS = ("quote", "keytext", "canonical", "rendered", "rowtext", "order", "range_key", "checksum", "run")


@pytest.mark.parametrize("dialect", [d for d in all_dialects() if d.supports("checksums")], ids=lambda d: d.name)
def test_every_dialect_declares_a_whole_side(dialect):
    checksums = dialect.checksums
    assert isinstance(checksums, Checksums)
    assert type(checksums).side is not Checksums.side
    module = sys.modules[type(checksums).__module__]
    (klass,) = [c for c in vars(module).values()
                if isinstance(c, type) and issubclass(c, Checksums.Side) and c is not Checksums.Side]
    missing = [m for m in SIDE_METHODS if getattr(klass, m) is getattr(Checksums.Side, m)]
    assert not missing, f"{dialect.name}: its side does not say {missing}"
    if dialect.can_write:  # a target also answers Great Expectations and keeps the source's orphans
        for m in ("sqlalchemy_url", "unique_query", "orphan_query", "record_source_orphans"):
            assert getattr(type(checksums), m) is not getattr(Checksums, m), f"{dialect.name}: no {m}"


SCHEMA = """
CREATE TABLE log (at DATETIME, msg TEXT, meta JSON);
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2), meta JSON);
"""


@pytest.fixture
def my_target(mysql_admin_url):
    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    name = "golive_vs_" + uuid.uuid4().hex[:8]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database")

    def admin(sql: str, database: str | None = None):
        conn = pymysql.connect(**kw, database=database, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    admin(f"CREATE DATABASE `{name}`")
    yield mysql_admin_url.rsplit("/", 1)[0] + f"/{name}", lambda sql: admin(sql, name)
    admin(f"DROP DATABASE IF EXISTS `{name}`")


def test_a_mysql_target_is_compared_like_a_postgresql_one(tmp_path, my_target):
    from golive.config import MigrateOptions
    from golive.migrate import copy as copying, planning, target as tgt
    from golive.urls import parse_url
    from golive.validation import check_range, prepare
    from golive.validation.options import ValidateOptions

    path = tmp_path / "src.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO log VALUES (?, ?, ?)",
                   [(f"2024-01-{1 + i % 28:02d} 10:00:00", f"msg {i}", '{"level": "info", "n": %d}' % i)
                    for i in range(30)] + [(None, None, None)])
    db.executemany("INSERT INTO item VALUES (?, ?, ?, ?)",
                   [(i, f"item {i}", i * 1.25, '{"tags": ["a", "b"], "n": %d}' % i) for i in range(1, 200)])
    db.commit()
    db.close()
    url, sql = my_target
    s, d = parse_url(str(path)), parse_url(url)
    opts = MigrateOptions(chunk_rows=50)
    plan = planning.build_plan(s, d, opts)
    tgt.prepare(d, plan, opts)
    for tp in plan.tables:
        for ch in tp.chunks:
            copying.copy_chunk(s, d, plan.context(), tp, ch)
        tgt.finish_table(d, plan.target_schema, tp)

    def compare():
        setup = prepare.prepare(s, d, ValidateOptions(output_dir=str(tmp_path / "out"),
                                                      expectations_dir=str(tmp_path / "exp"), chunk_rows=50))
        checks = [check_range(s, d, spec, i) for spec in setup.specs for i in range(max(1, len(spec.ranges)))]
        return {spec.source: spec.kind for spec in setup.specs}, checks

    kinds, checks = compare()
    assert kinds == {"log": "bag", "item": "rowid"}
    assert [d for c in checks for d in c.differences] == []
    assert sum(c.target_rows for c in checks) == 31 + 199
    # the target changed behind golive's back: a keyed value, and a row of the table without a key (JSON inside)
    sql("UPDATE item SET name = 'changed' WHERE id = 42")
    sql("UPDATE log SET msg = 'changed' WHERE msg = 'msg 7'")
    _, checks = compare()
    got = sorted((d.table, d.kind, d.key, d.column) for c in checks for d in c.differences)
    assert got == [("item", "value", {"id": 42}, "name"), ("log", "extra", {}, None),
                   ("log", "missing", {"rowid": 8}, None)]

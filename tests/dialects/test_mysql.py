"""MySQL/MariaDB as data: type tables, DDL, the wire parser of the INSERT fallback, names on case-folding servers
(no database needed)."""

from __future__ import annotations

import pytest

from golive.dialects.mysql import types as mt
from golive.dialects.mysql.dialect import MySQLDialect
from golive.dialects.mysql.ddl import adjust_table, create_table_sql, index_clause
from golive.dialects.mysql.load import parse_wire
from golive.model.plan import ColumnPlan, IndexPlan, MigrationPlan, TablePlan
from golive.model.names import Namer
from golive.model.types import CT, TargetType

MY = MySQLDialect()


@pytest.mark.parametrize("t, sql", [
    (TargetType(ct=CT.BOOLEAN), "TINYINT(1)"),
    (TargetType(ct=CT.DECIMAL, precision=10, scale=2), "DECIMAL(10,2)"),
    (TargetType(ct=CT.DECIMAL), "DECIMAL(65,30)"),
    (TargetType(ct=CT.TEXT, length=60_000), "TEXT"),
    (TargetType(ct=CT.TEXT, length=70_000), "MEDIUMTEXT"),
    (TargetType(ct=CT.TEXT), "LONGTEXT"),
    (TargetType(ct=CT.BINARY, length=10), "BLOB"),
    (TargetType(ct=CT.VARCHAR, length=20_000), "MEDIUMTEXT"),
    (TargetType(ct=CT.TIMESTAMP_TZ), "DATETIME(6)"),
    (TargetType(ct=CT.UUID), "CHAR(36)"),
    (TargetType(ct=CT.ENUM, values=["a", "it's"]), "ENUM('a', 'it''s')"),
    (TargetType(ct=CT.TEXT_ARRAY), "JSON"),
    (TargetType(ct=CT.BITS, length=5), "BIT(5)"),
    (TargetType(ct=CT.INTEGER, native="int(10) unsigned"), "int(10) unsigned"),
])
def test_types(t, sql):
    assert MY.target.type_sql(t) == sql


@pytest.mark.parametrize("column_type, kind", [
    ("tinyint(1)", CT.BOOLEAN), ("int(10) unsigned", CT.BIGINT), ("bigint(20) unsigned", CT.BIGINT),
    ("smallint(5) unsigned", CT.INTEGER), ("year(4)", CT.SMALLINT), ("bit(1)", CT.BOOLEAN), ("bit(7)", CT.BITS),
    ("enum('a','b')", CT.ENUM), ("set('x','y')", CT.TEXT_ARRAY), ("datetime(3)", CT.TIMESTAMP),
    ("timestamp", CT.TIMESTAMP_TZ), ("float", CT.REAL), ("geometry", CT.GEOMETRY), ("char(5)", CT.VARCHAR),
])
def test_mysql_source_decisions(column_type, kind):
    from golive.config import MigrateOptions
    from golive.model.schema import Column

    dec = mt.decide(Column(name="c", declared=column_type), mt.parse_type(column_type), None,
                    options=MigrateOptions(), json_check=False)
    assert dec.type.ct == kind


def test_enum_labels_unquoted():
    assert mt.parse_type("enum('a','it''s','x,y')").labels == ("a", "it's", "x,y")


def test_ddl_keys_in_create_table_and_prefix_indexes():
    tp = TablePlan(source="t", target="t", rows=0, key=["id"], columns=[
        ColumnPlan(source="id", target="id", type=TargetType(ct=CT.BIGINT), sql_type="BIGINT", nullable=False,
                   identity=True),
        ColumnPlan(source="body", target="body", type=TargetType(ct=CT.TEXT), sql_type="LONGTEXT"),
    ], indexes=[IndexPlan(name="t_pkey", kind="primary", columns=["id"]),
                IndexPlan(name="t_body", kind="index", columns=["body"])])
    plan = MigrationPlan(run_key="k", source="s", target="t", target_dialect="mysql", tables=[tp])
    adjust_table(tp, plan)
    sql = create_table_sql(tp, "utf8mb4_nopad_bin")
    assert "`id` BIGINT NOT NULL AUTO_INCREMENT" in sql and "PRIMARY KEY (`id`)" in sql
    assert "COLLATE=utf8mb4_nopad_bin" in sql
    assert index_clause(tp, tp.indexes[1]) == "ADD INDEX `t_body` (`body`(768))"
    assert any("first 768 characters" in w for w in plan.warnings)


def test_unique_on_long_text_is_kept_on_a_hash_column():
    tp = TablePlan(source="t", target="t", rows=0, key=["k"], columns=[
        ColumnPlan(source="k", target="k", type=TargetType(ct=CT.TEXT, length=5000), sql_type="TEXT")],
        indexes=[IndexPlan(name="t_k_key", kind="unique", columns=["k"])])
    plan = MigrationPlan(run_key="k", source="s", target="t", target_dialect="mysql", tables=[tp])
    adjust_table(tp, plan)
    (hashed,) = [c for c in tp.columns if c.generated_sql]
    assert hashed.target == "k_sha256" and "SHA2" in hashed.generated_sql
    assert tp.indexes[0].columns == ["k_sha256"]


def test_short_text_in_a_key_becomes_varchar():
    tp = TablePlan(source="t", target="t", rows=0, key=["k"], columns=[
        ColumnPlan(source="k", target="k", type=TargetType(ct=CT.TEXT, length=40), sql_type="TEXT", nullable=False)],
        indexes=[IndexPlan(name="t_pkey", kind="primary", columns=["k"])])
    adjust_table(tp, MigrationPlan(run_key="k", source="s", target="t", tables=[tp]))
    assert tp.columns[0].sql_type == "VARCHAR(768)"


def test_wire_parser_of_the_insert_fallback():
    assert parse_wire(b"1,'a''b',NULL,'NULL','multi\nline'\n2,'',NULL,'x','y'\n") == [
        ("1", "a'b", None, "NULL", "multi\nline"), ("2", "", None, "x", "y")]


def test_names_that_differ_only_in_case_on_a_folding_server():
    renamed = []
    n = Namer("preserve", "table", renamed, 64, chars=True, fold=True)
    assert n("Users") == "Users" and n("users") == "users_2"
    assert renamed[0].reason.startswith("collides with 'Users'")

"""SQLite type decisions as tables (sqlglot's validate_all style): declared type + profile -> target type."""

from __future__ import annotations

import pytest

from golive.dialects.sqlite.types import ColumnProfile, classify, decide
from golive.migrate.defaults import translate_default
from golive.dialects.postgresql.dialect import PostgresDialect
from golive.model.schema import Column
from golive.model.types import CT, TargetType

PG = PostgresDialect()


def pg_type(declared: str, profile: ColumnProfile | None = None, *, rowid_pk: bool = False, parent=None) -> str:
    col = Column(name="c", declared=declared)
    return PG.target.type_sql(decide(col, classify(declared), profile or ColumnProfile(), rowid_pk=rowid_pk, parent=parent).type)


@pytest.mark.parametrize("declared, expected", [
    ("INTEGER", "integer"),
    ("int(11)", "integer"),
    ("INT", "integer"),
    ("integer auto_increment", "integer"),
    ("short integer", "smallint"),
    ("SMALLINT UNSIGNED", "smallint"),
    ("TINYINT UNSIGNED", "smallint"),
    ("BIGINT", "bigint"),
    ("unsigned big int", "bigint"),
    ("YEAR", "smallint"),
    ("BOOLEAN", "boolean"),
    ("BOOL", "boolean"),
    ("tinyint(1)", "boolean"),
    ("REAL", "double precision"),
    ("double precision", "double precision"),
    ("DOUBLE", "double precision"),
    ("FLOAT", "double precision"),
    ("NUMERIC(10,2)", "numeric(10,2)"),
    ("DECIMAL(5, 2)", "numeric(5,2)"),
    ("NUMERIC", "numeric"),
    ("money", "numeric"),
    ("NVARCHAR(120)", "varchar(120)"),
    ("VARCHAR(255)", "varchar(255)"),
    ("CHARACTER VARYING(20)", "varchar(20)"),
    ("CHAR(64)", "varchar(64)"),
    ("VARCHAR", "text"),
    ("TEXT", "text"),
    ("text nocase", "text"),
    ("CLOB", "text"),
    ("ENUM", "text"),
    ("BLOB", "bytea"),
    ("varbinary(16)", "bytea"),
    ("DATE", "date"),
    ("TIME", "time"),
    ("DATETIME", "timestamptz"),
    ("TIMESTAMP", "timestamptz"),
    ("timestamp with time zone", "timestamptz"),
    ("JSON", "jsonb"),
    ("jsonb", "jsonb"),
    ("UUID", "uuid"),
])
def test_declared_types(declared, expected):
    assert pg_type(declared) == expected


@pytest.mark.parametrize("declared, profile, expected", [
    # integers: the values decide the size
    ("INTEGER", ColumnProfile(values=3, num_min=-5, num_max=2**31 - 1), "integer"),
    ("INTEGER", ColumnProfile(values=3, num_min=0, num_max=2**31), "bigint"),
    ("INTEGER", ColumnProfile(values=3, num_min=-(2**31) - 1, num_max=0), "bigint"),
    ("SMALLINT", ColumnProfile(values=3, num_min=0, num_max=40000), "integer"),
    ("INT", ColumnProfile(values=1, num_min=0, num_max=3.5e9), "bigint"),
    # text: VARCHAR(n) widens to text when SQLite stored longer strings
    ("VARCHAR(5)", ColumnProfile(values=2, max_length=5), "varchar(5)"),
    ("VARCHAR(5)", ColumnProfile(values=2, max_length=6), "text"),
    # decimals: more decimals or digits than declared -> unconstrained numeric
    ("DECIMAL(5,2)", ColumnProfile(values=2, num_min=0, num_max=999.99), "numeric(5,2)"),
    ("DECIMAL(5,2)", ColumnProfile(values=2, num_min=0, num_max=1000), "numeric"),
    ("DECIMAL(5,2)", ColumnProfile(values=2, overscale=1, num_min=0, num_max=1), "numeric"),
    # dates holding a time of day would lose it
    ("DATE", ColumnProfile(values=2, with_time=0), "date"),
    ("DATE", ColumnProfile(values=2, with_time=1), "timestamptz"),
    # no declared type: the stored values decide
    ("", ColumnProfile(values=0), "text"),
    ("", ColumnProfile(values=2, by_class={"integer": 2}, num_min=1, num_max=2), "integer"),
    ("", ColumnProfile(values=2, by_class={"integer": 1, "real": 1}), "double precision"),
    ("", ColumnProfile(values=2, by_class={"text": 1, "integer": 1}), "text"),
    ("", ColumnProfile(values=2, by_class={"blob": 2}), "bytea"),
    ("", ColumnProfile(values=2, by_class={"blob": 1, "text": 1}), "bytea"),
    ("GEOMETRY", ColumnProfile(values=2, by_class={"text": 2}), "text"),
])
def test_values_decide_the_size(declared, profile, expected):
    assert pg_type(declared, profile) == expected


def test_rowid_primary_key_is_bigint_identity():
    assert pg_type("INTEGER", ColumnProfile(values=1, num_min=1, num_max=5), rowid_pk=True) == "bigint"


def test_foreign_key_follows_parent_type():
    assert pg_type("INTEGER", ColumnProfile(values=1, num_min=1, num_max=5), parent=TargetType(ct=CT.BIGINT)) == "bigint"


@pytest.mark.parametrize("raw, ct, expected", [
    ("CURRENT_TIMESTAMP", CT.TIMESTAMP_TZ, "CURRENT_TIMESTAMP"),
    ("(datetime('now'))", CT.TIMESTAMP_TZ, "CURRENT_TIMESTAMP"),
    ("datetime('now','localtime')", CT.TIMESTAMP_TZ, "CURRENT_TIMESTAMP"),
    ("(strftime('%Y-%m-%d %H:%M:%f','now'))", CT.TIMESTAMP_TZ, "CURRENT_TIMESTAMP"),
    ("CURRENT_DATE", CT.DATE, "CURRENT_DATE"),
    ("date('now')", CT.DATE, "CURRENT_DATE"),
    ("strftime('%s','now')", CT.BIGINT, "(extract(epoch from now()))::bigint"),
    ("CURRENT_TIMESTAMP", CT.TEXT, "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
    ("'f'", CT.BOOLEAN, "false"),
    ("'t'", CT.BOOLEAN, "true"),
    ("0", CT.BOOLEAN, "false"),
    ("1", CT.BOOLEAN, "true"),
    ("TRUE", CT.BOOLEAN, "true"),
    ("false", CT.BOOLEAN, "false"),
    ("TRUE", CT.INTEGER, "1"),
    ("42", CT.INTEGER, "42"),
    ("-1.5", CT.DOUBLE, "-1.5"),
    ("4.99", CT.DECIMAL, "4.99"),
    ("'draft'", CT.TEXT, "'draft'"),
    ("'it''s'", CT.TEXT, "'it''s'"),
    ("'{}'", CT.JSON, "'{}'::jsonb"),
    ("NULL", CT.TEXT, None),
    ("X'00FF'", CT.BINARY, "'\\x00FF'::bytea"),
])
def test_defaults(raw, ct, expected):
    sql, note = translate_default(raw, TargetType(ct=ct))
    assert sql == expected
    assert note is None


@pytest.mark.parametrize("raw, ct", [
    ("'maybe'", CT.BOOLEAN),
    ("(abs(random()) % 10)", CT.INTEGER),
    ("'not json'", CT.JSON),
    ("2", CT.BOOLEAN),
])
def test_untranslatable_defaults_are_reported(raw, ct):
    sql, note = translate_default(raw, TargetType(ct=ct))
    assert sql is None and note

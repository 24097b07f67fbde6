"""Canonical checksums agree across SQLite and PostgreSQL, value by value, for every canonical type.

Each case is a one-column table: the SQLite value, copied the way golive copies it (the text of
``value_sql`` parsed by PostgreSQL into the target type), must compare equal, and must do so on the fast
path (no narrowing) for the shapes apps write. Then one target value is changed and the comparison
must name that row and column.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from golive.dialects.sqlite import checksums as sqc
from golive.model.types import CT, TargetType
from golive.urls import parse_url
from golive.validation.content import Comparer
from golive.model.validation import CheckColumn, KeyColumn, TableSpec

SLOW = object()  # marks a value whose canonical forms differ: the row-by-row judge must settle it

#: (case id, declared SQLite type, target type, PostgreSQL type, values, a different target value)
CASES = [
    ("timestamptz", "DATETIME", TargetType(ct=CT.TIMESTAMP_TZ), "timestamptz", [
        "2024-01-01 00:00:00", "2024-01-01T00:00:00", "2024-01-01T00:00:00Z", "2024-01-01 10:00:00+02:00",
        "2024-01-01T10:00:00.123456-05:30", "2024-01-01 00:00:00.5", "2024-01-01 00:00:00.120", "2024-01-01",
        "2024-01-01 00:00", 1704067200, 1704067200123, 1704067200120, -86400, None,
        (1704067200.5, SLOW), ("2024-01-01 00:00:00.1234567", SLOW), ("Jan 2 2024 10:00", SLOW),
    ], "2000-01-01 00:00:00+00"),
    ("boolean", "BOOLEAN", TargetType(ct=CT.BOOLEAN), "boolean", [
        1, 0, "t", "f", "true", "FALSE", "yes", "no", "on", "off", "1", "0", 1.0, None,
    ], None),
    ("double", "REAL", TargetType(ct=CT.DOUBLE), "double precision", [
        1.5, 0.1, 0.1 + 0.2, 1e300, -2.5e300, 1e-7, 123456789.123, 3, 0.0, 1 / 3, 0.005754, 2.0 ** 53 + 2, -0.0,
        "NaN", float("inf"), None,
    ], "1.5000000000000002"),
    ("numeric", "NUMERIC", TargetType(ct=CT.DECIMAL), "numeric", [
        19.99, 5, 5.0, 0.1, "1.10", -0.5, 123456789012345678, None, (1e20, SLOW), ("12345678901234567890", SLOW),
    ], "19.98"),
    ("numeric(10,2)", "DECIMAL(10,2)", TargetType(ct=CT.DECIMAL, precision=10, scale=2), "numeric(10,2)", [
        19.99, 5, 0.1, 1234.5, 0.30000000000000004, None,
    ], "0.01"),
    ("text", "TEXT", TargetType(ct=CT.TEXT), "text", [
        "", "NULL", "\\N", "a\x1fb", "Zoë 🙂", "李", "line\nbreak", "quote'", "a,b", ",", 42, 1.5, None,
    ], "changed"),
    ("varchar", "VARCHAR(20)", TargetType(ct=CT.VARCHAR, length=20), "varchar(20)", [
        "Ann@example.com", "李@example.com", "", None,
    ], "x"),
    ("bytea", "BLOB", TargetType(ct=CT.BINARY), "bytea", [
        b"\x00\xff", b"", "as text", bytes(range(256)), None,
    ], "\\x01"),
    ("jsonb", "JSON", TargetType(ct=CT.JSON), "jsonb", [
        '{"b": 1, "a": [1, 2]}', '{"a":1,"b":2}', "[1,2.50,1e2]", "null", '"x"', '{"k": "é\\u00e9"}', 5,
        '{\n  "pretty": true,\n  "nested": {"z": 1, "y": [true, false, null]}\n}', '{"会议": "相册"}', None,
    ], '{"a": 2}'),
    ("date", "DATE", TargetType(ct=CT.DATE), "date", [
        "2024-02-29", "1999-12-31", "2024-01-01 00:00:00", 1704067200, 1704067200123, None, ("Jan 2 2024", SLOW),
    ], "2024-03-01"),
    ("time", "TIME", TargetType(ct=CT.TIME), "time", [
        "10:00:00", "10:00", "23:59:59.5", None,
    ], "11:00:00"),
    ("uuid", "UUID", TargetType(ct=CT.UUID), "uuid", [
        "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174001",
        bytes.fromhex("123e4567e89b12d3a456426614174002"), None,
        ("{123e4567-e89b-12d3-a456-426614174003}", SLOW), ("123e4567e89b12d3a456426614174004", SLOW),
    ], "00000000-0000-0000-0000-000000000000"),
    ("bigint", "INTEGER", TargetType(ct=CT.BIGINT), "bigint", [
        1, -5, 3.0, 2 ** 62, -(2 ** 63), 0, None,
    ], "7"),
]


def _load(tmp_path, pg_url, declared, t: TargetType, sql_type, values):
    """A SQLite table ``t(id, v)`` and its copy in PostgreSQL, made the way golive copies (value_sql text)."""
    path = tmp_path / "src.db"
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})")
    db.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values, start=1)))
    db.commit()
    rendered = db.execute(f"SELECT id, CAST({sqc.rendered_sql('v', t)} AS TEXT) FROM t ORDER BY id").fetchall()
    db.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"CREATE TABLE t (id bigint PRIMARY KEY, v {sql_type})")
        for i, text in rendered:
            conn.execute(f"INSERT INTO t VALUES (%s, %s::{sql_type})", (i, text))
    spec = TableSpec(source="t", target="t", schema_name="public", kind="rowid",
                     key=[KeyColumn(source="id", target="id", type=TargetType(ct=CT.BIGINT))],
                     columns=[CheckColumn(source="id", target="id", type=TargetType(ct=CT.BIGINT), sql_type="bigint",
                                          nullable=False),
                              CheckColumn(source="v", target="v", type=t, sql_type=sql_type)],
                     ranges=[(1, len(values), len(values))], rows_hint=len(values))
    return parse_url(str(path)), parse_url(pg_url), spec


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_copies_compare_equal_and_changes_are_named(case, tmp_path, pg_url):
    name, declared, t, sql_type, raw, other = case
    fast = [v for v in raw if not (isinstance(v, tuple) and len(v) == 2 and v[1] is SLOW)]
    # 1. the shapes apps write agree without narrowing down
    src, dst, spec = _load(tmp_path, pg_url, declared, t, sql_type, fast)
    with Comparer(src, dst, spec) as cmp:
        got = cmp.check(0)
    assert got.match and got.source_rows == got.target_rows == len(fast), got
    assert got.narrowed == 0, f"{name}: fast canonical forms disagree for some value"
    # 2. one changed target value is found, with its key and column
    if other is not None:
        with psycopg.connect(str(dst.raw), autocommit=True) as conn:
            conn.execute(f"UPDATE t SET v = %s::{sql_type} WHERE id = 1", (other,))
        with Comparer(src, dst, spec) as cmp:
            got = cmp.check(0)
        assert not got.match
        assert [(d.kind, d.key, d.column) for d in got.differences] == [("value", {"id": 1}, "v")]
        assert "t: content: row id=1, column v" in got.differences[0].message()


@pytest.mark.parametrize("case", [c for c in CASES if any(isinstance(v, tuple) for v in c[4])],
                         ids=[c[0] for c in CASES if any(isinstance(v, tuple) for v in c[4])])
def test_unusual_shapes_are_settled_by_postgresql(case, tmp_path, pg_url):
    """Values whose canonical texts differ are judged by PostgreSQL parsing what the copy sent: still equal."""
    name, declared, t, sql_type, raw, _ = case
    values = [v[0] if isinstance(v, tuple) else v for v in raw]
    src, dst, spec = _load(tmp_path, pg_url, declared, t, sql_type, values)
    with Comparer(src, dst, spec) as cmp:
        got = cmp.check(0)
    assert got.match, [d.message() for d in got.differences]
    assert got.narrowed >= 1


def test_double_is_compared_bit_for_bit(tmp_path, pg_url):
    """Two doubles one unit in the last place apart differ, though their 15-digit forms are equal."""
    import math

    x = 0.1 + 0.2
    src, dst, spec = _load(tmp_path, pg_url, "REAL", TargetType(ct=CT.DOUBLE), "double precision", [x])
    with psycopg.connect(str(dst.raw), autocommit=True) as conn:
        conn.execute("UPDATE t SET v = %s WHERE id = 1", (math.nextafter(x, 1.0),))
    with Comparer(src, dst, spec) as cmp:
        got = cmp.check(0)
    assert [(d.key, d.column) for d in got.differences] == [({"id": 1}, "v")]


def test_streams_leave_no_ambiguity_between_text_and_null():
    streams = sqc.streams([('"a"', TargetType(ct=CT.TEXT), True), ('"b"', TargetType(ct=CT.BIGINT), True)])
    # text: values back to back plus their byte lengths (-1 for NULL); others: canonical text, \N for NULL
    assert [(sep, enc) for _, sep, enc in streams] == [("''", "text"), ("','", "text"), ("','", "text")]
    assert "coalesce(length(CAST(\"a\" AS BLOB)), -1)" == streams[1][0]
    assert streams[2][0].startswith("coalesce(") and "'\\N'" in streams[2][0]


def test_not_null_text_is_separated_by_nul():
    (stream,) = sqc.streams([('"a"', TargetType(ct=CT.TEXT), False)])
    assert stream == ('"a"', "char(0)", "text")


def test_float8_stream_matches_postgresql_bytes(pg_conn):
    blob = b"1.5,,0.10000000000000001,-0.0,NaN"
    want = pg_conn.execute("SELECT string_agg(coalesce(float8send(x), '\\x7ff8000000000001'::bytea), ''::bytea) "
                           "FROM unnest(ARRAY[1.5, NULL, 0.1, '-0', 'NaN']::float8[]) WITH ORDINALITY u(x, i)"
                           ).fetchone()[0]
    assert sqc.float8_bytes(blob) == bytes(want)

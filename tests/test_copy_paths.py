"""The clean (fast) and the reject (careful) rendering load exactly the same values; rows are located by the
physical line PostgreSQL reports even when values contain newlines."""

from __future__ import annotations

import sqlite3

from golive.migrate import copy as copying, target
from golive.config import MigrateOptions
from golive.migrate.planning import build_plan
from golive.urls import parse_url
from helpers import rows

VALUES = [
    (1, 0, "plain", "2024-01-01 00:00:00", '{"a": 1}', 1, 0.1, b"\x00\x01", "2024-02-29", 19.99),
    (2, -5, "it's \"quoted\", with, commas", "2024-01-01T10:00:00Z", "[]", 0, 1e300, b"", "2024-03-01", 0),
    (3, 2**40, "multi\nline\r\ntext", 1700000000123, "null", "t", float("inf"), None, 1704067200, 1.5),
    (4, None, "", "2024-01-01T10:00:00.123456+02:00", '"s"', "false", -0.5, b"x" * 3, None, None),
    (5, 7, "NULL", 1704164645, None, None, None, None, "2024-12-31", 12345678.12),
    (6, 8, "Zoë 🙂 会议", 1704164645.5, '{"k": "v\\u00e9"}', "yes", 3, b"\xff", "2024-01-01", -0.01),
]


def build(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, t TEXT, ts DATETIME, j JSON, b BOOLEAN, r REAL, "
               "bl BLOB, d DATE, n NUMERIC(12,2))")
    db.executemany("INSERT INTO v VALUES (?,?,?,?,?,?,?,?,?,?)", VALUES)
    db.commit()
    db.close()


def test_fast_and_careful_paths_load_the_same_values(tmp_path, pg_url):
    src = tmp_path / "v.db"
    build(src)
    s, d = parse_url(str(src)), parse_url(pg_url)
    fast = build_plan(s, d, MigrateOptions())
    careful = build_plan(s, d, MigrateOptions(target_schema="careful"))
    target.prepare(d, fast, MigrateOptions())
    target.prepare(d, careful, MigrateOptions(target_schema="careful"))
    tp, ch = fast.tables[0], fast.tables[0].chunks[0]
    res = copying.copy_chunk(s, d, fast.context(), tp, ch)
    assert not res.careful and res.rows_written == len(VALUES)
    # force the reject path on the same chunk
    ctp = careful.tables[0]
    from golive.dialects.postgresql.dialect import PostgresDialect
    from golive.dialects.sqlite.dialect import SQLiteDialect

    reader = SQLiteDialect().source.chunk_reader(s, careful, ctp)
    writer = PostgresDialect().target.chunk_writer(d, careful, ctp, ctp.chunks[0])
    try:
        res2 = copying._copy_carefully(reader, writer, ctp, ctp.chunks[0], 0.0)
    finally:
        reader.close()
        writer.close()
    assert res2.careful and res2.rows_written == len(VALUES) and not res2.rejects
    cols = "id, i, t, ts, j, b, r, bl, d, n"
    assert rows(pg_url, f"SELECT {cols} FROM public.v ORDER BY id") == \
        rows(pg_url, f"SELECT {cols} FROM careful.v ORDER BY id")


def test_failed_row_counts_physical_lines():
    class Diag:
        context = "JSON data, line 1: {bad\nCOPY t, line 4, column j: \"{bad\""

    class Exc(Exception):
        diag = Diag()

    batch = [(1, b"'a'\n"), (2, b"'multi\nline'\n"), (3, b"'b'\n"), (4, b"'c'\n")]
    # lines: row 1 -> 1, row 2 -> 2-3, row 3 -> 4, row 4 -> 5
    from golive.dialects.postgresql.target import _refused

    assert copying._failed_row(_refused(Exc()), batch) == 2

"""The read-ahead (first batches of the first chunks read while Prefect starts) changes nothing in the target:
chunks read ahead completely, partly, not at all, or claimed while being read all load the same rows, and
what no copy takes is freed."""

from __future__ import annotations

import sqlite3

from golive.dialects.sqlite import source as sqlite
from golive.migrate import copy as copying, readahead, target
from golive.config import MigrateOptions
from golive.migrate.planning import build_plan
from golive.migrate.schedule import copy_order
from golive.urls import parse_url
from helpers import rows


def build(path, n=6000):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT, score REAL)")
    db.executemany("INSERT INTO t VALUES (?,?,?,?)",
                   ((i, f"row {i} 'q' \"dq\", comma", ("multi\nline" if i % 7 == 0 else None), i / 3)
                    for i in range(1, n + 1)))
    db.execute("CREATE TABLE small (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID")  # no rowid ranges: never read ahead
    db.executemany("INSERT INTO small VALUES (?,?)", ((f"k{i}", i) for i in range(50)))
    db.commit()
    db.close()


def _copy_all(s, d, plan, schema):
    results = [copying.copy_chunk(s, d, plan.context(), tp, ch) for tp, ch in copy_order(plan)]
    assert all(r.rows_read == r.rows_written and not r.careful for r in results)
    return sum(r.rows_written for r in results)


def test_read_ahead_loads_the_same_rows(tmp_path, pg_url, monkeypatch):
    src = tmp_path / "a.db"
    build(src)
    s, d = parse_url(str(src)), parse_url(pg_url)
    plain = build_plan(s, d, MigrateOptions(chunk_rows=1000))
    assert len(plain.tables[0].chunks) > 3 or len(plain.tables[1].chunks) > 3
    target.prepare(d, plain, MigrateOptions())
    assert _copy_all(s, d, plain, "public") == 6050

    # small per-chunk cap: chunks are read ahead partly (the copy reads the rest), then the budget runs out
    monkeypatch.setattr(readahead, "READ_AHEAD_CHUNK_BYTES", 20_000)
    monkeypatch.setattr(sqlite, "BATCH_BYTES", 8_000)
    opts = MigrateOptions(chunk_rows=1000, target_schema="ahead")
    plan = build_plan(s, d, opts)
    target.prepare(d, plan, opts)
    order = copy_order(plan)
    readahead.read_ahead(s, plan, order, budget=90_000).join(timeout=30)
    taken = [readahead._ahead.get(readahead._key(s, tp, ch)) for tp, ch in order]
    partial = [a for a, (tp, ch) in zip(taken, order) if a is not None and a.started and not a.finished]
    assert partial, "some chunks were read ahead in part"
    assert all(a is None for a, (tp, ch) in zip(taken, order) if tp.source == "small")
    assert any(a is None for a in taken), "the budget left some chunks to their copies"
    assert _copy_all(s, d, plan, "ahead") == 6050
    assert not readahead._ahead  # every read-ahead was taken
    cols = "id, name, note, score"
    assert rows(pg_url, f"SELECT {cols} FROM public.t ORDER BY id") == rows(pg_url, f"SELECT {cols} FROM ahead.t ORDER BY id")
    assert rows(pg_url, "SELECT * FROM public.small ORDER BY k") == rows(pg_url, "SELECT * FROM ahead.small ORDER BY k")


def test_claimed_before_read_and_dropped(tmp_path, pg_url):
    src = tmp_path / "b.db"
    build(src, n=3000)
    s, d = parse_url(str(src)), parse_url(pg_url)
    opts = MigrateOptions(chunk_rows=1000)
    plan = build_plan(s, d, opts)
    target.prepare(d, plan, opts)
    order = copy_order(plan)
    # the first copy claims its chunk while (or before) the thread reads it: it waits at most one batch
    thread = readahead.read_ahead(s, plan, order)
    first = copying.copy_chunk(s, d, plan.context(), *order[0])
    thread.join(timeout=30)
    rest = [copying.copy_chunk(s, d, plan.context(), tp, ch) for tp, ch in order[1:]]
    assert first.rows_written + sum(r.rows_written for r in rest) == 3050
    assert rows(pg_url, "SELECT count(*), count(DISTINCT id), sum(id) FROM t") == [(3000, 3000, 3000 * 3001 // 2)]
    # a read-ahead no copy takes is freed
    readahead.read_ahead(s, plan, order).join(timeout=30)
    assert readahead._ahead
    readahead.drop_read_ahead()
    assert not readahead._ahead


def test_many_small_tables_hold_few_readers(tmp_path, pg_url, monkeypatch):
    """Thousands of small tables never reach the byte budget: the read-ahead still opens at most
    READ_AHEAD_CHUNKS readers (each a connection with the whole schema parsed), and the copy is unchanged."""
    src = tmp_path / "many.db"
    db = sqlite3.connect(src)
    for i in range(40):
        db.execute(f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY, v TEXT)")
        db.executemany(f"INSERT INTO t{i:02d} VALUES (?, ?)", [(j, f"v{j}") for j in range(1, 6)])
    db.commit()
    db.close()
    s, d = parse_url(str(src)), parse_url(pg_url)
    opts = MigrateOptions(target_schema="many")
    plan = build_plan(s, d, opts)
    target.prepare(d, plan, opts)
    order = copy_order(plan)
    monkeypatch.setattr(readahead, "READ_AHEAD_CHUNKS", 5)
    readahead.read_ahead(s, plan, order).join(timeout=30)
    held = [a for a in readahead._ahead.values() if a.started]
    assert 0 < len(held) <= 5, len(held)
    assert _copy_all(s, d, plan, "many") == 200
    assert not readahead._ahead
    assert rows(pg_url, "SELECT count(*) FROM many.t39") == [(5,)]

"""The report's invariants: rows read = written + rejected per table; a source that changed is an error."""

from __future__ import annotations

import sqlite3

from golive import commands
from golive.config import MigrateOptions
from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
from golive.migrate.planning import source_fingerprint
from golive.migrate.report import build_report
from golive.urls import parse_url


def plan_of(rows: int) -> MigrationPlan:
    return MigrationPlan(run_key="k", source="s", target="t", tables=[
        TablePlan(source="a", target="a", rows=rows, columns=[], key=["id"], chunks=[ChunkPlan(no=0, lo=1, hi=rows,
                                                                                               rows=rows)])])


def chunk(read, written, rejects=()):
    return {"table": "a", "chunk": 0, "rows_read": read, "rows_written": written, "rows_rejected": len(rejects),
            "rejects": list(rejects), "seconds": 1.0}


def test_clean_report(tmp_path):
    rep = build_report(plan_of(10), MigrateOptions(report=str(tmp_path / "r.json")), [chunk(10, 10)], [],
                       source_counts={})
    assert rep["ok"] and rep["exit_code"] == 0 and rep["tables"][0]["rows_per_second"] == 10
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.rejects.jsonl").read_text() == ""


def test_rejects_fail_unless_allowed(tmp_path):
    rej = [{"table": "a", "key": {"id": 3}, "column": "c", "value": "x", "reason": "bad"}]
    rep = build_report(plan_of(10), MigrateOptions(report=str(tmp_path / "r.json")), [chunk(10, 9, rej)], [])
    assert not rep["ok"] and rep["exit_code"] == 1 and rep["reject_summary"][0]["count"] == 1
    rep = build_report(plan_of(10), MigrateOptions(max_rejects=1), [chunk(10, 9, rej)], [])
    assert rep["ok"]


def test_lost_rows_and_changed_source_are_errors():
    rep = build_report(plan_of(10), MigrateOptions(), [chunk(10, 8)], [])
    assert not rep["ok"] and "read 10 rows but wrote 8" in rep["errors"][0]
    rep = build_report(plan_of(10), MigrateOptions(), [chunk(10, 10)], [], source_counts={"a": 11})
    assert not rep["ok"] and "the source changed during the copy" in rep["errors"][0]
    rep = build_report(plan_of(10), MigrateOptions(), [], [])
    assert not rep["ok"] and "chunks were not copied" in rep["errors"][0]


def test_source_counted_only_when_the_file_changed(tmp_path):
    p = tmp_path / "s.db"
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO a VALUES (1)")
    db.commit()
    fp = source_fingerprint(parse_url(str(p)))
    assert commands.count_source_rows(str(p), ["a"], fp) == {}
    db.execute("INSERT INTO a VALUES (2)")
    db.commit()
    db.close()
    assert commands.count_source_rows(str(p), ["a"], fp) == {"a": 2}

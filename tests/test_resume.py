"""kill -9 in the middle of a copy, then the same command again: nothing lost, nothing doubled, nothing recopied."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg

from helpers import scalar

ROWS = 300_000


def build(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload JSON, n INTEGER, "
               "at DATETIME NOT NULL)")
    db.execute("CREATE TABLE kinds (name TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO kinds VALUES (?)", [("a",), ("b",), ("c",)])
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?)", (
        (i, "abc"[i % 3], json.dumps({"i": i, "s": "x" * (i % 50)}), i * 7 % 1000, f"2024-01-01 00:00:{i % 60:02d}")
        for i in range(1, ROWS + 1)))
    db.commit()
    db.close()


def chunks_done(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SELECT count(*) FROM _golive.chunks").fetchone()[0]
    except psycopg.Error:
        return 0


def test_kill_9_then_resume(pg_url, prefect_api, tmp_path):
    src = tmp_path / "events.db"
    build(src)
    args = [sys.executable, "-m", "golive", "migrate", "db", "--source", str(src), "--target", pg_url,
            "--chunk-rows", "10000", "--workers", "1", "--no-validate"]
    proc = subprocess.Popen(args + ["--report", str(tmp_path / "first.json")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while chunks_done(pg_url) < 4:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the copy did not start"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = chunks_done(pg_url)
    copied = scalar(pg_url, "SELECT count(*) FROM events")
    assert 0 < copied < ROWS  # really interrupted in the middle
    assert scalar(pg_url, "SELECT status FROM _golive.runs") == "copying"

    res = subprocess.run(args + ["--report", str(tmp_path / "second.json")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "second.json").read_text())
    assert report["resumed"] is True and report["ok"]
    events = next(t for t in report["tables"] if t["source"] == "events")
    assert events["rows_read"] == ROWS and events["rows_written"] == ROWS
    # every chunk committed before the kill was kept, not copied again
    assert sum(t["resumed_chunks"] for t in report["tables"]) >= before
    # nothing lost, nothing doubled (the primary key was built over the data), content intact
    assert scalar(pg_url, "SELECT count(*) FROM events") == ROWS
    assert scalar(pg_url, "SELECT count(DISTINCT id) FROM events") == ROWS
    db = sqlite3.connect(src)
    assert scalar(pg_url, "SELECT sum(n) FROM events") == db.execute("SELECT sum(n) FROM events").fetchone()[0]
    assert scalar(pg_url, "SELECT count(*) FROM pg_constraint WHERE conname = 'events_pkey'") == 1
    assert scalar(pg_url, "SELECT status FROM _golive.runs") == "complete"
    # and a third run (as after a kill -9 past the end) has nothing to do: the migration is complete, the source
    # unchanged
    res = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "nothing to do: the target already holds this migration" in res.stdout, res
    # the source changed since: refused as before
    os.utime(src, None)
    db = sqlite3.connect(src)
    db.execute("INSERT INTO kinds VALUES ('d')")
    db.commit()
    db.close()
    res = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "already holds this migration" in res.stderr, res

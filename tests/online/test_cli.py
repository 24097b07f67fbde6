"""``golive migrate db --online`` end to end: the CLI, the Prefect flow, an app writing to its SQLite file the
whole time; the automatic cut-over with a cut-over command, the manual one asked for from another terminal,
``status``, a killed run resumed by the same command, and ``abort``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg

from golive.dialects import dialect_of
from golive.urls import parse_url

from .conftest import Writer
from .test_sqlite import pg_rows, sqlite_rows, writes

TABLES = ("Album", "Genre", "InvoiceLine", "Track")


def same(path, url) -> None:
    for table in TABLES:
        assert pg_rows(url, table) == [tuple(v for v in r) for r in sqlite_rows(path, table)], table


def test_online_auto_cutover_runs_the_command_and_reports_the_freeze(golive, app, pg_url, tmp_path):
    switched = tmp_path / "switched"
    with Writer(writes(app)) as w:
        r = golive("migrate", "db", "-s", f"sqlite:///{app}", "-t", pg_url, "--online", "--max-lag", "1s",
                   "--cutover-command", f"touch {switched}", "--cutover-check", "full", "--report", tmp_path / "r.json")
        time.sleep(0.2)
    assert r.code == 0, r
    assert switched.exists() and w.refused and "golive: this database has moved" in w.refused
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["online"]["freeze_seconds"] < 5 and rep["online"]["changes_applied"] > 0, rep["online"]
    assert rep["validation"]["ok"] and rep["online"]["checked_rows"] >= 15607 and "write freeze" in r.all
    same(app, pg_url)
    s = golive("migrate", "status", "-s", f"sqlite:///{app}", "-t", pg_url)
    assert s.code == 0 and "cut-over" in s.all, s
    # the fence stays (the app moved); abort lifts it and removes every object golive added
    a = golive("migrate", "abort", "-s", f"sqlite:///{app}", "-t", pg_url)
    assert a.code == 0 and "trigger" in a.all, a
    src = parse_url(f"sqlite:///{app}")
    assert not dialect_of(src).capture.leftovers(src)
    sqlite3.connect(app).execute('INSERT INTO "Genre" ("Name") VALUES (\'writable again\')').connection.commit()


def test_manual_cutover_asked_from_another_terminal(golive, app, pg_url, tmp_path, prefect_api):
    args = ["migrate", "db", "-s", f"sqlite:///{app}", "-t", pg_url, "--online", "--cutover", "manual",
            "--no-validate"]
    with Writer(writes(app)) as w:
        proc = subprocess.Popen([sys.executable, "-m", "golive", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=dict(os.environ))
        try:
            _wait_for(golive, app, pg_url, "copied")
            time.sleep(2)
            assert proc.poll() is None  # still catching up: manual waits to be asked
            s = golive("migrate", "status", "-s", f"sqlite:///{app}", "-t", pg_url, env={"COLUMNS": "200"})
            assert "pending" in s.out and "s behind" in s.out, s  # the lag, from another terminal
            c = golive("migrate", "cutover", "-s", f"sqlite:///{app}", "-t", pg_url)
            assert c.code == 0 and "requested" in c.all, c
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out
    assert w.refused and w.n > 50
    same(app, pg_url)


def test_a_killed_online_run_resumes_with_the_same_command(golive, app, pg_url, tmp_path):
    args = ["migrate", "db", "-s", f"sqlite:///{app}", "-t", pg_url, "--online", "--cutover", "manual",
            "--no-validate"]
    with Writer(writes(app)) as w:
        proc = subprocess.Popen([sys.executable, "-m", "golive", *map(str, args)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tmp_path, env=dict(os.environ),
                                start_new_session=True)
        try:
            _wait_for(golive, app, pg_url, "copied")
            time.sleep(1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        n = w.n
        time.sleep(1)
        assert w.n > n and not w.refused  # the app goes on; its changes are still captured
        r = golive(*[a if a != "manual" else "auto" for a in args])
        time.sleep(0.2)
    assert r.code == 0, r
    assert w.refused
    same(app, pg_url)
    with psycopg.connect(pg_url) as conn:  # nothing was copied twice: the keys hold
        assert conn.execute('SELECT count(*) = count(DISTINCT "GenreId") FROM "Genre"').fetchone()[0]


def test_online_refuses_bad_options_in_one_line(golive, app, pg_url):
    r = golive("migrate", "db", "-s", f"sqlite:///{app}", "-t", pg_url, "--online", "--max-lag", "soon")
    assert r.code != 0 and "--max-lag 'soon' is not a duration" in r.err and "Traceback" not in r.all, r
    r = golive("migrate", "cutover", "-s", f"sqlite:///{app}", "-t", pg_url)
    assert r.code != 0 and "no online migration" in r.err, r


def _wait_for(golive, app, pg_url, status: str, timeout: float = 120) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        s = golive("migrate", "status", "-s", f"sqlite:///{app}", "-t", pg_url)
        if f" {status} " in s.out:
            return
        time.sleep(1)
    raise AssertionError(f"the online run never reached {status}: {s}")

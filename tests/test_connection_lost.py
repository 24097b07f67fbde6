"""The source goes away mid-copy (a server restart, every session killed): one line, exit 2, then resume.

A restart is simulated by killing every session of the source database on the machine's MariaDB and
PostgreSQL (``KILL CONNECTION`` / ``pg_terminate_backend``): the run's consistent snapshot dies with them,
so the run must stop rather than read a later moment, say so in one line, and the same command resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg

from conftest import _with_db
from helpers import execute, rows, scalar
from test_mysql_source import _events_db, _mysql

N = 300_000


def _start(src: str, target: str, tmp_path):
    cmd = [sys.executable, "-m", "golive", "migrate", "db", "--source", src, "--target", target,
           "--chunk-rows", "20000", "--workers", "1", "--no-validate", "--report", str(tmp_path / "r.json")]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_chunks(proc, target: str, n: int = 2) -> int:
    deadline = time.monotonic() + 120
    copied = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            copied = scalar(target, "SELECT count(*) FROM _golive.chunks")
        except Exception:  # noqa: BLE001 - the bookkeeping is not there yet
            copied = 0
        if copied >= n:
            break
        time.sleep(0.05)
    return copied


def _finish(proc, timeout: float = 180) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"golive did not stop after its source went away: {err[-2000:]}")
    return proc.returncode, err


def _check_stopped_then_resume(proc, target, src, golive, tmp_path, copied):
    code, err = _finish(proc)
    assert copied >= 2, err
    errors = [x for x in err.strip().splitlines() if x.startswith("error:")]  # the rest is progress
    assert code == 2, err
    assert len(errors) == 1 and "lost the connection to the source" in errors[0], err
    assert "run the same command again" in errors[0].lower() and err.strip().endswith(errors[0].strip())
    assert scalar(target, "SELECT count(*) FROM events") < N
    res = golive("migrate", "db", "--source", src, "--target", target, "--chunk-rows", "20000",
                 "--report", tmp_path / "r2.json", timeout=300)
    assert res.code == 0, res
    rep = json.loads((tmp_path / "r2.json").read_text())
    assert rep["resumed"] and rep["rows_written"] == N and rep["validation"]["ok"]
    assert rows(target, "SELECT count(*), count(DISTINCT id), sum(n) FROM events") == [
        (N, N, sum(i % 97 for i in range(1, N + 1)))]


def test_mysql_source_restart_mid_copy(mysql_admin_url, pg_url, golive, tmp_path):
    name = "golive_cl_" + uuid.uuid4().hex[:8]
    src = _events_db(mysql_admin_url, name, N)
    try:
        proc = _start(src, pg_url, tmp_path)
        copied = _wait_for_chunks(proc, pg_url)
        ids = _mysql(mysql_admin_url, "SELECT ID FROM information_schema.PROCESSLIST "
                                      f"WHERE DB = '{name}' AND ID <> CONNECTION_ID()")
        for (i,) in ids:
            try:
                _mysql(mysql_admin_url, f"KILL CONNECTION {int(i)}")
            except Exception:  # noqa: BLE001 - it may have closed meanwhile
                pass
        assert ids
        _check_stopped_then_resume(proc, pg_url, src, golive, tmp_path, copied)
    finally:
        _mysql(mysql_admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def test_postgres_source_restart_mid_copy(pg_admin_url, pg_url, golive, tmp_path):
    name = "golive_cl_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    src = _with_db(pg_admin_url, name)
    try:
        execute(src, "CREATE TABLE events (id int PRIMARY KEY, n int NOT NULL, note varchar(40))",
                f"INSERT INTO events SELECT i, i % 97, 'note ' || i FROM generate_series(1, {N}) i")
        proc = _start(src, pg_url, tmp_path)
        copied = _wait_for_chunks(proc, pg_url)
        killed = rows(pg_admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = %s AND pid <> pg_backend_pid()", name)
        assert killed
        _check_stopped_then_resume(proc, pg_url, src, golive, tmp_path, copied)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_mysql_statement_on_a_connection_the_restart_ended_is_one_clear_line(mysql_admin_url):
    """A MariaDB restart under ``golive restore``: the next statement on the restore's session failed inside PyMySQL
    (``'NoneType' object has no attribute 'sendall'``) and that was the error's line; both of PyMySQL's ways of
    saying its connection is gone now read as a lost connection, worth a retry (found by ``bench/chaos.py``
    restore-mysql x restart target)."""
    import pytest

    from golive.dialects.mysql.session import translate_error
    from golive.errors import TransientError

    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    conn = pymysql.connect(**connect_kwargs(parse_url(mysql_admin_url)))
    conn._sock = None  # what PyMySQL leaves once the server ended the session
    failures = []
    for call in (lambda: conn.cursor().execute("SELECT 1"), lambda: conn._write_bytes(b"x")):
        with pytest.raises(Exception) as info:
            call()
        failures.append(info.value)
    assert {type(e).__name__ for e in failures} == {"InterfaceError", "AttributeError"}
    for exc in failures:
        err = translate_error(exc, "restore into mysql://db")
        assert isinstance(err, TransientError), err
        assert str(err) == ("restore into mysql://db: the connection to the server was lost (the server restarted, "
                            "or the network or a proxy dropped it)")


def test_great_expectations_losing_the_database_is_one_clear_line_and_transient():
    """PostgreSQL restarted while ``golive restore`` ran its Great Expectations checks: the line was GX's wrapping of
    SQLAlchemy's wrapping of psycopg's error (``… due to OperationalError('(psycopg.OperationalError) connection
    failed: …\\nDETAIL: …')``), and a verification would have taken it for a verdict on the backup. Now the driver's
    first line, and a TransientError (found by ``bench/chaos.py`` restore-pg x restart target, seed 419440334)."""
    from golive.validation.gx_worker import error_line

    text = ("Attempt to connect to datasource failed: due to OperationalError('(psycopg.OperationalError) connection "
            'failed: connection to server at "127.0.0.1", port 55400 failed: FATAL:  the database system is not yet '
            "accepting connections\\nDETAIL:  Consistent recovery state has not been yet reached.\\n')")
    line, lost = error_line(text)
    assert lost
    assert line == ('connection failed: connection to server at "127.0.0.1", port 55400 failed: FATAL: the database '
                    "system is not yet accepting connections")
    assert error_line('relation "x" does not exist\nLINE 1: …') == ('relation "x" does not exist', False)

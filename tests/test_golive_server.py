"""``golive server start|stop|status``: one Prefect server in the background, found and used by later golive
commands that have no PREFECT_API_URL, and said so; on a fresh PREFECT_HOME, as on a user's first day."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid

import pytest

from conftest import CASES

pytestmark = pytest.mark.slow


def test_a_stale_state_file_is_ignored_and_removed(tmp_path, monkeypatch):
    from golive import server

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    server.state_path().write_text(json.dumps({"pid": dead.pid, "url": "http://127.0.0.1:9/api", "ui": "x",
                                               "log": "x", "started_at": 0}))
    assert server.read_state() is None and not server.state_path().exists()
    assert server.use_recorded_server() is None and "PREFECT_API_URL" not in os.environ
    # a live process that is not a Prefect server (the pid was reused) does not count either
    server.state_path().write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9/api", "ui": "x",
                                               "log": "x", "started_at": 0}))
    assert server.read_state() is None


def test_a_user_api_or_the_opt_out_starts_no_server(tmp_path, monkeypatch):
    from golive import server
    from golive.cli import _common

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert not server.server_wanted()  # PREFECT_API_URL set by the user always wins
    monkeypatch.delenv("PREFECT_API_URL")
    assert server.server_wanted()
    monkeypatch.setenv("GOLIVE_NO_SERVER", "1")
    assert not server.server_wanted()
    lines = []
    monkeypatch.setattr(_common, "note", lines.append)
    monkeypatch.setitem(_common._PREFECT_NOTED, "done", False)
    _common.note_prefect_api()
    assert "temporary API server (GOLIVE_NO_SERVER is set" in lines[0] and not server.state_path().exists()
    assert "PREFECT_API_URL" not in os.environ


def test_commands_started_together_share_one_server(tmp_path, monkeypatch):
    from golive import server

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "-")
    monkeypatch.delenv("PREFECT_API_URL")  # restored after the test (use_recorded_server sets it)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first, started = server.spawn(port=port)
    try:
        assert first.url == f"http://127.0.0.1:{port}/api" and server.read_state().pid == first.pid
        again, started_again = server.spawn()  # a second command while the first one's server starts
        assert started and not started_again and again.pid == first.pid and again.url == first.url
        assert server.use_recorded_server().pid == first.pid  # a third one waits for it rather than starting one
        assert server._PENDING["state"].pid == first.pid
    finally:
        server._PENDING.clear()
        stopped = server.stop()
        try:  # whatever happened above, no server is left behind
            os.killpg(first.pid, 9)
        except ProcessLookupError:
            pass
    assert stopped is not None and stopped.pid == first.pid
    assert not server.state_path().exists()


def test_the_first_command_starts_the_server_and_later_ones_reuse_it(tmp_path, pg_admin_url):
    """A new user's first day: no PREFECT_API_URL, a fresh PREFECT_HOME, no ``golive server start``."""
    import psycopg

    from conftest import _with_db

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API") and k != "GOLIVE_NO_SERVER"}
    env.update(PREFECT_HOME=str(tmp_path / "home"), DO_NOT_TRACK="1")

    def golive(*args, timeout=240):
        return subprocess.run([sys.executable, "-m", "golive", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=timeout)

    assert golive("server", "status").returncode == 1
    names = ["gpf_srv_" + uuid.uuid4().hex[:8] for _ in range(2)]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    state = tmp_path / "home" / "golive-server.json"
    try:
        chinook = CASES / "chinook" / "Chinook_Sqlite.sqlite"
        first = golive("migrate", "db", "--source", f"sqlite:///{chinook}", "--target",
                       _with_db(pg_admin_url, names[0]), "--no-validate")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "started a local Prefect server in the background" in first.stderr, first.stderr
        assert "`golive server stop` stops it" in first.stderr and "temporary" not in first.stderr
        api = json.loads(state.read_text())["url"]
        status = golive("server", "status")
        assert status.returncode == 0 and "answers" in status.stdout, status.stdout
        again = golive("server", "start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert f"export PREFECT_API_URL={api}" in again.stdout

        second = golive("migrate", "db", "--source", f"sqlite:///{chinook}", "--target",
                        _with_db(pg_admin_url, names[1]), "--no-validate", "--tables", "Genre,MediaType")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "reporting to the golive server left running" in second.stderr and "started" not in second.stderr

        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def runs():
            async with get_client() as client:
                return [r.state.type.value for r in await client.read_flow_runs()]

        with temporary_settings(updates={PREFECT_API_URL: api}):
            assert asyncio.run(runs()) == ["COMPLETED", "COMPLETED"]  # both runs are on the golive server
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        stopped = golive("server", "stop")
        if state.exists():  # the stop failed: do not leave a server behind
            os.killpg(json.loads(state.read_text())["pid"], 9)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert golive("server", "status").returncode == 1

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


def test_server_start_is_reused_by_migrate_db_and_stopped(tmp_path, pg_admin_url):
    import psycopg

    from conftest import _with_db

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), DO_NOT_TRACK="1")

    def golive(*args, timeout=240):
        return subprocess.run([sys.executable, "-m", "golive", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=timeout)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert golive("server", "status").returncode == 1
    started = golive("server", "start", "--port", str(port))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        api = f"http://127.0.0.1:{port}/api"
        assert f"UI http://127.0.0.1:{port}" in started.stdout and f"export PREFECT_API_URL={api}" in started.stdout
        again = golive("server", "start")
        assert again.returncode == 0 and "already running" in again.stdout
        status = golive("server", "status")
        assert status.returncode == 0 and "answers" in status.stdout

        name = "gpf_srv_" + uuid.uuid4().hex[:8]
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            chinook = CASES / "chinook" / "Chinook_Sqlite.sqlite"
            res = golive("migrate", "db", "--source", f"sqlite:///{chinook}", "--target", _with_db(pg_admin_url, name),
                         "--no-validate")
            assert res.returncode == 0, res.stdout + res.stderr
            assert "golive server start` left running" in res.stderr and "temporary" not in res.stderr
        finally:
            with psycopg.connect(pg_admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def runs():
            async with get_client() as client:
                return [r.state.type.value for r in await client.read_flow_runs()]

        with temporary_settings(updates={PREFECT_API_URL: api}):
            assert asyncio.run(runs()) == ["COMPLETED"]  # the CLI's run is on the golive server
    finally:
        stopped = golive("server", "stop")
        state = tmp_path / "home" / "golive-server.json"
        if state.exists():  # the stop failed: do not leave a server behind
            os.killpg(json.loads(state.read_text())["pid"], 9)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert golive("server", "status").returncode == 1

"""The migrate-database deployment from prefect.yaml, run the way CI runs it: a real Prefect API on loopback,
a process work pool and worker, and ``prefect deployment run ... --watch``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import CASES, ROOT
from fixtures import quirks
from helpers import scalar

PREFECT = str(Path(sys.executable).parent / "prefect")


def prefect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PREFECT, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PREFECT_CLI_PROMPT": "false"})


@pytest.fixture(scope="module")
def worker(prefect_api):
    pool = f"golive-test-{uuid.uuid4().hex[:6]}"
    res = prefect("work-pool", "create", pool, "--type", "process")
    assert res.returncode == 0, res.stdout + res.stderr
    res = prefect("--no-prompt", "deploy", "--name", "migrate-database", "--pool", pool)
    assert res.returncode == 0, res.stdout + res.stderr
    proc = subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, "--limit", "2"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    yield pool
    # a Prefect worker ignores the first SIGTERM for a while: then insist
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    prefect("work-pool", "delete", pool)


def test_deployment_run_watch_migrates(worker, pg_url):
    chinook = CASES / "chinook" / "Chinook_Sqlite.sqlite"
    res = prefect("deployment", "run", "migrate-database/migrate-database", "--param", f"source=sqlite:///{chinook}",
                  "--param", f"target={pg_url}", "--watch", "--watch-timeout", "240")
    assert res.returncode == 0, res.stdout + res.stderr
    assert scalar(pg_url, 'SELECT count(*) FROM "Track"') == 3503
    assert scalar(pg_url, "SELECT status FROM _golive.runs") == "complete"


def test_deployment_run_fails_when_rows_are_rejected(worker, pg_url, tmp_path):
    src = quirks.build(tmp_path / "q.db")
    res = prefect("deployment", "run", "migrate-database/migrate-database", "--param", f"source=sqlite:///{src}",
                  "--param", f"target={pg_url}", "--watch", "--watch-timeout", "240")
    assert res.returncode != 0 and "Failed" in res.stdout, res.stdout + res.stderr
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def last_message():
        async with get_client() as client:
            runs = await client.read_flow_runs(limit=1, sort=FlowRunSort.START_TIME_DESC)
            return runs[0].state.message

    assert "7 rows rejected" in asyncio.run(last_message())

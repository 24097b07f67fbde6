"""The maintenance and report deployments of prefect.yaml: parameters valid for their flows, schedules in UTC as
the seeds plan them, and accepted by ``prefect deploy`` against a real Prefect API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

SCHEDULES = {"refresh-views": "5 * * * *", "purge-soft-deleted": "30 2 * * *", "vacuum-analyze": "0 3 * * 0",
             "reindex": "0 4 1 * *", "database-report": "0 6 * * *"}
PREFECT = str(Path(sys.executable).parent / "prefect")


def deployments() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}


def test_parameters_and_schedules():
    from flows.database_report import DatabaseReportParams
    from flows.maintenance import MaintenanceParams

    got = deployments()
    for name in [*SCHEDULES, "maintenance"]:
        d = got[name]
        model = DatabaseReportParams if name == "database-report" else MaintenanceParams
        params = model(**d["parameters"]["params"])
        assert params.db.get_secret_value() == "block:golive-db"
        if name in SCHEDULES:
            assert d["schedules"] == [{"cron": SCHEDULES[name], "timezone": "UTC"}]
            if name != "database-report":
                assert params.tasks[0] == name
    assert got["vacuum-analyze"]["parameters"]["params"]["tasks"] == ["vacuum-analyze", "analyze"]


def test_prefect_deploy_registers_the_schedules(prefect_api):
    env = {**os.environ, "PREFECT_CLI_PROMPT": "false"}
    run = lambda *a: subprocess.run([PREFECT, *a], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)  # noqa: E731
    # prefect.yaml's own pool, in the session's temporary API (deploying several at once takes no --pool)
    run("work-pool", "create", "golive-process", "--type", "process")
    names = [x for n in SCHEDULES for x in ("--name", n)]
    res = run("--no-prompt", "deploy", *names)
    assert res.returncode == 0, res.stdout + res.stderr

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            out = {}
            for flow, name in [("maintenance", n) for n in SCHEDULES if n != "database-report"] + [
                    ("database-report", "database-report")]:
                d = await client.read_deployment_by_name(f"{flow}/{name}")
                out[name] = ([s.schedule.cron for s in d.schedules], [s.schedule.timezone for s in d.schedules],
                             d.parameters)
            return out

    got = asyncio.run(read())
    for name, cron in SCHEDULES.items():
        assert got[name][0] == [cron] and got[name][1] == ["UTC"], got[name]
    assert got["purge-soft-deleted"][2]["params"]["purge_tables"] == ["posts"]

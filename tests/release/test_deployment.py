"""The ``release`` deployment of prefect.yaml and the GitHub Actions example: their parameters are valid for the
flow, and ``prefect deploy`` registers the deployment with a real Prefect API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

PREFECT = str(Path(sys.executable).parent / "prefect")


def test_parameters_of_the_deployment_and_the_ci_example():
    from flows.release import ReleaseParams

    dep = next(d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"] if d["name"] == "release")
    assert dep["entrypoint"] == "flows/release.py:release" and dep["work_pool"]["name"] == "golive-process"
    p = ReleaseParams(**dep["parameters"]["params"])
    assert p.db.get_secret_value() == "block:golive-db" and p.notify[0].get_secret_value().startswith("slack+block:")
    ci = (ROOT / "deployments" / "github-actions-release.yml").read_text()
    workflow = yaml.safe_load(ci)
    steps = workflow["jobs"]["release"]["steps"]
    run = next(s["run"] for s in steps if "prefect deployment run release/release" in s.get("run", ""))
    assert "--watch" in run
    params = json.loads(re.search(r"--params '(.*)'", run, re.S).group(1))["params"]
    ReleaseParams(**params)
    lint = next(s["run"] for s in workflow["jobs"]["lint"]["steps"] if "golive release" in s.get("run", ""))
    assert "--lint-only" in lint


def test_prefect_deploy_registers_release(prefect_api):
    env = {**os.environ, "PREFECT_CLI_PROMPT": "false"}
    run = lambda *a: subprocess.run([PREFECT, *a], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)  # noqa: E731
    run("work-pool", "create", "golive-process", "--type", "process")
    res = run("--no-prompt", "deploy", "--name", "release")
    assert res.returncode == 0, res.stdout + res.stderr

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_deployment_by_name("release/release")

    dep = asyncio.run(read())
    assert dep.parameters["params"]["migrations"] == "sql:migrations"
    assert "db" in dep.parameter_openapi_schema["definitions"]["ReleaseParams"]["properties"]

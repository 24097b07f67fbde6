"""deployments/: the compose file, the GitHub Actions example and prefect.yaml hold together (no Docker
engine runs here: deployments/selfhost.sh, the no-Docker recipe, is what tests/test_prefect_e2e.py runs)."""

from __future__ import annotations

import re

import yaml

from conftest import ROOT

DEPLOYMENTS = ROOT / "deployments"
LATER: set[str] = set()  # deployments of flows not written yet


def test_prefect_yaml_follows_the_conventions():
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for d in doc["deployments"]:
        path, _, fn = d["entrypoint"].partition(":")
        assert re.fullmatch(r"flows/[a-z_]+\.py", path) and fn, d["name"]
        assert d["work_pool"]["name"] == "golive-process", d["name"]
        assert "golive" in d["tags"] and d["description"], d["name"]
        for s in d.get("schedules") or []:
            assert s.get("cron") and s.get("timezone"), f"{d['name']}: schedules need cron and timezone"


def test_github_actions_example_runs_the_deployments_with_watch():
    wf = yaml.safe_load((DEPLOYMENTS / "github-actions.yml").read_text())
    known = {f"{d['name']}/{d['name']}" for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    runs = [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "deployment run" in step.get("run", "")]
    named = {re.search(r"deployment run (\S+)", r).group(1) for r in runs}
    assert named == {"release/release", "go-live/go-live", "migrate-database/migrate-database"}
    assert named <= known | LATER
    assert all("--watch" in r for r in runs)
    assert not any(re.search(r"://[^/@\s]+:[^/@\s]+@", r) for r in runs)  # no password in a parameter


def test_compose_has_server_worker_and_golive():
    compose = yaml.safe_load((DEPLOYMENTS / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"prefect-server", "worker", "deploy"} <= set(services)
    assert "prefect server start" in services["prefect-server"]["command"]
    assert "prefect:3.8.8" in services["prefect-server"]["image"]
    assert "--pool golive-process" in services["worker"]["command"]
    assert services["deploy"]["build"]["dockerfile"] == "deployments/Dockerfile"
    dockerfile = (DEPLOYMENTS / "Dockerfile").read_text()
    for part in ("golive", "flows", "tasks", "prefect.yaml"):
        assert part in dockerfile

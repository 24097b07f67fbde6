"""golive on a real, self-hosted Prefect: server, work pool, deployments and a process worker on loopback,
started by deployments/selfhost.sh (the no-Docker recipe) with a temporary PREFECT_HOME, as an operator would.

- every deployment of prefect.yaml is registered, with its schedules (cron strings, time zones);
- ``prefect deployment run migrate-database/migrate-database --watch`` with the target URL in a Secret block
  (a PostgreSQL role with a password, made here): the data arrives, and the password is nowhere in what the
  API stores (flow-run parameters, task runs, artifacts, logs) nor in what the CLI printed;
- in Debian's chromium (headless, selenium + chromium-driver): the deployment's form filled in as a person
  would, the run it starts, and a screenshot of the run page with golive's artifacts
  (test-artifacts/prefect-run.png; docs/prefect-run.png is one of them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import CASES, ROOT, _with_db

PREFECT = str(Path(sys.executable).parent / "prefect")
SELFHOST = ROOT / "deployments" / "selfhost.sh"
PASSWORD = "pw-" + uuid.uuid4().hex[:12]
ARTIFACTS = Path(os.environ.get("GOLIVE_TEST_ARTIFACTS", ROOT / "test-artifacts"))

pytestmark = pytest.mark.slow  # (one xdist worker runs this module: tests/conftest.py ONE_WORKER_MODULES)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SelfHosted:
    def __init__(self, home: Path, port: int):
        self.home, self.port = home, port
        self.api = f"http://127.0.0.1:{port}/api"
        self.ui = f"http://127.0.0.1:{port}"
        self.state = home / "golive-selfhost"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        self.env.update(PREFECT_HOME=str(home), GOLIVE_PREFECT_PORT=str(port), GOLIVE_STOP_WAIT="0",
                        PREFECT=PREFECT, GOLIVE_WORKER_LIMIT="2", PREFECT_WORKER_QUERY_SECONDS="1",
                        PREFECT_CLI_PROMPT="false", DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")

    def script(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SELFHOST), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env)

    def prefect(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([PREFECT, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env={**self.env, "PREFECT_API_URL": self.api})

    def call(self, fn):
        """``await fn(client)`` against this server (not the session's test API)."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def run():
            async with get_client() as client:
                return await fn(client)

        with temporary_settings(updates={PREFECT_API_URL: self.api}):
            return asyncio.run(run())

    def kill_all(self) -> None:
        """SIGKILL the recorded process groups: a worker ignores the first SIGTERM for 20-30 s."""
        for name in ("worker", "server"):
            try:
                os.killpg(int((self.state / f"{name}.pid").read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    h = SelfHosted(tmp_path_factory.mktemp("gpf_prefect_home"), _free_port())
    res = h.script("start")
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"PREFECT_API_URL={h.api}" in res.stdout
        yield h
    finally:
        stopped = h.script("stop", timeout=60)
        h.kill_all()
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture
def gpf_target(pg_admin_url):
    """A database gpf_app_<hex> owned by a role with a password; yields (URL with password, admin URL)."""
    import psycopg

    name = "gpf_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {name}')
    admin = _with_db(pg_admin_url, name)
    url = re.sub(r"^postgresql://[^@/]*@", f"postgresql://{name}:{PASSWORD}@", admin)
    if url == admin:  # an admin URL without user@ (a socket, pgserver): put the role in front of the host
        url = admin.replace("postgresql://", f"postgresql://{name}:{PASSWORD}@", 1)
    yield url, admin
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def save_secret(hosted: SelfHosted, value: str) -> str:
    from prefect.blocks.system import Secret

    name = "gpf-target-" + uuid.uuid4().hex[:8]

    async def save(client):
        await Secret(value=value).save(name, client=client)

    hosted.call(save)
    return name


def stored_for(hosted: SelfHosted, run_id) -> tuple[str, dict]:
    """Everything the API keeps about a flow run, as JSON text, and its artifacts by key."""
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterId, LogFilter, LogFilterFlowRunId)

    async def read(client):
        run = await client.read_flow_run(run_id)
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return run, tasks, arts, logs

    run, tasks, arts, logs = hosted.call(read)
    text = json.dumps([run.model_dump(mode="json"), [t.model_dump(mode="json") for t in tasks],
                       [a.model_dump(mode="json") for a in arts], [lg.model_dump(mode="json") for lg in logs]])
    return text, {a.key: a for a in arts if a.key}


def latest_run(hosted: SelfHosted, deployment: str):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    async def read(client):
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                                           sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1)
        return runs[0] if runs else None

    return hosted.call(read)


def run_with_target(hosted: SelfHosted, deployment: str, target: str):
    """The latest run of ``deployment`` whose ``target`` parameter is ``target`` (a block name made for one
    test), or None."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    async def read(client):
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
                                           sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=20)
        return next((r for r in runs if r.parameters.get("target") == target), None)

    return hosted.call(read)


def _wait_for_run(hosted: SelfHosted, target: str, seconds: float):
    deadline = time.monotonic() + seconds
    while (run := run_with_target(hosted, "migrate-database", target)) is None and time.monotonic() < deadline:
        time.sleep(1)
    return run


def key_of(dbname: str) -> str:
    return dbname.replace("_", "-")


# ---------------------------------------------------------------- deployments and schedules

def test_every_deployment_and_schedule_of_prefect_yaml_is_registered(hosted):
    import yaml

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]

    async def read(client):
        return {d.name: d for d in await client.read_deployments()}

    registered = hosted.call(read)
    assert sorted(registered) == sorted(d["name"] for d in declared)
    for d in declared:
        got = registered[d["name"]]
        assert got.entrypoint == d["entrypoint"] and got.work_pool_name == "golive-process"
        assert set(d["tags"]) <= set(got.tags) and got.description == d["description"]
        assert got.parameters == (d.get("parameters") or {}), d["name"]
        assert got.parameter_openapi_schema["properties"], d["name"]  # the form
        want = sorted((s["cron"], s.get("timezone"), s.get("active", True)) for s in d.get("schedules") or [])
        have = sorted((s.schedule.cron, s.schedule.timezone, s.active) for s in got.schedules)
        assert have == want, d["name"]
    assert ("30 3 * * *", "UTC", False) in [(s.schedule.cron, s.schedule.timezone, s.active)
                                            for s in registered["verify-files"].schedules]
    status = hosted.script("status")
    assert status.returncode == 0 and "worker running" in status.stdout, status.stdout


# ---------------------------------------------------------------- CI: prefect deployment run --watch

def test_deployment_run_watch_with_the_target_in_a_secret_block(hosted, gpf_target):
    from helpers import scalar

    url, admin = gpf_target
    block = save_secret(hosted, url)
    chinook = CASES / "chinook" / "Chinook_Sqlite.sqlite"
    res = hosted.prefect("deployment", "run", "migrate-database/migrate-database",
                         "--param", f"source=sqlite:///{chinook}", "--param", f"target=block:{block}",
                         "--watch", "--watch-timeout", "200")
    assert res.returncode == 0, res.stdout + res.stderr
    assert PASSWORD not in res.stdout + res.stderr
    assert scalar(admin, 'SELECT count(*) FROM "Track"') == 3503
    assert scalar(admin, "SELECT status FROM _golive.runs") == "complete"
    run = latest_run(hosted, "migrate-database")
    assert run.parameters["target"] == f"block:{block}"
    text, artifacts = stored_for(hosted, run.id)
    assert PASSWORD not in text and url not in text
    db = key_of(admin.rsplit("/", 1)[1])
    assert {f"migration-progress-{db}", f"migration-tables-{db}", f"validation-summary-{db}"} <= set(artifacts)


# ---------------------------------------------------------------- the UI, in a real browser

def _browser():
    chromium, driver = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(driver)):
        message = "needs Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpf_chrome_{uuid.uuid4().hex[:8]}"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1400,1460"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    drv.implicitly_wait(10)
    return drv, profile


def test_ui_form_starts_migrate_database_and_the_run_page_shows_golives_artifacts(hosted, gpf_target, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from golive import sample
    from helpers import scalar

    url, admin = gpf_target
    block = save_secret(hosted, url)
    app = tmp_path / "app.db"
    counts = sample.build(app, users=60, bad_rows=False)
    drv, profile = _browser()
    try:
        # Deployments -> migrate-database -> Run -> Custom run
        drv.get(f"{hosted.ui}/deployments")
        link = next(a for a in drv.find_elements(By.PARTIAL_LINK_TEXT, "migrate-database")
                    if "/deployments/deployment/" in (a.get_attribute("href") or ""))
        drv.get(link.get_attribute("href"))
        drv.find_element(By.XPATH, "//button[normalize-space(.)='Run']").click()
        drv.find_element(By.XPATH, "//button[contains(., 'Custom run')]").click()

        def field(label: str, kind: str = "textarea"):
            return drv.find_element(By.XPATH, f"//label[normalize-space(.)='{label}']/following::{kind}[1]")

        # the form, filled in as a person would: the source, the Secret block's name, two options
        field("source").send_keys(f"sqlite:///{app}")
        field("target").send_keys(f"block:{block}")
        workers = field("Workers (Optional)", "input[@type='number']")
        workers.clear()
        workers.send_keys("2")
        workers.send_keys(Keys.TAB)  # the form takes a number field's value when it loses focus
        # on a loaded machine the keystrokes have reached the element but not always the form's model (the run
        # then had no options): set the same value the way the browser reports an edit, which the model hears
        drv.execute_script(
            "const el = arguments[0];"
            "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(el, '2');"
            "for (const t of ['input', 'change', 'blur']) el.dispatchEvent(new Event(t, {bubbles: true}));",
            workers)
        time.sleep(0.5)
        assert workers.get_attribute("value") == "2"
        assert "Rejected rows tolerated" in drv.page_source and "Validate after copying" in drv.page_source
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(ARTIFACTS / "prefect-form.png"))
        submit = drv.find_element(By.XPATH, "//button[normalize-space(.)='Submit']")
        drv.execute_script("arguments[0].scrollIntoView()", submit)
        submit.click()
        # the run the form created: this test's block is its target (waiting on "the latest run" instead took
        # an earlier test's run once, when the click had not created one)
        run = _wait_for_run(hosted, f"block:{block}", 45)
        if run is None:  # the click did not submit (a toast over the button, a slow page): as a person would
            drv.save_screenshot(str(ARTIFACTS / "prefect-form-not-submitted.png"))
            page = drv.find_element(By.TAG_NAME, "body").text[-1500:]
            buttons = drv.find_elements(By.XPATH, "//button[normalize-space(.)='Submit']")
            if buttons:
                drv.execute_script("arguments[0].click()", buttons[0])
            run = _wait_for_run(hosted, f"block:{block}", 45)
            assert run is not None, f"the form created no flow run; the page said: {page}"

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (run.state and run.state.is_final()):
            time.sleep(1)
            run = run_with_target(hosted, "migrate-database", f"block:{block}")
        assert run.state.is_completed(), run.state
        assert run.parameters.get("options", {}).get("workers") == 2, run.parameters
        assert scalar(admin, "SELECT count(*) FROM images") == counts["images"]

        # the run page, Artifacts tab: progress, tables, validation summary, keyed by the database
        db = key_of(admin.rsplit("/", 1)[1])
        drv.get(f"{hosted.ui}/runs/flow-run/{run.id}")
        drv.find_element(By.XPATH, "//li[@id='artifacts']").click()
        for key in (f"migration-progress-{db}", f"migration-tables-{db}", f"validation-summary-{db}"):
            drv.find_element(By.XPATH, f"//*[normalize-space(text())='{key}']")
        time.sleep(1)  # let the cards finish rendering
        drv.save_screenshot(str(ARTIFACTS / "prefect-run.png"))
        assert PASSWORD not in drv.page_source
        drv.find_element(By.XPATH, "//li[@id='parameters']").click()
        drv.find_element(By.XPATH, f"//*[contains(., 'block:{block}')]")
        assert PASSWORD not in drv.page_source
        # the validation summary (markdown) on its own page, and its history under the same key
        drv.find_element(By.XPATH, "//li[@id='artifacts']").click()
        drv.find_element(By.XPATH, f"//*[normalize-space(text())='validation-summary-{db}']").click()
        drv.find_element(By.XPATH, "//th[contains(., 'source rows')]")
        drv.save_screenshot(str(ARTIFACTS / "prefect-validation.png"))
        assert PASSWORD not in drv.page_source
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
    text, _ = stored_for(hosted, run.id)
    assert PASSWORD not in text
    assert (ARTIFACTS / "prefect-run.png").stat().st_size > 20_000


def test_a_plain_url_with_a_password_in_a_deployment_run_gets_a_warning(hosted, gpf_target):
    url, _ = gpf_target
    chinook = CASES / "chinook" / "Chinook_Sqlite.sqlite"
    res = hosted.prefect("deployment", "run", "migrate-database/migrate-database", "--params",
                         json.dumps({"source": f"sqlite:///{chinook}", "target": url, "options": {"dry_run": True}}),
                         "--watch", "--watch-timeout", "120")
    assert res.returncode == 0, res.stdout + res.stderr
    text, _ = stored_for(hosted, latest_run(hosted, "migrate-database").id)
    assert "parameter 'target' carries a password" in text and "block:NAME" in text


# ---------------------------------------------------------------- the whole go-live, from CI

def test_go_live_through_deployment_run_watch_with_blocks(hosted, gpf_target, s3, s3_endpoint, tmp_path):
    """``prefect deployment run go-live/go-live --param config_file=… --watch``: the target URL and the S3
    keys in Secret blocks; the data, the files and the rewritten paths arrive; no password anywhere."""
    from golive import sample
    from helpers import scalar

    url, admin = gpf_target
    db_block = save_secret(hosted, url)
    keys_block = save_secret(hosted, json.dumps({"aws_access_key_id": "test", "aws_secret_access_key": "test"}))
    counts = sample.build(tmp_path / "app.db", users=40, uploads=tmp_path / "uploads")
    bucket = "gpf-" + uuid.uuid4().hex[:8]
    cfg = tmp_path / "golive.toml"
    cfg.write_text(f'''state_dir = "{tmp_path / 'state'}"
[source]
database = "sqlite:///{tmp_path / 'app.db'}"
uploads = "{tmp_path / 'uploads'}"
[target]
database = "block:{db_block}"
bucket = "s3://{bucket}/uploads"
endpoint_url = "{s3_endpoint}"
region = "us-east-1"
credentials_block = "{keys_block}"
[[rewrite]]
table = "images"
column = "path"
strip_prefix = "uploads/"
template = "s3://{{bucket}}/{{key}}"
[migrate]
max_rejects = 2
workers = 2
[files]
create_bucket = true
''')
    res = hosted.prefect("deployment", "run", "go-live/go-live", "--param", f"config_file={cfg}",
                         "--watch", "--watch-timeout", "400", timeout=460)
    assert res.returncode == 0, latest_run(hosted, "go-live").state.message
    assert scalar(admin, "SELECT count(*) FROM users") == counts["users"]
    images = scalar(admin, "SELECT count(*) FROM images")
    assert scalar(admin, f"SELECT count(*) FROM images WHERE starts_with(path, 's3://{bucket}/uploads/')") == images
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="uploads/")["Contents"]) == counts["images"]
    run = latest_run(hosted, "go-live")
    assert run.parameters == {"config_file": str(cfg)}
    text, artifacts = stored_for(hosted, run.id)
    assert PASSWORD not in text and PASSWORD not in res.stdout + res.stderr
    assert f"go-live-{key_of(admin.rsplit('/', 1)[1])}" in artifacts
    report = json.loads(next((tmp_path / "state" / "go-live").rglob("report.json")).read_text())
    assert report["ok"] and [s["status"] for s in report["steps"]] == ["done"] * 8
    assert not any(PASSWORD in p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*.json"))

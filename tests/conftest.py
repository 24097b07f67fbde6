"""Shared fixtures: real PostgreSQL / MariaDB from the machine, a real S3 (moto server on loopback),
and one real Prefect API for the whole session.

Environment knobs:
  GOLIVE_TEST_PG     admin URL of a PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres;
                     when it does not answer, an embedded pgserver is started instead)
  GOLIVE_TEST_MYSQL  admin URL of MySQL/MariaDB (default mysql://root@127.0.0.1:3306/test)
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from golive.runtime import apply_offline_defaults

apply_offline_defaults()

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CASES = FIXTURES / "cases"  # Chinook and Sakila, vendored with their licences

#: modules whose tests share a costly module fixture (a self-hosted Prefect server: 35-45 s to start; a worker and
#: its deployment; a Dask cluster; an embedded PostgreSQL; a database migrated once), each run by one
#: pytest-xdist worker; every other test goes to whichever worker is free
ONE_WORKER_MODULES = ("tests/test_prefect_e2e.py", "tests/test_deployment.py", "tests/test_dask.py",
                      "tests/test_cli_errors.py", "tests/test_migrate_quirks.py", "tests/test_mysql_source.py",
                      "tests/test_postgres_source.py", "tests/validation/test_validate_flow.py",
                      "tests/chaos/test_hostile_input.py", "tests/chaos/test_secrets.py",
                      "tests/archive/test_pitr.py", "tests/archive/test_postgresql_engine.py",
                      "tests/archive/test_mysql_engine.py")


@pytest.hookimpl(optionalhook=True)  # a plain `pytest -p no:xdist` still runs
def pytest_xdist_make_scheduler(config, log):
    """``make test``'s two workers: xdist's ``loadgroup`` would do this, but with pytest 9 its group marker no
    longer reaches the node ids, so each test of a module could start the module's server again."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduler(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return Scheduler(config, log)


# ---------------------------------------------------------------- PostgreSQL

def _pg_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory) -> str:
    """URL of a PostgreSQL database where tests may CREATE DATABASE."""
    url = os.environ.get("GOLIVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    if _pg_answers(url):
        return url
    import pgserver

    srv = pgserver.get_server(str(tmp_path_factory.mktemp("pgdata")), cleanup_mode="stop")
    return srv.get_uri()


def _with_db(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture
def pg_url(pg_admin_url) -> str:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    name = "golive_t_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_conn(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


# ---------------------------------------------------------------- MariaDB / MySQL

@pytest.fixture(scope="session")
def mysql_admin_url() -> str:
    url = os.environ.get("GOLIVE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
    import pymysql

    from golive.urls import parse_url

    u = parse_url(url)
    try:
        pymysql.connect(host=u.host, port=u.port or 3306, user=u.user, password=u.password or "",
                        database=u.database, connect_timeout=3).close()
    except Exception as exc:  # the machine's MariaDB is part of the test environment
        pytest.skip(f"needs MySQL/MariaDB at {u}: {exc}")
    return url


# ---------------------------------------------------------------- S3 (moto server mode)

@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A real S3 HTTP endpoint on loopback (moto's server mode). Credentials: test/test."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint):
    """A boto3 client of the moto server."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket."""
    import uuid

    name = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(s3_endpoint):
    """A fault-injecting proxy in front of the moto server (tests/s3proxy.py)."""
    from s3proxy import S3Proxy

    p = S3Proxy(s3_endpoint)
    yield p
    p.close()


# ---------------------------------------------------------------- Prefect

@pytest.fixture(scope="session")
def prefect_api():
    """One real Prefect API server for the whole session; its URL is exported for subprocesses."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
        old = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if old is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old


# ---------------------------------------------------------------- running the CLI

class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def all(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:
        return f"<exit {self.code}>\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@pytest.fixture
def golive(prefect_api, tmp_path):
    """Run ``golive ARGS`` in a subprocess against the session's Prefect API; returns a CliResult."""

    def run(*args: str, timeout: float = 300, env: dict | None = None, cwd: Path | None = None) -> CliResult:
        e = dict(os.environ)
        e.update(env or {})
        proc = subprocess.run([sys.executable, "-m", "golive", *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=e, cwd=str(cwd or tmp_path))
        return CliResult(proc)

    return run


# ---------------------------------------------------------------- working directory

@pytest.fixture(scope="session", autouse=True)
def _work_in_tmp_dir(tmp_path_factory):
    """Run the session in a scratch directory: the migration's validation step writes expectations/ and
    golive-runs/ relative to the working directory, as it does in a user's project."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(old)


# ---------------------------------------------------------------- embedded PostgreSQL

@pytest.fixture
def embedded_dir(tmp_path):
    """A data folder for ``embedded://DIR``; the server golive starts there is stopped afterwards (golive leaves
    it running on purpose, for the app)."""
    from golive.dialects import dialect_of
    from golive.urls import parse_url

    path = tmp_path / "pgdata"
    yield path
    url = parse_url(f"embedded://{path}")
    if path.exists():
        dialect_of(url).stop_server(url)

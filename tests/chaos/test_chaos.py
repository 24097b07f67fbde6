"""The chaos campaign's fixed quick sample (the full campaign: ``bench/chaos.py --trials N``): object storage faults
at 10 % (retried, finished, equal) and 100 % (one line, nothing claimed, the next run finishes), a full disk under
the state directory, the backup staging and the restore scratch, and ``kill -9`` at one fixed point per flow, then
the same command. Each trial's checks are in ``chaoslib.py``; a failing one names what differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import chaoslib
from .chaoslib import Env


@pytest.fixture
def env(s3_endpoint, proxy, tmp_path) -> Env:
    return Env(s3_endpoint=s3_endpoint, proxy=proxy, work=tmp_path, quick=True)


# flow, fault, rate, seed: faults the campaign found golive failing on (the rest of the campaign: bench/chaos.py)
S3_SAMPLE = [
    ("files", "lost", 0.1, 3),  # a lost CreateMultipartUpload answer left an upload open
    ("backup", "lost", 0.1, 3),  # the same for a backup's object
    ("verify", "503", 1.0, 6),  # a verification that could not read the backup recorded it as failed
]


@pytest.mark.parametrize("flow,fault,rate,seed", S3_SAMPLE, ids=[f"{f}-{k}-{int(r * 100)}" for f, k, r, _ in S3_SAMPLE])
def test_object_storage_faults(env, flow, fault, rate, seed):
    outcome = chaoslib.S3_TRIALS[flow](env, fault, rate, seed)
    assert outcome.survived, str(outcome)


@pytest.mark.parametrize("place", ["state", "staging", "scratch"])
def test_disk_full(env, place):
    try:
        outcome = chaoslib.DISK_TRIALS[place](env, 7)
    except chaoslib.MountRefused as exc:
        pytest.skip(f"needs to mount a small tmpfs (root): {exc}")
    assert outcome.survived, str(outcome)


@pytest.mark.parametrize("flow", ["backup", "restore-pg"])
def test_kill_9_then_the_same_job(env, flow, request):
    """The jobs through golive's Python API in a plain process, killed at a fixed point (a multipart upload open;
    pg_restore writing the target): the ``golive`` commands with their Prefect flow runs, ``migrate files`` and ``migrate
    db`` into PostgreSQL and MariaDB included, at random moments: ``bench/chaos.py``; ``tests/test_resume.py`` and
    ``tests/test_files_cli.py`` kill ``golive migrate db`` and ``golive migrate files``)."""
    if flow == "restore-pg":  # killed while pg_restore writes: the same job replaces what it half-wrote
        env.pg_admin_url = request.getfixturevalue("pg_admin_url")
    outcome = chaoslib.kill_trial(env, flow, seed=11, engine=True)
    assert "killed" in outcome.note, outcome.note  # the fixed point was reached before the job ended
    assert outcome.survived, f"{outcome} ({outcome.note})"


# ---------------------------------------------------------------- servers restarted mid-run (issue 22)


@pytest.fixture(scope="module")
def chaos_servers():
    """The harness's own PostgreSQL and MariaDB (tests/chaos/servers.py), restarted by the trials."""
    from .servers import Servers, available

    if (why := available()):
        pytest.skip(f"needs throwaway database servers: {why}")
    with Servers() as s:
        yield s


@pytest.fixture
def cli_env(env, prefect_api) -> Env:
    """The trials' ``golive`` commands run this worktree's code against the session's Prefect API."""
    root = str(Path(__file__).resolve().parents[2])
    env.cli_env = {"PYTHONPATH": root, "PREFECT_API_URL": prefect_api}
    return env


@pytest.mark.parametrize("flow,side", [("backup-pg", "source"), ("migrate-mysql", "target")])
def test_server_restarted_mid_run(cli_env, chaos_servers, flow, side):
    """PostgreSQL restarted (``pg_ctl restart -m immediate``) while ``golive backup`` dumps it; MariaDB killed and
    started again while ``golive migrate db`` writes into it: the command finishes, or fails with one line and the
    same command then finishes; the end state equals an uninterrupted run's (a restorable, verified backup; the
    target's rows equal the source's), no scratch database, temp file or process left (``dbflows.restart_trial``)."""
    from . import dbflows as flows

    outcome = flows.restart_trial(cli_env, chaos_servers, flow, side, seed=5)
    assert "restarted" in outcome.note, outcome.note  # the moment came before the command ended
    assert outcome.survived, f"{outcome} ({outcome.note})"


@pytest.mark.parametrize("flow", ["backup-mysql", "release"])
def test_kill_9_the_database_commands(cli_env, mysql_admin_url, pg_admin_url, flow):
    """``golive backup`` of MariaDB killed while it verifies (its scratch database on the server), ``golive release``
    killed after its migrations (validating): the same command (a release: with ``--resolve-interrupted``, as it
    says) finishes; no scratch database, no temp directory, no release left ``running`` (``dbflows.py``; every
    database command at random moments: ``bench/chaos.py``)."""
    from . import dbflows  # noqa: F401 - registers the database flows

    cli_env.pg_admin_url, cli_env.mysql_admin_url = pg_admin_url, mysql_admin_url
    outcome = chaoslib.kill_trial(cli_env, flow, seed=13)
    assert "killed" in outcome.note, outcome.note
    assert outcome.survived, f"{outcome} ({outcome.note})"

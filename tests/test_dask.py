"""Scale-out: the same migration with its chunk tasks on a Dask cluster gives an identical result."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fixtures import quirks
from helpers import migrate, rows


def table_digest(url: str) -> dict[str, tuple]:
    out = {}
    for (t,) in rows(url, "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        out[t] = rows(url, f"SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                           f"FROM {t} x")[0]
    out["_types"] = tuple(rows(url, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                                    "WHERE table_schema = 'public' ORDER BY 1, 2"))
    return out


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_dask_gives_the_same_result_as_threads(cluster, pg_url, pg_admin_url, tmp_path, prefect_api):
    from prefect_dask import DaskTaskRunner

    from conftest import _with_db
    from flows.migrate_database import migrate_database
    from golive.config import MigrateOptions
    import psycopg, uuid

    src = quirks.build(tmp_path / "q.db")
    local = migrate(src, pg_url, chunk_rows=2, report=str(tmp_path / "local.json"))

    name = "golive_dask_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    try:
        flow = migrate_database.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        state = flow(source=SecretStr(f"sqlite:///{src}"), target=SecretStr(url),
                     options=MigrateOptions(chunk_rows=2, report=str(tmp_path / "dask.json")), return_state=True)
        remote = state.result(raise_on_failure=False)
        assert remote["chunks"] == local["chunks"] > 12  # really chunked
        assert [(t["source"], t["rows_written"], t["rows_rejected"]) for t in remote["tables"]] == \
            [(t["source"], t["rows_written"], t["rows_rejected"]) for t in local["tables"]]
        assert open(remote["rejects"]).read() == open(local["rejects"]).read()
        assert table_digest(url) == table_digest(pg_url)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

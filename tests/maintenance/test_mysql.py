"""golive report db and golive maintenance on a real MariaDB 10.11: a fragmented table, a table without a primary
key, a duplicate and a left-prefix index, an AUTO_INCREMENT at 95 % of INT, soft-deleted rows; maintenance
rebuilds online and purges in batches while a writer keeps committing."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from maintenance.scenario import OLD_SOFT_DELETED, SMALL, YOUNG_SOFT_DELETED, build_mysql, my_conn, wait_mysql_purge
from maintenance.writer import Writer

from golive.health.model import ReportOptions
from golive.health.report import build_report
from golive.maintenance import MaintenanceOptions, run
from golive.maintenance.safety import MaintenanceBusy, MaintenanceLock
from golive.urls import parse_url


def scalar(url: str, sql: str, *args):
    conn = my_conn(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def unhealthy(my_db) -> str:
    build_mysql(my_db)
    assert wait_mysql_purge(my_db, "logs", 12_000_000) >= 12_000_000  # InnoDB's purge frees the deleted pages
    conn = my_conn(my_db)
    with conn.cursor() as cur:
        cur.execute("ANALYZE TABLE posts")
    conn.close()
    return my_db


def test_report_names_each_problem(unhealthy):
    report = build_report(unhealthy, ReportOptions(thresholds=SMALL))
    assert not [c for c in report.checks if c.error], [c.summary for c in report.checks if c.error]
    found = {(f.check, f.object): f for f in report.findings()}

    frag = found[("fragmentation", "logs")]
    assert frag.severity == "warning" and frag.fix.startswith("ALTER TABLE `logs` FORCE, ALGORITHM=INPLACE, LOCK=NONE;")
    assert ("fragmentation", "posts") not in found
    assert found[("no-primary-key", "imports")].severity == "warning"
    assert found[("duplicate-indexes", "posts.k_title_dup")].evidence["covered_by"] == "k_title"
    prefix = found[("duplicate-indexes", "posts.k_n")]
    assert prefix.severity == "warning" and "left prefix of k_n_title" in prefix.message
    assert prefix.fix == "ALTER TABLE `posts` DROP INDEX `k_n`, ALGORITHM=INPLACE, LOCK=NONE;"
    assert ("duplicate-indexes", "posts.k_n_title") not in found and ("duplicate-indexes", "posts.k_title") not in found
    ai = found[("auto-increment-overflow", "counters.id")]
    assert ai.severity == "critical" and ai.evidence["share"] == pytest.approx(0.95, abs=0.001)
    assert "MODIFY `id` BIGINT NOT NULL AUTO_INCREMENT" in ai.fix
    soft = found[("soft-deleted-rows", "posts")]
    assert soft.severity == "info" and soft.evidence["old_rows"] == OLD_SOFT_DELETED
    assert report.history.kept and report.history.table == "_golive_report_history"
    assert scalar(unhealthy, "SELECT COUNT(DISTINCT taken_at) FROM _golive_report_history") == 1
    assert report.exit_code == 1  # the AUTO_INCREMENT


def test_maintenance_rebuilds_online_and_purges_while_the_app_writes(unhealthy):
    free_before = scalar(unhealthy, "SELECT data_free FROM information_schema.tables WHERE table_schema = DATABASE() "
                                    "AND table_name = 'logs'")
    options = MaintenanceOptions(tasks=["purge-soft-deleted", "optimize", "analyze"], lock_timeout="2s",
                                 thresholds=SMALL, purge_tables=["posts"], batch_size=1000, pause="20ms")
    dry = run(unhealthy, options.model_copy(update={"dry_run": True}))
    planned = {(a.task, a.target): a for a in dry.plan.to_run}
    assert set(planned) == {("purge-soft-deleted", "`posts`"), ("optimize", "`logs`"), ("analyze", "`counters`"),
                            ("analyze", "`imports`"), ("analyze", "`posts`")}
    assert planned[("purge-soft-deleted", "`posts`")].numbers["old_rows"] == OLD_SOFT_DELETED

    with Writer(unhealthy, "mysql", 2.0) as writer:
        t0 = time.time()
        rep = run(unhealthy, options)
        t1 = time.time()
    assert rep.ok, [(r.task, r.target, r.reason) for r in rep.not_done]
    assert writer.errors == [] and writer.commits_between(t0, t1) >= 5 and writer.max_statement_s < 2.0
    by = {(r.task, r.target): r for r in rep.results}
    purge = by[("purge-soft-deleted", "`posts`")].after
    assert purge["deleted"] == OLD_SOFT_DELETED and purge["batches"] == OLD_SOFT_DELETED // 1000
    assert purge["old_rows_left"] == 0 and purge["young_rows_kept"] >= YOUNG_SOFT_DELETED
    assert scalar(unhealthy, "SELECT COUNT(*) FROM posts WHERE deleted_at < NOW() - INTERVAL 30 DAY") == 0
    assert scalar(unhealthy, "SELECT COUNT(*) FROM posts WHERE deleted_at >= NOW() - INTERVAL 30 DAY") >= YOUNG_SOFT_DELETED
    optimize = by[("optimize", "`logs`")]
    assert optimize.statements[0].sql == "ALTER TABLE `logs` FORCE, ALGORITHM=INPLACE, LOCK=NONE"
    assert optimize.after["data_free"] < free_before / 2
    assert scalar(unhealthy, "SELECT COUNT(*) FROM logs") == 12_000


def test_two_runs_never_overlap_on_mysql(my_db):
    build_mysql(my_db)
    options = MaintenanceOptions(tasks=["analyze"])
    with MaintenanceLock(parse_url(my_db), options):
        with pytest.raises(MaintenanceBusy) as err:
            run(my_db, options)
        assert "connection" in str(err.value)
    assert run(my_db, options).ok


def test_flows_on_mysql_refuse_postgresql_tasks_and_leave_a_report_artifact(my_db, prefect_api):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.database_report import DatabaseReportParams, database_report
    from flows.maintenance import MaintenanceParams, maintenance

    build_mysql(my_db)
    state = maintenance(MaintenanceParams(db=SecretStr(my_db), tasks=["reindex"]), return_state=True)
    assert state.is_failed() and "is not a MySQL/MariaDB task" in state.message
    state = maintenance(MaintenanceParams(db=SecretStr(my_db), tasks=["analyze"]), return_state=True)
    assert state.is_completed() and state.result()["ok"]

    state = database_report(DatabaseReportParams(db=SecretStr(my_db), fail_on="never"), return_state=True)
    assert state.is_completed() and state.result()["counts"]["critical"] == 1
    key = "db-report-" + parse_url(my_db).database.replace("_", "-")

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    got = asyncio.run(artifacts())
    assert got and "auto-increment-overflow" in got[0].data and "`counters.id`" in got[0].data

"""golive maintenance on a real PostgreSQL 15, live: a concurrent writer keeps committing throughout, locks held by
others make statements skip (not wait), the deadline stops the run, two runs never overlap, and a REINDEX
CONCURRENTLY killed with kill -9 leaves an invalid index that the next run drops and rebuilds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from pydantic import SecretStr

from conftest import ROOT
from maintenance.scenario import OLD_SOFT_DELETED, SMALL, YOUNG_SOFT_DELETED, build_pg
from maintenance.writer import Writer

from golive.maintenance import MaintenanceOptions, run
from golive.maintenance.safety import MaintenanceBusy, MaintenanceLock
from golive.urls import parse_url


def one(url: str, sql: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchone()


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relnamespace = "
                                 "'public'::regnamespace AND relkind IN ('r', 'i', 'm')").fetchall())


def test_maintenance_fixes_the_database_while_the_app_writes(pg_db, prefect_api):
    from flows.maintenance import MaintenanceParams, maintenance

    build_pg(pg_db)
    before = sizes(pg_db)
    dead_before = one(pg_db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'posts'")[0]
    assert dead_before > 50_000
    lock_timeout = 2.0
    params = MaintenanceParams(db=SecretStr(pg_db), tasks=["purge-soft-deleted", "vacuum-analyze", "analyze", "reindex",
                                                           "refresh-views"],
                               lock_timeout="2s", thresholds=SMALL, purge_tables=["posts"], batch_size=1000,
                               pause="50ms")
    with Writer(pg_db, "postgresql", lock_timeout) as writer:
        t0 = time.time()
        state = maintenance(params, return_state=True)
        t1 = time.time()
        time.sleep(0.3)
    report = state.result()
    assert state.is_completed(), state.message
    assert report["ok"] and report["exit_code"] == 0, report["summary"]
    results = {(r["task"], r["target"]): r for r in report["results"]}
    assert all(r["status"] == "done" for r in results.values()), [r for r in results.values() if r["status"] != "done"]

    # the writer kept committing, and none of its statements waited as long as the lock timeout
    assert writer.errors == []
    assert writer.commits_between(t0, t1) >= 10, (writer.commits, t1 - t0)
    assert writer.max_statement_s < lock_timeout, writer.max_statement_s
    print(f"writer: {writer.commits_between(t0, t1)} commits in {t1 - t0:.1f} s of maintenance, longest statement "
          f"{writer.max_statement_s * 1000:.0f} ms")

    # old soft-deleted rows purged in batches of 1000, younger ones kept
    purge = results[("purge-soft-deleted", "public.posts")]["after"]
    assert purge["deleted"] == OLD_SOFT_DELETED and purge["batches"] == OLD_SOFT_DELETED // 1000
    assert purge["old_rows_left"] == 0 and purge["young_rows_kept"] >= YOUNG_SOFT_DELETED
    assert one(pg_db, "SELECT count(*) FROM posts WHERE deleted_at < now() - interval '30 days'")[0] == 0
    assert one(pg_db, "SELECT count(*) FROM posts WHERE deleted_at >= now() - interval '30 days'")[0] >= YOUNG_SOFT_DELETED

    # bloat down: dead tuples vacuumed, the emptied tail of events given back, indexes rebuilt smaller
    after = sizes(pg_db)
    assert one(pg_db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'events'")[0] == 0
    assert results[("vacuum-analyze", "public.posts")]["after"]["n_dead_tup"] < 1000
    assert after["events"] < before["events"] / 2
    for index in ("posts_n", "posts_pkey", "events_pkey"):
        assert after[index] < before[index] * 0.6, (index, before[index], after[index])
    assert one(pg_db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")[0] == 0

    # materialized views refreshed: the unpopulated one plainly, the one with a unique index CONCURRENTLY
    assert results[("refresh-views", "public.post_buckets")]["statements"][0]["sql"].startswith(
        "REFRESH MATERIALIZED VIEW CONCURRENTLY")
    assert one(pg_db, "SELECT relispopulated FROM pg_class WHERE relname = 'post_counts'")[0] is True
    assert one(pg_db, "SELECT sum(c) FROM post_buckets")[0] < 40_000  # it counts the posts left after the purge

    # the artifact is keyed by the database
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = "maintenance-" + parse_url(pg_db).database.replace("_", "-")

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    got = asyncio.run(artifacts())
    assert got and "purge-soft-deleted" in got[0].data and "public.posts_n" in got[0].data


def _dead_table(conn, name: str) -> None:
    conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text, deleted_at timestamptz) "
                 "WITH (autovacuum_enabled = false)")
    conn.execute(f"INSERT INTO {name} SELECT g, 'v', CASE WHEN g <= 100 THEN now() - interval '60 days' END "
                 "FROM generate_series(1, 5000) g")
    conn.execute(f"DELETE FROM {name} WHERE id > 2000")


def test_a_statement_that_cannot_get_its_lock_is_skipped_and_reported(pg_db):
    with psycopg.connect(pg_db, autocommit=True) as conn:
        _dead_table(conn, "busy")
        _dead_table(conn, "free")
    holder = psycopg.connect(pg_db)
    holder.execute("LOCK TABLE busy IN SHARE UPDATE EXCLUSIVE MODE")  # what a VACUUM of busy needs
    try:
        t0 = time.monotonic()
        rep = run(pg_db, MaintenanceOptions(tasks=["vacuum-analyze"], lock_timeout="300ms"))
        took = time.monotonic() - t0
        by = {(r.task, r.target): r for r in rep.results}
        busy = by[("vacuum-analyze", "public.busy")]
        assert busy.status == "skipped" and "could not get its lock" in busy.reason
        assert busy.statements[0].seconds < 1.5
        assert by[("vacuum-analyze", "public.free")].status == "done"
        assert rep.exit_code == 1 and took < 10

        # the deadline cancels a statement that is still waiting, and nothing starts after it
        t0 = time.monotonic()
        rep = run(pg_db, MaintenanceOptions(tasks=["vacuum-analyze"], lock_timeout="30s", max_duration="1s"))
        assert time.monotonic() - t0 < 10
        busy = next(r for r in rep.results if r.target == "public.busy")
        assert busy.status == "skipped" and "max duration" in busy.reason, busy
        assert rep.exit_code == 1
    finally:
        holder.close()

    # a row the app holds is skipped by the purge (SKIP LOCKED), not waited for, and reported
    holder = psycopg.connect(pg_db)
    holder.execute("SELECT id FROM free WHERE id = 7 FOR UPDATE")
    try:
        rep = run(pg_db, MaintenanceOptions(tasks=["purge-soft-deleted"], purge_tables=["free"], batch_size=30,
                                            pause="0s"))
        purge = rep.results[0]
        assert purge.status == "skipped" and purge.after["deleted"] == 99 and purge.after["old_rows_left"] == 1
        assert "still there" in purge.reason and rep.exit_code == 1
    finally:
        holder.close()


def test_two_runs_never_overlap(pg_db):
    url = parse_url(pg_db)
    options = MaintenanceOptions(tasks=["analyze"])
    with MaintenanceLock(url, options):
        with pytest.raises(MaintenanceBusy) as err:
            run(pg_db, options)
        assert "another golive maintenance run" in str(err.value) and "golive-maintenance" in str(err.value)
        assert err.value.exit_code == 1

    # with --lock-wait, the second run waits for the first to finish
    lock = MaintenanceLock(url, options).__enter__()
    threading.Timer(1.0, lambda: lock.__exit__(None, None, None)).start()
    rep = run(pg_db, MaintenanceOptions(tasks=["analyze"], lock_wait="20s"))
    assert rep.ok


def test_max_duration_reports_what_did_not_start(pg_db):
    with psycopg.connect(pg_db, autocommit=True) as conn:
        _dead_table(conn, "t1")
        _dead_table(conn, "t2")
    rep = run(pg_db, MaintenanceOptions(tasks=["vacuum-analyze"], max_duration="0s"))
    assert [r.status for r in rep.results] == ["skipped", "skipped"]
    assert all("before it started" in r.reason for r in rep.results)
    assert rep.exit_code == 1


def test_reindex_killed_with_kill_9_is_cleaned_up_by_the_next_run(pg_db, golive):
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO t SELECT g, g FROM generate_series(1, 20000) g")
        conn.execute("CREATE INDEX t_v ON t (v)")
        conn.execute("UPDATE t SET v = v + 1")
    with psycopg.connect(pg_db, autocommit=True) as conn:  # the first session's statistics are flushed by now
        conn.execute("ANALYZE t")
    # an open write transaction: REINDEX CONCURRENTLY waits for it after creating its new, invalid copy
    blocker = psycopg.connect(pg_db)
    blocker.execute("UPDATE t SET v = v WHERE id = 1")
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "golive", "maintenance", "--db", pg_db, "reindex", "--lock-timeout",
                             "120s", "--min-bloat", "0", "--bloat-ratio", "0.3"], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        waiting = None
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up and waiting is None:
            waiting = one(pg_db, "SELECT pid FROM pg_stat_activity WHERE application_name = 'golive-maintenance' "
                                 "AND query LIKE 'REINDEX%%' AND wait_event_type = 'Lock'")
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        assert waiting, f"the reindex never waited: {proc.poll()} {proc.stdout.read().decode() if proc.poll() is not None else ''}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # the server notices its client is gone (client_connection_check_interval) and abandons the REINDEX
        give_up = time.monotonic() + 20
        while one(pg_db, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", waiting[0])[0] and \
                time.monotonic() < give_up:
            time.sleep(0.2)
    finally:
        blocker.rollback()
        blocker.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    leftovers = [r[0] for r in psycopg.connect(pg_db).execute(
        "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid").fetchall()]
    assert leftovers and all("_ccnew" in n or "_ccold" in n for n in leftovers), leftovers

    from golive.health.report import collect

    invalid = collect(pg_db).findings("invalid-indexes")
    assert {f.object for f in invalid} == {f"public.{n}" for n in leftovers}
    assert all(f.severity == "warning" and "DROP INDEX CONCURRENTLY" in f.fix for f in invalid)

    rep = run(pg_db, MaintenanceOptions(tasks=["reindex"], thresholds={"min_bloat_bytes": 0}))
    assert rep.ok, rep.summary()
    done = {(r.target, r.statements[0].sql.split()[0]) for r in rep.results}
    assert {(f"public.{n}", "DROP") for n in leftovers} <= done
    assert ("public.t_v", "REINDEX") in done
    assert one(pg_db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid")[0] == 0
    assert one(pg_db, "SELECT count(*) FROM t WHERE v > 0")[0] == 20000


def test_cli_dry_run_prints_the_numbers_and_bad_input_exits_2(pg_db, golive):
    build_pg(pg_db)
    res = golive("maintenance", "--db", pg_db, "--dry-run", "--min-bloat", "100kB", "--verbose", env={"COLUMNS": "250"})
    assert res.code == 0, res
    assert "would run" in res.out and "dead tuples" in res.out and "public.posts_n" in res.out
    assert "REINDEX INDEX CONCURRENTLY" in res.out
    assert one(pg_db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'posts'")[0] > 50_000  # untouched

    res = golive("maintenance", "--db", pg_db, "purge-soft-deleted", "--table", "posts", "--older-than", "30d",
                 "--dry-run", env={"COLUMNS": "250"})
    assert res.code == 0 and "4,000 rows soft-deleted before" in res.out and "4,000 younger" in res.out, res

    for args, text in [(["optimize"], "is not a PostgreSQL task"), (["vacum"], "unknown maintenance task"),
                       (["purge-soft-deleted"], "needs the tables"), (["--lock-timeout", "5x"], "not a duration"),
                       (["purge-soft-deleted", "--table", "post"], "did you mean 'posts'"),
                       (["--threshold", "dead_ration=1"], "did you mean dead_ratio")]:
        res = golive("maintenance", "--db", pg_db, *args)
        assert res.code == 2 and text in res.err and len(res.err.strip().splitlines()) == 1, (args, res)
    res = golive("maintenance", "--db", pg_db.replace("postgres@", "postgres:secret@"), "--dry-run",
                 env={"PGPASSWORD": ""})
    assert "secret" not in res.all

    # another run holds the lock: refused at once, before Prefect starts, naming the holder
    with MaintenanceLock(parse_url(pg_db), MaintenanceOptions()):
        res = golive("maintenance", "--db", pg_db, "analyze")
    assert res.code == 1 and "another golive maintenance run" in res.err and "pid" in res.err, res


def test_quoted_names_with_percent_signs(pg_db):
    """Names as ORMs make them (mixed case) and as nobody should (a % sign) are quoted and escaped everywhere."""
    from golive.health.report import collect

    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE "Post %s" ("Id" int PRIMARY KEY, "deleted_at" timestamptz)')
        conn.execute("""INSERT INTO "Post %s" SELECT g, CASE WHEN g <= 30 THEN now() - interval '90 days' END
                        FROM generate_series(1, 100) g""")
    soft = collect(pg_db).findings("soft-deleted-rows")
    assert [(f.object, f.evidence["old_rows"]) for f in soft] == [('public."Post %s"', 30)]
    rep = run(pg_db, MaintenanceOptions(tasks=["purge-soft-deleted"], purge_tables=["Post %s"], batch_size=7,
                                        pause="0s"))
    assert rep.ok and rep.results[0].after["deleted"] == 30 and rep.results[0].after["batches"] == 5
    assert one(pg_db, 'SELECT count(*) FROM "Post %%s"')[0] == 70


def test_a_dry_run_is_refused_as_the_run_would_be_while_another_run_works(pg_db, golive):
    """Issue 24, one rule for every dry run: another maintenance run at work (and no --lock-wait) refuses the run,
    so the dry run says so with the same exit code instead of exiting 0."""
    url = parse_url(pg_db)
    with MaintenanceLock(url, MaintenanceOptions(tasks=["analyze"])):
        res = golive("maintenance", "--db", pg_db, "--dry-run", "analyze")
        assert res.code == 1 and "another golive maintenance run" in res.err, res
        res = golive("maintenance", "--db", pg_db, "--dry-run", "--lock-wait", "5s", "analyze")
        assert res.code == 0, res  # a run that would wait for it
    res = golive("maintenance", "--db", pg_db, "--dry-run", "analyze")
    assert res.code == 0, res

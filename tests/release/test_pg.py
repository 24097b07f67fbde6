"""Releases on PostgreSQL 15 through the ``release`` flow (the session's Prefect API): a clean release with its
artifacts, journal and history; a migration failing half-way (transactional: nothing of it left; the one
before it undone: down-migrations or the backup) with the database equal to before; a health check that never
turns green; a lint finding that blocks and ``--allow``; drift in an applied file."""

from __future__ import annotations

import asyncio

import psycopg

from .conftest import pg_digest, pg_exec, pg_rows, run_engine, run_flow, write

USERS = """CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users (id, email) SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), total numeric(10,2));
INSERT INTO orders SELECT g, 1 + g % 2000, g / 100.0 FROM generate_series(1, 5000) g;
"""


def base(pg_db: str) -> None:
    pg_exec(pg_db, USERS)


def artifacts(prefix: str) -> dict:
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return {a.key: a for a in await client.read_artifacts() if a.key and a.key.startswith(prefix)}

    return asyncio.run(read())


def test_clean_sql_release_with_health_checks_and_artifacts(prefect_api, pg_db, tmp_path, app, hooks):
    base(pg_db)
    mig = write(tmp_path / "migrations", {
        "001_profile.sql": "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN display_name text;\n",
        "002_orders_index.sql": "-- the index is built without blocking writes\n"
                                "CREATE INDEX CONCURRENTLY orders_user ON orders (user_id);\n",
        "003_audit.sql": "CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), what text);\n"
                         "INSERT INTO audit (what) VALUES ('release');\n",
    })
    checks = write(tmp_path, {"checks.sql": "SELECT id FROM orders WHERE total < 0;\n"
                                            "SELECT u.id FROM users u WHERE u.email NOT LIKE '%@%';\n"}) / "checks.sql"
    app.set(pg_db, "SELECT id, email, display_name FROM users LIMIT 1")
    from prefect.blocks.system import Secret

    block = "grl-" + pg_db.rsplit("_", 1)[1]
    Secret(value=f"{hooks.url}/wecom/send?key=SECRETKEY").save(block, overwrite=True)
    state, rep = run_flow(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/backups",
                          health_urls=[app.health], check_sql=str(checks),
                          notify=[f"{hooks.url}/generic", f"wecom+block:{block}"],
                          report_path=str(tmp_path / "report.json"))
    assert state.is_completed(), rep["statement"]
    assert rep["state"] == "released" and rep["exit_code"] == 0
    assert [r["label"] for r in rep["runs"] if r["status"] == "applied"] == ["001_profile", "002_orders_index", "003_audit"]
    assert [r["transactional"] for r in rep["runs"]] == [True, False, True]  # CONCURRENTLY: statement by statement
    assert "the database is at 003_audit" in rep["statement"] and rep["backup"]["id"] in rep["statement"]
    ids = {c["id"]: c["status"] for c in rep["prechecks"]}
    assert ids["release-lock"] == ids["connectivity"] == ids["privileges"] == ids["disk-server"] == "pass", rep["prechecks"]
    assert "health-before" not in ids or ids["health-before"] == "warn"  # display_name does not exist before
    assert any("returned no rows" in c for c in rep["validation"]["checks"])
    assert any("row counts of 2 of 2 changed table(s) are as before" in c for c in rep["validation"]["checks"]), rep["validation"]
    assert rep["health"][0]["ok"]
    # the history table, with checksums; the journal row
    hist = pg_rows(pg_db, "SELECT version, success, length(checksum), release_id FROM _golive.migrations ORDER BY version")
    assert [(v, ok, n) for v, ok, n, _ in hist] == [("001", True, 64), ("002", True, 64), ("003", True, 64)]
    assert {r for *_, r in hist} == {rep["release_id"]}
    assert pg_rows(pg_db, "SELECT state, step, backup_url IS NOT NULL FROM _golive.releases") == [("released", "done", True)]
    assert pg_rows(pg_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_user'::regclass") == [(True,)]
    # the notification (generic JSON), the artifacts keyed by the database
    body = hooks.got[0]["body"]
    assert body["source"] == "golive" and body["state"] == "released" and body["exit_code"] == 0
    assert body["applied"] == ["001_profile", "002_orders_index", "003_audit"] and "released" in body["title"]
    wecom = hooks.got[1]  # the URL came from the Secret block; it is never stored or printed
    assert wecom["query"] == {"key": "SECRETKEY"} and "released" in wecom["body"]["markdown"]["content"]
    assert "SECRETKEY" not in str(rep) and [n["ok"] for n in rep["notifications"]] == [True, True]
    dbname = pg_db.rsplit("/", 1)[1].replace("_", "-")
    keys = artifacts(f"release-{dbname}")
    assert {f"release-{dbname}", f"release-{dbname}-precheck", f"release-{dbname}-lint",
            f"release-{dbname}-timeline"} <= set(keys)
    assert (tmp_path / "report.json").is_file()
    # nothing pending now: exit 0, nothing changed
    again = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/backups")
    assert again.state == "nothing-to-release" and again.exit_code == 0 and "at 003_audit" in again.statement


def test_migration_failing_half_way_is_undone_by_down_migrations(prefect_api, pg_db, tmp_path):
    base(pg_db)
    before = pg_digest(pg_db)
    mig = write(tmp_path / "m", {
        "001_add_status.sql": "ALTER TABLE orders ADD COLUMN status text;\nCREATE INDEX orders_total ON orders (total);\n",
        "001_add_status.down.sql": "DROP INDEX orders_total;\nALTER TABLE orders DROP COLUMN status;\n",
        "002_coupons.sql": "CREATE TABLE coupons (code text PRIMARY KEY);\nINSERT INTO coupons VALUES ('A'), ('B');\n"
                           "ALTER TABLE users ADD COLUMN coupon text REFERENCES coupons (code);\n"
                           "UPDATE users SET coupon = 'C' WHERE id = 1;\n",  # fails: no coupon C
        "002_coupons.down.sql": "ALTER TABLE users DROP COLUMN coupon;\nDROP TABLE coupons;\n",
    })
    state, rep = run_flow(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", rollback="down",
                          large_table="1GB")
    assert state.is_failed() and rep["exit_code"] == 1 and rep["state"] == "rolled-back", rep["statement"]
    failed = rep["runs"][1]
    assert failed["status"] == "failed" and failed["left_nothing"] is True
    assert "statement 4 (line 4)" in failed["error"] and "violates foreign key constraint" in failed["error"]
    assert rep["rollback"]["method"] == "down" and rep["rollback"]["ok"], rep["rollback"]
    assert rep["runs"][0]["status"] == "rolled-back"
    assert "the schema is as before the release" in rep["rollback"]["checks"]
    assert "rolled back" in state.message and "002_coupons" in state.message
    assert pg_digest(pg_db) == before  # nothing of 002 is left (its transaction), 001 undone by its down
    assert pg_rows(pg_db, "SELECT count(*) FROM _golive.migrations") == [(0,)]


def test_failure_after_a_migration_without_down_restores_the_backup(prefect_api, pg_db, tmp_path, s3_endpoint, bucket):
    base(pg_db)
    before = pg_digest(pg_db)
    mig = write(tmp_path / "m", {
        "001_fine.sql": "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'x');\n",
        "002_broken.sql": "ALTER TABLE users ADD COLUMN score int;\nUPDATE users SET score = 1 / (id - 1000);\n",
    })
    state, rep = run_flow(pg_db, migrations=f"sql:{mig}", backup_to=f"s3://{bucket}/releases", verify_backup=True,
                          rollback="down", allow=["unbatched-dml"],
                          storage={"endpoint_url": s3_endpoint, "addressing_style": "path"})
    assert rep["exit_code"] == 1, rep["statement"]
    assert rep["backup"]["verified"] == "passed" and rep["backup"]["url"].startswith(f"s3://{bucket}/releases/")
    assert rep["rollback"]["method"] == "restore" and "has no down-migration" in rep["rollback"]["why"]
    assert rep["rollback"]["ok"] and any("schema fingerprint matches" in c for c in rep["rollback"]["checks"])
    assert "division by zero" in rep["failed"]["message"]
    assert pg_digest(pg_db) == before
    assert pg_rows(pg_db, "SELECT state FROM _golive.releases") == [("rolled-back",)]  # the journal survived the restore


def test_health_that_never_turns_green_rolls_back(prefect_api, pg_db, tmp_path, app, hooks):
    base(pg_db)
    before = pg_digest(pg_db)
    mig = write(tmp_path / "m", {"001_rename.sql": "ALTER TABLE users RENAME COLUMN email TO email_address;\n"})
    app.set(pg_db, "SELECT email FROM users LIMIT 1")  # the running app still reads "email"
    state, rep = run_flow(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", allow=["rename"],
                          health_urls=[app.health], health_timeout="3s", notify=[f"slack+{hooks.url}/slack"])
    assert rep["exit_code"] == 1 and rep["failed"]["step"] == "health", rep["statement"]
    assert [h["ok"] for h in rep["health"]] == [False, True]  # after the migration; after the rollback
    assert rep["health"][0]["attempts"] >= 2 and "HTTP 500" in rep["health"][0]["detail"]
    assert rep["rollback"]["method"] == "restore" and rep["rollback"]["ok"]
    assert [f["rule"] for f in rep["findings"] if f["allowed"]] == ["rename"]
    assert pg_digest(pg_db) == before
    slack = hooks.got[0]["body"]
    assert "FAILED, rolled back" in slack["blocks"][0]["text"]["text"] and "health" in slack["blocks"][1]["text"]["text"]


def test_health_still_failing_after_the_rollback_exits_3(pg_db, tmp_path, app):
    base(pg_db)
    mig = write(tmp_path / "m", {"001_x.sql": "CREATE TABLE x (id int);\n"})
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b",
                     health_urls=[f"{app.url}/never"], health_timeout="1s")
    assert rep.exit_code == 3 and rep.state == "rollback-failed"
    assert rep.rollback.method == "nothing-to-undo" or rep.rollback.method == "restore"
    assert "the health check still fails afterwards" in rep.statement and "the app is not healthy" in rep.statement
    assert pg_rows(pg_db, "SELECT to_regclass('x') IS NULL") == [(True,)]


def test_lint_blocks_and_allow_passes(pg_db, tmp_path):
    base(pg_db)
    mig = write(tmp_path / "m", {"001_idx.sql": "CREATE INDEX users_email ON users (email);\n"
                                                "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);\n"})
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", large_table="100kB")
    assert rep.exit_code == 2 and rep.state == "refused"
    blocking = {f.rule: f for f in rep.findings if f.blocks}
    assert set(blocking) == {"index-not-concurrent", "constraint-not-valid"}
    assert blocking["index-not-concurrent"].table == "public.users" and blocking["index-not-concurrent"].table_bytes > 100_000
    assert "--allow RULE" in rep.statement and "unchanged" in rep.statement
    assert pg_rows(pg_db, "SELECT to_regclass('_golive.releases') IS NULL") == [(True,)]  # refused: nothing written
    # the same findings on small tables only warn
    small = run_engine(pg_db, migrations=f"sql:{mig}", dry_run=True)
    assert small.exit_code == 0 and {f.severity for f in small.findings} == {"warning"}
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", large_table="100kB",
                     allow=["index-not-concurrent", "constraint-not-valid"])
    assert rep.exit_code == 0, rep.statement
    assert pg_rows(pg_db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email'") == [(1,)]


def test_drift_in_an_applied_file_refuses(pg_db, tmp_path):
    base(pg_db)
    mig = write(tmp_path / "m", {"001_a.sql": "ALTER TABLE users ADD COLUMN a int;\n"})
    assert run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b").exit_code == 0
    write(mig, {"001_a.sql": "ALTER TABLE users ADD COLUMN a bigint;\n", "002_b.sql": "ALTER TABLE users ADD COLUMN b int;\n"})
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b")
    assert rep.exit_code == 2
    drift = next(c for c in rep.prechecks if c.id == "drift")
    assert drift.status == "fail" and "001_a: the file changed after it was applied" in drift.message
    assert pg_rows(pg_db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND "
                          "column_name = 'b'") == [(0,)]


def test_a_release_interrupted_around_its_backup(pg_db, tmp_path):
    """Killed during its backup (nothing migrated): the next release goes on. Killed after a backup finished (or
    during a rollback's restore, whose journal row is the backup's): refused until told, naming the backup."""
    base(pg_db)
    mig = write(tmp_path / "m", {"001_a.sql": "ALTER TABLE users ADD COLUMN a int;\n"})
    assert run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b").exit_code == 0
    write(mig, {"002_b.sql": "ALTER TABLE users ADD COLUMN b int;\n"})
    insert = ("INSERT INTO _golive.releases (id, started_at, updated_at, state, step, kind, source, pending, backup_to) "
              "VALUES (%s, now() - interval '1 hour', now(), 'running', 'backup', 'sql', 'sql:m', '[\"002\"]', %s)")
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(insert, ("20260101T000000Z-dead", f"file://{tmp_path}/b"))
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b2")
    found = next(c for c in rep.prechecks if c.id == "previous-release")
    assert rep.exit_code == 2 and found.status == "fail" and "the restore may be incomplete" in found.message
    assert f"golive restore --from file://{tmp_path}/b/" in found.message
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute("DELETE FROM _golive.releases WHERE id = '20260101T000000Z-dead'")
        conn.execute(insert, ("20260101T000000Z-dead", f"file://{tmp_path}/empty"))
    rep = run_engine(pg_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b2")
    found = next(c for c in rep.prechecks if c.id == "previous-release")
    assert rep.exit_code == 0 and found.status == "warn" and "stopped during its backup" in found.message, found
    assert pg_rows(pg_db, "SELECT state FROM _golive.releases WHERE id = '20260101T000000Z-dead'") == [("interrupted",)]

"""The go-live (issue 15): one config, every step, resumable; on the machine's PostgreSQL and MariaDB, moto's S3
and the session's Prefect API.

- a whole SQLite -> PostgreSQL go-live with uploads to S3 and a path column rewritten; a step that fails is
  named, and the next run resumes there without repeating the finished steps (same backup, one migration);
  a crash during a step (journal left at "running") resumes that step; the password is nowhere;
- a migration that finished with rejects is replaced by the next run (once the user allowed them);
- MySQL -> PostgreSQL with the MySQL dump as the backup (the meeting-agent shape);
- the dry run writes nothing and prints one plan; the pre-check refuses what would fail later;
- init / status / bad configuration from the CLI.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import _with_db
from helpers import scalar, task_runs

DONE_STEPS = ("precheck", "backup", "migrate-db", "validate", "migrate-files", "verify-files")

PASSWORD = "pw-" + uuid.uuid4().hex[:10]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def pg_role_db(pg_admin_url):
    """A database ggl_<hex> owned by a role with a password: (URL with the password, admin URL)."""
    name = "ggl_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {name}')
    admin = _with_db(pg_admin_url, name)
    url = re.sub(r"^postgresql://[^@/]*@", f"postgresql://{name}:{PASSWORD}@", admin)
    if url == admin:
        url = admin.replace("postgresql://", f"postgresql://{name}:{PASSWORD}@", 1)
    yield url, admin
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def app(tmp_path):
    """The sample app: SQLite database (with its deliberately bad rows) and its uploads folder."""
    from golive import sample

    counts = sample.build(tmp_path / "app.db", users=30, uploads=tmp_path / "uploads")
    return tmp_path / "app.db", tmp_path / "uploads", counts


def write_config(path: Path, *, source: str, target: str, uploads=None, bucket=None, endpoint=None, state=None,
                 rewrite=True, extra: str = "") -> Path:
    lines = ["[source]", f'database = "{source}"']
    if uploads:
        lines.append(f'uploads = "{uploads}"')
    lines += ["[target]", f'database = "{target}"']
    if bucket:
        lines += [f'bucket = "{bucket}"', f'endpoint_url = "{endpoint}"', 'region = "us-east-1"']
    if rewrite and uploads:
        lines += ["[[rewrite]]", 'table = "images"', 'column = "path"', 'strip_prefix = "uploads/"',
                  'template = "https://cdn.example.com/{path}"']
    lines += [f'state_dir = "{state or path.parent / "state"}"']
    # state_dir is a top-level key: it must come before the first table
    top = [x for x in lines if x.startswith("state_dir")]
    rest = [x for x in lines if not x.startswith("state_dir")]
    path.write_text("\n".join(top + rest) + "\n" + extra, encoding="utf-8")
    return path


def journal_of(cfg_path: Path) -> dict:
    from golive.go_live.config import load_config

    cfg = load_config(cfg_path)
    return json.loads((Path(cfg.state_dir) / "go-live" / f"{cfg.key()}.json").read_text())


def run_flow(cfg_path: Path, **kw):
    from flows.go_live import go_live
    from golive.go_live.config import load_config

    state = go_live(config=load_config(cfg_path), return_state=True, **kw)
    return state, state.result(raise_on_failure=False)


# ---------------------------------------------------------------- the whole go-live


def test_sqlite_to_postgres_go_live_fails_at_a_named_step_and_resumes_there(
        prefect_api, app, pg_role_db, s3, s3_endpoint, tmp_path):
    db, uploads, counts = app
    url, admin = pg_role_db
    bucket = "ggl-" + uuid.uuid4().hex[:8]
    # one image's file is gone from the uploads folder: its row cannot be rewritten
    missing = next(p for p in sorted(uploads.rglob("*.jpg")))
    missing_rel = "uploads/" + missing.relative_to(uploads).as_posix()
    missing.unlink()
    cfg = write_config(tmp_path / "golive.toml", source=f"sqlite:///{db}", target=url, uploads=uploads,
                       bucket=f"s3://{bucket}/media", endpoint=s3_endpoint,
                       extra="[migrate]\nmax_rejects = 2\nworkers = 2\n[files]\ncreate_bucket = true\n")

    state, report = run_flow(cfg)
    assert state.is_failed() and "go-live stopped at step rewrite-paths" in state.message
    assert "1 row(s) name a file that was not uploaded" in state.message and missing_rel in state.message
    assert report["failed_step"] == "rewrite-paths" and "failed at rewrite-paths" in report["state"]
    j = journal_of(cfg)
    assert [j["steps"][s]["status"] for s in ("precheck", "backup", "migrate-db", "validate", "migrate-files",
                                              "verify-files", "rewrite-paths")] == ["done"] * 6 + ["failed"]
    backup_id = j["steps"]["backup"]["summary"]["id"]
    assert Path(j["steps"]["backup"]["summary"]["url"][len("file://"):], "manifest.json").is_file()
    # the data, the files (the missing one is not there), and every other path rewritten
    assert scalar(admin, "SELECT count(*) FROM users") == counts["users"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="media/")["Contents"]}
    assert len(keys) == counts["images"] - 1
    assert scalar(admin, "SELECT count(*) FROM images WHERE starts_with(path, 'https://cdn.example.com/')") == \
        scalar(admin, "SELECT count(*) FROM images") - 1
    assert scalar(admin, "SELECT path FROM images WHERE NOT starts_with(path, 'https://')") == missing_rel

    # the user accepts the missing file; the next run does only what is left
    cfg.write_text(cfg.read_text().replace('template = "https://cdn.example.com/{path}"',
                                           'template = "https://cdn.example.com/{path}"\nallow_missing = true'))
    state, report = run_flow(cfg)
    assert state.is_completed() and report["ok"], report["state"]
    # the steps the first run finished show as Cached task runs in the UI, once what they left is found again
    steps = task_runs(state.state_details.flow_run_id)
    assert {s: steps[s][1] for s in DONE_STEPS} == {s: "Cached" for s in DONE_STEPS}, steps
    assert steps["backup"][3].startswith("golive-go-live-step-") and "still there" in steps["backup"][2]
    j = journal_of(cfg)
    assert j["steps"]["backup"]["summary"]["id"] == backup_id  # not backed up again
    assert scalar(admin, "SELECT count(*) FROM _golive.runs") == 1  # not migrated again
    assert j["steps"]["rewrite-paths"]["summary"]["columns"][0]["missing"] == 1

    # a crash during verify-files (the journal still says running): the next run starts there
    j["steps"]["verify-files"]["status"] = "running"
    for later in ("rewrite-paths", "report"):
        j["steps"].pop(later)
    (Path(tmp_path / "state") / "go-live" / f"{j['key']}.json").write_text(json.dumps(j))
    # and the backup is gone from its folder since: not a hit, the backup runs again
    Path(j["steps"]["backup"]["summary"]["url"][len("file://"):], "manifest.json").unlink()
    state, report = run_flow(cfg)
    assert state.is_completed()
    steps = task_runs(state.state_details.flow_run_id)
    assert steps["backup"][1] == "Completed" and "the backup" in steps["backup"][2] and "is gone" in steps["backup"][2]
    assert {s: steps[s][1] for s in ("precheck", "migrate-db", "validate", "migrate-files")} == \
        dict.fromkeys(("precheck", "migrate-db", "validate", "migrate-files"), "Cached"), steps
    j2 = journal_of(cfg)
    assert j2["steps"]["backup"]["summary"]["id"] != backup_id
    assert j2["steps"]["verify-files"]["summary"]["matched"] == counts["images"] - 1
    assert j2["steps"]["rewrite-paths"]["summary"]["columns"][0]["already"] == counts["images"] - 2
    assert j2["steps"]["migrate-db"]["finished_at"] == j["steps"]["migrate-db"]["finished_at"]

    # the final report says where everything is, and never the password
    rep = json.loads(Path(report["where"]["reports"], "report.json").read_text())
    assert rep["ok"] and rep["where"]["bucket"] == f"s3://{bucket}/media"
    for p in (tmp_path / "state").rglob("*.json"):
        assert PASSWORD not in p.read_text(), p


def test_a_migration_that_finished_with_rejects_is_replaced_once_they_are_allowed(prefect_api, app, pg_role_db,
                                                                                  tmp_path):
    db, _uploads, counts = app
    url, admin = pg_role_db
    cfg = write_config(tmp_path / "golive.toml", source=f"sqlite:///{db}", target=url,
                       extra="[backup]\nenabled = false\n")
    state, report = run_flow(cfg)
    assert state.is_failed() and "step migrate-db" in state.message and "rows rejected" in state.message
    assert "replaces one that finished with rejects" in report["state"]
    cfg.write_text(cfg.read_text() + "[migrate]\nmax_rejects = 2\n")
    state, report = run_flow(cfg)
    assert state.is_completed(), state.message
    assert scalar(admin, "SELECT count(*) FROM _golive.runs WHERE status = 'complete'") == 1
    assert scalar(admin, "SELECT count(*) FROM users") == counts["users"]
    assert "backup" not in journal_of(cfg)["steps"]


def test_mysql_source_backed_up_as_a_dump_then_migrated_into_postgres(prefect_api, mysql_admin_url, pg_role_db,
                                                                     tmp_path):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    name = "ggl_my_" + uuid.uuid4().hex[:8]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw["database"] = None
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            cur.execute(f"CREATE TABLE `{name}`.meetings (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200) "
                        "NOT NULL, recording VARCHAR(255), at DATETIME NOT NULL)")
            cur.executemany(f"INSERT INTO `{name}`.meetings (title, recording, at) VALUES (%s, %s, %s)",
                            [(f"会议 {i}", f"uploads/rec/{i}.m4a", f"2026-01-{1 + i % 28:02d} 10:00:00")
                             for i in range(200)])
        source = mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
        url, admin = pg_role_db
        cfg = write_config(tmp_path / "golive.toml", source=source, target=url)
        state, report = run_flow(cfg)
        assert state.is_completed(), state.message
        j = journal_of(cfg)
        backup = j["steps"]["backup"]["summary"]
        assert backup["rows"] == 200 and backup["url"].startswith("file://")
        manifest = json.loads(Path(backup["url"][len("file://"):], "manifest.json").read_text())
        assert manifest["engine"] == "mysql"
        assert scalar(admin, "SELECT count(*) FROM meetings WHERE starts_with(title, '会议 ')") == 200
        assert j["steps"]["validate"]["summary"]["ok"] is True
        assert [s["step"] for s in report["steps"]] == ["precheck", "backup", "migrate-db", "validate", "report"]
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


# ---------------------------------------------------------------- dry run and pre-check


def test_dry_run_prints_one_plan_and_writes_nothing(golive, app, pg_role_db, s3, s3_endpoint, tmp_path):
    db, uploads, counts = app
    url, admin = pg_role_db
    bucket = "ggl-" + uuid.uuid4().hex[:8]
    cfg = write_config(tmp_path / "golive.toml", source=f"sqlite:///{db}", target=url, uploads=uploads,
                       bucket=f"s3://{bucket}/media", endpoint=s3_endpoint, extra="[files]\ncreate_bucket = true\n")
    res = golive("go-live", "--config", cfg, "--dry-run")
    # the sample's two bad values would be rejected, and max_rejects is 0: the plan says the run would fail
    assert res.code == 1, res
    out = res.out
    for title in ("Pre-check", "Backup of the source", "Migrate the database", "Validate the copy",
                  "Upload the files", "Verify the files", "Rewrite file paths"):
        assert title in out
    assert f"would rewrite {counts['images']} of {counts['images']} rows" in out
    assert "-> https://cdn.example.com/" in out and "the bucket will be created" in out
    assert "about 2 values would be rejected" in out and "The go-live would fail" in out
    assert PASSWORD not in res.all
    # nothing written: no tables, no bucket, no backup
    assert scalar(admin, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not (tmp_path / "state" / "backups").exists()
    plan = json.loads(next((tmp_path / "state" / "go-live").rglob("dry-run.json")).read_text())
    assert set(plan["steps"]) == {"precheck", "backup", "migrate-db", "validate", "migrate-files", "verify-files",
                                  "rewrite-paths"}
    # allowed, the same plan passes
    cfg.write_text(cfg.read_text() + "[migrate]\nmax_rejects = 2\n")
    assert golive("go-live", "--config", cfg, "--dry-run").code == 0


def test_precheck_refuses_what_would_fail_later(app, pg_role_db, tmp_path):
    from pydantic import SecretStr

    from golive.go_live.config import load_config
    from golive.go_live.precheck import Resolved, precheck
    from helpers import execute

    db, uploads, _ = app
    url, admin = pg_role_db
    execute(admin, "CREATE TABLE users (id int)")
    cfg_path = write_config(tmp_path / "golive.toml", source=f"sqlite:///{db}", target=url, uploads=uploads,
                            bucket=f"file://{tmp_path / 'media'}", endpoint="", rewrite=False,
                            extra='[[rewrite]]\ntable = "image"\ncolumn = "path"\ntemplate = "{key}"\n')
    cfg_path.write_text(cfg_path.read_text().replace('endpoint_url = ""\n', ""))
    cfg = load_config(cfg_path)
    r = Resolved(config=cfg, source=SecretStr(f"sqlite:///{db}"), target=SecretStr(url), state_dir=tmp_path / "s",
                 bucket=f"file://{tmp_path / 'media'}")
    result, plan = precheck(r)
    assert not result.ok and plan is None
    assert any("already has users" in e and "set [migrate] drop_existing = true" in e for e in result.errors()), result.errors()
    execute(admin, "DROP TABLE users")
    result, plan = precheck(r)
    assert result.errors() == ["rewrite image.path: the migration creates no table image (did you mean images?)"]
    assert PASSWORD not in json.dumps(result.summary())


# ---------------------------------------------------------------- CLI: init, status, bad input


def test_init_status_and_bad_configurations(golive, tmp_path):
    res = golive("go-live", "init", tmp_path / "golive.toml")
    assert res.code == 0 and (tmp_path / "golive.toml").is_file()
    assert golive("go-live", "init", tmp_path / "golive.toml").code == 2
    from golive.go_live.config import load_config

    cfg = load_config(tmp_path / "golive.toml")  # the example, as written, is valid
    assert cfg.steps() == ["precheck", "backup", "migrate-db", "validate", "migrate-files", "verify-files",
                           "rewrite-paths", "report"]
    res = golive("go-live", "status", "--config", tmp_path / "golive.toml")
    assert res.code == 0 and "pending" in res.out and "nothing done yet" in res.out

    bad = tmp_path / "bad.toml"
    cases = {
        "[source]\ndatabase = 'sqlite:///a.db'\n": "target: Field required",
        "[source]\ndatabase = 'sqlite:///a.db'\ncolour = 1\n[target]\ndatabase = 'x'\n": "source.colour",
        "[source\n": "not valid TOML",
        "[source]\ndatabase = 'sqlite:///a.db'\n[target]\ndatabase = 'postgresql://h/db'\n[[rewrite]]\n"
        "table = 't'\ncolumn = 'c'\ntemplate = '{key}'\n": "rewrite needs [source] uploads",
    }
    for text, message in cases.items():
        bad.write_text(text)
        res = golive("go-live", "--config", bad, "--dry-run")
        assert res.code == 2 and message in res.err, (text, res)
        assert len(res.err.strip().splitlines()) == 1, res.err
    res = golive("go-live", "--config", tmp_path / "nope.toml")
    assert res.code == 2 and "no such file" in res.err and "go-live init" in res.err


def test_the_issue_config_shape_is_accepted_as_written(tmp_path):
    from golive.go_live.config import load_config

    p = tmp_path / "golive.toml"
    p.write_text('''[source]
database = "sqlite:///srv/app/app.db"        # or mysql://…, postgresql://…
uploads = "/srv/app/uploads"
[target]
database = "postgresql://app@db.internal/app"
bucket = "s3://app-media/uploads"
endpoint_url = "https://oss-cn-hangzhou.aliyuncs.com"   # optional
[[rewrite]]
table = "images"
column = "path"
strip_prefix = "uploads/"
template = "https://cdn.example.com/{path}"  # placeholders as in rewrite-paths
''')
    cfg = load_config(p)
    assert cfg.rewrite[0].template == "https://cdn.example.com/{path}" and cfg.target.bucket == "s3://app-media/uploads"
    assert cfg.migrate_options().workers == 4 and cfg.migrate_options().target_schema == "public"
    assert len(cfg.key()) == 16 and cfg.key() == load_config(p).key()

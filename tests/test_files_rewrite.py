"""rewrite-paths: only rows whose file was uploaded and verified, batches by primary key, dry run,
idempotent, reversible; on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from golive.errors import ConfigError
from golive.files import rewrite as rw
from golive.files import sync

ROWS = [
    (1, "uploads/2024/01/a.jpg"),
    (2, "/uploads/2024/01/b.png"),  # a leading slash is fine
    (3, "uploads/2024/02/missing.jpg"),  # never uploaded: reported, left alone
    (4, None),
    (5, "https://gravatar.example/u/5"),  # not a local path
    (6, "uploads/docs/my file.pdf"),
    (7, "uploads/2024/01/a.jpg"),  # two rows may share a file
    (8, "avatars/x.jpg"),  # not under --strip-prefix
]


@pytest.fixture
def uploaded(tmp_path, s3_endpoint) -> Path:
    """An uploads folder pushed to s3://<bucket>/media; returns the state dir holding its manifest."""
    src = tmp_path / "app" / "uploads"
    for rel in ("2024/01/a.jpg", "2024/01/b.png", "docs/my file.pdf"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(os.urandom(100))
    state = tmp_path / "state"
    report = sync.upload_folder(src, f"s3://rw-{uuid.uuid4().hex[:10]}/media", endpoint_url=s3_endpoint,
                                state_dir=state, create_bucket=True)
    assert report.ok
    return state


def sqlite_db(tmp_path) -> str:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT)")
    conn.executemany("INSERT INTO images VALUES (?, ?)", ROWS)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def values(url: str) -> list[tuple]:
    from golive.files.db import connect

    db = connect(url)
    try:
        return [tuple(r) for r in db._exec("SELECT id, path FROM images ORDER BY id").fetchall()]
    finally:
        db.close()


def job(url, state, **kw):
    kw.setdefault("to", "s3://bucket/{key}")
    kw.setdefault("strip_prefix", "uploads/")
    return rw.make_rewrite_job(url, "images", "path", state_dir=state, batch_size=kw.pop("batch_size", 3), **kw)


EXPECTED = {
    1: "s3://bucket/media/2024/01/a.jpg",
    2: "s3://bucket/media/2024/01/b.png",
    6: "s3://bucket/media/docs/my file.pdf",
    7: "s3://bucket/media/2024/01/a.jpg",
}


def check_cycle(url: str, state: Path, run) -> None:
    """dry run -> run -> run again (0 changes) -> reverse -> original values, mapping table gone."""
    original = values(url)
    dry = rw.rewrite_paths(job(url, state), dry_run=True)
    assert (dry.scanned, dry.rewritten, dry.missing, dry.other) == (8, 4, 1, 3)
    assert dry.samples[0].before == "uploads/2024/01/a.jpg" and dry.samples[0].after == EXPECTED[1]
    assert dry.missing_samples[0].pk == "3" and "not uploaded" in dry.missing_samples[0].reason
    assert values(url) == original  # a dry run changes nothing

    first = run(job(url, state))
    assert (first.rewritten, first.missing, first.already) == (4, 1, 0) and first.exit_code == 1
    now = dict(values(url))
    assert {k: now[k] for k in EXPECTED} == EXPECTED
    assert now[3] == "uploads/2024/02/missing.jpg" and now[4] is None and now[8] == "avatars/x.jpg"

    second = run(job(url, state))
    assert (second.rewritten, second.already) == (0, 4)  # idempotent

    back = run(job(url, state, reverse=True, to=""))
    assert back.rewritten == 4 and back.changed_since == 0
    assert values(url) == original
    from golive.files.db import connect

    db = connect(url)
    try:
        assert not db.has_map_table()  # the reverse emptied it, so it was dropped
    finally:
        db.close()


def test_sqlite_cycle_with_the_engine(tmp_path, uploaded):
    check_cycle(sqlite_db(tmp_path), uploaded, rw.rewrite_paths)


def test_postgresql_cycle_with_the_flow(prefect_api, pg_url, pg_conn, uploaded):
    from flows.rewrite_paths import RewritePathsParams, rewrite_paths

    pg_conn.execute("CREATE TABLE images (id bigint PRIMARY KEY, path text)")
    with pg_conn.cursor() as cur:
        cur.executemany("INSERT INTO images VALUES (%s, %s)", ROWS)

    def run(j):
        return rewrite_paths(RewritePathsParams(db=j.db, table=j.table, column=j.column, to=j.to,
                                                strip_prefix=j.strip_prefix, state_dir=str(uploaded),
                                                batch_size=j.batch_size, reverse=j.reverse))

    check_cycle(pg_url, uploaded, run)


def test_mysql_cycle(mysql_admin_url, tmp_path, uploaded):
    import pymysql

    from golive.urls import parse_url

    u = parse_url(mysql_admin_url)
    name = "golive_t_" + uuid.uuid4().hex[:8]
    admin = pymysql.connect(host=u.host, port=u.port or 3306, user=u.user, password=u.password or "", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        url = f"mysql://{u.user}@{u.host}:{u.port or 3306}/{name}"
        conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.user, password=u.password or "",
                               database=name, autocommit=True)
        conn.cursor().execute("CREATE TABLE images (id INT PRIMARY KEY, path VARCHAR(500))")
        conn.cursor().executemany("INSERT INTO images VALUES (%s, %s)", ROWS)
        conn.close()
        check_cycle(url, uploaded, rw.rewrite_paths)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def test_urls_are_percent_encoded_and_edits_after_rewrite_survive_reverse(tmp_path, uploaded):
    url = sqlite_db(tmp_path)
    rw.rewrite_paths(job(url, uploaded, to="https://cdn.example.com/{key}"))
    now = dict(values(url))
    assert now[6] == "https://cdn.example.com/media/docs/my%20file.pdf"
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    conn.execute("UPDATE images SET path = 'https://cdn.example.com/new.jpg' WHERE id = 1")  # the app moved on
    conn.commit()
    conn.close()
    back = rw.rewrite_paths(job(url, uploaded, reverse=True, to=""))
    assert back.rewritten == 3 and back.changed_since == 1 and back.exit_code == 1
    assert dict(values(url))[1] == "https://cdn.example.com/new.jpg"  # not clobbered
    assert back.map_rows_left == 1


def test_a_failing_batch_changes_nothing(tmp_path, uploaded, monkeypatch):
    url = sqlite_db(tmp_path)
    from golive.files.db import PathDB

    def boom(self, *a, **k):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(PathDB, "map_put", boom)
    with pytest.raises(Exception, match="disk I/O error"):
        rw.rewrite_paths(job(url, uploaded, batch_size=100))
    assert values(url)[0] == ROWS[0]  # the update of the batch was rolled back with the mapping


def test_bad_input(tmp_path, uploaded):
    url = sqlite_db(tmp_path)
    with pytest.raises(ConfigError, match="no .key. or .path."):
        job(url, uploaded, to="s3://bucket/fixed")
    with pytest.raises(ConfigError, match="bad placeholder"):
        job(url, uploaded, to="s3://{bucket}/{key}/{nope}")
    with pytest.raises(ConfigError, match="has no column nope"):
        rw.check_target(rw.make_rewrite_job(url, "images", "nope", to="{key}", state_dir=uploaded))
    with pytest.raises(ConfigError, match="not found"):
        rw.check_target(rw.make_rewrite_job(url, "nope", "path", to="{key}", state_dir=uploaded))
    with pytest.raises(ConfigError, match="no upload manifest"):
        job(url, tmp_path / "empty-state")


def test_path_of():
    assert rw.path_of("uploads/a/b.jpg", "uploads/") == "a/b.jpg"
    assert rw.path_of("./uploads/a.jpg", "uploads") == "a.jpg"
    assert rw.path_of("/a.jpg", "") == "a.jpg"
    assert rw.path_of("other/a.jpg", "uploads/") is None
    assert rw.path_of("s3://b/k", "") is None
    assert rw.path_of("", "") is None and rw.path_of(None, "") is None and rw.path_of(5, "") is None


def test_embedded_urls_name_the_running_embedded_postgresql(tmp_path, uploaded, monkeypatch):
    from golive.dialects.postgresql import embedded
    from golive.urls import parse_url

    started = []
    monkeypatch.setattr(embedded, "start_postgres", lambda path, database="postgres": (
        started.append((str(path), database)) or parse_url(f"postgresql://postgres@/{database}?host={path}")))
    j = job(f"embedded://{tmp_path / 'pg'}", uploaded)
    assert started == [(str(tmp_path / "pg"), "postgres")]
    assert j.db.get_secret_value() == f"postgresql://postgres@/postgres?host={tmp_path / 'pg'}"

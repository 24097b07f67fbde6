"""The online go-live: the app keeps writing rows and uploading files the whole time; the files go first, the
database is copied and caught up, and inside the write freeze the files added since are uploaded and the paths
rewritten before the cut-over command switches the app."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from pathlib import Path

from go_live.test_go_live import journal_of, run_flow, write_config
from helpers import scalar

from .conftest import Writer


def uploads_app(tmp_path):
    from golive import sample

    counts = sample.build(tmp_path / "app.db", users=20, uploads=tmp_path / "uploads", bad_rows=False)
    db = sqlite3.connect(tmp_path / "app.db")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    return tmp_path / "app.db", tmp_path / "uploads", counts


def new_images(db_path: Path, uploads: Path):
    db = sqlite3.connect(db_path, isolation_level=None, timeout=60, check_same_thread=False)

    def write(n: int) -> None:
        body = f"image {n}".encode() * 50
        f = uploads / "new" / f"{n:05d}.jpg"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(body)  # the app stores the file, then its row
        db.execute("INSERT INTO images (user_id, path, size_bytes, sha256, created_at) VALUES "
                   "(1, ?, ?, ?, '2026-12-07 10:00:00')",
                   (f"uploads/new/{n:05d}.jpg", len(body), hashlib.sha256(body).hexdigest()))
        if n % 7 == 0:
            db.execute("UPDATE users SET name = ? WHERE id = ?", (f"renamed {n}", 1 + n % 20))
        time.sleep(0.01)
    return write


def test_online_go_live_uploads_the_last_files_and_rewrites_paths_inside_the_freeze(
        prefect_api, pg_url, s3, s3_endpoint, tmp_path):
    db, uploads, counts = uploads_app(tmp_path)
    bucket = "ogl-" + uuid.uuid4().hex[:8]
    switched = tmp_path / "switched"
    cfg = write_config(tmp_path / "golive.toml", source=f"sqlite:///{db}", target=pg_url, uploads=uploads,
                       bucket=f"s3://{bucket}/media", endpoint=s3_endpoint,
                       extra=(f'[migrate]\nonline = true\nworkers = 2\n[cutover]\ncommand = "touch {switched}"\n'
                              "[files]\ncreate_bucket = true\n"))
    with Writer(new_images(db, uploads)) as w:
        state, report = run_flow(cfg)
        time.sleep(0.2)
    assert state.is_completed(), (state.message, json.dumps(report, default=str)[:2000])
    assert switched.exists() and w.refused and w.n > 10
    j = journal_of(cfg)
    assert [s for s in j["steps"] if j["steps"][s]["status"] == "done"][:5] == [
        "precheck", "backup", "migrate-files", "migrate-db", "verify-files"]
    before = j["steps"]["migrate-db"]["summary"]["online"]["before_switch"]
    assert before["files"]["uploaded"] > 0, before  # files the app stored after the first pass
    # every image the app wrote, in the target with its path rewritten, and its object in the bucket
    images = scalar(pg_url, "SELECT count(*) FROM images")
    assert images == counts["images"] + w.n or images == counts["images"] + w.n - 1  # the last write may be fenced
    assert scalar(pg_url, "SELECT count(*) FROM images WHERE NOT starts_with(path, 'https://cdn.example.com/')") == 0
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="media/"):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    on_disk = {"media/" + p.relative_to(uploads).as_posix() for p in uploads.rglob("*") if p.is_file()}
    assert on_disk <= keys
    src = sqlite3.connect(db)
    assert scalar(pg_url, "SELECT count(*) FROM images") == src.execute("SELECT count(*) FROM images").fetchone()[0]

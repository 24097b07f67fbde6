"""End to end through the CLI (``python -m golive`` in a subprocess): migrate, re-run, verify, dry run,
bad input (exit 2, one line), problem files (exit 1), kill -9 and resume, rewrite-paths."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path



def make_tree(root: Path, n: int, size: int = 3000) -> Path:
    for i in range(n):
        p = root / f"{2020 + i % 4}" / f"img{i:04d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size + i))
    return root


def flow_runs() -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(limit=200))


def no_traceback(r) -> None:
    assert "Traceback" not in r.all, r
    lines = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r


def test_migrate_rerun_verify_dry_run(golive, tmp_path, bucket, s3, s3_endpoint):
    src = make_tree(tmp_path / "uploads", 12)
    dest = f"s3://{bucket}/media"
    r = golive("migrate", "files", "--source", src, "--dest", dest, "--endpoint-url", s3_endpoint,
               "--workers", "4", "--dry-run")
    assert r.code == 0 and "would upload" in r.out and "12 files" in r.out, r
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    r = golive("migrate", "files", "--source", src, "--dest", dest, "--endpoint-url", s3_endpoint,
               "--workers", "4", "--report", tmp_path / "up.json")
    assert r.code == 0 and "uploaded 12 files" in r.out, r
    assert json.loads((tmp_path / "up.json").read_text())["uploaded"] == 12
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 12

    runs_before = flow_runs()
    r = golive("migrate", "files", "--source", src, "--dest", dest, "--endpoint-url", s3_endpoint)
    assert r.code == 0 and "12 unchanged" in r.out and "uploaded 0 files" in r.out, r
    assert flow_runs() == runs_before  # nothing to do: decided from the manifest, no flow run

    r = golive("verify", "files", "--source", src, "--dest", dest, "--endpoint-url", s3_endpoint)
    assert r.code == 0 and "12 matched, 0 missing, 0 different, 0 extra" in r.out, r
    s3.delete_object(Bucket=bucket, Key="media/2021/img0001.jpg")
    s3.put_object(Bucket=bucket, Key="media/stray.jpg", Body=b"x")
    r = golive("verify", "files", "--source", src, "--dest", dest, "--endpoint-url", s3_endpoint,
               "--report", tmp_path / "v.json")
    assert r.code == 1 and "missing (1)" in r.out and "2021/img0001.jpg" in r.out and "media/stray.jpg" in r.out, r
    assert json.loads((tmp_path / "v.json").read_text())["missing"] == ["2021/img0001.jpg"]


def test_the_flow_takes_the_plan_made_while_prefect_starts(golive, tmp_path, bucket, proxy):
    src = make_tree(tmp_path / "uploads", 5)
    r = golive("migrate", "files", "--source", src, "--dest", f"s3://{bucket}/p", "--endpoint-url", proxy.url,
               "--workers", "2", "--multipart-threshold-mb", "32")
    assert r.code == 0 and "uploaded 5 files" in r.out, r
    # the start-up check and the listing, made once in the CLI's planning thread and taken by the flow's tasks
    assert proxy.count("GET") == 2 and proxy.count("PUT") == 5


def test_problem_files_exit_1_with_a_line_each(golive, tmp_path, bucket, s3_endpoint):
    src = make_tree(tmp_path / "uploads", 3)
    os.symlink(src / "2020/img0000.jpg", src / "alias.jpg")
    r = golive("migrate", "files", "--source", src, "--dest", f"s3://{bucket}", "--endpoint-url", s3_endpoint)
    assert r.code == 1, r
    assert "alias.jpg: symlink to" in r.out and "--follow-symlinks" in r.out and "uploaded 3 files" in r.out, r
    r = golive("migrate", "files", "--source", src, "--dest", f"s3://{bucket}", "--endpoint-url", s3_endpoint,
               "--follow-symlinks")
    assert r.code == 0 and "uploaded 1 files" in r.out, r


def test_bad_input_exits_2_with_one_line(golive, tmp_path, bucket, s3_endpoint, proxy):
    src = make_tree(tmp_path / "uploads", 2)
    base = ("migrate", "files", "--source", src)
    cases = [
        (("migrate", "files", "--source", tmp_path / "nope", "--dest", f"s3://{bucket}", "--endpoint-url",
          s3_endpoint), "source folder", {}),
        ((*base, "--dest", "s3://ab", "--endpoint-url", s3_endpoint), "bucket names", {}),
        ((*base, "--dest", f"s3://{bucket}", "--endpoint-url", "ftp://host"), "not http(s)://host", {}),
        ((*base, "--dest", f"s3://{bucket}", "--endpoint-url", "http://127.0.0.1:9"), "cannot reach", {}),
        ((*base, "--dest", "s3://no-such-bucket-here", "--endpoint-url", s3_endpoint), "--create-bucket", {}),
        ((*base, "--dest", f"s3://{bucket}", "--endpoint-url", proxy.url), "refused the credentials", {}),
        ((*base, "--dest", f"s3://{bucket}", "--endpoint-url", s3_endpoint), "no AWS credentials found",
         {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_CONFIG_FILE": "/nonexistent",
          "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}),
        ((*base, "--dest", f"s3://{bucket}", "--endpoint-url", s3_endpoint), "AWS profile 'nobody' not found",
         {"AWS_PROFILE": "nobody"}),
        ((*base, "--dest", f"s3://{bucket}", "--addressing-style", "sideways"), "addressing-style", {}),
    ]
    proxy.add(status=403, code="SignatureDoesNotMatch", times=-1)
    for args, expected, env in cases:
        env = {"AWS_SECRET_ACCESS_KEY": "sekrit-value-4711", **env}
        r = golive(*args, env=env)
        assert r.code == 2 and expected in r.err, (args, r)
        no_traceback(r)
        assert "sekrit-value-4711" not in r.all


def test_kill_9_then_resume(golive, tmp_path, bucket, s3, proxy):
    src = make_tree(tmp_path / "uploads", 60)
    proxy.add(method="PUT", delay=0.08, times=-1)  # slow enough to be killed midway
    state = tmp_path / "state"
    args = [sys.executable, "-m", "golive", "migrate", "files", "--source", str(src), "--dest", f"s3://{bucket}/k",
            "--endpoint-url", proxy.url, "--workers", "2", "--state-dir", str(state)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=tmp_path)
    manifests = state / "files"
    recorded = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        dbs = list(manifests.glob("*.sqlite"))
        if dbs:
            try:
                with sqlite3.connect(dbs[0], timeout=1) as conn:
                    recorded = conn.execute("select count(*) from files").fetchone()[0]
            except sqlite3.Error:
                recorded = 0
            if recorded >= 10:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and 10 <= recorded < 60, (recorded, proc.stderr.read())

    time.sleep(0.5)  # let the proxy finish the requests the killed process had in flight
    proxy.reset()
    r = golive("migrate", "files", "--source", src, "--dest", f"s3://{bucket}/k", "--endpoint-url", proxy.url,
               "--workers", "4", "--state-dir", state, "--report", tmp_path / "r.json")
    assert r.code == 0, r
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["uploaded"] + rep["unchanged"] == 60 and rep["unchanged"] >= recorded and rep["problems"] == []
    assert proxy.count("PUT") == rep["uploaded"] < 60  # what was recorded before the kill was not sent again
    r = golive("verify", "files", "--source", src, "--dest", f"s3://{bucket}/k", "--endpoint-url", proxy.url)
    assert r.code == 0 and "60 matched" in r.out, r


def test_rewrite_paths_cli(golive, tmp_path, bucket, s3_endpoint, pg_url):
    from golive.files.sync import upload_folder

    src = make_tree(tmp_path / "uploads", 4)
    assert upload_folder(src, f"s3://{bucket}/m", endpoint_url=s3_endpoint, state_dir=tmp_path / "golive-runs").ok
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT)")
        conn.executemany("INSERT INTO images VALUES (?, ?)",
                         [(i + 1, f"uploads/{p.relative_to(src)}") for i, p in enumerate(sorted(src.rglob("*.jpg")))])
    rw = ("rewrite-paths", "--db", f"sqlite:///{db}", "--table", "images", "--column", "path",
          "--strip-prefix", "uploads/", "--to", "https://cdn.example.com/{key}")
    r = golive(*rw, "--dry-run")
    assert r.code == 0 and "to be rewritten" in r.out and "-> https://cdn.example.com/m/2020/img0000.jpg" in r.out, r
    r = golive(*rw)
    assert r.code == 0 and "4 row(s) rewritten" in r.out, r
    r = golive(*rw)
    assert r.code == 0 and "0 row(s) rewritten" in r.out, r
    r = golive(*rw, "--reverse")
    assert r.code == 0 and "4 row(s) restored" in r.out, r
    with sqlite3.connect(db) as conn:
        assert conn.execute("select path from images where id = 1").fetchone() == ("uploads/2020/img0000.jpg",)
    # a password in the URL is never printed
    pw_url = pg_url.replace("postgres@", "postgres:hunter2@", 1)
    r = golive("rewrite-paths", "--db", pw_url, "--table", "images", "--column", "path", "--to", "s3://b/{key}",
               "--dry-run")
    assert r.code == 2 and "hunter2" not in r.all and "***" in r.err and "images not found" in r.err, r

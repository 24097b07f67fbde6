"""``golive demo`` end to end, as ``make demo`` runs it (a subprocess, under the session's Prefect API):
the sample app's database into an embedded PostgreSQL, its uploads into an embedded S3 server (moto), and
images.path in the PostgreSQL copy rewritten to the objects' URLs."""

from __future__ import annotations

import json
import sqlite3

import pytest


@pytest.mark.slow
def test_demo_moves_the_database_and_the_uploads(golive, tmp_path):
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver
    import psycopg

    d = tmp_path / "demo"
    try:
        r = golive("demo", "--dir", d, "--users", "30", timeout=600)
        assert r.code == 0, r
        files = sorted(p.relative_to(d / "uploads").as_posix() for p in (d / "uploads").rglob("*") if p.is_file())
        report = json.loads((d / "files-report.json").read_text())
        assert report["uploaded"] == len(files) > 100 and report["problems"] == []
        assert f"{len(files)} objects under s3://golive-demo/uploads/" in r.out
        with sqlite3.connect(report["manifest"]) as manifest:  # each one verified and recorded
            assert sorted(k for (k,) in manifest.execute("SELECT key FROM files")) == [f"uploads/{f}" for f in files]

        server = pgserver.get_server(str(d / "pgdata"), cleanup_mode="stop")  # the demo leaves it running
        with psycopg.connect(server.get_uri("app")) as conn:
            paths = [p for (p,) in conn.execute("SELECT path FROM images")]
        assert len(paths) >= len(files) - 2  # the demo's reject report leaves out a bad row
        prefix = "s3://golive-demo/uploads/"
        assert all(p.startswith(prefix) and p[len(prefix):] in files for p in paths)
        assert f"{len(paths)} rows now name their object" in r.out
        # it says what it leaves running, and how to stop it
        assert "still running" in r.out and f"golive embedded stop {d / 'pgdata'}" in r.out, r
        assert "Data Docs:" in r.out and "index.html" in r.out, r
        stopped = golive("embedded", "stop", d / "pgdata")
        assert stopped.code == 0 and "stopped: embedded://" in stopped.out, stopped
        assert not (d / "pgdata" / "postmaster.pid").exists()
    finally:
        if (d / "pgdata").exists():
            pgserver.get_server(str(d / "pgdata"), cleanup_mode="stop").cleanup()

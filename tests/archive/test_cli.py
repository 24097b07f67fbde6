"""The point-in-time commands end to end, through their flows: ``golive archive start`` killed with ``kill -9`` mid-run
and started again (no gap, nothing lost), ``archive status``, ``restore --to-time`` (a moment outside the window
refused in one line naming it; latest into a database) and ``archive drill``. PostgreSQL: the commands are the same
for every engine (``test_pitr.py`` covers both engines' restores)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def server():
    from tests.online.postgresql_server import available, pg_logical_server

    why = available()
    if why:
        pytest.skip(why)
    with pg_logical_server() as url:
        yield url


def _write(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        for _ in range(n):
            c.execute("INSERT INTO orders (note) VALUES ('x')")


def _manifest(path):
    import json

    p = path / "archive" / "app" / "archive.json"
    return json.loads(p.read_text()) if p.exists() else None


def test_archive_killed_then_started_again_status_restore_and_drill(server, golive, tmp_path, pg_admin_url):
    name = "pitrcli_" + uuid.uuid4().hex[:6]
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, note text)")
    store = tmp_path / "bucket"
    store.mkdir()
    to = f"file://{store}"
    spool = tmp_path / "spool"
    keyfile = tmp_path / "archive.key"
    keyfile.write_text(os.urandom(32).hex())
    key = ("--encrypt-key-file", str(keyfile))
    args = ["archive", "start", "--db", url, "--to", to, "--name", "app", "--flush-seconds", "2",
            "--marker-seconds", "1", "--spool-dir", str(spool), *key]
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "golive", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            m = _manifest(store)
            if m and m.get("flushed") and m.get("bases"):
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        else:
            raise AssertionError("no flush within 120 s")
        _write(url, 50)
        time.sleep(2.5)
        os.kill(proc.pid, signal.SIGKILL)  # mid-run: its receiver dies with it, the slot keeps the WAL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    _write(url, 50)  # while no archiver runs
    r = golive(*args, "--for", "8")
    assert r.code == 0, r
    assert "recovery window" in r.out and "receiver" in r.out

    r = golive("archive", "status", "--at", to)
    assert r.code == 0, r
    assert "app" in r.out and "recovery window" in r.out and "gap" not in r.out
    r = golive("backups", "list", "--at", to)  # the archive is listed beside the backups, with its window
    assert r.code == 0 and "recovery window" in r.out, r
    assert all(o.name.endswith(".zst.aes") for o in (store / "archive" / "app" / "segments").iterdir())

    r = golive("restore", "--from", f"{to}/archive/app", "--to-time", "latest", "--to-dir", str(tmp_path / "never"))
    assert r.code == 2 and "is encrypted" in r.all and "--encrypt-key-file" in r.all, r  # no key given
    r = golive("restore", "--from", f"{to}/archive/app", "--to-time", "2001-01-01 00:00:00+00", "--to-dir",
               str(tmp_path / "never"), *key)
    assert r.code == 2, r
    lines = [ln for ln in r.all.splitlines() if ln.strip()]
    assert len(lines) == 1 and "outside the recovery window of app" in lines[0], r.all
    assert not (tmp_path / "never").exists()

    target = "pitr_target_" + uuid.uuid4().hex[:6]
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {target}")
    try:
        dest = pg_admin_url.rsplit("/", 1)[0] + "/" + target
        r = golive("restore", "--from", f"{to}/archive/app", "--to-time", "latest", "--to", dest, *key)
        assert r.code == 0, r
        with psycopg.connect(dest) as c:
            assert c.execute("SELECT count(*) FROM orders").fetchone()[0] == 100
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")

    r = golive("archive", "drill", "--at", f"{to}/archive/app", *key)
    assert r.code == 0, r
    assert "drill passed" in r.out and "marker rows before the moment" in r.out

    r = golive("archive", "forget", "--db", url, "--name", "app")
    assert r.code == 0 and "golive_archive_app" in r.out, r


def test_the_server_killed_hard_while_the_app_writes_loses_at_most_the_rpo(server, tmp_path, pg_admin_url):
    """The source dies (``pg_ctl stop -m immediate``) while an app commits 50 rows a second: the archiver keeps
    trying, and a restore to latest has every row acknowledged before the archive's last flush, which is at most
    one flush interval (and the time a flush takes) before the crash. Last in the module: the server stays down."""
    import datetime as dt
    import threading

    from golive.archive import ArchiveOptions, restore_to_time, run_archive
    from tests.online.postgresql_server import BIN, _as_postgres

    name = "pitrkill_" + uuid.uuid4().hex[:6]
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
        data_dir = c.execute("SHOW data_directory").fetchone()[0]
    url = server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
    to = f"file://{tmp_path / 'bucket'}"
    (tmp_path / "bucket").mkdir()
    stop = threading.Event()
    out: dict = {}
    options = ArchiveOptions(name="crash", flush_seconds=2, marker_seconds=0, spool_dir=str(tmp_path / "spool"))
    t = threading.Thread(target=lambda: out.setdefault("r", run_archive(url, to, options, stop=stop)), daemon=True)
    t.start()
    acked: list[tuple[int, dt.datetime]] = []

    def app():
        try:
            with psycopg.connect(url, autocommit=True) as c:
                while True:
                    acked.append(c.execute("INSERT INTO orders DEFAULT VALUES RETURNING id, at").fetchone())
                    time.sleep(0.02)
        except psycopg.Error:
            return  # the server is gone

    try:
        manifest = tmp_path / "bucket" / "archive" / "crash" / "archive.json"
        t_end = time.monotonic() + 90
        while not (manifest.exists() and '"flushed": {' in manifest.read_text()):
            assert time.monotonic() < t_end and t.is_alive(), out
            time.sleep(0.3)
        writer = threading.Thread(target=app, daemon=True)
        writer.start()
        time.sleep(6)
        killed = dt.datetime.now(dt.timezone.utc)
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", data_dir, "-m", "immediate", "-w", "stop"]),
                       check=True, capture_output=True, timeout=60)
        writer.join(timeout=30)
        time.sleep(3)  # the archiver finds the server gone and keeps trying
        assert t.is_alive(), out
    finally:
        stop.set()
        t.join(timeout=120)
    import json

    flushed = dt.datetime.fromisoformat(json.loads(manifest.read_text())["flushed"]["at"])
    assert (killed - flushed).total_seconds() <= 2 + 3, (killed, flushed)  # one flush interval and its own time
    target = "pitr_crash_" + uuid.uuid4().hex[:6]
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {target}")
    try:
        dest = pg_admin_url.rsplit("/", 1)[0] + "/" + target
        restore_to_time(f"{to}/archive/crash", "latest", to_url=dest)
        with psycopg.connect(dest) as c:
            got = {r[0] for r in c.execute("SELECT id FROM orders")}
        must = {i for i, at in acked if at < flushed}
        assert len(must) > 100 and must <= got, sorted(must - got)[:5]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")

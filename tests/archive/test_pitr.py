"""Point-in-time recovery end to end, per engine: the archiver streams a throwaway server's log into moto's S3 while
an app writes; then restores to chosen moments, a drill, the window, a damaged segment and the commands.

One archive per engine is built once (``archived``): writes ``a`` before a whole-second moment T, writes ``b`` after
it, then a ``DELETE`` without ``WHERE`` "by mistake" at D, then writes ``c``. Every write's time is the server's
clock, read in the same statement. The servers are throwaway ones (``tests/online``): the machine's own have
``wal_level = replica`` / ``log_bin`` off and are never reconfigured; the MySQL restores go into the machine's MariaDB.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from golive.archive import ArchiveOptions, archive_status, drill, restore_to_time, run_archive
from golive.archive.store import ArchiveStore
from golive.backup.store import StorageOptions
from golive.errors import ConfigError, GoliveError

ENGINES = ["postgresql", "mysql"]
UTC = dt.timezone.utc


pytestmark = pytest.mark.timeout(300)


@dataclass
class App:
    engine: str
    url: str  # the archived database (admin)
    connect: object
    rows: dict = field(default_factory=dict)  # id -> (server time, batch)

    def write(self, batch: str, n: int, pause: float = 0.05) -> None:
        for _ in range(n):
            conn = self.connect()
            try:
                cur = conn.cursor()
                if self.engine == "postgresql":
                    cur.execute("INSERT INTO orders (batch) VALUES (%s) RETURNING id, at", (batch,))
                    rid, at = cur.fetchone()
                else:
                    cur.execute("INSERT INTO orders (batch, at) VALUES (%s, UTC_TIMESTAMP(6))", (batch,))
                    rid = cur.lastrowid
                    cur.execute("SELECT at FROM orders WHERE id = %s", (rid,))
                    at = cur.fetchone()[0].replace(tzinfo=UTC)
                conn.commit()
            finally:
                conn.close()
            self.rows[rid] = (at.astimezone(UTC), batch)
            time.sleep(pause)

    def now(self) -> dt.datetime:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute("SELECT clock_timestamp()" if self.engine == "postgresql" else "SELECT UTC_TIMESTAMP(6)")
            t = cur.fetchone()[0]
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
        finally:
            conn.close()

    def delete_all(self) -> dt.datetime:
        t = self.now()
        conn = self.connect()
        try:
            conn.cursor().execute("DELETE FROM orders")
            conn.commit()
        finally:
            conn.close()
        return t


def _sleep_to_whole_second(app: App, after: float = 0.3) -> dt.datetime:
    """Wait until just past the next whole second of the server's clock; return that second (the moment T)."""
    now = app.now()
    nxt = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep((nxt - now).total_seconds() + after)
    return nxt


@pytest.fixture(scope="module")
def servers():
    from tests.online.postgresql_server import available, pg_logical_server
    from tests.online.mysql_server import mariadb_binlog_server

    why = available()
    if why:
        pytest.skip(why)
    with pg_logical_server() as pg, mariadb_binlog_server() as my:
        yield {"postgresql": pg, "mysql": my}


def _app(engine: str, servers) -> App:
    if engine == "postgresql":
        import psycopg

        admin = servers["postgresql"]
        name = "pitr_" + uuid.uuid4().hex[:8]
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        url = admin.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE orders (id bigserial PRIMARY KEY, batch text NOT NULL, "
                      "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        return App(engine, url, lambda: psycopg.connect(url))
    srv = servers["mysql"]
    url = srv.make_db()
    db = url.rsplit("/", 1)[1]
    srv.admin("CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, batch VARCHAR(10) NOT NULL, "
              "at DATETIME(6) NOT NULL)", database=db)
    return App(engine, url, lambda: _my_conn(srv, db))


def _my_conn(srv, db):
    import pymysql

    from tests.online.mysql_server import ADMIN_PASSWORD, ADMIN_USER

    return pymysql.connect(host="127.0.0.1", port=srv.port, user=ADMIN_USER, password=ADMIN_PASSWORD, database=db,
                           autocommit=False)


@dataclass
class Archived:
    app: App
    at: str
    storage: StorageOptions
    moment: dt.datetime  # T: batch a before, b after
    deleted: dt.datetime  # D: the DELETE without WHERE
    result: object
    work: object


def _wait_for(cond, timeout: float, what: str) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module", params=ENGINES)
def archived(request, servers, s3_endpoint, tmp_path_factory):
    """An archive built while the app wrote: a, T, b, DELETE at D, c (flushes every 2 s, markers every second)."""
    import boto3

    engine = request.param
    app = _app(engine, servers)
    app.write("before", 5, pause=0)
    bucket = "pitr-" + uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    storage = StorageOptions(endpoint_url=s3_endpoint)
    work = tmp_path_factory.mktemp(f"pitr-{engine}")
    options = ArchiveOptions(name="app", flush_seconds=2, marker_seconds=1, storage=storage,
                             spool_dir=str(work / "spool"))
    stop = threading.Event()
    out: dict = {}

    def archiver():
        try:
            out["result"] = run_archive(app.url, f"s3://{bucket}/prod", options, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            out["error"] = exc

    t = threading.Thread(target=archiver, daemon=True)
    t.start()
    at = f"s3://{bucket}/prod/archive/app"
    store = ArchiveStore(at, storage)

    def flushed_after(when):
        m = store.load()
        return "error" in out or (m is not None and m.flushed is not None and m.flushed.at > when
                                  and bool(store.bases()))

    try:
        first = app.now()
        _wait_for(lambda: flushed_after(first), 90, "the first base backup and flush")
        assert "error" not in out, out.get("error")
        app.write("a", 15)
        if engine == "mysql":  # a rotated binlog file: complete segments, as PostgreSQL's WAL has them
            servers["mysql"].admin("FLUSH BINARY LOGS")
        moment = _sleep_to_whole_second(app)
        time.sleep(0.7)
        app.write("b", 15)
        time.sleep(2.2)  # MySQL restores to the second: "a second before" the DELETE is after every b
        deleted = app.delete_all()
        time.sleep(1.2)
        app.write("c", 10)
        end = app.now()
        _wait_for(lambda: flushed_after(end + dt.timedelta(seconds=1)), 60, "a flush after the last write")
    finally:
        stop.set()
        t.join(timeout=120)
    assert "error" not in out, repr(out.get("error"))
    yield Archived(app, at, storage, moment, deleted, out["result"], work)
    from golive.dialects import get_dialect
    from golive.urls import parse_url

    get_dialect(engine).archive.forget(parse_url(app.url), name="app")


class Restored:
    """A restore into a scratch: ``ids`` of the orders it holds; the cluster stopped / database dropped after."""

    def __init__(self, archived: Archived, to_time: str, mysql_admin_url: str | None):
        self.a = archived
        self.to_time = to_time
        self.mysql_admin_url = mysql_admin_url

    def __enter__(self):
        from golive.archive.drill import _free_port

        if self.a.app.engine == "postgresql":
            import tempfile
            from pathlib import Path

            # not under pytest's own temp dir: the server runs as postgres, and pytest keeps that dir 0700
            self.tmp = Path(tempfile.mkdtemp(prefix="golive-pitr-test-"))
            self.dir = self.tmp / "data"
            self.result = restore_to_time(self.a.at, self.to_time, to_dir=str(self.dir), port=_free_port(),
                                          storage=self.a.storage)
            import psycopg

            with psycopg.connect(self.result.details["url"]) as c:
                self.ids = {r[0] for r in c.execute("SELECT id FROM orders")}
        else:
            import pymysql

            self.db = "golive_pitr_" + uuid.uuid4().hex[:8]
            root = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
            root.cursor().execute(f"CREATE DATABASE {self.db}")
            root.close()
            base = self.mysql_admin_url.rsplit("/", 1)[0]
            self.result = restore_to_time(self.a.at, self.to_time, to_url=f"{base}/{self.db}", storage=self.a.storage)
            conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=self.db)
            cur = conn.cursor()
            cur.execute("SELECT id FROM orders")
            self.ids = {r[0] for r in cur.fetchall()}
            conn.close()
        return self

    def __exit__(self, *exc):
        if self.a.app.engine == "postgresql":
            from golive.dialects import get_dialect

            import shutil

            get_dialect("postgresql").archive.stop_restored(self.dir)
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            import pymysql

            root = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
            root.cursor().execute(f"DROP DATABASE IF EXISTS {self.db}")
            root.close()


def _ids(a: Archived, batches: set[str]) -> set[int]:
    return {i for i, (_, b) in a.app.rows.items() if b in batches}


def test_restore_to_a_moment_has_everything_before_it_and_nothing_after(archived, mysql_admin_url):
    a = archived
    with Restored(a, a.moment.isoformat(), mysql_admin_url) as r:
        assert r.ids == _ids(a, {"before", "a"}), (sorted(r.ids - _ids(a, {"before", "a"})),
                                                   sorted(_ids(a, {"before", "a"}) - r.ids))
    assert all(t < a.moment for t, b in a.app.rows.values() if b == "a")
    assert all(t > a.moment for t, b in a.app.rows.values() if b == "b")


def test_a_delete_without_where_is_undone_by_a_restore_to_a_second_before_it(archived, mysql_admin_url):
    a = archived
    before = (a.deleted - dt.timedelta(seconds=1)).isoformat()
    with Restored(a, before, mysql_admin_url) as r:
        assert r.ids == _ids(a, {"before", "a", "b"})


def test_latest_has_every_write_and_the_window_covers_them(archived, mysql_admin_url):
    a = archived
    w = archive_status(a.at, a.storage)
    assert w.ok, w
    last = max(t for t, _ in a.app.rows.values())
    assert w.earliest < a.moment < last < w.latest
    with Restored(a, "latest", mysql_admin_url) as r:
        assert r.ids == _ids(a, {"c"})
    assert a.result.max_flush_lag_seconds is not None and a.result.max_flush_lag_seconds < 60


def test_a_moment_outside_the_window_is_refused_naming_it(archived):
    with pytest.raises(ConfigError, match="outside the recovery window of app: .* to .*"):
        restore_to_time(archived.at, "2001-01-01 00:00:00+00", to_url="postgresql://nobody@127.0.0.1:1/x",
                        storage=archived.storage)


def test_a_drill_restores_a_random_moment_and_checks_the_markers(archived, mysql_admin_url):
    a = archived
    d = drill(a.at, storage=a.storage, seed=3, scratch=None if a.app.engine == "postgresql" else mysql_admin_url,
              stale_after=dt.timedelta(hours=1))
    assert d.status == "passed", d
    assert any("marker rows before the moment" in c for c in d.checks), d.checks
    assert d.rto_seconds > 0
    assert ArchiveStore(a.at, a.storage).drills()[-1].target == d.target


def test_a_damaged_segment_is_refused_by_name(archived, mysql_admin_url, s3):
    a = archived
    store = ArchiveStore(a.at, a.storage)
    m = store.require()
    victim = m.segments[-1] if m.segments else m.partial
    key = store.key(victim.stored_as)
    bucket = a.at.split("/")[2]
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original[:-7] + b"garbage")
    try:
        with pytest.raises(GoliveError, match=victim.name):
            with Restored(a, "latest", mysql_admin_url):
                pass
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)


def test_a_gap_and_a_stale_archive_fail_the_status_and_the_drill(archived, mysql_admin_url):
    """A segment missing from the chain is a gap (named); an archive whose last flush is old is stale; either
    fails the drill, which says so."""
    from golive.archive.window import window_of

    a = archived
    store = ArchiveStore(a.at, a.storage)
    m = store.require()
    d = drill(a.at, storage=a.storage, seed=5, scratch=None if a.app.engine == "postgresql" else mysql_admin_url,
              stale_after=dt.timedelta(seconds=0), record=False)
    assert d.status == "failed" and any("stale" in p for p in d.problems), d
    _told_by_webhook(a.at, d)
    base_first = store.bases()[0].first_segment
    chain = [s for s in m.segments if s.name >= base_first]
    if not chain:
        pytest.skip("no complete segment (MySQL's binlog rotates at 1 GB): no gap to make")
    victim = chain[0]
    broken = m.model_copy(update={"segments": [s for s in m.segments if s.name != victim.name]})
    w = window_of(broken, store)
    assert not w.ok and any(victim.name in g for g in w.gaps), w
    store.save(broken)
    try:
        d = drill(a.at, storage=a.storage, seed=5, record=False, stale_after=dt.timedelta(hours=1))
        assert d.status == "failed" and any(victim.name in p for p in d.problems), d
    finally:
        store.save(m)


def _told_by_webhook(at: str, d) -> None:
    """A failed drill reaches the release notifier's webhooks (here its plain JSON kind)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from golive.archive.notify import notify_drill

    got = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        res = notify_drill([f"json+http://127.0.0.1:{httpd.server_address[1]}/hook"], at, d)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [r.ok for r in res] == [True], res
    assert got and got[0]["event"] == "drill" and got[0]["status"] == "failed" and "FAILED" in got[0]["title"], got
    assert any("stale" in p for p in got[0]["problems"]), got

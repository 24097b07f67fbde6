"""The MySQL/MariaDB side of point-in-time recovery (``golive/dialects/mysql/archive.py``), engine level.

One throwaway MariaDB with the binary log on (module-scoped), one source database, one base backup and one spool
the receiver streams into, shared by the tests in order; each restore goes into a fresh database, on the machine's
own MariaDB (127.0.0.1:3306, log_bin off: another server) or on the binlog server itself (the same server), and
is dropped after.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from golive.dialects import get_dialect
from golive.dialects.mysql.archive import MySQLArchive, replica_id, whole_events
from golive.errors import ConfigError, GoliveError
from golive.model.backup import ObjectEntry
from golive.urls import parse_url
from tests.online.mysql_server import mariadb_binlog_server

LOCAL = "mysql://root@127.0.0.1:3306/"
UTC = dt.timezone.utc
engine = get_dialect("mysql").archive
assert isinstance(engine, MySQLArchive)


class _Writer:
    def __init__(self, path: Path, name: str, kind: str, table: str | None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.name, self.kind, self.table = path, name, kind, table
        self.fh = open(path, "wb")
        self.h = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.h.update(data)

    def splice_from(self, fd: int) -> bool:
        return False

    def close(self) -> ObjectEntry:
        self.fh.close()
        size = self.path.stat().st_size
        return ObjectEntry(name=self.name, stored_as=self.name, kind=self.kind, size=size, raw_size=size,
                           sha256=self.h.hexdigest(), table=self.table)

    def abort(self) -> None:
        self.fh.close()
        self.path.unlink(missing_ok=True)


class DirSink:
    """Objects as plain local files (what the restore is given back, downloaded and decompressed)."""

    def __init__(self, root: Path):
        self.root = root

    def open(self, name: str, kind: str, table: str | None = None) -> _Writer:
        return _Writer(self.root / name, name, kind, table)


def _sql(url: str, *stmts: str):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs

    u = parse_url(url)
    kw = connect_kwargs(u)
    conn = pymysql.connect(**kw, autocommit=True)
    try:
        out = None
        with conn.cursor() as cur:
            for s in stmts:
                cur.execute(s)
                out = cur.fetchall()
        return out
    finally:
        conn.close()


def _server_now(url: str) -> dt.datetime:
    return _sql(url, "SELECT UTC_TIMESTAMP(6)")[0][0].replace(tzinfo=UTC)


def _sleep_past_next_second(url: str) -> dt.datetime:
    """Sleep until the server's clock is just past its next whole second; return that second."""
    now = _server_now(url)
    second = now.replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep((second - now).total_seconds() + 0.05)
    return second


@pytest.fixture(scope="module")
def server():
    with mariadb_binlog_server() as s:
        yield s


@pytest.fixture(scope="module")
def arch(server, tmp_path_factory):
    """The source database with its base backup, and the receiver streaming into the spool."""
    root = tmp_path_factory.mktemp("mypitr")
    src = server.make_db()
    _sql(src, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50), at DATETIME(6))",
         "CREATE TABLE d (id INT PRIMARY KEY, v VARCHAR(50))",
         "INSERT INTO t (v, at) VALUES ('base-1', UTC_TIMESTAMP(6)), ('base-2', UTC_TIMESTAMP(6))",
         "INSERT INTO d VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    url = parse_url(src)
    engine.check_ready(url)
    base = engine.base_backup(url, DirSink(root / "base"), name="t1")
    _sql(src, "INSERT INTO t (v, at) VALUES ('after-base', UTC_TIMESTAMP(6))")  # in the log, not in the base
    spool = root / "spool"
    spool.mkdir()
    rec = engine.receiver(url, spool, name="t1", start=base["first_segment"])
    rec.start()
    ns = type("Arch", (), {})()
    ns.src, ns.url, ns.base, ns.root, ns.spool, ns.rec = src, url, base, root, spool, rec
    ns.base_files = {o.name: root / "base" / o.name for o in base["objects"]}
    yield ns
    rec.stop()


def _catch_up(arch, timeout: float = 30) -> float:
    """Wait until the spool holds everything the server logged; return how long that took."""
    t0 = time.monotonic()
    _, head = engine.head(arch.url)
    while time.monotonic() - t0 < timeout:
        got = engine.received(arch.url, arch.spool, name="t1")
        if got and engine.position_key(got) >= engine.position_key(head):
            return time.monotonic() - t0
        assert arch.rec.alive(), arch.rec.last_error()
        time.sleep(0.05)
    raise AssertionError(f"the spool did not reach {head} within {timeout} s")


def _segments(arch) -> list[Path]:
    sp = engine.spooled(arch.spool)
    return [*sp.complete, *([sp.partial] if sp.partial else [])]


@pytest.fixture
def target(request):
    """A fresh database on the machine's MariaDB (another server than the source's)."""
    name = "golive_pitr_" + uuid.uuid4().hex[:8]
    _sql(LOCAL + "mysql", f"CREATE DATABASE {name}")
    yield parse_url(LOCAL + name)
    _sql(LOCAL + "mysql", f"DROP DATABASE IF EXISTS {name}")


def _restore(arch, target_url, when, tmp_path, segments=None, **kw):
    return engine.restore(arch.base, arch.base_files, segments if segments is not None else _segments(arch), when,
                          to_url=target_url, workdir=tmp_path, **kw)


def test_positions_and_segment_names():
    assert engine.position_key("binlog.000003:1234") == (3, 1234)
    assert engine.position_key("binlog.000010:4") > engine.position_key("binlog.000009:99999")
    assert engine.segment_key("binlog.000003") == (3,)
    assert engine.next_segment("binlog.000009") == "binlog.000010"
    assert engine.next_segment("my-bin.999999") == "my-bin.1000000"
    assert 1 < replica_id("a") == replica_id("a") != replica_id("b")
    assert engine.forget(None, name="x") == []


def test_restore_to_a_second_keeps_what_came_before_it(arch, target, tmp_path):
    ident = engine.identity(arch.url)
    assert ident["system"].endswith(":1") and "MariaDB" in ident["server_version"]
    _sql(arch.src, "INSERT INTO t (v, at) VALUES ('before', UTC_TIMESTAMP(6))")
    m1 = engine.write_marker(arch.url)
    cut = _sleep_past_next_second(arch.src)
    m2 = engine.write_marker(arch.url)
    _sql(arch.src, "INSERT INTO t (v, at) VALUES ('after', UTC_TIMESTAMP(6))")
    assert m1 < cut <= m2
    lag = _catch_up(arch)
    assert lag < 5  # the raw file follows the server event by event
    arch.rec.stop()
    assert not arch.rec.alive()
    with pytest.raises(GoliveError, match="before the base's snapshot"):
        _restore(arch, target, arch.base["end_time"] - dt.timedelta(seconds=1), tmp_path)
    out = _restore(arch, target, cut, tmp_path)
    rows = [r[0] for r in _sql(str(target.raw), "SELECT v FROM t ORDER BY id")]
    assert rows == ["base-1", "base-2", "after-base", "before"]
    assert engine.markers(target) == [m1]
    assert engine.integrity(target) == []
    assert out["where"] == target.masked and out["transactions"] >= 3
    assert out["stopped_before"] == cut.isoformat()
    arch.rec.start()  # the next tests go on streaming


def test_a_delete_without_where_is_undone_by_restoring_to_the_second_before_it(arch, target, tmp_path):
    for i in range(3):
        _sql(arch.src, f"INSERT INTO d VALUES ({10 + i}, 'early-{i}')")
    _sql(arch.src, "ALTER TABLE d ADD COLUMN note VARCHAR(20)")  # DDL: a statement event, renamed by --rewrite-db
    for i in range(3, 5):  # statement-based events replay too (the database named by their USE is renamed)
        _sql(arch.src, "SET SESSION binlog_format = 'STATEMENT'", f"INSERT INTO d VALUES ({10 + i}, 'early-{i}', 'stmt')")
    cut = _sleep_past_next_second(arch.src)
    _sql(arch.src, "DELETE FROM d")
    for i in range(3):
        _sql(arch.src, f"INSERT INTO d (id, v) VALUES ({100 + i}, 'late-{i}')")
    _catch_up(arch)
    _restore(arch, target, cut, tmp_path)
    rows = _sql(str(target.raw), "SELECT id, note FROM d ORDER BY id")
    assert [r[0] for r in rows] == [1, 2, 3, 10, 11, 12, 13, 14] and rows[-1][1] == "stmt"


def test_a_receiver_killed_mid_stream_resumes_and_loses_nothing(arch, server, tmp_path):
    committed: list[int] = []
    stop = threading.Event()

    def writer():
        import pymysql

        from golive.dialects.mysql.session import connect_kwargs

        conn = pymysql.connect(**connect_kwargs(arch.url), autocommit=True)
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO t (v, at) VALUES ('w', UTC_TIMESTAMP(6))")
                committed.append(cur.lastrowid)
                time.sleep(0.005)
        conn.close()

    w = threading.Thread(target=writer)
    w.start()
    try:
        time.sleep(0.4)
        os.kill(arch.rec.pid, signal.SIGKILL)
        time.sleep(0.2)
        assert not arch.rec.alive()
        before = engine.received(arch.url, arch.spool, name="t1")
        arch.rec.start()  # fetches the newest file again from its start: what was received stays received
        for _ in range(20):
            assert engine.position_key(engine.received(arch.url, arch.spool, name="t1")) >= engine.position_key(before)
            time.sleep(0.005)
        time.sleep(0.2)
        os.kill(arch.rec.pid, signal.SIGKILL)
        server.admin("FLUSH BINARY LOGS")  # a rotation while no receiver runs
        time.sleep(0.3)
        arch.rec.start()
        time.sleep(0.4)
        server.admin("FLUSH BINARY LOGS")  # and one while it runs
        time.sleep(0.3)
    finally:
        stop.set()
        w.join()
    _catch_up(arch)
    segs = _segments(arch)
    names = [p.name for p in segs]
    assert all(engine.next_segment(a) == b for a, b in zip(names, names[1:])), names
    assert len(names) >= 3
    for p in segs[:-1]:  # complete segments are whole, ending with their Rotate event
        assert whole_events(p.read_bytes()) == p.stat().st_size
    # restored into another database of the same server (its own binlog and GTIDs replayed onto itself)
    same = parse_url(server.make_db())
    out = _restore(arch, same, None, tmp_path)
    got = {r[0] for r in _sql(str(same.raw), "SELECT id FROM t")}
    assert set(committed) <= got and len(committed) > 10
    assert out["reached"].split(":")[0] == names[-1]
    assert engine.integrity(same) == []


def test_a_partial_segment_cut_mid_event_replays_cleanly(arch, target, tmp_path):
    for i in range(20):
        _sql(arch.src, f"INSERT INTO t (v, at) VALUES ('p{i}', UTC_TIMESTAMP(6))")
    _catch_up(arch)
    segs = _segments(arch)
    partial = segs[-1]
    whole = partial.read_bytes()
    cut = whole[:len(whole) - 37]  # mid-event: the last transaction loses its end
    cut_path = _write(tmp_path / "cut" / partial.name, cut)
    data, pos = engine.partial_bytes(cut_path)
    assert len(data) < len(cut) and whole_events(data) == len(data) and whole.startswith(data)
    assert pos == f"{partial.name}:{len(data)}"
    assert engine.partial_bytes(cut_path, start=len(data)) == (b"", pos)  # the next flush: nothing new yet
    second = whole_events(data[:len(data) // 2])  # an event boundary: what a flush stored before
    assert engine.partial_bytes(cut_path, start=second) == (data[second:], pos)
    given = tmp_path / "given"
    given.mkdir()
    for p in segs[:-1]:
        shutil.copy(p, given / p.name)
    _write(given / f"{partial.name}.partial", data)
    out = _restore(arch, target, None, tmp_path, segments=sorted(given.iterdir()))
    got = [r[0] for r in _sql(str(target.raw), "SELECT v FROM t WHERE v LIKE 'p%' ORDER BY id")]
    assert got == [f"p{i}" for i in range(19)]  # the last insert was cut: rolled back, not half-applied
    assert out["reached"].startswith(partial.name + ":")
    # the same bytes not cut at an event: the replay fails, naming the segment
    _write(given / f"{partial.name}.partial", cut)
    with pytest.raises(GoliveError, match=rf"segment {re.escape(partial.name)}.partial failed") as err:
        _restore(arch, target, None, tmp_path, segments=sorted(given.iterdir()), force=True)
    assert "\n" not in str(err.value), str(err.value)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_check_ready_names_the_missing_grant(server):
    name = "nrs_" + uuid.uuid4().hex[:6]
    server.admin(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}'", f"GRANT SELECT, BINLOG MONITOR ON *.* TO '{name}'@'%'")
    with pytest.raises(ConfigError) as err:
        engine.check_ready(parse_url(f"mysql://{name}:pw-{name}@127.0.0.1:{server.port}/mysql"))
    msg = str(err.value)
    assert "GRANT REPLICATION SLAVE ON *.*" in msg and "\n" not in msg and f"pw-{name}" not in msg


def test_a_receiver_that_dies_says_why(server, tmp_path):
    rec = engine.receiver(parse_url(server.url), tmp_path, name="gone", start="binlog.999999")
    rec.start()
    for _ in range(100):
        if not rec.alive():
            break
        time.sleep(0.05)
    assert not rec.alive()
    why = rec.last_error()
    assert "binlog.999999" in why and "adm1n-pw" not in why, why
    rec.stop()
    assert rec.last_error() == why


def test_the_machine_server_without_binlog_is_refused():
    with pytest.raises(ConfigError, match="the binary log is off: set log_bin"):
        engine.check_ready(parse_url(LOCAL + "mysql"))
    with pytest.raises(ConfigError, match="not a directory"):
        engine.restore({}, {}, [], None, to_dir=Path("/tmp/x"), workdir=Path("/tmp"))


def test_the_replay_never_runs_statements_about_the_database_itself():
    """MariaDB logs CREATE/ALTER/DROP DATABASE under the database they name: ``--database`` keeps them and
    ``--rewrite-db`` does not rename them (checked), so they would act on the source's own database."""
    from golive.dialects.mysql.archive import _Replay

    r = _Replay("binlog.000007")
    lines = [b"#261207 14:15:18 server id 1  end_log_pos 983 CRC32 0xb7c44544 \tGTID 0-1-5 ddl\n",
             b"/*M!100001 SET @@session.gtid_seq_no=5*//*!*/;\n",
             b"SET @@session.collation_database=DEFAULT/*!*/;\n",
             b"CREATE DATABASE `src`\n", b"/*!*/;\n",
             b"use `dst`/*!*/;\n", b"ALTER DATABASE `src` CHARACTER SET utf8mb4\n", b"/*!*/;\n",
             b"SET TIMESTAMP=1796652918/*!*/;\n", b"INSERT INTO t VALUES ('x\n", b"DROP DATABASE in a value')\n",
             b"/*!*/;\n"]
    kept = [out for raw in lines if (out := r.line(raw)) is not None]
    assert b"CREATE DATABASE `src`\n" not in kept and not any(b"ALTER DATABASE" in k for k in kept)
    assert not any(b"gtid_seq_no" in k for k in kept)  # the target numbers the replayed transactions itself
    assert b"DROP DATABASE in a value')\n" in kept and b"use `dst`/*!*/;\n" in kept
    with pytest.raises(GoliveError, match=r"segment binlog.000007 stopped: the log drops the source database at "
                                          r"2026-12-07 14:15:18 UTC: restore to a moment before it"):
        r.line(b"DROP DATABASE `src`\n")

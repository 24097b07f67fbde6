"""PostgreSQL's archive engine against one throwaway server: slot + pg_receivewal, pg_basebackup, archive recovery.

Local directories only (the capability that moves files to a bucket is tested elsewhere). One archive (slot,
receiver, base) serves every test of the module; each test writes its own table and restores into its own directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import threading
import time
from pathlib import Path

import psycopg
import pytest

from golive.errors import ConfigError, TerminalError
from golive.model.backup import ObjectEntry
from golive.urls import parse_url
from tests.online.postgresql_server import available, pg_logical_server

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")

NAME = "enginetest"


class FileWriter:
    def __init__(self, path: Path, name: str, kind: str) -> None:
        self.path, self.name, self.kind = path, name, kind
        self.fh = open(path, "wb")
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.h.update(data)
        self.n += len(data)

    def splice_from(self, fd: int) -> bool:
        return False

    def close(self) -> ObjectEntry:
        self.fh.close()
        return ObjectEntry(name=self.name, stored_as=self.name, kind=self.kind, size=self.n, raw_size=self.n,
                           sha256=self.h.hexdigest())

    def abort(self) -> None:
        self.fh.close()
        self.path.unlink(missing_ok=True)


class DirSink:
    """Objects as plain files in a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, name: str, kind: str, table: str | None = None) -> FileWriter:
        return FileWriter(self.root / name, name, kind)


@pytest.fixture
def tmp_path(request):
    """A directory the postgres user can reach (restored clusters run as postgres): not under pytest's own
    basetemp, which every pytest run on the machine resets to 0700."""
    import os
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="golive-pitr-test-"))
    os.chmod(path, 0o711)
    yield path
    from golive.dialects.postgresql.archive import stop_cluster

    for pid_file in list(path.glob("*/postmaster.pid")) + list(path.glob("*/*/postmaster.pid")):
        stop_cluster(pid_file.parent, mode="immediate")  # a failed assertion left one running
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def engine():
    from golive.dialects import get_dialect

    return get_dialect("postgresql").archive


@pytest.fixture(scope="module")
def server():
    with pg_logical_server() as url:
        yield parse_url(url)


@pytest.fixture(scope="module")
def archive(engine, server, tmp_path_factory):
    """Slot and receiver first (nothing written after the slot is lost), then the base."""
    root = tmp_path_factory.mktemp("archive")
    spool = root / "spool"
    spool.mkdir()
    rec = engine.receiver(server, spool, name=NAME)
    rec.start()
    first = rec.resumes_at  # an empty spool: the slot's restart_lsn says
    bases = root / "base"
    bases.mkdir()
    t0 = time.monotonic()
    base = engine.base_backup(server, DirSink(bases), name=NAME)
    base["seconds"] = time.monotonic() - t0
    yield {"spool": spool, "receiver": rec, "base": base, "base_files": {"base.tar": bases / "base.tar"},
           "first": first}
    rec.stop()
    engine.forget(server, name=NAME)


def run(url, sql, args=None):
    with psycopg.connect(url.raw, autocommit=True) as conn:
        cur = conn.execute(sql, args)
        return cur.fetchall() if cur.description else None


def server_now(url) -> dt.datetime:
    return run(url, "SELECT clock_timestamp()")[0][0].astimezone(dt.timezone.utc)


def wait_archived(engine, url, spool, timeout=20.0) -> str:
    """Until the receiver flushed everything the server had when this was called."""
    _, pos = engine.head(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = engine.received(url, spool, name=NAME)
        if got is not None and engine.position_key(got) >= engine.position_key(pos):
            return got
        time.sleep(0.05)
    raise AssertionError(f"the receiver did not reach {pos} (at {got})")


def snapshot(engine, arc, dest: Path) -> list[Path]:
    """Stop the receiver, copy what the spool holds (as the capability would have stored it), start it again."""
    rec = arc["receiver"]
    rec.stop()
    dest.mkdir()
    held = engine.spooled(arc["spool"])
    out = [Path(shutil.copy(p, dest / p.name)) for p in held.complete]
    if held.partial is not None:
        data, _ = engine.partial_bytes(held.partial)
        (dest / held.partial.name).write_bytes(data)
        out.append(dest / held.partial.name)
    rec.start()
    return out


def restored_url(out) -> object:
    return parse_url(out["url"])


def test_restore_to_a_moment_keeps_what_was_before_and_drops_what_was_after(engine, server, archive, tmp_path):
    from golive.dialects.postgresql.archive import stop_cluster

    base = archive["base"]
    assert base["first_segment"] and base["details"]["timeline"] == 1
    assert engine.position_key(base["start"]) <= engine.position_key(base["end"])
    # pg_receivewal 15 with an empty spool began at the slot's restart_lsn (the segment of the last checkpoint's
    # redo when the slot was made), before the base's first segment: the base is rolled forward from the archive
    oldest = engine.spooled(archive["spool"]).complete[0].name
    assert oldest == archive["first"] and engine.segment_key(oldest) <= engine.segment_key(base["first_segment"])
    run(server, "CREATE TABLE t1 (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
    for i in (1, 2, 3):
        run(server, "INSERT INTO t1 (id) VALUES (%s)", (i,))
    before = engine.write_marker(server)
    time.sleep(0.6)
    target = server_now(server)
    time.sleep(0.6)
    after = engine.write_marker(server)
    for i in (4, 5, 6):
        run(server, "INSERT INTO t1 (id) VALUES (%s)", (i,))
    wait_archived(engine, server, archive["spool"])
    segments = snapshot(engine, archive, tmp_path / "segments")
    assert before < target < after

    t0 = time.monotonic()
    out = engine.restore(base, archive["base_files"], segments, target, to_dir=tmp_path / "data",
                         workdir=tmp_path / "work")
    seconds = time.monotonic() - t0
    try:
        assert "recovery stopping before" in out["reached"], out
        url = restored_url(out)  # the socket in the data directory, as golive connects
        assert "host=" in out["url"] and engine.restores_to_dir
        assert [r[0] for r in run(parse_url(out["tcp_url"]), "SELECT id FROM t1 ORDER BY id")] == [1, 2, 3]
        assert engine.markers(url) == [before]
        assert engine.integrity(url) == []
    finally:
        engine.stop_restored(tmp_path / "data")
    assert not (tmp_path / "data" / "postmaster.pid").exists()
    print(f"restore to a moment: {seconds:.1f} s; base: {base['seconds']:.1f} s; reached: {out['reached']}")


def test_a_killed_receiver_resumes_without_a_gap_and_the_slot_kept_what_came_meanwhile(engine, server, archive,
                                                                                         tmp_path):
    from golive.dialects.postgresql.archive import stop_cluster

    run(server, "CREATE TABLE t2 (id int PRIMARY KEY, pad text)")
    committed: list[int] = []
    stop = threading.Event()

    def writer():
        with psycopg.connect(server.raw, autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                i += 1
                conn.execute("INSERT INTO t2 VALUES (%s, repeat('x', 2000))", (i,))
                committed.append(i)
                time.sleep(0.002)

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(0.5)
        run(server, "SELECT pg_switch_wal()")
        time.sleep(0.5)
        rec = archive["receiver"]
        rec.proc.kill()  # kill -9, mid-segment
        rec.proc.wait()
        killed_at = len(committed)
        held = engine.spooled(archive["spool"])
        assert held.partial is not None and engine.partial_bytes(held.partial)[1] != "0/0"
        time.sleep(1.0)  # acknowledged while nothing receives: the slot keeps it
        down = len(committed) - killed_at
        rec.start()
        assert rec.resumes_at == held.partial.name[:24]  # the partial segment again, from its start
        time.sleep(0.5)
        run(server, "SELECT pg_switch_wal()")
        time.sleep(0.5)
    finally:
        stop.set()
        th.join()
    assert down > 10
    wait_archived(engine, server, archive["spool"])
    segments = snapshot(engine, archive, tmp_path / "segments")
    complete = [p.name for p in segments if not p.name.endswith(".partial")]
    assert len(complete) >= 2
    for a, b in zip(complete, complete[1:]):
        assert engine.next_segment(a) == b, f"gap between {a} and {b}"
    partial = [p.name for p in segments if p.name.endswith(".partial")]
    if partial:
        assert partial[0][:24] == engine.next_segment(complete[-1])

    out = engine.restore(archive["base"], archive["base_files"], segments, None, to_dir=tmp_path / "data",
                         workdir=tmp_path / "work")
    try:
        ids = {r[0] for r in run(restored_url(out), "SELECT id FROM t2")}
        assert set(committed) <= ids
    finally:
        stop_cluster(tmp_path / "data")

    # a segment missing: refused before anything starts
    with pytest.raises(TerminalError, match=f"WAL segment {complete[-1]} is missing"):
        engine.restore(archive["base"], archive["base_files"], [p for p in segments if p.name != complete[-1]],
                       None, to_dir=tmp_path / "gap", workdir=tmp_path / "work-gap")
    # a damaged one: PostgreSQL would promote at the damage, silently older; golive says so and stops it
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    copies = [Path(shutil.copy(p, damaged / p.name)) for p in segments]
    replayed = [p for p in copies[:-1] if not p.name.endswith(".partial")
                and engine.segment_key(p.name) >= engine.segment_key(archive["base"]["first_segment"])]
    bad = max(replayed, key=lambda p: len(p.read_bytes().rstrip(b"\0")))
    raw = bytearray(bad.read_bytes())
    assert len(raw.rstrip(b"\0")) > 1 << 16
    raw[1 << 15:] = bytes(len(raw) - (1 << 15))
    bad.write_bytes(bytes(raw))
    with pytest.raises(TerminalError, match="short of the archive's last segment") as err:
        engine.restore(archive["base"], archive["base_files"], copies, None, to_dir=tmp_path / "bad",
                       workdir=tmp_path / "work-bad")
    assert "\n" not in str(err.value)
    print(f"damaged: {err.value}")
    assert not (tmp_path / "bad" / "postmaster.pid").exists()


def test_check_ready_names_the_missing_replication_grant(engine, server):
    engine.check_ready(server)
    run(server, "DROP ROLE IF EXISTS archiver_norepl")
    run(server, "CREATE ROLE archiver_norepl LOGIN")
    try:
        with pytest.raises(ConfigError) as err:
            engine.check_ready(parse_url(server.raw.replace("postgres@", "archiver_norepl@", 1)))
        msg = str(err.value)
        assert "\n" not in msg and "ALTER ROLE archiver_norepl REPLICATION" in msg
    finally:
        run(server, "DROP ROLE archiver_norepl")


def test_a_delete_without_where_is_undone_by_a_restore_to_just_before_it(engine, server, archive, tmp_path):
    from golive.dialects.postgresql.archive import stop_cluster

    run(server, "CREATE TABLE t4 (id int PRIMARY KEY)")
    run(server, "CREATE TABLE t4_log (id int PRIMARY KEY)")
    for i in range(1, 11):
        run(server, "INSERT INTO t4 VALUES (%s)", (i,))
        run(server, "INSERT INTO t4_log VALUES (%s)", (i,))
    time.sleep(1.2)
    deleted_at = run(server, "DELETE FROM t4 RETURNING clock_timestamp()")[0][0]
    for i in range(11, 16):
        run(server, "INSERT INTO t4_log VALUES (%s)", (i,))
    wait_archived(engine, server, archive["spool"])
    segments = snapshot(engine, archive, tmp_path / "segments")
    target = deleted_at - dt.timedelta(seconds=1)
    (tmp_path / "work").mkdir(mode=0o700)  # a scratch directory as tempfile.mkdtemp makes it: postgres must get in
    out = engine.restore(archive["base"], archive["base_files"], segments, target, to_dir=tmp_path / "data",
                         workdir=tmp_path / "work")
    try:
        url = restored_url(out)
        assert [r[0] for r in run(url, "SELECT id FROM t4 ORDER BY id")] == list(range(1, 11))
        assert [r[0] for r in run(url, "SELECT id FROM t4_log ORDER BY id")] == list(range(1, 11))
    finally:
        stop_cluster(tmp_path / "data")


def test_positions_and_segment_names(engine, tmp_path):
    assert engine.position_key("0/16B3748") < engine.position_key("1/0") < engine.position_key("1/10")
    assert engine.next_segment("0000000100000000000000FF") == "000000010000000100000000"
    assert engine.next_segment("00000001000000000000000A") == "00000001000000000000000B"
    (tmp_path / "00000001000000000000000B").write_bytes(b"")
    (tmp_path / "00000001000000000000000A").write_bytes(b"")
    (tmp_path / "00000001000000000000000C.partial").write_bytes(b"\1\2" + b"\0" * (16 * 1024 * 1024 - 2))
    (tmp_path / "notes.txt").write_text("x")
    held = engine.spooled(tmp_path)
    assert [p.name for p in held.complete] == ["00000001000000000000000A", "00000001000000000000000B"]
    data, end = engine.partial_bytes(held.partial)
    assert data == b"\1\2" and end == "0/C000002"  # as far as it holds data (a restore pads it again)
    assert engine.partial_bytes(held.partial, start=2) == (b"", "0/C000002")  # nothing new since


def test_a_target_after_the_last_archived_commit_replays_everything_into_a_database(engine, server, archive, tmp_path):
    run(server, "DROP DATABASE IF EXISTS restored_into")
    run(server, "CREATE DATABASE restored_into")
    run(server, "CREATE TABLE t5 (id int PRIMARY KEY)")
    run(server, "INSERT INTO t5 SELECT generate_series(1, 100)")
    marker = engine.write_marker(server)
    time.sleep(0.3)
    target = server_now(server)  # no commit after it: PostgreSQL 15 stops short of the target, then all is replayed
    wait_archived(engine, server, archive["spool"])
    segments = snapshot(engine, archive, tmp_path / "segments")
    into = server.with_database("restored_into")
    out = engine.restore(archive["base"], archive["base_files"], segments, target, to_url=into,
                         workdir=tmp_path / "work")
    assert out["where"] == into.masked and "recovery stopping" not in out["reached"] and "note" in out, out
    assert "recovery ended before configured recovery target was reached" in Path(out["log"]).read_text()
    assert run(into, "SELECT count(*) FROM t5")[0][0] == 100
    assert marker in engine.markers(into)
    assert not (tmp_path / "work" / "data" / "postmaster.pid").exists()


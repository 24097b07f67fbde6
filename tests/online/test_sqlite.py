"""A live SQLite app moved into PostgreSQL and MariaDB while it keeps writing (triggers capture the changes)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from conftest import ROOT
from golive import validation
from golive.dialects import dialect_of
from golive.migrate import online
from golive.model.capture import CaptureNotReady, SchemaChanged
from golive.urls import parse_url

from .conftest import Writer, move_online


def writes(path):
    db = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)

    def write(n: int) -> None:
        db.execute('UPDATE "Album" SET "Title" = ? WHERE "AlbumId" = ?', (f"renamed {n}", 1 + n % 347))
        db.execute('INSERT INTO "Genre" ("Name") VALUES (?)', (f"genre {n}",))
        if n % 5 == 0:
            db.execute('DELETE FROM "Genre" WHERE "GenreId" = (SELECT max("GenreId") FROM "Genre")')
        if n % 11 == 0:
            db.execute('DELETE FROM "InvoiceLine" WHERE "InvoiceLineId" = ?', (1 + n % 2240,))
        time.sleep(0.001)
    return write


def sqlite_rows(path, table: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
    finally:
        db.close()


def pg_rows(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [tuple(float(v) if type(v).__name__ == "Decimal" else v for v in r)
                for r in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()]


def test_a_live_sqlite_app_moves_into_postgresql(app, pg_url):
    with Writer(writes(app)) as w:
        plan, state, result = move_online(f"sqlite:///{app}", pg_url, during_copy=lambda: time.sleep(0.2))
        time.sleep(0.2)  # the writer meets the fence
    assert w.n > 20 and w.refused and "golive: this database has moved" in w.refused, (w.n, w.refused)
    assert result["freeze_seconds"] < 5
    for table in ("Album", "Genre", "InvoiceLine", "Track"):
        src = [tuple(float(v) if isinstance(v, float) else v for v in r) for r in sqlite_rows(app, table)]
        assert pg_rows(pg_url, table) == src, table
    with psycopg.connect(pg_url, autocommit=True) as conn:  # identities above what the app inserted meanwhile
        top = conn.execute('SELECT max("GenreId") FROM "Genre"').fetchone()[0]
        assert conn.execute('INSERT INTO "Genre" ("Name") VALUES (\'new\') RETURNING "GenreId"').fetchone()[0] > top
    removed = online.abort(parse_url(f"sqlite:///{app}"), parse_url(pg_url), state)
    assert "table _golive_changes" in removed and not dialect_of(parse_url(f"sqlite:///{app}")).capture.leftovers(
        parse_url(f"sqlite:///{app}"))


def test_a_live_sqlite_app_moves_into_mariadb(app, mysql_admin_url):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs

    name = "golive_on_" + uuid.uuid4().hex[:8]
    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database")
    admin = pymysql.connect(**kw, autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    target = mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        with Writer(writes(app)) as w:
            move_online(f"sqlite:///{app}", target, during_copy=lambda: time.sleep(0.2))
            time.sleep(0.2)
        assert w.refused and w.n > 20
        conn = pymysql.connect(**kw, database=name)
        for table in ("Album", "Genre", "InvoiceLine"):
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM `{table}` ORDER BY 1")
                got = [tuple(float(v) if type(v).__name__ == "Decimal" else v for v in r) for r in cur.fetchall()]
            assert got == sqlite_rows(app, table), table
        conn.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_ddl_during_capture_stops_the_run_naming_the_table(app, pg_url):
    def alter():
        db = sqlite3.connect(app)
        db.execute('ALTER TABLE "Genre" ADD COLUMN "Color" TEXT')
        db.commit()
        db.close()

    with pytest.raises(SchemaChanged, match="table Genre was altered"):
        move_online(f"sqlite:///{app}", pg_url, during_copy=alter)


def test_abort_leaves_the_source_as_it_was(app, pg_url):
    before = sqlite_rows(app, "Genre"), _schema(app)
    plan, state, _ = move_online(f"sqlite:///{app}", pg_url, cut=False)
    assert _schema(app) != before[1]  # triggers and the change table were added
    removed = online.abort(parse_url(f"sqlite:///{app}"), parse_url(pg_url), state)
    assert removed and _schema(app) == before[1] and sqlite_rows(app, "Genre") == before[0]


def test_a_table_without_a_key_is_refused_by_name(tmp_path, pg_url):
    path = tmp_path / "nokey.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE logs (at TEXT, msg TEXT)")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(CaptureNotReady, match="tables without a primary key: logs"):
        move_online(f"sqlite:///{path}", pg_url)


def test_kill_9_during_the_catch_up_then_resume_loses_nothing(app, pg_url, tmp_path):
    """The catch-up runs in a process killed mid-way; the same steps again finish from the recorded position."""
    plan, state, _ = move_online(f"sqlite:///{app}", pg_url, cut=False)
    write = writes(app)
    for n in range(3000):  # changes waiting for the catch-up
        write(n)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    code = ("import sys; from golive.migrate import online; from golive.model.plan import MigrationPlan; "
            "from golive.urls import parse_url; s, d = parse_url(sys.argv[1]), parse_url(sys.argv[2]); "
            "plan = MigrationPlan.model_validate_json(open(sys.argv[3]).read()); "
            "state = online.load_state(d, plan.run_key); "
            "online.catch_up(s, d, plan, state, batch=50, on_batch=lambda lag, n: print(lag.position, flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", code, f"sqlite:///{app}", pg_url, str(plan_file)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(3):  # a few batches applied, then killed in the middle of the next ones
        assert proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    resumed = online.load_state(d, plan.run_key)
    assert int(resumed.applied) > int(state.applied)  # some batches were recorded before the kill
    online.catch_up(s, d, plan, resumed)
    online.cut_over(s, d, plan, resumed)
    for table in ("Album", "Genre", "InvoiceLine"):
        assert pg_rows(pg_url, table) == [tuple(float(v) if isinstance(v, float) else v for v in r)
                                         for r in sqlite_rows(app, table)], table
    online.abort(s, d, resumed)


def _schema(path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        db.close()


def test_the_cutover_compares_the_changed_rows_before_the_app_switches(app, pg_url, tmp_path):
    db = sqlite3.connect(app, isolation_level=None)
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    plan, state, _ = move_online(s.raw, pg_url, cut=False, during_copy=lambda: db.execute(
        'UPDATE "Album" SET "Title" = \'changed\' WHERE "AlbumId" = 7'))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # something (not the app) changed the target meanwhile
        conn.execute('UPDATE "Album" SET "Title" = \'tampered\' WHERE "AlbumId" = 7')
    switched = tmp_path / "switched"
    with pytest.raises(online.CutoverCheckFailed, match="AlbumId=7.*column Title"):
        online.cut_over(s, d, plan, state, command=f"touch {switched}",
                        check=lambda keys: validation.check_keys(s, d, plan, keys, {}))
    assert not switched.exists()  # the app did not switch
    with pytest.raises(sqlite3.DatabaseError, match="golive: this database has moved"):
        db.execute('UPDATE "Album" SET "Title" = \'late\' WHERE "AlbumId" = 7')
    online.abort(s, d, state)  # the app stays on its SQLite file, writable again
    db.execute('UPDATE "Album" SET "Title" = \'late\' WHERE "AlbumId" = 7')


def test_a_row_the_target_refuses_during_the_catch_up_is_a_named_reject_until_the_app_fixes_it(app, pg_url):
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    plan, state, _ = move_online(s.raw, pg_url, cut=False)
    db = sqlite3.connect(app, isolation_level=None)
    db.execute('UPDATE "Album" SET "Title" = ? WHERE "AlbumId" = 3', ("nul \x00 inside",))  # PostgreSQL refuses
    db.execute('UPDATE "Album" SET "Title" = \'fine\' WHERE "AlbumId" = 4')
    online.catch_up(s, d, plan, state)
    rejects = online.load_state(d, plan.run_key).meta["rejects"]
    assert [(r["table"], r["key"]) for r in rejects] == [("Album", {"AlbumId": 3})] and rejects[0]["reason"]
    albums = {r[0]: r[1] for r in pg_rows(pg_url, "Album")}
    assert albums[4] == "fine" and 3 not in albums  # the rest of the batch is in; the refused row is not
    # the cut-over's check expects the refused row's old value in the target: no false difference
    rejected = online.refused_keys(d, plan, state)
    assert validation.check_keys(s, d, plan, {"Album": [(3,), (4,)]}, rejected)[1] == []
    db.execute('UPDATE "Album" SET "Title" = \'fixed\' WHERE "AlbumId" = 3')  # the app fixes it
    online.catch_up(s, d, plan, state)
    assert online.load_state(d, plan.run_key).meta["rejects"] == []
    assert {r[0]: r[1] for r in pg_rows(pg_url, "Album")}[3] == "fixed"
    online.abort(s, d, state)


def test_a_catch_up_ends_even_when_the_app_writes_faster_than_it_applies(app, pg_url):
    """Without a time limit the catch-up goes as far as the source was when it began, then returns the lag: an app
    outpacing it (here: batches of 5, each applied slowly) cannot keep it going forever."""
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    plan, state, _ = move_online(s.raw, pg_url, cut=False)
    with Writer(writes(app)) as w:
        time.sleep(0.3)
        t0 = time.monotonic()
        lag = online.catch_up(s, d, plan, state, batch=5, on_batch=lambda lag, n: time.sleep(0.02))
        took = time.monotonic() - t0
        assert w.n > 0 and not w.refused
    assert took < 60 and lag.pending > 0, (took, lag)
    result = online.cut_over(s, d, plan, state)  # the fence's drain takes the rest
    assert result["freeze_seconds"] < 30
    for table in ("Album", "Genre", "InvoiceLine"):
        src = [tuple(float(v) if isinstance(v, float) else v for v in r) for r in sqlite_rows(app, table)]
        assert pg_rows(pg_url, table) == src, table
    online.abort(s, d, state)


def test_rows_compared_ahead_leave_the_cut_over_check_until_applied_again(app, pg_url):
    """The cut-over's check is inside the write freeze: rows found equal before the fence are compared again only
    if a later batch applied them; a row the app changed after its batch differs (lag) and stays in the check."""
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    plan, state, _ = move_online(s.raw, pg_url, cut=False)
    db = sqlite3.connect(app, isolation_level=None)
    for i in range(1, 51):
        db.execute('UPDATE "Album" SET "Title" = ? WHERE "AlbumId" = ?', (f"t{i}", i))
    online.catch_up(s, d, plan, state)
    db.execute('UPDATE "Album" SET "Title" = \'lagging\' WHERE "AlbumId" = 50')  # not applied yet

    def differing(keys):
        return validation.differing_keys(s, d, plan, keys, {})

    assert online.check_ahead(plan.run_key, differing) == (50, 1)
    assert online.check_ahead(plan.run_key, differing) == (1, 1)
    db.execute('UPDATE "Album" SET "Title" = \'again\' WHERE "AlbumId" = 7')
    seen = {}

    def check(keys):
        seen.update(keys)
        return validation.check_keys(s, d, plan, keys, {})

    result = online.cut_over(s, d, plan, state, check=check)
    assert sorted(str(k[0]) for k in seen["Album"]) == ["50", "7"] and result["checked_rows"] == 2, seen
    assert {r[0]: r[1] for r in pg_rows(pg_url, "Album")}[50] == "lagging"
    online.abort(s, d, state)


def test_a_composite_key_table_catches_up_and_compares_by_its_key(app, pg_url):
    """PlaylistTrack's key is (PlaylistId, TrackId): the catch-up reads and the check compares such rows by key."""
    s, d = parse_url(f"sqlite:///{app}"), parse_url(pg_url)
    plan, state, _ = move_online(s.raw, pg_url, cut=False)
    db = sqlite3.connect(app, isolation_level=None)
    gone = db.execute('SELECT "PlaylistId", "TrackId" FROM "PlaylistTrack" ORDER BY 1, 2 LIMIT 3').fetchall()
    db.executemany('DELETE FROM "PlaylistTrack" WHERE "PlaylistId" = ? AND "TrackId" = ?', gone)
    db.executemany('INSERT OR IGNORE INTO "PlaylistTrack" VALUES (?, ?)', [(2, t) for t in range(1, 40)])
    online.catch_up(s, d, plan, state)
    assert sorted(pg_rows(pg_url, "PlaylistTrack")) == sorted(sqlite_rows(app, "PlaylistTrack"))
    keys, _ = online.changed_keys(plan.run_key)
    assert len(keys["PlaylistTrack"]) >= 3 and validation.differing_keys(s, d, plan, keys, {}) == set()
    db.execute('INSERT INTO "PlaylistTrack" VALUES (3, 1)')  # not applied yet: a difference, named by its key
    assert validation.differing_keys(s, d, plan, {"PlaylistTrack": [(3, 1)]}, {}) == {("PlaylistTrack", ("3", "1"))}
    online.abort(s, d, state)

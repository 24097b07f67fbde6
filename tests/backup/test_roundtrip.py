"""Round trips on each engine: backup to S3 (moto on loopback) -> restore elsewhere -> content equal (compared
without golive), verify passes (and is recorded), a non-empty target is refused, and ``restore --force`` onto
the same database after changes gives back exactly the backup (objects created since are gone)."""

from __future__ import annotations

import psycopg
import pytest

from golive.backup import (BackupOptions, RestoreOptions, StorageOptions, VerifyOptions, backup_database,
                           list_backups, restore_backup, verify_backup)
from golive.errors import TargetNotEmpty

from .conftest import my_connect, my_content, pg_content, sqlite_content


@pytest.fixture
def at(bucket, s3_endpoint):
    return f"s3://{bucket}/nightly", StorageOptions(endpoint_url=s3_endpoint)


def test_postgresql_round_trip_and_rollback(pg_app, pg_new, at):
    to, storage = at
    before = pg_content(pg_app)
    result = backup_database(pg_app, to, BackupOptions(name="app", storage=storage))
    m = result.manifest
    assert m.engine == "postgresql" and m.tool.name == "pg_dump" and m.tool.path
    assert {t.name: t.rows for t in m.tables}["public.images"] == 3000
    assert {t.name for t in m.tables} >= {"public.users", "public.Users", "audit.log"}
    assert m.objects[0].stored_as == "db.dump.zst" and m.stored_bytes < m.raw_bytes

    other = pg_new()
    restored = restore_backup(f"{to}/latest", other, RestoreOptions(storage=storage))
    assert restored.ok, restored.problems
    assert pg_content(other) == before
    with pytest.raises(TargetNotEmpty):
        restore_backup(result.url, other, RestoreOptions(storage=storage))

    verified = verify_backup(result.url, VerifyOptions(storage=storage, scratch_prefix="gbk_verify_"))
    assert verified.ok, verified.verification.problems
    assert list_backups(to, storage).backups[-1].verified == "passed"

    # the release feature's rollback: change the source after the backup, then restore --force onto it
    with psycopg.connect(pg_app, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES (100000, 'late@example.com')")
        conn.execute("UPDATE images SET caption = 'changed' WHERE id < 100")
        conn.execute("DROP TABLE \"Users\"")
        conn.execute("CREATE TABLE after_backup (x int)")
        conn.execute("CREATE SCHEMA newer")
        conn.execute("CREATE FUNCTION later() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    back = restore_backup(result.url, pg_app, RestoreOptions(storage=storage, force=True))
    assert back.ok, back.problems
    assert pg_content(pg_app) == before


def test_mysql_round_trip_and_rollback(my_app, my_new, at):
    to, storage = at
    before = my_content(my_app)
    result = backup_database(my_app, to, BackupOptions(storage=storage))
    counts = {t.name: t.rows for t in result.manifest.tables}
    assert counts["users"] == 300 and counts["Users"] == 2 and counts["zero_dates"] == 3 and counts["nokey"] == 500
    other = my_new()
    restored = restore_backup(result.url, other, RestoreOptions(storage=storage))
    assert restored.ok, restored.problems
    assert my_content(other) == before

    verified = verify_backup(result.url, VerifyOptions(storage=storage, scratch_prefix="gbk_verify_"))
    assert verified.ok, verified.verification.problems

    conn = my_connect(my_app)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO users (email, quota) VALUES ('late@example.com', 1)")
        cur.execute("DELETE FROM image_tags WHERE image_id < 500")
        cur.execute("DROP TABLE `Users`")
        cur.execute("CREATE TABLE after_backup (x INT)")
        cur.execute("CREATE FUNCTION later() RETURNS INT DETERMINISTIC RETURN 1")
    conn.close()
    back = restore_backup(result.url, my_app, RestoreOptions(storage=storage, force=True))
    assert back.ok, back.problems
    assert my_content(my_app) == before


def test_sqlite_round_trip_encrypted_and_rollback(sqlite_app, tmp_path):
    to = f"file://{tmp_path}/backups"
    key = "ab" * 32
    before = sqlite_content(sqlite_app)
    result = backup_database(sqlite_app, to, BackupOptions(encryption_key=key))
    assert result.manifest.encryption and result.manifest.objects[0].stored_as == "database.sqlite.zst.aes"
    stored = (tmp_path / "backups" / result.id / "database.sqlite.zst.aes").read_bytes()
    assert b"example.com" not in stored and stored.startswith(b"GLBKAES1")

    target = f"sqlite:///{tmp_path}/restored.db"
    restored = restore_backup(result.url, target, RestoreOptions(encryption_key=key))
    assert restored.ok, restored.problems
    assert sqlite_content(target) == before

    verified = verify_backup(result.url, VerifyOptions(encryption_key=key))
    assert verified.ok and "PRAGMA integrity_check: ok" in verified.verification.checks

    import sqlite3

    db = sqlite3.connect(sqlite_app.split(":///", 1)[1])  # the app keeps its connection open throughout
    db.execute("INSERT INTO users (email) VALUES ('late@example.com')")
    db.execute("CREATE TABLE after_backup (x)")
    db.commit()
    back = restore_backup(result.url, sqlite_app, RestoreOptions(encryption_key=key, force=True))
    assert back.ok, back.problems
    assert sqlite_content(sqlite_app) == before
    assert db.execute("SELECT count(*) FROM users WHERE email = 'late@example.com'").fetchone()[0] == 0
    db.close()


def test_mysql_ranges_by_text_keys_with_case_insensitive_collation(my_new, tmp_path, monkeypatch):
    """Ranges cut by a VARCHAR key compare in the column's own collation ('a' = 'A' = 'a '), so no row is read
    twice or skipped; tiny ranges force many of them."""
    from golive.dialects.mysql import backup as engine

    monkeypatch.setattr(engine, "CHUNK_BYTES", 1)  # 100 rows a range
    src = my_new()
    conn = my_connect(src)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE words (w VARCHAR(20) NOT NULL, n INT NOT NULL, note TEXT, PRIMARY KEY (w, n)) "
                    "COLLATE utf8mb4_unicode_ci")
        cur.execute("CREATE TABLE codes (code VARCHAR(10) NOT NULL PRIMARY KEY, v INT)")
        rows = [(w, n, f"{w}\t{n}") for i in range(400) for w in (f"k{i:03d}", f"K{i:03d}x") for n in (1, 2)]
        rows += [("a", 1, None), ("A", 2, "upper"), ("a ", 3, "trailing space"), ("ä", 4, "umlaut")]
        cur.executemany("INSERT INTO words VALUES (%s, %s, %s)", rows)
        cur.executemany("INSERT INTO codes VALUES (%s, %s)", [(f"c{i:05d}", i) for i in range(1234)])
    conn.close()
    result = backup_database(src, f"file://{tmp_path}/b")
    assert {t.name: t.rows for t in result.manifest.tables} == {"words": len(rows), "codes": 1234}
    other = my_new()
    assert restore_backup(result.url, other).ok
    assert my_content(other) == my_content(src)


def test_mysql_backup_without_reload_reads_one_table_at_a_time(my_app, my_new, mysql_admin_url, tmp_path):
    """Two tables at once need FLUSH TABLES WITH READ LOCK (RELOAD) to start both sessions at one moment; a user
    without it still gets a consistent backup from one session, and the manifest says which was used."""
    import uuid

    from golive.urls import parse_url

    db = parse_url(my_app).database
    user = "gbk_noreload_" + uuid.uuid4().hex[:6]
    admin = my_connect(mysql_admin_url, database=False)
    with admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'Pw-noreload-1'")
        cur.execute(f"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON `{db}`.* TO '{user}'@'%'")
    try:
        u = parse_url(my_app)
        url = f"mysql://{user}:Pw-noreload-1@{u.host}:{u.port or 3306}/{db}"
        limited = backup_database(url, f"file://{tmp_path}/b")
        full = backup_database(my_app, f"file://{tmp_path}/b")
        assert limited.manifest.details["snapshot"] == "one session"
        assert full.manifest.details["snapshot"].startswith("2 sessions")
        assert {t.name: t.rows for t in limited.manifest.tables} == {t.name: t.rows for t in full.manifest.tables}
        other = my_new()
        assert restore_backup(limited.url, other).ok
        want = my_content(my_app)
        assert want["routines"]  # the app has one; this user cannot see it, and the backup says so
        assert my_content(other) == dict(want, routines=[])
        assert any("routines it did not create are missing" in w and "mysql.proc" in w
                   for w in limited.manifest.warnings), limited.manifest.warnings
        assert not any("routines" in w for w in full.manifest.warnings)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()

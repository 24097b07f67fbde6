"""What must not go wrong: a backup failing half-way is never listed (and leaves nothing behind); S3 errors and
dropped connections are retried and the restore is still byte-exact; a flipped byte is refused by verify and
restore, naming the object; a full scratch disk is a clear error and the scratch is removed."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from golive.backup import (BackupOptions, RestoreOptions, StorageOptions, VerifyOptions, backup_database,
                           list_backups, restore_backup, verify_backup)
from golive.backup.stream import BackupCorrupt, ScratchFull
from golive.errors import GoliveError

from .conftest import sqlite_content


def big_sqlite(path, mib: int = 12) -> str:
    """A SQLite file of about ``mib`` MiB of incompressible rows."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB, note TEXT)")
    db.executemany("INSERT INTO blobs VALUES (?, ?, ?)", ((i, os.urandom(4000), f"row {i}\t\n") for i in range(mib * 256)))
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def bucket_keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def assert_nothing_left(s3, bucket, at, storage):
    assert list_backups(at, storage).backups == []
    assert bucket_keys(s3, bucket) == []
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_pg_dump_killed_half_way_leaves_no_backup(pg_new, bucket, s3, proxy):
    url = pg_new()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 20) AS body "
                     "FROM generate_series(1, 60000) g")
    at, storage = f"s3://{bucket}/b", StorageOptions(endpoint_url=proxy.url)
    proxy.add(method="PUT", path_re=r"partNumber=1", delay=1.5)  # the pipeline fills up and waits
    killed = {}

    def kill_pg_dump():
        deadline = time.time() + 20
        with psycopg.connect(url, autocommit=True) as conn:
            while time.time() < deadline and not killed:
                row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                                   "AND query ILIKE 'COPY%'").fetchone()
                if row and proxy.count("POST") >= 1:
                    killed["pid"] = conn.execute("SELECT pg_terminate_backend(%s)", row).fetchone()[0]
                time.sleep(0.05)

    t = threading.Thread(target=kill_pg_dump)
    t.start()
    with pytest.raises(GoliveError, match="pg_dump failed"):
        backup_database(url, at, BackupOptions(compress="none", storage=storage))
    t.join()
    assert killed.get("pid") is True
    assert_nothing_left(s3, bucket, at, storage)


def test_upload_refused_half_way_leaves_no_backup(tmp_path, bucket, s3, proxy):
    src = big_sqlite(tmp_path / "big.db")
    at, storage = f"s3://{bucket}/b", StorageOptions(endpoint_url=proxy.url)
    proxy.add(method="PUT", path_re=r"partNumber=2", status=403, code="AccessDenied", times=-1)
    with pytest.raises(GoliveError, match="refused the credentials"):
        backup_database(src, at, BackupOptions(compress="none", storage=storage))
    assert proxy.count("PUT", status=403) >= 1
    assert_nothing_left(s3, bucket, at, storage)


def test_s3_errors_and_dropped_connections_are_retried_byte_exact(tmp_path, bucket, s3, proxy):
    src = big_sqlite(tmp_path / "big.db")
    at, storage = f"s3://{bucket}/b", StorageOptions(endpoint_url=proxy.url, max_attempts=2)
    proxy.add(method="PUT", path_re=r"partNumber=2", status=503, code="SlowDown", times=5)  # beyond botocore's 2
    proxy.add(method="PUT", path_re=r"partNumber=1", drop=True, times=1)
    proxy.add(method="PUT", path_re=r"manifest\.json", status=500, code="InternalError", times=1)
    result = backup_database(src, at, BackupOptions(compress="none", storage=storage))
    assert proxy.count("PUT", status=503) == 5 and proxy.count("PUT", status=0) == 1
    assert proxy.count("PUT", status=500) == 1
    assert [o.size for o in result.manifest.objects][0] > 10 << 20

    proxy.add(method="GET", path_re=r"database\.sqlite", truncate=3 << 20, times=1)  # cut mid-body: resumed
    proxy.add(method="GET", path_re=r"database\.sqlite", drop=True, times=1)
    target = f"sqlite:///{tmp_path}/restored.db"
    restored = restore_backup(result.url, target, RestoreOptions(storage=storage))
    assert restored.ok, restored.problems
    assert sqlite_content(target) == sqlite_content(src)
    assert any(s.method == "GET" and "bytes=" in s.headers.get("Range", "") for s in proxy.seen)


def test_flipped_byte_is_refused_by_verify_and_restore(sqlite_app, bucket, s3, s3_endpoint, tmp_path):
    at, storage = f"s3://{bucket}/b", StorageOptions(endpoint_url=s3_endpoint)
    result = backup_database(sqlite_app, at, BackupOptions(storage=storage))
    key = f"b/{result.id}/database.sqlite.zst"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    verified = verify_backup(result.url, VerifyOptions(storage=storage))
    assert not verified.ok
    assert "database.sqlite" in verified.verification.problems[0]
    assert "does not match the manifest" in verified.verification.problems[0]
    assert list_backups(at, storage).backups[-1].verified == "failed"

    target = tmp_path / "restored.db"
    with pytest.raises(BackupCorrupt, match="database.sqlite: the stored object does not match"):
        restore_backup(result.url, f"sqlite:///{target}", RestoreOptions(storage=storage))
    assert not target.exists()  # refused before the target was touched


def test_flipped_byte_in_an_encrypted_mysql_object(my_app, my_new, tmp_path):
    at = f"file://{tmp_path}/b"
    key = "cd" * 32
    result = backup_database(my_app, at, BackupOptions(encryption_key=key))
    victim = next(o for o in result.manifest.objects if o.table == "images")
    path = tmp_path / "b" / result.id / victim.stored_as
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x80
    path.write_bytes(bytes(data))
    target = my_new()
    with pytest.raises(BackupCorrupt, match=victim.name):
        restore_backup(result.url, target, RestoreOptions(encryption_key=key))
    from .conftest import my_connect

    conn = my_connect(target)
    with conn.cursor() as cur:
        assert cur.execute("SHOW TABLES") == 0  # untouched
    conn.close()


@pytest.fixture
def tiny_fs():
    """A real 1 MiB file system (tmpfs): writes beyond it fail with ENOSPC."""
    path = f"/tmp/gbk_tmpfs_{uuid.uuid4().hex[:8]}"
    os.makedirs(path)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path], capture_output=True, text=True)
    if res.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    yield path
    subprocess.run(["umount", path], check=False)
    os.rmdir(path)


def test_disk_full_in_scratch_is_a_clear_error_and_scratch_is_removed(tmp_path, tiny_fs):
    src = big_sqlite(tmp_path / "big.db", mib=3)
    result = backup_database(src, f"file://{tmp_path}/b")
    target = tmp_path / "restored.db"
    with pytest.raises(ScratchFull) as err:
        restore_backup(result.url, f"sqlite:///{target}", RestoreOptions(scratch_dir=tiny_fs))
    msg = str(err.value)
    assert "no space left in the scratch directory" in msg and "database.sqlite" in msg and "removed" in msg
    assert os.listdir(tiny_fs) == [] and not target.exists()
    with pytest.raises(ScratchFull):
        verify_backup(result.url, VerifyOptions(scratch_dir=tiny_fs))
    assert os.listdir(tiny_fs) == []
    assert list_backups(f"file://{tmp_path}/b").backups[0].verified is None  # not the backup's fault: no verdict


def test_mysql_table_upload_refused_stops_the_other_tables_and_leaves_no_backup(my_new, bucket, s3, proxy):
    """A small table's object is refused while the other session reads the big one: the backup fails with that
    error at once (the big table stops between reads, the tables not started never start), nothing is left."""
    from .conftest import my_connect

    url = my_new()
    conn = my_connect(url)
    with conn.cursor() as cur:
        for i in range(1, 9):
            cur.execute(f"CREATE TABLE t{i} (id INT PRIMARY KEY, body TEXT)")
            rows = 150_000 if i == 1 else 2000  # t1 is dumped first, by one session; t2 by the other
            cur.execute(f"INSERT INTO t{i} SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_{rows}")
        cur.execute("ANALYZE TABLE " + ", ".join(f"t{i}" for i in range(1, 9)))
        cur.fetchall()
    conn.commit()
    conn.close()
    at, storage = f"s3://{bucket}/b", StorageOptions(endpoint_url=proxy.url)
    proxy.add(method="PUT", path_re=r"tables/0002", status=403, code="AccessDenied", times=-1)
    with pytest.raises(GoliveError, match="refused the credentials"):
        backup_database(url, at, BackupOptions(storage=storage))
    started = {m.group(0) for s in proxy.seen if (m := re.search(r"tables/\d{4}", s.path))}
    assert "tables/0002" in started and started <= {"tables/0001", "tables/0002", "tables/0003"}, sorted(started)
    assert_nothing_left(s3, bucket, at, storage)

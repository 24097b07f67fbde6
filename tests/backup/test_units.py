"""Pieces without a database: IDs and URLs, retention (grandfather-father-son), the cipher, pg_dump choice."""

from __future__ import annotations

import datetime as dt

import pytest

from golive.backup import RetentionPolicy, list_backups, prune_backups
from golive.backup.crypto import DecryptionFailed, Decryptor, Encryptor, key_id, parse_key
from golive.backup.manifest import Manifest, Tool, Verification
from golive.backup.naming import new_id, parse_location
from golive.backup.retention import plan_retention
from golive.backup.store import BackupStore
from golive.errors import ConfigError


def test_ids_sort_by_time_and_urls_split():
    a = new_id("My App!", dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc))
    assert a == "20260102T030405.678Z-my-app"
    assert new_id("x", dt.datetime(2026, 1, 10, tzinfo=dt.timezone.utc)) > a
    loc = parse_location(f"s3://bucket/nightly/{a}")
    assert (loc.base, loc.backup_id) == ("s3://bucket/nightly", a)
    assert parse_location("file:///srv/b/latest").backup_id == "latest"
    assert parse_location("s3://bucket/nightly/").backup_id is None
    with pytest.raises(ConfigError, match="names no backup"):
        parse_location("s3://bucket/nightly", want_backup=True)
    with pytest.raises(ConfigError, match="names one backup"):
        parse_location(f"s3://bucket/{a}", want_backup=False)
    with pytest.raises(ConfigError, match="unknown scheme"):
        parse_location("gs://bucket/x")


def manifest(when: dt.datetime, verified: str | None = None) -> Manifest:
    return Manifest(id=new_id("app", when), name="app", engine="sqlite", server_version="3", database="app.db",
                    source="sqlite:///app.db", tool=Tool(name="t", version="1"), started_at=when, finished_at=when,
                    duration_seconds=1, raw_bytes=10, stored_bytes=5, compression="zstd:1", objects=[], tables=[],
                    schema_fingerprint="x", golive_version="0",
                    verification=Verification(status=verified, at=when, seconds=1, scratch="s", golive_version="0")
                    if verified else None)


def test_grandfather_father_son():
    start = dt.datetime(2026, 1, 1, 3, tzinfo=dt.timezone.utc)
    ms = [manifest(start + dt.timedelta(days=d)) for d in range(120)]  # nightly for 4 months
    ms.append(manifest(start + dt.timedelta(days=119, hours=5)))  # a second one on the last day
    kept, removed = plan_retention(ms, RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=3))
    days = sorted(m.id[:8] for m in ms if m.id in kept)
    assert len([k for k, why in kept.items() if "daily" in why]) == 7
    assert ms[-1].id in kept and ms[-2].id not in kept  # the newest of its day only
    assert "20260430" in days and "20260331" in days and "20260228" in days  # month ends
    assert len(kept) + len(removed) == len(ms)
    assert len(kept) == 7 + 4 + 3 - 2 - 1  # weekly/monthly picks overlapping the daily ones


def test_newest_verified_is_never_pruned_and_short_histories_keep_all():
    start = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    ms = [manifest(start, verified="passed")] + [manifest(start + dt.timedelta(days=d), "failed") for d in (1, 2, 3)]
    kept, removed = plan_retention(ms, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0))
    assert set(kept) == {ms[0].id, ms[3].id} and kept[ms[0].id] == ["newest verified"]
    kept, removed = plan_retention(ms, RetentionPolicy())  # 7 daily, 4 weekly, 12 monthly: keeps all four
    assert removed == []
    with pytest.raises(ConfigError, match="keeps nothing"):
        plan_retention(ms, RetentionPolicy(keep_daily=0, keep_weekly=0, keep_monthly=0))


def test_prune_with_fewer_backups_than_the_policy_keeps_deletes_nothing(tmp_path):
    at = f"file://{tmp_path}"
    store = BackupStore(at)
    now = dt.datetime.now(dt.timezone.utc)
    for d in range(3):
        m = manifest(now - dt.timedelta(days=d))
        store.storage.put_bytes(store.key(m.id, "database.sqlite.zst"), b"data")
        store.write_manifest(m)
    (tmp_path / "20260101T000000.000Z-crashed").mkdir()
    (tmp_path / "20260101T000000.000Z-crashed" / "db.dump.zst").write_bytes(b"half")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = prune_backups(at, RetentionPolicy(keep_daily=7))
    assert result.removed == [] and len(result.kept) == 3
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    listing = list_backups(at)
    assert len(listing.backups) == 3 and listing.incomplete == ["20260101T000000.000Z-crashed"]
    dry = prune_backups(at, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0), dry_run=True)
    assert len(dry.removed) == 2 and len(list_backups(at).backups) == 3
    done = prune_backups(at, RetentionPolicy(keep_last=1, keep_daily=0, keep_weekly=0, keep_monthly=0))
    assert done.removed == dry.removed and len(list_backups(at).backups) == 1


def test_cipher_round_trip_and_refusals():
    key = parse_key("00" * 32)
    assert parse_key(key) == key and key_id(key) != key_id(parse_key("01" * 32))
    data = bytes(range(256)) * 20000
    enc = Encryptor(key, frame=4096)
    blob = b"".join(enc.feed(data[i:i + 1000]) for i in range(0, len(data), 1000)) + enc.finish()
    dec = Decryptor(key, "x")
    assert b"".join(dec.feed(blob[i:i + 777]) for i in range(0, len(blob), 777)) == data
    dec.finish()
    with pytest.raises(DecryptionFailed, match="wrong key"):
        Decryptor(parse_key("01" * 32), "x").feed(blob)
    short = Decryptor(key, "obj")
    short.feed(blob[:-50])
    with pytest.raises(DecryptionFailed, match="obj: the encrypted stream is truncated"):
        short.finish()
    with pytest.raises(ConfigError, match="32 bytes"):
        parse_key("too short")


def test_no_new_enough_pg_dump_is_one_clear_line():
    from golive.dialects.postgresql.backup import find_tool

    with pytest.raises(ConfigError) as err:
        find_tool("pg_dump", 99)
    msg = str(err.value)
    assert "pg_dump 99 or newer is needed" in msg and "\n" not in msg and "/usr/" in msg
    assert find_tool("pg_dump", 16).version.startswith("16")  # pgserver's, when the system's is 15
    assert find_tool("pg_dump", 15).version.startswith("15")

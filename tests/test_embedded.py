"""``embedded://DIR``: a dry run starts no server and creates nothing (it uses one only if it already runs);
``golive embedded status|stop`` list and stop the servers golive leaves running for the app."""

from __future__ import annotations

from conftest import CASES

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"


def _running(path) -> bool:
    from golive.dialects import dialect_of
    from golive.urls import parse_url

    return any(r.data_dir == path.resolve() for r in dialect_of(parse_url("embedded://x")).running_servers())


def test_dry_run_into_embedded_writes_nothing_then_status_and_stop(golive, embedded_dir):
    migrate = ("migrate", "db", "--source", CHINOOK, "--target", f"embedded://{embedded_dir}", "--tables",
               "Genre,MediaType")
    r = golive(*migrate, "--dry-run")
    assert r.code == 0, r
    assert "nothing was written" in r.out and "is not running: planned against an empty database" in r.out, r
    assert not embedded_dir.exists() and not _running(embedded_dir)
    r = golive("embedded", "status", embedded_dir)
    assert r.code == 1 and "no embedded PostgreSQL running" in r.out, r

    r = golive(*migrate, "--no-validate")
    assert r.code == 0, r
    assert _running(embedded_dir)  # left running for the app, on purpose
    r = golive("embedded", "status")
    assert r.code == 0 and f"embedded://{embedded_dir.resolve()}" in r.out and "golive embedded stop" in r.out, r

    # a server that runs is used: the dry run sees the tables the real run would refuse to overwrite (exit 2)
    r = golive(*migrate, "--dry-run")
    assert r.code == 2 and "Target already has" in r.out and "not running" not in r.out, r
    assert _running(embedded_dir)

    r = golive("embedded", "stop", embedded_dir)
    assert r.code == 0 and "stopped: embedded://" in r.out, r
    assert not _running(embedded_dir) and (embedded_dir / "PG_VERSION").exists()  # the data stays
    r = golive("embedded", "stop", embedded_dir)
    assert r.code == 0 and "not running" in r.out, r
    r = golive("embedded", "stop")
    assert r.code == 2 and "golive embedded stop DIR" in r.err, r


def test_go_live_dry_run_into_embedded_starts_nothing(golive, embedded_dir, tmp_path):
    cfg = tmp_path / "golive.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[source]\ndatabase = "sqlite:///{CHINOOK}"\n'
                   f'[target]\ndatabase = "embedded://{embedded_dir}"\n', encoding="utf-8")
    r = golive("go-live", "--config", cfg, "--dry-run")
    assert r.code == 0, r
    assert "is not running: planned against an empty database" in " ".join(r.out.split()), r
    assert not embedded_dir.exists() and not _running(embedded_dir)

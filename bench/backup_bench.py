#!/usr/bin/env python3
"""Backups against the tools a user would script instead, measured in the same run (quote the ratios).

    python bench/backup_bench.py [--scale 1] [--workdir /tmp/gbk_bench] [--pg-admin postgresql://postgres@127.0.0.1/postgres]
                                 [--mysql-admin mysql://root@127.0.0.1/mysql] [--skip-mysql] [--json FILE] [--keep]

Builds the bench app database (``gen_appdb.py --scale S``), migrates it into PostgreSQL with ``golive migrate db
--no-validate`` and loads its MySQL twin with ``appdb_mysql.sh`` (both from ../shared/bench, else bench/), starts
moto's S3 server in its own process on loopback, then measures:

| golive (child process, the Python API) | against |
|---|---|
| PG backup to S3, incl. manifest | ``pg_dump -Fc -Z0 | zstd -1 -T2 > file`` (target <= 1.2x) |
| PG restore from S3 (download, checks) | ``pg_restore -j2`` from that file, decompressed (target <= 1.2x) |
| PG verify (embedded scratch + checks) | golive's own restore (target <= 1.5x) |
| MySQL backup to S3 | ``mariadb-dump --single-transaction | zstd -1 -T2 > file`` (target <= 1.2x) |
| MySQL restore from S3 | replaying that dump through the ``mariadb`` client (target <= 0.4x) |

and the peak RSS of each golive process (target <= 300 MB). Each golive step runs in a fresh Python process
(``--child``) so its RSS is its own and Python start-up is included. Databases are named ``gbk_bench_*``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bench"
PY = sys.executable
TARGETS = {"pg_backup": 1.2, "pg_restore": 1.2, "pg_verify": 1.5, "my_backup": 1.2, "my_restore": 0.4}


def with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def kit(name: str) -> Path:
    return SHARED / name if (SHARED / name).exists() else ROOT / "bench" / name


def sh(cmd: str, **kw) -> float:
    """Run a shell pipeline (bash, pipefail); return its wall time."""
    t = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, **kw)
    return time.perf_counter() - t


def pg(admin: str, stmt: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(stmt)


def my(admin: str, stmt: str) -> None:
    u = urlsplit(admin)
    subprocess.run(["mariadb", f"-h{u.hostname}", f"-P{u.port or 3306}", f"-u{u.username or 'root'}", "-e", stmt],
                   check=True, env={**os.environ, **({"MYSQL_PWD": u.password} if u.password else {})})


def child(op: dict) -> None:
    """One golive step in this (fresh) process; prints its seconds and peak RSS as JSON."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from golive import backup as bk

    storage = bk.StorageOptions(endpoint_url=op["endpoint"])
    t = time.perf_counter()
    if op["kind"] == "backup":
        r = bk.backup_database(op["db"], op["to"], bk.BackupOptions(storage=storage))
        out = {"url": r.url, "stored": r.manifest.stored_bytes, "raw": r.manifest.raw_bytes, "tool": r.manifest.tool.name}
    elif op["kind"] == "restore":
        r = bk.restore_backup(op["from"], op["db"], bk.RestoreOptions(storage=storage, jobs=2))
        out = {"ok": r.ok, "timings": r.timings, "problems": r.problems}
    else:
        r = bk.verify_backup(op["from"], bk.VerifyOptions(storage=storage, scratch_prefix="gbk_bench_verify_"))
        out = {"ok": r.ok, "timings": r.timings, "problems": r.verification.problems}
    out["seconds"] = time.perf_counter() - t
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["children_rss_mb"] = kids  # the largest child (zstd, pg_dump, the GX helper)
    print(json.dumps(out))


def golive(op: dict) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([PY, __file__, "--child", json.dumps(op)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"golive {op['kind']} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t
    return out


def start_moto() -> tuple[subprocess.Popen, str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    moto = shutil.which("moto_server", path=str(Path(PY).parent)) or "moto_server"
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for _ in range(100):
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="gbk-bench")
            return proc, endpoint
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", default="/tmp/gbk_bench")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--mysql-admin", default="mysql://root@127.0.0.1:3306/mysql")
    ap.add_argument("--skip-mysql", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the databases and files")
    a = ap.parse_args()
    if a.child:
        return child(json.loads(a.child))
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{str(a.scale).replace('.', '_')}_{uuid.uuid4().hex[:6]}"
    app = work / f"app-{a.scale}.db"
    if not app.exists():
        print(f"building the bench app database (scale {a.scale}) ...", flush=True)
        subprocess.run([PY, str(kit("gen_appdb.py")), str(app), "--scale", str(a.scale)], check=True,
                       stdout=subprocess.DEVNULL)
    res: dict[str, float] = {}
    rss: dict[str, float] = {}
    dbs_pg, dbs_my = [], []
    moto, endpoint = start_moto()
    to = f"s3://gbk-bench/{tag}"
    try:
        # ---------------------------------------------------------------- PostgreSQL
        src = with_db(a.pg_admin, f"gbk_bench_pg_{tag}")
        dbs_pg.append(src)
        pg(a.pg_admin, f'CREATE DATABASE "gbk_bench_pg_{tag}"')
        print("migrating it into PostgreSQL (golive migrate db --no-validate) ...", flush=True)
        subprocess.run([str(Path(PY).parent / "golive"), "migrate", "db", "--source", str(app), "--target", src,
                        "--no-validate"], check=True, stdout=subprocess.DEVNULL, cwd=work)
        dump = work / f"pg-{tag}.dump.zst"
        res["pg_dump -Fc -Z0 | zstd -1 -T2"] = sh(f"pg_dump -Fc -Z0 -d '{src}' | zstd -q -1 -T2 -o '{dump}'")
        b = golive({"kind": "backup", "db": src, "to": f"{to}/pg", "endpoint": endpoint})
        res["golive backup (PG -> S3)"], rss["golive backup (PG)"] = b["seconds"], b["rss_mb"]
        raw = work / f"pg-{tag}.dump"
        sh(f"zstd -q -d -f '{dump}' -o '{raw}'")
        r1 = with_db(a.pg_admin, f"gbk_bench_pgr1_{tag}")
        r2 = with_db(a.pg_admin, f"gbk_bench_pgr2_{tag}")
        dbs_pg += [r1, r2]
        pg(a.pg_admin, f'CREATE DATABASE "gbk_bench_pgr1_{tag}"')
        pg(a.pg_admin, f'CREATE DATABASE "gbk_bench_pgr2_{tag}"')
        res["pg_restore -j2 (local file)"] = sh(f"pg_restore -j2 -d '{r1}' '{raw}'")
        r = golive({"kind": "restore", "from": b["url"], "db": r2, "endpoint": endpoint})
        assert r["ok"], r
        res["golive restore (S3 -> PG)"], rss["golive restore (PG)"] = r["seconds"], r["rss_mb"]
        res["  of which restore alone"] = r["timings"].get("restore", 0) + r["timings"].get("download", 0)
        v = golive({"kind": "verify", "from": b["url"], "endpoint": endpoint})
        assert v["ok"], v
        res["golive verify (PG, embedded scratch)"], rss["golive verify (PG)"] = v["seconds"], v["rss_mb"]
        raw.unlink(missing_ok=True)
        dump.unlink(missing_ok=True)
        # ---------------------------------------------------------------- MySQL / MariaDB
        if not a.skip_mysql:
            name = f"gbk_bench_my_{tag}"
            msrc = with_db(a.mysql_admin, name)
            dbs_my.append(name)
            print("loading the MySQL twin (appdb_mysql.sh) ...", flush=True)
            u = urlsplit(a.mysql_admin)
            conn = ["-h", u.hostname, "-P", str(u.port or 3306), "-u", u.username or "root"]
            subprocess.run(["bash", str(kit("appdb_mysql.sh")), str(app), name, *conn], check=True,
                           stdout=subprocess.DEVNULL)
            cli = f"-h{u.hostname} -P{u.port or 3306} -u{u.username or 'root'}"
            mdump = work / f"my-{tag}.sql.zst"
            res["mariadb-dump --single-transaction | zstd"] = sh(
                f"mariadb-dump {cli} --single-transaction {name} | zstd -q -1 -T2 -o '{mdump}'")
            mb = golive({"kind": "backup", "db": msrc, "to": f"{to}/my", "endpoint": endpoint})
            res["golive backup (MySQL -> S3)"], rss["golive backup (MySQL)"] = mb["seconds"], mb["rss_mb"]
            for i in (1, 2):
                my(a.mysql_admin, f"CREATE DATABASE gbk_bench_myr{i}_{tag}")
                dbs_my.append(f"gbk_bench_myr{i}_{tag}")
            res["zstd -dc | mariadb (replay)"] = sh(f"zstd -q -dc '{mdump}' | mariadb {cli} gbk_bench_myr1_{tag}")
            mr = golive({"kind": "restore", "from": mb["url"], "db": with_db(a.mysql_admin, f"gbk_bench_myr2_{tag}"),
                         "endpoint": endpoint})
            assert mr["ok"], mr
            res["golive restore (S3 -> MySQL)"], rss["golive restore (MySQL)"] = mr["seconds"], mr["rss_mb"]
            mdump.unlink(missing_ok=True)
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        if not a.keep:
            for url in dbs_pg:
                try:
                    pg(a.pg_admin, f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
                except Exception:  # noqa: BLE001
                    pass
            for name in dbs_my:
                try:
                    my(a.mysql_admin, f"DROP DATABASE IF EXISTS {name}")
                except Exception:  # noqa: BLE001
                    pass
    ratios = {"pg_backup": ("golive backup (PG -> S3)", "pg_dump -Fc -Z0 | zstd -1 -T2"),
              "pg_restore": ("golive restore (S3 -> PG)", "pg_restore -j2 (local file)"),
              "pg_verify": ("golive verify (PG, embedded scratch)", "golive restore (S3 -> PG)"),
              "my_backup": ("golive backup (MySQL -> S3)", "mariadb-dump --single-transaction | zstd"),
              "my_restore": ("golive restore (S3 -> MySQL)", "zstd -dc | mariadb (replay)")}
    print(f"\nscale {a.scale}, same run:")
    for k, v in res.items():
        print(f"  {k:<42} {v:7.2f} s")
    print("ratios (target):")
    out = {"scale": a.scale, "seconds": res, "rss_mb": rss, "ratios": {}}
    for key, (mine, theirs) in ratios.items():
        if mine in res and theirs in res:
            ratio = res[mine] / res[theirs]
            out["ratios"][key] = ratio
            print(f"  {key:<12} {ratio:5.2f}  (<= {TARGETS[key]}) {'ok' if ratio <= TARGETS[key] else 'MISSED'}")
    print("peak RSS of the golive process (target <= 300 MB):")
    for k, v in rss.items():
        print(f"  {k:<28} {v:6.0f} MB")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

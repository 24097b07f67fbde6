#!/usr/bin/env python3
"""Benchmark of point-in-time recovery (``golive.archive``): does the archive keep up with an app's writes, what
it costs, and how long a restore to a moment takes against what a user would do instead.

Per engine (``--engines``, default postgresql,mariadb), on the scale-1 bench database (``bench/data/app-<scale>.db``,
made by ../shared/bench/gen_appdb.py), loaded by golive itself into a throwaway archived source (PostgreSQL:
``initdb`` + ``pg_ctl`` with ``wal_level=replica``; MariaDB: ``mariadbd --log-bin``, ROW; the machine's servers
are never reconfigured), the archive in moto's S3 server on loopback (its own process):

1. **archiving keeps up**: the archiver (``golive.archive.run_archive``, ``flush_seconds=30``) runs in its own
   Python process; once its first base is stored and flushed, ``../shared/bench/app_writer.py --rate R --seconds S``
   (default 1000/s for 120 s) writes. Every 2 s: the lag, the source server's clock minus ``flushed.at`` in the
   manifest ``<to>/archive/<name>/archive.json`` read from the bucket (target: max <= 60 s), and the CPU of the
   archiver's whole process tree from /proc (utime+stime of the process and of every live descendant:
   pg_receivewal / mariadb-binlog, zstd; plus cutime+cstime for the children it reaped), as % of one core over the
   writer's run (target <= 10 %). The writer's achieved rate is reported. The first base's time is reported apart.
2. **PostgreSQL, restore to a moment vs golive's logical restore of the same data**: the moment is the server's
   clock halfway through the writer's run. Timed: ``restore_to_time(at, moment, to_dir=NEW, port=FREE)`` (download,
   physical recovery, cluster up; stopped afterwards with ``stop_restored``) against ``restore_backup`` of a
   ``backup_database`` of the same source (taken after the writer stopped, timed for the record) into a fresh empty
   database on the machine's PostgreSQL. Ratio target <= 1.0.
3. **MariaDB, restore to a moment vs the full-backup restore plus the binlog replay through the C client**: a golive
   backup of the source is taken once the archive is ready, before the writer starts (same data as the archive's
   base; its manifest gives the binlog position of its snapshot). Timed: ``restore_to_time(at, moment,
   to_url=<fresh db on the machine's MariaDB>)`` against ``restore_backup`` of that backup into another fresh db
   plus ``mariadb-binlog --start-position=P --stop-datetime=<moment's second> --database --rewrite-db <the source's
   binlog files> | mariadb --binary-mode <db>`` (TZ=UTC). Ratio target <= 1.3. Both restored databases must hold
   the same rows (count and max(id) per table are compared).

Every golive step runs in a fresh Python process (this script with ``--child``) through the Python API (not the
CLI's Prefect flow: no Prefect server start-up in the figures); times are the parent's wall clock around it,
Python start-up included. Quote ratios, not seconds: the machine is shared.

usage: pitr_bench.py [--scale 1] [--engines postgresql,mariadb] [--rate 1000] [--seconds 120] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's golive first
from migrate_bench import (DEFAULT_PG, ROOT, SHARED, BenchError, db_url, ensure_db, free_port,  # noqa: E402
                           kill_group, log)
from online_bench import ThrowawayMariaDB, Writer, _load  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PY = sys.executable
BUCKET = "gpitr-bench"
DEFAULT_MY = "mysql://root@127.0.0.1:3306/mysql"
TARGETS = {"lag_s": 60.0, "cpu_pct": 10.0, "pg_pitr_over_logical": 1.0, "my_pitr_over_base_plus_c_replay": 1.3}
TABLES = ["users", "albums", "images", "tags", "image_tags", "audit_logs"]
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- servers


class ThrowawayPostgres:
    """PostgreSQL 15 with wal_level=replica in its own data directory and port (stopped on exit)."""

    def __init__(self, tmp: Path):
        self.dir, self.port = tmp / "pgsrc", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def __enter__(self):
        self.dir.mkdir()
        if self.as_pg:
            self.dir.parent.chmod(0o755)
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(self.as_pg + [str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c wal_level=replica "
                "-c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off -c shared_buffers=256MB")
        subprocess.run(self.as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-o", opts, "-l",
                                     str(self.dir / "log"), "-w", "start"], check=True, capture_output=True)
        log(f"throwaway PostgreSQL (wal_level=replica) on port {self.port}")
        return self

    def __exit__(self, *exc):
        subprocess.run(self.as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        return False


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = shutil.which("moto_server", path=str(Path(PY).parent)) or "moto_server"
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    for _ in range(150):
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            log(f"moto S3 server on {endpoint}")
            return proc, endpoint
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    kill_group(proc)
    raise BenchError("moto_server did not start")


def server_clock(url: str):
    """A function returning the source server's clock (aware UTC) on one kept connection."""
    if url.startswith("postgresql"):
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        return lambda: conn.execute("SELECT clock_timestamp()").fetchone()[0].astimezone(dt.timezone.utc), conn
    import pymysql
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = pymysql.connect(host=u.hostname, port=u.port, user=u.username or "root", autocommit=True)

    def now():
        with conn.cursor() as cur:
            cur.execute("SELECT UTC_TIMESTAMP(6)")
            return cur.fetchone()[0].replace(tzinfo=dt.timezone.utc)
    return now, conn


def my_cli(url: str) -> list[str]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return ["mariadb", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.username or "root"]


def my_exec(url: str, sql: str) -> str:
    from urllib.parse import urlsplit

    r = subprocess.run(my_cli(url) + ["-N", "-B", "-D", urlsplit(url).path.lstrip("/") or "mysql", "-e", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"mariadb: {r.stderr.strip()[-300:]}")
    return r.stdout


def pg_exec(url: str, sql: str):
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------------- measuring


def tree_pids(root: int, stats: dict) -> list[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in stats:
            out.append(p)
            todo.extend(kids.get(p, []))
    return out


def tree_rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total / 1024


def tree_cpu(root: int, with_rss: bool = False):
    """CPU seconds of ``root`` and its live descendants (each with the CPU of the children it reaped)."""
    stats: dict[int, tuple[int, float]] = {}
    names: dict[int, tuple[str, float, float]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                text = fh.read()
        except OSError:
            continue
        f = text[text.rindex(")") + 2:].split()
        # after the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based from pid
        stats[int(d)] = (int(f[1]), (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / TICK)
        names[int(d)] = (text[text.index("(") + 1:text.rindex(")")], (int(f[11]) + int(f[12])) / TICK,
                         (int(f[13]) + int(f[14])) / TICK)
    pids = tree_pids(root, stats)
    total = sum(stats[p][1] for p in pids)
    if not with_rss:
        return total
    by: dict[str, float] = {}
    for p in pids:  # by program: its own CPU, and apart the CPU of the children it reaped (zstd, ...)
        comm, own, reaped = names[p]
        by[comm] = by.get(comm, 0.0) + own
        if reaped:
            by[f"reaped by {comm}"] = by.get(f"reaped by {comm}", 0.0) + reaped
    return total, tree_rss_mb(pids), by


class Sampler(threading.Thread):
    """Every ``every`` s: the archiver tree's CPU and the archive's lag (server clock minus the manifest's flushed.at)."""

    def __init__(self, pid: int, endpoint: str, key: str, clock, every: float = 2.0):
        super().__init__(daemon=True)
        import boto3

        self.pid, self.key, self.clock, self.every = pid, key, clock, every
        self.s3 = boto3.client("s3", endpoint_url=endpoint)
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def manifest(self) -> dict | None:
        try:
            return json.loads(self.s3.get_object(Bucket=BUCKET, Key=self.key)["Body"].read())
        except Exception:  # noqa: BLE001 - not written yet
            return None

    def one(self) -> dict:
        t = time.monotonic()
        cpu, rss, by = tree_cpu(self.pid, with_rss=True)
        m = self.manifest()
        now = self.clock()
        flushed = (m or {}).get("flushed") or {}
        at = dt.datetime.fromisoformat(flushed["at"].replace("Z", "+00:00")) if flushed.get("at") else None
        s = {"t": t, "cpu": cpu, "rss_mb": rss, "by": by, "lag": (now - at).total_seconds() if at else None, "bases": len((m or {}).get(
            "bases") or []), "flushed_at": at}
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.one()
            except Exception as exc:  # noqa: BLE001 - keep sampling
                log(f"sampler: {exc}")


# ---------------------------------------------------------------------- golive in its own process


def child(op: dict) -> None:
    """One golive step in this (fresh) process; prints one JSON line."""
    import golive
    from golive.backup.store import StorageOptions

    storage = StorageOptions(endpoint_url=op["endpoint"])
    out: dict = {"golive": golive.__file__}
    t = time.perf_counter()
    if op["kind"] == "archive":
        from golive.archive import ArchiveOptions, run_archive

        r = run_archive(op["db"], op["to"], ArchiveOptions(flush_seconds=op["flush"], marker_seconds=60,
                                                           spool_dir=op["spool"], storage=storage))
        out.update(r.model_dump(mode="json"))
    elif op["kind"] == "pitr":
        from golive.archive import restore_to_time

        r = restore_to_time(op["at"], op["moment"], to_url=op.get("to_url"), to_dir=op.get("to_dir"),
                            port=op.get("port"), storage=storage)
        out.update(r.model_dump(mode="json"))
    elif op["kind"] == "backup":
        from golive import backup as bk

        r = bk.backup_database(op["db"], op["to"], bk.BackupOptions(storage=storage))
        out.update(url=r.url, stored=r.manifest.stored_bytes, details=r.manifest.details)
    elif op["kind"] == "restore":
        from golive import backup as bk

        r = bk.restore_backup(op["from"], op["db"], bk.RestoreOptions(storage=storage))
        out.update(ok=r.ok, problems=r.problems)
    out["inner_seconds"] = round(time.perf_counter() - t, 3)
    print(json.dumps(out, default=str), flush=True)


def golive_step(op: dict, env: dict, tmp: Path) -> dict:
    t = time.perf_counter()
    errf = tmp / f"child-{op['kind']}.err"
    with open(errf, "w") as err:
        proc = subprocess.run([PY, __file__, "--child", json.dumps(op)], stdout=subprocess.PIPE, stderr=err,
                              text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise BenchError(f"golive {op['kind']} failed: {errf.read_text()[-1500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["seconds"] = round(time.perf_counter() - t, 3)
    return out


# ---------------------------------------------------------------------- one engine


def archive_run(engine: str, src_url: str, name: str, endpoint: str, env: dict, tmp: Path, args,
                before_writer=None) -> dict:
    """The archiver in its own process, the writer once it is ready; lag and CPU sampled. Returns the figures."""
    to = f"s3://{BUCKET}/{engine}"
    at = f"{to}/archive/{name}"
    op = {"kind": "archive", "db": src_url, "to": to, "flush": args.flush_seconds, "spool": str(tmp / f"spool-{engine}"),
          "endpoint": endpoint}
    errf = open(tmp / f"archiver-{engine}.err", "w")
    t_start = time.monotonic()
    proc = subprocess.Popen([PY, __file__, "--child", json.dumps(op)], stdout=subprocess.PIPE, stderr=errf,
                            text=True, cwd=ROOT, env=env, start_new_session=True)
    clock, conn = server_clock(src_url)
    sampler = Sampler(proc.pid, endpoint, f"{engine}/archive/{name}/archive.json", clock)
    out: dict = {"archive": at}
    try:
        # ready: the first base stored and a flush after it
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{engine}: the archiver exited: {(tmp / f'archiver-{engine}.err').read_text()[-1500:]}")
            s = sampler.one()
            if s["bases"] and s["flushed_at"] is not None:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{engine}: the archive was not ready within 600 s")
            time.sleep(1)
        out["first_base_ready_s"] = round(time.monotonic() - t_start, 1)
        out["cpu_until_ready_s"] = round(s["cpu"], 2)
        log(f"{engine}: archive ready (first base + flush) after {out['first_base_ready_s']} s")
        if before_writer is not None:
            out.update(before_writer())
        sampler.samples.clear()
        sampler.start()
        s0 = sampler.one()
        w = Writer(src_url, rate=args.rate, seconds=args.seconds, env=env)
        time.sleep(args.seconds / 2)
        moment = clock()
        log(f"{engine}: the moment to restore to: {moment.isoformat()}")
        res = w.result(timeout=args.seconds + 120)
        s1 = sampler.one()
        sampler.stop.set()
        sampler.join()
        wall = s1["t"] - s0["t"]
        lags = [s["lag"] for s in sampler.samples if s["lag"] is not None and s["t"] >= s0["t"]]
        out.update(moment=moment.isoformat(), writer={
            "committed": res["committed"], "seconds": res["seconds"],
            "achieved_rate": round(res["committed"] / max(res["seconds"], 0.001)), "errors": res["errors"],
            "p99_ms": res["latency_ms"]["p99"]},
            lag_max_s=round(max(lags), 1), lag_samples=len(lags),
            cpu_s=round(s1["cpu"] - s0["cpu"], 2), cpu_pct=round(100 * (s1["cpu"] - s0["cpu"]) / wall, 1),
            cpu_wall_s=round(wall, 1),
            cpu_pct_by_program={k: round(100 * (v - s0["by"].get(k, 0.0)) / wall, 1)
                                for k, v in sorted(s1["by"].items(), key=lambda kv: -kv[1])},
            rss_max_mb=round(max(s["rss_mb"] for s in sampler.samples if s["t"] >= s0["t"])))
        # let one flush cover the moment for sure, then stop the archiver (it flushes once more)
        deadline = time.monotonic() + 120
        while (sampler.one()["flushed_at"] or moment) <= moment and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=180)
        r = json.loads(stdout.strip().splitlines()[-1])
        out.update(archiver={k: r.get(k) for k in ("segments_stored", "flushes", "restarts", "bases",
                                                   "max_flush_lag_seconds", "cpu_seconds", "seconds", "golive")},
                   window={k: r["window"].get(k) for k in ("earliest", "latest", "segments", "stored_bytes", "gaps")})
        log(f"{engine}: archiver stopped: {json.dumps(out['archiver'])}")
    finally:
        sampler.stop.set()
        if proc.poll() is None:
            kill_group(proc)
        errf.close()
        conn.close()
    return out


def counts_pg(url: str) -> dict:
    rows = {}
    for t in TABLES:
        rows[t] = list(pg_exec(url, f"SELECT count(*), max(id) FROM {t}")[0]) if t != "image_tags" else \
            [pg_exec(url, f"SELECT count(*) FROM {t}")[0][0]]
    return rows


def counts_my(url: str) -> dict:
    rows = {}
    for t in TABLES:
        sql = f"SELECT count(*), max(id) FROM {t}" if t != "image_tags" else f"SELECT count(*) FROM {t}"
        rows[t] = [int(x) for x in my_exec(url, sql).split()]
    return rows


def bench_pg(srv, endpoint: str, env: dict, tmp: Path, args) -> dict:
    from golive.dialects import get_dialect

    src = db_url(srv.url, "app")
    out = archive_run("postgresql", src, "app", endpoint, env, tmp, args)
    # golive's logical backup of the same source (quiet now), for the record
    b = golive_step({"kind": "backup", "db": src, "to": f"s3://{BUCKET}/pg-backup", "endpoint": endpoint}, env, tmp)
    out["logical_backup_s"] = b["seconds"]
    log(f"postgresql: golive backup {b['seconds']} s")
    # restore to the moment: a recovered cluster in a new directory on a free port
    new_dir, port = tmp / "pg-pitr" / "data", free_port()
    (tmp / "pg-pitr").mkdir()
    try:
        r = golive_step({"kind": "pitr", "at": out["archive"], "moment": out["moment"], "to_dir": str(new_dir),
                         "port": port, "endpoint": endpoint}, env, tmp)
        out["pitr"] = {"seconds": r["seconds"], "inner_seconds": r["inner_seconds"], "segments": r["segments"],
                       "reached": r["reached"]}
        log(f"postgresql: restore to the moment {r['seconds']} s ({r['segments']} segments, {r['reached']})")
        out["pitr_rows"] = counts_pg(r["details"]["tcp_url"])
    finally:
        if new_dir.exists():
            try:
                get_dialect("postgresql").archive.stop_restored(new_dir)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                log(f"postgresql: stopping the restored cluster: {exc}")
        shutil.rmtree(tmp / "pg-pitr", ignore_errors=True)
    # golive's logical restore of the backup into a fresh empty database on the machine's PostgreSQL
    name = f"gpitr_{os.getpid()}_pg"
    pg_exec(args.pg_url, f'DROP DATABASE IF EXISTS "{name}"')
    pg_exec(args.pg_url, f'CREATE DATABASE "{name}"')
    try:
        r = golive_step({"kind": "restore", "from": b["url"], "db": db_url(args.pg_url, name), "endpoint": endpoint},
                        env, tmp)
        out["logical_restore_s"] = r["seconds"]
        log(f"postgresql: golive restore (logical) {r['seconds']} s")
    finally:
        pg_exec(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out["ratio"] = round(out["pitr"]["seconds"] / out["logical_restore_s"], 2)
    return out


def bench_my(srv, endpoint: str, env: dict, tmp: Path, args) -> dict:
    src = srv.url
    backup: dict = {}

    def take_backup() -> dict:
        b = golive_step({"kind": "backup", "db": src, "to": f"s3://{BUCKET}/my-backup", "endpoint": endpoint}, env,
                        tmp)
        backup.update(b)
        log(f"mariadb: golive backup (the base of the replay by hand) {b['seconds']} s, binlog "
            f"{b['details'].get('binlog')}")
        return {"base_backup_s": b["seconds"]}

    if args.rotate_binlog:  # the archive then starts on an empty binlog file, not the one holding the load
        my_exec(src, "FLUSH BINARY LOGS")
    out = archive_run("mariadb", src, "app", endpoint, env, tmp, args, before_writer=take_backup)
    pid = os.getpid()
    d_pitr, d_base = f"gpitr_{pid}_my_pitr", f"gpitr_{pid}_my_c"
    for d in (d_pitr, d_base):
        my_exec(args.my_url, f"DROP DATABASE IF EXISTS {d}; CREATE DATABASE {d}")
    try:
        r = golive_step({"kind": "pitr", "at": out["archive"], "moment": out["moment"],
                         "to_url": db_url(args.my_url, d_pitr), "endpoint": endpoint}, env, tmp)
        out["pitr"] = {"seconds": r["seconds"], "inner_seconds": r["inner_seconds"], "segments": r["segments"],
                       "reached": r["reached"], "transactions": r["details"].get("transactions")}
        log(f"mariadb: restore to the moment {r['seconds']} s ({r['details'].get('transactions')} transactions)")
        # by hand: golive's restore of the backup, then the binlog through the C client
        r = golive_step({"kind": "restore", "from": backup["url"], "db": db_url(args.my_url, d_base),
                         "endpoint": endpoint}, env, tmp)
        out["base_restore_s"] = r["seconds"]
        pos = backup["details"]["binlog"]
        files = [ln.strip() for ln in (srv.dir / "binlog.index").read_text().splitlines() if ln.strip()]
        files = [str(srv.dir / Path(f).name) for f in files]
        files = [f for f in files if int(f.rsplit(".", 1)[1]) >= int(pos["file"].rsplit(".", 1)[1])]
        stop = dt.datetime.fromisoformat(out["moment"]).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        reader = ["mariadb-binlog", "--no-defaults", "--database=app", f"--rewrite-db=app->{d_base}",
                  f"--start-position={pos['position']}", f"--stop-datetime={stop}"] + files
        t = time.perf_counter()
        p1 = subprocess.Popen(reader, stdout=subprocess.PIPE, env={**os.environ, "TZ": "UTC"})
        p2 = subprocess.run(my_cli(args.my_url) + ["--binary-mode", d_base], stdin=p1.stdout, capture_output=True)
        p1.stdout.close()
        if p1.wait() != 0 or p2.returncode != 0:
            raise BenchError(f"mariadb-binlog | mariadb: {p2.stderr.decode()[-400:]}")
        out["c_replay_s"] = round(time.perf_counter() - t, 3)
        out["by_hand_s"] = round(out["base_restore_s"] + out["c_replay_s"], 3)
        log(f"mariadb: golive restore {out['base_restore_s']} s + mariadb-binlog | mariadb {out['c_replay_s']} s")
        a, b = counts_my(db_url(args.my_url, d_pitr)), counts_my(db_url(args.my_url, d_base))
        out["same_rows"] = a == b
        out["rows"] = a if a == b else {"pitr": a, "by_hand": b}
    finally:
        for d in (d_pitr, d_base):
            my_exec(args.my_url, f"DROP DATABASE IF EXISTS {d}")
    out["ratio"] = round(out["pitr"]["seconds"] / out["by_hand_s"], 2)
    return out


# ---------------------------------------------------------------------- main


def table(results: dict) -> str:
    rows = [("figure", "value", "target", "ratio / verdict")]
    for eng, r in results.items():
        if "error" in r:
            rows.append((f"{eng}: error", r["error"][:60], "", ""))
            continue
        w = r["writer"]
        rows += [
            (f"{eng}: writer achieved (asked {w.get('asked')}/s)", f"{w['achieved_rate']}/s", "", ""),
            (f"{eng}: archive lag, max (server clock - flushed.at)", f"{r['lag_max_s']} s", "<= 60 s",
             "ok" if r["lag_max_s"] <= TARGETS["lag_s"] else "MISSED"),
            (f"{eng}: archiver CPU (process tree, % of a core)", f"{r['cpu_pct']} %", "<= 10 %",
             "ok" if r["cpu_pct"] <= TARGETS["cpu_pct"] else "MISSED"),
            (f"{eng}: archiver RSS, max (process tree)", f"{r['rss_max_mb']} MB", "", ""),
            (f"{eng}: first base stored + flushed", f"{r['first_base_ready_s']} s", "", "")]
        if eng == "postgresql":
            rows += [("postgresql: restore_to_time (to_dir, physical)", f"{r['pitr']['seconds']} s", "", ""),
                     ("postgresql: golive backup (logical, for the record)", f"{r['logical_backup_s']} s", "", ""),
                     ("postgresql: golive restore (logical)", f"{r['logical_restore_s']} s", "", ""),
                     ("postgresql: PITR / logical restore", f"{r['ratio']}", "<= 1.0",
                      "ok" if r["ratio"] <= TARGETS["pg_pitr_over_logical"] else "MISSED")]
        else:
            rows += [("mariadb: restore_to_time (to_url)", f"{r['pitr']['seconds']} s", "", ""),
                     ("mariadb: golive restore of the base", f"{r['base_restore_s']} s", "", ""),
                     ("mariadb: mariadb-binlog | mariadb (C replay)", f"{r['c_replay_s']} s", "", ""),
                     ("mariadb: PITR / (restore + C replay)", f"{r['ratio']}", "<= 1.3",
                      "ok" if r["ratio"] <= TARGETS["my_pitr_over_base_plus_c_replay"] else "MISSED"),
                     ("mariadb: same rows, PITR and by hand", str(r["same_rows"]), "True", "")]
    widths = [max(len(str(x[i])) for x in rows) for i in range(4)]
    return "\n".join(" | ".join(str(c).ljust(widths[i]) for i, c in enumerate(x)) for x in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--db", help="the SQLite bench database (default bench/data/app-<scale>.db, built if missing)")
    ap.add_argument("--engines", default="postgresql,mariadb")
    ap.add_argument("--rate", type=float, default=1000, help="the app's writes per second")
    ap.add_argument("--seconds", type=float, default=120, help="how long the app writes")
    ap.add_argument("--flush-seconds", type=float, default=30)
    ap.add_argument("--rotate-binlog", action="store_true",
                    help="MariaDB: FLUSH BINARY LOGS before the archive starts (by default its current binlog file "
                         "holds the load, ~420 MB: every flush stores the file being written from its start)")
    ap.add_argument("--pg-url", default=DEFAULT_PG, help="the machine's PostgreSQL (logical restore target)")
    ap.add_argument("--my-url", default=DEFAULT_MY, help="the machine's MariaDB (restore targets)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(k, v)
    if args.child:
        child(json.loads(args.child))
        return 0
    import golive

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    app_db = ensure_db(args.scale, args.db)
    tmp = Path(tempfile.mkdtemp(prefix="golive-pitr-bench-"))
    tmp.chmod(0o755)
    env = dict(os.environ, DO_NOT_TRACK="1", PYTHONPATH=str(ROOT), PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
               GOLIVE_HOME=str(tmp / "golive-home"))
    results: dict = {}
    t0 = time.monotonic()
    moto, endpoint = start_moto()
    try:
        for eng in engines:
            try:
                if eng == "postgresql":
                    with ThrowawayPostgres(tmp) as srv:
                        pg_exec(srv.url, "CREATE DATABASE app")
                        _load(app_db, db_url(srv.url, "app"), env)
                        results[eng] = bench_pg(srv, endpoint, env, tmp, args)
                elif eng in ("mariadb", "mysql"):
                    with ThrowawayMariaDB(tmp) as srv:
                        _load(app_db, srv.url, env)
                        results["mariadb"] = bench_my(srv, endpoint, env, tmp, args)
                else:
                    raise BenchError(f"unknown engine {eng}")
                results[eng if eng == "postgresql" else "mariadb"]["writer"]["asked"] = args.rate
            except BenchError as exc:
                log(f"{eng}: error: {exc}")
                results[eng] = {"error": str(exc)}
    finally:
        kill_group(moto)
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"date": dt.date.today().isoformat(), "scale": args.scale, "rate": args.rate, "seconds": args.seconds,
               "flush_seconds": args.flush_seconds, "rotate_binlog": args.rotate_binlog, "cpus": os.cpu_count(), "golive": golive.__file__,
               "storage": "moto S3 server on loopback", "targets": TARGETS, "engines": results,
               "bench_seconds": round(time.monotonic() - t0)}
    print(json.dumps(summary, indent=2, default=str))
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    return 0 if all("error" not in r for r in results.values()) else 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(2)

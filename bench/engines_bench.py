#!/usr/bin/env python3
"""Benchmark of the engine pairs beyond SQLite -> PostgreSQL, against their floors and peers, in the same run.

Pairs (``--pairs``, default all):

- ``mysql-pg``: MySQL/MariaDB -> PostgreSQL. The bench app database loaded into MariaDB by
  ``../shared/bench/appdb_mysql.sh``; compared with ``floor_mysql.sh`` (the C mariadb client piped into psql
  COPY, two tables at a time, then golive's own keys) and pgloader (prefetch/batch rows 10000) when installed.
- ``pg-pg``: PostgreSQL -> PostgreSQL. The app database in PostgreSQL (golive copies the SQLite one there
  once); compared with ``pg_dump -Fc -Z0 | pg_restore -d`` and ``pgcopydb clone --table-jobs 2 --index-jobs 2``.
- ``sqlite-mysql``, ``pg-mysql``: into MariaDB (when the MySQL target exists), against the C load
  (``appdb_mysql.sh``) / psql COPY TO STDOUT | LOAD DATA, and sqlite3-to-mysql at a smaller scale.

Every run goes into a fresh database; rounds alternate the order; golive runs as a user runs it (the CLI,
a Prefect server on loopback, ``--no-validate``). Prints medians and the ratios of medians; quote ratios.

usage: engines_bench.py [--scale 1] [--scales 1,2] [--rounds 3] [--pairs mysql-pg,pg-pg] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from migrate_bench import (BENCH, DEFAULT_PG, ROOT, SHARED, BenchError, Pg, PrefectServer, db_url,  # noqa: E402
                           ensure_db, log, run_measured)

MYSQL = "mysql://root@127.0.0.1:3306"
TARGETS = {"mysql-pg": (1.25, "floor"), "pg-pg": (1.10, "pg_dump|pg_restore"), "sqlite-mysql": (1.25, "floor"),
           "pg-mysql": (1.25, "floor")}
#: sqlite3-to-mysql (PyPI) for the sqlite-mysql pair, run once at a smaller scale (it took 1114 s at scale 1)
S2M = os.environ.get("GOLIVE_BENCH_SQLITE3MYSQL", "/tmp/s2m/bin/sqlite3mysql")


def fresh_mysql(tag: str) -> str:
    name = f"gbench_{os.getpid()}_{tag}_{int(time.time() * 1000) % 100000}"
    subprocess.run(mysql_cli() + ["-e", f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"], check=True)
    return name


def drop_mysql(name: str) -> None:
    subprocess.run(mysql_cli() + ["-e", f"DROP DATABASE IF EXISTS `{name}`"], check=False)


def mysql_cli() -> list[str]:
    return ["mariadb", "--local-infile=1", "-h127.0.0.1", "-uroot"]


def mysql_db(scale: float, app_db: Path) -> str:
    """The app database in MariaDB (loaded once per scale by the shared kit's appdb_mysql.sh)."""
    name = f"gbench_app_{str(scale).replace('.', '_')}"
    have = subprocess.run(mysql_cli() + ["-N", "-e", f"SELECT COUNT(*) FROM information_schema.TABLES "
                                                    f"WHERE TABLE_SCHEMA = '{name}'"], capture_output=True, text=True)
    if have.stdout.strip() != "6":
        log(f"loading {app_db.name} into MariaDB database {name} (appdb_mysql.sh)")
        subprocess.run(["bash", str(SHARED / "appdb_mysql.sh"), str(app_db), name], check=True, capture_output=True)
    return name


def golive_cmd(src: str, dst: str, report: Path) -> list[str]:
    return [sys.executable, "-m", "golive", "migrate", "db", "--source", src, "--target", dst, "--no-validate",
            "--report", str(report)]


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--scales", help="several scales, e.g. 1,2 (linearity)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", default="mysql-pg,pg-pg,sqlite-mysql,pg-mysql")
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--skip-peers", action="store_true", help="only golive and the floor")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    scales = [float(s) for s in a.scales.split(",")] if a.scales else [a.scale]
    pairs = [p.strip() for p in a.pairs.split(",") if p.strip()]
    pg = Pg(a.pg_url)
    tmp = Path(tempfile.mkdtemp(prefix="golive-engines-"))
    env = dict(os.environ, DO_NOT_TRACK="1", PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
               PYTHONPATH=str(ROOT))
    results: dict = {"pairs": {}, "scales": scales}
    try:
        with PrefectServer(tmp, env) as server:
            env["PREFECT_API_URL"] = server.api_url
            for scale in scales:
                app_db = ensure_db(scale, None)
                for pair in pairs:
                    results["pairs"][f"{pair}@{scale}"] = bench_pair(pair, scale, app_db, pg, env, tmp, a)
    finally:
        for name in list(pg.created):
            pg.drop(name)
    for key, r in results["pairs"].items():
        print_pair(key, r)
    if len(scales) > 1:
        for pair in pairs:
            s0, s1 = scales[0], scales[-1]
            g0 = results["pairs"][f"{pair}@{s0}"]["median"].get("golive")
            g1 = results["pairs"][f"{pair}@{s1}"]["median"].get("golive")
            if g0 and g1:
                print(f"{pair}: golive scale {s1}/{s0} = {g1 / g0:.2f} (target <= {1.05 * s1 / s0:.2f})")
    out = Path(a.json) if a.json else BENCH / "data" / f"engines-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")
    return 0


def bench_pair(pair: str, scale: float, app_db: Path, pg: Pg, env: dict, tmp: Path, a) -> dict:
    runs: dict[str, list[dict]] = {}
    if pair == "mysql-pg":
        src_name = mysql_db(scale, app_db)
        src = f"{MYSQL}/{src_name}"
        template = None
    elif pair in ("sqlite-mysql", "pg-mysql"):
        return bench_into_mysql(pair, scale, app_db, pg, env, tmp, a)
    elif pair == "pg-pg":
        template = pg.fresh("pgsrc")
        log(f"copying {app_db.name} into PostgreSQL {template} (the PG -> PG source)")
        r = subprocess.run(golive_cmd(str(app_db), db_url(pg.admin_url, template), tmp / "seed.json"), env=env,
                           capture_output=True, text=True)
        if r.returncode:
            raise BenchError(f"seeding the PostgreSQL source failed: {r.stderr.strip().splitlines()[-1:]}")
        src = db_url(pg.admin_url, template)
    else:
        raise BenchError(f"unknown pair {pair!r}")
    tools = ["golive", "floor" if pair == "mysql-pg" else "pg_dump|pg_restore"]
    if not a.skip_peers:
        if pair == "mysql-pg" and shutil.which("pgloader"):
            tools.append("pgloader")
        if pair == "pg-pg" and shutil.which("pgcopydb"):
            tools.append("pgcopydb")
    last_golive = None
    for rnd in range(a.rounds):
        order = tools if rnd % 2 == 0 else list(reversed(tools))
        if last_golive is None and "floor" in order:  # the floor needs a finished copy as its template
            order = ["golive"] + [t for t in order if t != "golive"]
        for tool in order:
            dbname = pg.fresh(tool.replace("|", "_"))
            dst = db_url(pg.admin_url, dbname)
            logp = tmp / f"{pair}-{rnd}-{tool.replace('|', '_')}.log"
            if tool == "golive":
                cmd = golive_cmd(src, dst, tmp / f"{pair}-{rnd}.json")
            elif tool == "floor":
                cmd = ["bash", str(SHARED / "floor_mysql.sh"), src.rsplit("/", 1)[1], db_url(pg.admin_url, last_golive),
                       dst]
            elif tool == "pgloader":
                cmd = ["pgloader", "--with", "prefetch rows = 10000", "--with", "batch rows = 10000", src, dst]
            elif tool == "pg_dump|pg_restore":
                cmd = ["bash", "-c", f"pg_dump -Fc -Z0 '{src}' | pg_restore -d '{dst}'"]
            else:  # pgcopydb
                cmd = ["pgcopydb", "clone", "--source", src, "--target", dst, "--table-jobs", "2", "--index-jobs", "2",
                       "--dir", str(tmp / f"pgcopydb-{rnd}"), "--no-owner", "--no-acl"]
            log(f"{pair} scale {scale} round {rnd + 1}: {tool}")
            res = run_measured(cmd, env=env, log_path=logp, pg=pg, dbname=dbname)
            res.pop("lines", None)
            res.pop("rss_samples", None)
            res["ok"] = res["rc"] == 0
            runs.setdefault(tool, []).append(res)
            if tool == "golive":
                if last_golive:
                    pg.drop(last_golive)
                last_golive = dbname
            else:
                pg.drop(dbname)
    if template:
        pg.drop(template)
    medians = {t: med([r["seconds"] for r in rs if r["ok"]]) for t, rs in runs.items()}
    rss = {t: max((r["peak_rss_mb"] for r in rs), default=None) for t, rs in runs.items()}
    base = TARGETS.get(pair, (None, None))[1]
    ratios = {f"golive/{t}": round(medians["golive"] / medians[t], 2)
              for t in medians if t != "golive" and medians.get(t) and medians.get("golive")}
    failed = {t: [r["rc"] for r in rs if not r["ok"]] for t, rs in runs.items() if any(not r["ok"] for r in rs)}
    return {"median": medians, "peak_rss_mb": rss, "ratios": ratios, "target": TARGETS.get(pair), "base": base,
            "failed": failed, "runs": runs}


def bench_into_mysql(pair: str, scale: float, app_db: Path, pg: Pg, env: dict, tmp: Path, a) -> dict:
    """SQLite or PostgreSQL into MariaDB: golive against the C load (appdb_mysql.sh / floor_pg_mysql.sh)."""
    runs: dict[str, list[dict]] = {}
    pg_src = None
    if pair == "pg-mysql":
        pg_src = pg.fresh("pgsrc")
        r = subprocess.run(golive_cmd(str(app_db), db_url(pg.admin_url, pg_src), tmp / "seed.json"), env=env,
                           capture_output=True, text=True)
        if r.returncode:
            raise BenchError(f"seeding the PostgreSQL source failed: {r.stderr.strip().splitlines()[-1:]}")
    src = str(app_db) if pair == "sqlite-mysql" else db_url(pg.admin_url, pg_src)
    last_golive = None
    for rnd in range(a.rounds):
        order = ["golive", "floor"] if rnd % 2 == 0 or last_golive is None else ["floor", "golive"]
        for tool in order:
            logp = tmp / f"{pair}-{rnd}-{tool}.log"
            if tool == "golive":
                name = fresh_mysql("golive")
                cmd = golive_cmd(src, f"{MYSQL}/{name}", tmp / f"{pair}-{rnd}.json")
            elif pair == "sqlite-mysql":
                name = f"gbench_{os.getpid()}_floor_{rnd}"
                cmd = ["bash", str(SHARED / "appdb_mysql.sh"), str(app_db), name]
            else:
                name = fresh_mysql("floor")
                cmd = ["bash", str(BENCH / "floor_pg_mysql.sh"), src, last_golive, name]
            log(f"{pair} scale {scale} round {rnd + 1}: {tool}")
            res = run_measured(cmd, env=env, log_path=logp)
            res.pop("lines", None)
            res.pop("rss_samples", None)
            res["ok"] = res["rc"] == 0
            runs.setdefault(tool, []).append(res)
            if tool == "golive":
                if last_golive:
                    drop_mysql(last_golive)
                last_golive = name
            else:
                drop_mysql(name)
    if pair == "sqlite-mysql" and not a.skip_peers and os.path.exists(S2M):
        small = min(scale, 0.05)
        small_db = ensure_db(small, None)
        for tool, cmd_of in (("golive@small", lambda n: golive_cmd(str(small_db), f"{MYSQL}/{n}", tmp / "small.json")),
                             ("sqlite3-to-mysql@small", lambda n: [S2M, "-f", str(small_db), "-d", n, "-u", "root",
                                                                  "-h", "127.0.0.1", "--chunk", "50000"])):
            name = fresh_mysql("peer")
            log(f"{pair}: {tool} at scale {small}")
            res = run_measured(cmd_of(name), env=env, log_path=tmp / f"{tool}.log")
            res.pop("lines", None)
            res.pop("rss_samples", None)
            res["ok"] = res["rc"] == 0
            runs.setdefault(tool, []).append(res)
            drop_mysql(name)
    if last_golive:
        drop_mysql(last_golive)
    if pg_src:
        pg.drop(pg_src)
    medians = {t: med([r["seconds"] for r in rs if r["ok"]]) for t, rs in runs.items()}
    rss = {t: max((r["peak_rss_mb"] for r in rs), default=None) for t, rs in runs.items()}
    ratios = {}
    if medians.get("golive") and medians.get("floor"):
        ratios["golive/floor"] = round(medians["golive"] / medians["floor"], 2)
    if medians.get("golive@small") and medians.get("sqlite3-to-mysql@small"):
        ratios["golive/sqlite3-to-mysql (small scale)"] = round(medians["golive@small"] / medians["sqlite3-to-mysql@small"], 3)
    failed = {t: [r["rc"] for r in rs if not r["ok"]] for t, rs in runs.items() if any(not r["ok"] for r in rs)}
    return {"median": medians, "peak_rss_mb": rss, "ratios": ratios, "target": TARGETS.get(pair), "failed": failed,
            "runs": runs}


def print_pair(key: str, r: dict) -> None:
    print(f"\n{key}")
    for t, m in r["median"].items():
        print(f"  {t:20s} median {m} s, peak RSS {r['peak_rss_mb'].get(t)} MB")
    for k, v in r["ratios"].items():
        print(f"  {k}: {v}")
    if r["target"]:
        print(f"  target: golive/{r['target'][1]} <= {r['target'][0]}")
    if r["failed"]:
        print(f"  FAILED runs (exit codes): {r['failed']}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"engines_bench: {exc}", file=sys.stderr)
        sys.exit(2)

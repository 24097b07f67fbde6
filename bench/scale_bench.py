#!/usr/bin/env python3
"""How golive's cost grows as the work grows (issue 22, "Scale"): time and peak RSS at two sizes per case.

    python bench/scale_bench.py [--cases rows50m,tables10k,cols1000,files1m,file2g,scale5]
                                [--fraction 0.1] [--size-factor 1] [--mysql] [--json OUT] [--workdir /tmp/scale22]

Each case is generated (a SQLite database or a folder, kept under --workdir/inputs between runs), then golive's CLI
runs as a user runs it, once at ``fraction x size`` and once at ``size`` (``size = full size x --size-factor``):

| case | full size | steps |
|---|---|---|
| rows50m   | one table of 50 M narrow rows (id, int, short text) | migrate db -> PG, backup PG -> S3 |
| tables10k | 10,000 tables of 10 rows each (id, text, int)       | migrate db -> PG (and -> MariaDB), backup |
| cols1000  | one table of 1,000 columns (int/text/real), 20,000 rows | migrate db -> PG (and -> MariaDB), backup |
| files1m   | 1 M files of 1 KB, 1,000 per folder                  | migrate files -> S3 |
| file2g    | one 2 GiB file                                       | migrate files -> S3 (multipart) |
| scale5    | the bench app database at scale 5 (gen_appdb.py, 18 M rows, 2.4 GB) | migrate db -> PG, backup |

``migrate db`` runs with ``--no-validate``; ``backup`` with ``--no-verify`` (a verify restores into an embedded
PostgreSQL whose server processes would count in the tree). Peak RSS is the sum over golive's process tree (the
CLI, pg_dump, zstd...), sampled every 50 ms by migrate_bench's sampler; the Prefect server (started once here on
loopback, as in production) and moto's S3 server (its own process) are not in it. The table gives, per step,
``(t_full / t_fraction) / (size_full / size_fraction)``: 1.0 is linear; below 1 the fixed start-up cost dominates
the small run. Target: peak RSS <= 500 MB and that ratio <= 1.25 (noise on a shared machine). Databases are named
``scale22_*`` and dropped at the end; inputs are deleted with --clean.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import migrate_bench as mb  # noqa: E402  (the sampler, the Prefect server, PostgreSQL admin)
from upload_bench import start_moto  # noqa: E402

SHARED = ROOT.parent / "shared" / "bench"
PY = sys.executable
MYSQL_ADMIN = ["mariadb", "-h127.0.0.1", "-P3306", "-uroot"]
TARGET_RSS_MB = 500
TARGET_LINEAR = 1.25


# ---------------------------------------------------------------------- inputs


def _sqlite(path: Path) -> sqlite3.Connection:
    path.unlink(missing_ok=True)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=OFF")
    c.execute("PRAGMA synchronous=OFF")
    return c


def gen_rows(path: Path, n: int) -> None:
    """One table of ``n`` narrow rows (id, an int, a short text), built in SQL."""
    c = _sqlite(path)
    c.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, label TEXT)")
    c.execute("BEGIN")
    c.execute("INSERT INTO events WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < ?) "
              "SELECT x, x % 97, 'e' || (x % 100003) FROM s", (n,))
    c.execute("COMMIT")
    c.close()


def gen_tables(path: Path, n: int) -> None:
    """``n`` tables of 10 rows each."""
    c = _sqlite(path)
    c.execute("BEGIN")
    for i in range(n):
        c.execute(f"CREATE TABLE t{i:05d} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER)")
        c.executemany(f"INSERT INTO t{i:05d} VALUES (?, ?, ?)", [(j, f"row {j} of {i}", i * j) for j in range(1, 11)])
    c.execute("COMMIT")
    c.close()


COLS_ROWS = 20_000


def gen_cols(path: Path, n: int, rows: int = COLS_ROWS) -> None:
    """One table of ``n`` columns (id + int/text/real in turn), ``rows`` rows."""
    kinds = ("INTEGER", "TEXT", "REAL")
    cols = [f"c{i:04d} {kinds[i % 3]}" for i in range(1, n)]
    c = _sqlite(path)
    c.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY{''.join(', ' + x for x in cols)})")
    exprs = ["x"] + [("x * %d" % i, "'v' || x || '_%d'" % i, "x / %d.0" % i)[i % 3] for i in range(1, n)]
    c.execute("BEGIN")
    c.execute(f"INSERT INTO wide WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {rows}) "
              f"SELECT {', '.join(exprs)} FROM s")
    c.execute("COMMIT")
    c.close()


def gen_files(folder: Path, n: int) -> None:
    """``n`` files of 1 KB, 1,000 per folder."""
    shutil.rmtree(folder, ignore_errors=True)
    r = random.Random(22)
    block = r.randbytes(1 << 20)
    for i in range(n):
        d = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True)
        off = (i * 1021) % ((1 << 20) - 1024)
        (d / f"{i:07d}.bin").write_bytes(block[off:off + 1024])


def gen_bigfile(folder: Path, nbytes: int) -> None:
    """One file of ``nbytes`` (random 1 MiB blocks, each stamped with its number)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    block = random.Random(22).randbytes(1 << 20)
    with open(folder / "video.bin", "wb") as fh:
        left, i = nbytes, 0
        while left > 0:
            b = (i.to_bytes(8, "big") + block[8:])[:left]
            fh.write(b)
            left -= len(b)
            i += 1


def gen_appdb(path: Path, scale: float) -> None:
    gen = SHARED / "gen_appdb.py"
    subprocess.run([PY, str(gen), str(path), "--scale", f"{scale:g}"], check=True, stdout=subprocess.DEVNULL)


@dataclass
class Case:
    name: str
    full: float
    unit: str
    kind: str  # "db" or "files"
    gen: Callable[[Path, float], None]
    mysql: bool = False
    minimum: float = 1

    def size(self, factor: float) -> float:
        s = self.full * factor
        return max(self.minimum, s if self.name == "scale5" else int(s))


CASES = {
    "rows50m": Case("rows50m", 50_000_000, "rows", "db", lambda p, n: gen_rows(p, int(n)), minimum=1000),
    "tables10k": Case("tables10k", 10_000, "tables", "db", lambda p, n: gen_tables(p, int(n)), mysql=True, minimum=2),
    "cols1000": Case("cols1000", 1000, "columns", "db", lambda p, n: gen_cols(p, int(n)), mysql=True, minimum=4),
    "files1m": Case("files1m", 1_000_000, "files", "files", lambda p, n: gen_files(p, int(n)), minimum=10),
    "file2g": Case("file2g", 2 << 30, "bytes", "files", lambda p, n: gen_bigfile(p, int(n)), minimum=1 << 20),
    "scale5": Case("scale5", 5, "scale", "db", gen_appdb, minimum=0.005),
}


# ---------------------------------------------------------------------- runs


@dataclass
class Step:
    case: str
    step: str
    size: float
    seconds: float | None = None
    peak_rss_mb: float | None = None
    peak_root_rss_mb: float | None = None
    peak_procs: int = 0
    cpu_seconds: float | None = None
    rc: int = 0
    error: str | None = None
    extra: dict = field(default_factory=dict)


class Runner:
    def __init__(self, a, work: Path, server, endpoint: str):
        self.a, self.work, self.endpoint = a, work, endpoint
        self.pg = mb.Pg(a.pg_url)
        self.pg_dbs: list[str] = []
        self.my_dbs: list[str] = []
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        self.runs = work / "runs" / time.strftime("%Y%m%d-%H%M%S")
        self.runs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), PREFECT_API_URL=server.api_url,
                        PREFECT_HOME=str(work / "prefect-client-home"), DO_NOT_TRACK="1",
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", GX_ANALYTICS_ENABLED="false",
                        PYTHONUNBUFFERED="1", TMPDIR=str(work / "tmp"), AWS_ACCESS_KEY_ID="test",
                        AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1", COLUMNS="160")
        self.env.pop("PREFECT_PROFILE", None)
        self.seq = 0

    def golive(self, case: str, step: str, size: float, args: list[str]) -> Step:
        self.seq += 1
        log_path = self.runs / f"{self.seq:03d}-{case}-{step.replace(' ', '_')}.log"
        mb.log(f"{case} {step} at {size:g}: golive {' '.join(args[:3])} ...")
        res = mb.run_measured([PY, "-m", "golive", *args], env=self.env, log_path=log_path,
                              timeout=self.a.timeout, cwd=self.work)
        s = Step(case, step, size, res["seconds"], res["peak_rss_mb"], res["peak_root_rss_mb"], res["peak_procs"],
                 res["cpu_seconds"], res["rc"])
        if res["rc"] != 0:
            s.error = mb.tail(res, 4)[-600:]
        mb.log(f"  {s.seconds:.1f} s, peak RSS {s.peak_rss_mb:.0f} MB ({s.peak_procs} processes)"
               + (f", FAILED rc={s.rc}: {s.error}" if s.error else ""))
        return s

    def fresh_pg(self, tag: str) -> str:
        name = f"scale22_{tag}"
        with self.pg.connect() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        self.pg_dbs.append(name)
        return name

    def fresh_mysql(self, tag: str) -> str:
        name = f"scale22_{tag}"
        subprocess.run(MYSQL_ADMIN + ["-e", f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"], check=True)
        self.my_dbs.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.pg_dbs:
            self.pg.drop(name)
        for name in self.my_dbs:
            subprocess.run(MYSQL_ADMIN + ["-e", f"DROP DATABASE IF EXISTS `{name}`"], check=False)
        self.pg_dbs.clear()
        self.my_dbs.clear()

    def input_for(self, case: Case, size: float) -> Path:
        tag = f"{case.name}-{size:g}"
        base = self.work / "inputs"
        base.mkdir(parents=True, exist_ok=True)
        path = base / (tag + (".db" if case.kind == "db" else ""))
        done = base / (tag + ".done")
        if not done.exists():
            mb.log(f"generating {tag} ...")
            t = time.perf_counter()
            case.gen(path, size)
            done.write_text(f"{time.perf_counter() - t:.1f}")
            mb.log(f"  generated in {time.perf_counter() - t:.1f} s")
        return path

    def run_case(self, case: Case, size: float, which: str) -> list[Step]:
        src = self.input_for(case, size)
        tag = f"{case.name}_{which}".lower()
        out: list[Step] = []
        if case.kind == "files":
            bucket = f"scale22-{case.name}-{which}".lower()
            out.append(self.golive(case.name, "upload", size, [
                "migrate", "files", "--source", str(src), "--dest", f"s3://{bucket}/media", "--endpoint-url",
                self.endpoint, "--create-bucket", "--state-dir", str(self.work / "state" / tag)]))
            self.reset_moto()
            return out
        db = self.fresh_pg(tag)
        out.append(self.golive(case.name, "migrate pg", size, [
            "migrate", "db", "-s", f"sqlite:///{src}", "-t", mb.db_url(self.a.pg_url, db), "--no-validate"]))
        if case.mysql and self.a.mysql:
            my = self.fresh_mysql(tag)
            out.append(self.golive(case.name, "migrate mariadb", size, [
                "migrate", "db", "-s", f"sqlite:///{src}", "-t", f"mysql://root@127.0.0.1:3306/{my}", "--no-validate"]))
        if out[0].rc == 0:
            out.append(self.golive(case.name, "backup", size, [
                "backup", "--db", mb.db_url(self.a.pg_url, db), "--to", f"s3://scale22-backup/{tag}",
                "--endpoint-url", self.endpoint, "--create-bucket", "--no-verify"]))
            self.reset_moto()
        self.drop_all()
        return out

    def reset_moto(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")).read()


# ---------------------------------------------------------------------- report


def verdict(small: Step, big: Step, size_ratio: float) -> tuple[float | None, str]:
    if big.error or small.error:
        return None, "FAILED"
    norm = (big.seconds / small.seconds) / size_ratio if small.seconds else None
    bad = []
    if max(small.peak_rss_mb, big.peak_rss_mb) > TARGET_RSS_MB:
        bad.append(f"RSS > {TARGET_RSS_MB} MB")
    if norm is not None and norm > TARGET_LINEAR:
        bad.append("super-linear")
    return norm, "ok" if not bad else ", ".join(bad)


def fmt_size(case: Case, size: float) -> str:
    if case.unit == "bytes":
        return f"{size / (1 << 20):.0f} MiB"
    if case.unit == "scale":
        return f"scale {size:g}"
    return f"{size:,.0f} {case.unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--fraction", type=float, default=0.1, help="the small run's size, as a fraction of the big one")
    ap.add_argument("--size-factor", type=float, default=1.0, help="scale every full size by this (0.01: smoke)")
    ap.add_argument("--mysql", action=argparse.BooleanOptionalAction, default=True,
                    help="also migrate tables10k and cols1000 into MariaDB")
    ap.add_argument("--pg-url", default=mb.DEFAULT_PG)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scale22"))
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per golive run")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--clean", action="store_true", help="delete the generated inputs at the end")
    a = ap.parse_args()
    names = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    a.workdir.mkdir(parents=True, exist_ok=True)
    work = a.workdir
    for d in ("state", "prefect-client-home"):
        shutil.rmtree(work / d, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    moto_env = dict(os.environ, TMPDIR=str(work / "tmp"))
    (work / "tmp").mkdir(exist_ok=True)
    os.environ.update(TMPDIR=moto_env["TMPDIR"])
    moto, endpoint = start_moto()
    rows: list[dict] = []
    try:
        (work / "server").mkdir(exist_ok=True)
        shutil.rmtree(work / "server" / "prefect-server-home", ignore_errors=True)
        with mb.PrefectServer(work / "server", dict(os.environ)) as server:
            r = Runner(a, work, server, endpoint)
            try:
                for name in names:
                    case = CASES[name]
                    big = case.size(a.size_factor)
                    small = case.size(a.size_factor * a.fraction)
                    steps_small = r.run_case(case, small, "fraction")
                    steps_big = r.run_case(case, big, "full")
                    for s, b in zip(steps_small, steps_big):
                        norm, v = verdict(s, b, big / small)
                        row = {"case": name, "step": s.step, "unit": case.unit, "size_fraction": small, "size": big,
                               "size_ratio": round(big / small, 3), "fraction": s.__dict__, "full": b.__dict__,
                               "time_ratio": round(b.seconds / s.seconds, 3) if s.seconds else None,
                               "time_per_size": round(norm, 3) if norm is not None else None, "verdict": v,
                               "label": fmt_size(case, big), "label_fraction": fmt_size(case, small)}
                        rows.append(row)
                        if a.json:
                            a.json.write_text(json.dumps({"fraction": a.fraction, "size_factor": a.size_factor,
                                                          "rows": rows}, indent=2, default=str))
            finally:
                r.drop_all()
    finally:
        moto.kill()
        if a.clean:
            shutil.rmtree(work / "inputs", ignore_errors=True)
        shutil.rmtree(work / "tmp", ignore_errors=True)
    print(f"\nfraction {a.fraction:g}, size factor {a.size_factor:g}; peak RSS = golive's process tree; "
          f"time/size = (t_full / t_fraction) / (size_full / size_fraction), 1.0 = linear")
    hdr = f"{'case':<10} {'step':<16} {'size':>18} {'wall s':>8} {'RSS MB':>7} {'frac. s':>8} {'RSS MB':>7} " \
          f"{'t ratio':>8} {'size x':>7} {'t/size':>7}  verdict"
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        f, b = row["fraction"], row["full"]
        print(f"{row['case']:<10} {row['step']:<16} {row['label']:>18} {mb.fmt(b['seconds']):>8} "
              f"{mb.fmt(b['peak_rss_mb'], nd=0):>7} {mb.fmt(f['seconds']):>8} {mb.fmt(f['peak_rss_mb'], nd=0):>7} "
              f"{mb.fmt(row['time_ratio'], nd=2):>8} {row['size_ratio']:>7g} {mb.fmt(row['time_per_size'], nd=2):>7}  "
              f"{row['verdict']}")
        for s in (f, b):
            if s["error"]:
                print(f"    {s['size']:g}: {s['error']}")
    return 0 if all(r["verdict"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except mb.BenchError as exc:
        print(f"scale_bench: {exc}", file=sys.stderr)
        sys.exit(2)

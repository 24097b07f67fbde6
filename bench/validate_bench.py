#!/usr/bin/env python3
"""Validation time against migration time, measured in the same run (the machines are shared: quote ratios).

Each round: a fresh PostgreSQL database, ``golive migrate db --no-validate`` into it (timed), then
``golive validate`` on it (timed), both as a user runs them (CLI, Prefect flow, PREFECT_API_URL if set).
The ratio validation / migration must stay <= 0.5 on the scale-1 bench database.

    python bench/validate_bench.py [--source /work/benchdata/app1.db] [--admin postgresql://postgres@127.0.0.1/postgres]
                                   [--rounds 2] [--keep]

Prints one line per round and a summary; ``--json FILE`` writes the figures. Also usable as a function:
``run_round(source, admin_url) -> dict``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


def _db_url(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def _sql(admin: str, stmt: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(stmt)


class _BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one database (sampled from /proc; Linux, local server).

    Indicative only: a backend's last moments before it exits are missed. Parallel workers (index builds,
    parallel scans) count for the backend that started them.
    """

    def __init__(self, dbname: str):
        self.dbname, self.seen, self.stop, self.leaders = dbname, {}, False, set()
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read()
                if b"postgres:" not in cmd:
                    continue
                mine = f" {self.dbname} ".encode() in cmd
                if not mine and b"parallel worker for PID " in cmd:
                    leader = cmd.split(b"parallel worker for PID ", 1)[1].split()[0].strip(b"\x00").decode()
                    mine = leader in self.leaders
                if not mine:
                    continue
                if f" {self.dbname} ".encode() in cmd:
                    self.leaders.add(pid)
                with open(f"/proc/{pid}/stat") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
                self.seen[pid] = (int(f[11]) + int(f[12])) / self.tick
            except OSError:
                continue

    def run(self) -> None:
        while not self.stop:
            self.sample()
            time.sleep(0.05)

    def __enter__(self):
        import threading

        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()

    @property
    def seconds(self) -> float:
        return round(sum(self.seen.values()), 2)


def _golive(*args: str, cwd: str, dbname: str) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run the CLI; returns (wall seconds, CLI CPU seconds, backend CPU seconds, process)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with _BackendCpu(dbname) as pg:
        proc = subprocess.run([sys.executable, "-m", "golive", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, round(cpu, 2), pg.seconds, proc


def run_round(source: str, admin: str, *, keep: bool = False) -> dict:
    """One migration and one validation into a fresh database; returns the timings (seconds) and the ratio."""
    name = "golive_vbench_" + uuid.uuid4().hex[:8]
    _sql(admin, f'CREATE DATABASE "{name}"')
    url = _db_url(admin, name)
    work = tempfile.mkdtemp(prefix="golive-vbench-")
    try:
        load0 = os.getloadavg()[0]
        t_mig, cpu_mig, pg_mig, mig = _golive("migrate", "db", "--source", source, "--target", url, "--no-validate",
                                              "--report", f"{work}/migrate.json", cwd=work, dbname=name)
        if mig.returncode != 0:
            raise SystemExit(f"migration failed ({mig.returncode}):\n{mig.stdout[-2000:]}\n{mig.stderr[-2000:]}")
        t_val, cpu_val, pg_val, val = _golive("validate", "--source", source, "--target", url, "--report",
                                              f"{work}/validate.json", cwd=work, dbname=name)
        if val.returncode != 0:
            raise SystemExit(f"validation failed ({val.returncode}):\n{val.stdout[-3000:]}\n{val.stderr[-2000:]}")
        rep = json.loads(Path(work, "validate.json").read_text())
        gx_cpu = (rep.get("timings") or {}).get("gx_process_cpu", 0.0)  # the helper outlives the CLI: not a child
        cpu_m, cpu_v = cpu_mig + pg_mig, cpu_val + gx_cpu + pg_val
        return {"migration_s": round(t_mig, 2), "validation_s": round(t_val, 2), "ratio": round(t_val / t_mig, 3),
                "migration_cpu_s": round(cpu_m, 2), "validation_cpu_s": round(cpu_v, 2),
                "cpu_ratio": round(cpu_v / cpu_m, 3) if cpu_m else None,
                "cpu_parts": {"migrate_cli": cpu_mig, "migrate_backends": pg_mig, "validate_cli": cpu_val,
                              "validate_gx_helper": gx_cpu, "validate_backends": pg_val},
                "validation_flow_s": rep.get("seconds"), "timings": rep.get("timings"),
                "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)}
    finally:
        if not keep:
            _sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="/work/benchdata/app1.db")
    ap.add_argument("--admin", default=os.environ.get("GOLIVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="Keep the databases.")
    ap.add_argument("--json", help="Write the figures here.")
    a = ap.parse_args()
    if not os.environ.get("PREFECT_API_URL"):
        print("note: PREFECT_API_URL is not set; each CLI run starts a temporary Prefect server (slower, "
              "and counted in both times)", file=sys.stderr)
    rounds = []
    for i in range(a.rounds):
        r = run_round(a.source, a.admin, keep=a.keep)
        rounds.append(r)
        print(f"round {i + 1}: migration {r['migration_s']:.1f} s, validation {r['validation_s']:.1f} s "
              f"(flow {r['validation_flow_s']:.1f} s), ratio {r['ratio']:.2f}; CPU (CLI + helper + backends) "
              f"{r['migration_cpu_s']:.1f} s vs {r['validation_cpu_s']:.1f} s, ratio {r['cpu_ratio']:.2f}  "
              f"[load {r['load_before']}->{r['load_after']}]  {r['timings']} {r['cpu_parts']}", flush=True)
    ratios = sorted(r["ratio"] for r in rounds)
    cpu = sorted(r["cpu_ratio"] for r in rounds if r["cpu_ratio"] is not None)
    print(f"validation/migration wall-time ratio over {len(rounds)} rounds: min {ratios[0]:.2f}, "
          f"median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f} (target <= 0.50)")
    if cpu:
        print(f"CPU-time ratio: min {cpu[0]:.2f}, median {cpu[len(cpu) // 2]:.2f}, max {cpu[-1]:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()

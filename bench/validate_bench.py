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


def _golive(*args: str, cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "golive", *args], cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def run_round(source: str, admin: str, *, keep: bool = False) -> dict:
    """One migration and one validation into a fresh database; returns the timings (seconds) and the ratio."""
    name = "golive_vbench_" + uuid.uuid4().hex[:8]
    _sql(admin, f'CREATE DATABASE "{name}"')
    url = _db_url(admin, name)
    work = tempfile.mkdtemp(prefix="golive-vbench-")
    try:
        load0 = os.getloadavg()[0]
        t_mig, mig = _golive("migrate", "db", "--source", source, "--target", url, "--no-validate",
                             "--report", f"{work}/migrate.json", cwd=work)
        if mig.returncode != 0:
            raise SystemExit(f"migration failed ({mig.returncode}):\n{mig.stdout[-2000:]}\n{mig.stderr[-2000:]}")
        t_val, val = _golive("validate", "--source", source, "--target", url, "--report", f"{work}/validate.json",
                             cwd=work)
        if val.returncode != 0:
            raise SystemExit(f"validation failed ({val.returncode}):\n{val.stdout[-3000:]}\n{val.stderr[-2000:]}")
        rep = json.loads(Path(work, "validate.json").read_text())
        return {"migration_s": round(t_mig, 2), "validation_s": round(t_val, 2), "ratio": round(t_val / t_mig, 3),
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
              f"(flow {r['validation_flow_s']:.1f} s), ratio {r['ratio']:.2f}  "
              f"[load {r['load_before']}->{r['load_after']}]  {r['timings']}", flush=True)
    ratios = sorted(r["ratio"] for r in rounds)
    print(f"validation/migration ratio over {len(rounds)} rounds: min {ratios[0]:.2f}, "
          f"median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f} (target <= 0.50)")
    if a.json:
        Path(a.json).write_text(json.dumps({"rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()

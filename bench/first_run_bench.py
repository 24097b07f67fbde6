"""The start-up cost of a user's first run: ``golive migrate db`` of the demo database on a fresh PREFECT_HOME
(as right after ``make install``), no PREFECT_API_URL, then a later run.

    .venv/bin/python bench/first_run_bench.py [--rounds 1] [--modes auto,ephemeral,server]
                                              [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

Per round and mode, a fresh PREFECT_HOME and a fresh target database (gpf_first_<pid>_<n>, dropped after):
- ``auto`` (the default behaviour): ``golive migrate db`` twice; the first starts the golive server in the
  background (and says so), the second reuses it; then ``golive server stop``;
- ``ephemeral`` (``GOLIVE_NO_SERVER=1``): ``golive migrate db`` twice, each with Prefect's temporary server;
- ``server``: ``golive server start``, then ``golive migrate db`` twice, then ``golive server stop``.
Prints wall times (command start to exit, as the user waits) and the medians per mode.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLIVE = [sys.executable, "-m", "golive"]


def timed(args: list[str], env: dict, cwd: Path) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    if proc.returncode not in (0, 1):  # the demo database has 2 rejects by design: exit 1 without --max-rejects
        sys.exit(f"{' '.join(args[2:4])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--modes", default="auto,ephemeral,server")
    args = ap.parse_args()
    import psycopg

    sys.path.insert(0, str(ROOT))
    from golive import sample

    work = Path(tempfile.mkdtemp(prefix="gpf_first_"))
    db = work / "app.db"
    sample.build(db, users=500, uploads=work / "uploads")
    results: dict[str, dict[str, list[float]]] = {}
    n = 0
    for rnd in range(args.rounds):
        for mode in args.modes.split(","):
            home = Path(tempfile.mkdtemp(prefix="gpf_home_", dir=work))
            env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API") and k != "GOLIVE_NO_SERVER"}
            env.update(PREFECT_HOME=str(home), DO_NOT_TRACK="1", PYTHONPATH=str(ROOT))
            if mode == "ephemeral":
                env["GOLIVE_NO_SERVER"] = "1"
            row = results.setdefault(mode, {})
            if mode == "server":
                row.setdefault("server start", []).append(timed([*GOLIVE, "server", "start"], env, work))
            try:
                for run in ("first migrate db", "second migrate db"):
                    n += 1
                    name = f"gpf_first_{os.getpid()}_{n}"
                    with psycopg.connect(args.pg_url, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{name}"')
                    target = args.pg_url.rsplit("/", 1)[0] + "/" + name
                    try:
                        row.setdefault(run, []).append(
                            timed([*GOLIVE, "migrate", "db", "--source", f"sqlite:///{db}", "--target", target,
                                   "--max-rejects", "2"], env, work))
                    finally:
                        with psycopg.connect(args.pg_url, autocommit=True) as conn:
                            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                if mode in ("server", "auto"):
                    subprocess.run([*GOLIVE, "server", "stop"], env=env, cwd=work, capture_output=True)
            print(f"round {rnd + 1} {mode}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in row.items()), flush=True)
    print("\nmedians:")
    for mode, row in results.items():
        print(f"  {mode:<10} " + ", ".join(f"{k} {statistics.median(v):.1f} s" for k, v in row.items()))


if __name__ == "__main__":
    main()

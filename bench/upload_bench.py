#!/usr/bin/env python3
"""Benchmark: golive's upload vs a naive boto3 pool vs rclone, same machine, same run, alternating.

    .venv/bin/python bench/upload_bench.py [--rounds 3] [--count 1000] [--workers 8] [--files DIR]
                                            [--prefect-api URL] [--no-rclone]

What runs (each round, in a rotating order, against one moto S3 server on loopback in its own process):

- golive        ``python -m golive migrate files ... --workers 8``: the CLI as users run it, i.e. the
                ``migrate-files`` Prefect flow against a running Prefect server (started here on loopback
                unless ``--prefect-api``/``PREFECT_API_URL`` names one); Prefect start-up counts.
- golive rerun  the same command again with nothing changed (decided from the manifest; no flow run).
- flow          the ``migrate_files`` flow called from Python, timed without interpreter start-up and
                imports (``imports`` is the time those took): where the CLI's time goes.
- engine        ``golive.files.sync.upload_folder`` in a plain process: the same engine without Prefect.
- naive         ../shared/bench/naive_upload.py (a boto3 thread pool of 8, ``upload_file`` per file).
- rclone        ``rclone copy DIR remote:bucket --transfers 8 --checkers 8`` (when installed).

Prints medians and the ratios the issue sets targets for: golive/naive (<= 1.0), golive/rclone (<= 0.7),
rerun/first (<= 0.1). Quote ratios, not seconds: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAIVE = ROOT.parent / "shared" / "bench" / "naive_upload.py"
PY = sys.executable


def make_files(folder: Path, count: int) -> tuple[int, int]:
    """``count`` files of 20-400 KB (about 200 MB for 1000), laid out like an app's uploads; reused if there."""
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        r = random.Random(42)
        for i in range(1, count + 1):
            p = folder / "uploads" / f"{2023 + i % 3}" / f"{1 + i % 12:02d}" / f"{i:08d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(r.randbytes(r.randrange(20_000, 400_000)))
        marker.write_text(str(count))
    files = [p for p in (folder / "uploads").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    code = ("import logging, sys, time; from moto.server import ThreadedMotoServer\n"
            "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
            "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start()\n"
            "h, p = s.get_host_and_port(); print(f'http://{h}:{p}', flush=True)\n"
            "while True: time.sleep(3600)\n")
    proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def start_prefect(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(Path(PY).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the Prefect server did not start within 2 minutes")


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--files", type=Path, default=Path(tempfile.gettempdir()) / "golive-bench-files")
    ap.add_argument("--prefect-api", default=os.environ.get("PREFECT_API_URL"))
    ap.add_argument("--no-rclone", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the raw timings here")
    a = ap.parse_args()

    n, size = make_files(a.files, a.count)
    src = a.files / "uploads"
    work = Path(tempfile.mkdtemp(prefix="golive-bench-"))
    moto, endpoint = start_moto()
    prefect = None
    api = a.prefect_api
    if not api:
        prefect, api = start_prefect(work / "prefect-home")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "PREFECT_API_URL": api, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    rclone = None if a.no_rclone else shutil.which("rclone")
    rc_env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}
    if rclone:
        (work / "rclone.conf").write_text(
            f"[moto]\ntype = s3\nprovider = Other\nendpoint = {endpoint}\naccess_key_id = test\n"
            "secret_access_key = test\nregion = us-east-1\n")
    print(f"{n} files, {size / 1e6:.0f} MB; moto at {endpoint}; Prefect API {api}; {a.rounds} rounds, "
          f"{a.workers} workers; rclone: {rclone or 'not installed'}", flush=True)

    times: dict[str, list[float]] = {}
    try:
        for rnd in range(1, a.rounds + 1):
            runs = ["golive", "flow", "engine", "naive"] + (["rclone"] if rclone else [])
            shift = (rnd - 1) % len(runs)
            order = runs[shift:] + runs[:shift]
            for name in order:
                bucket = f"{name}-r{rnd}-{os.getpid()}"
                if name == "golive":
                    cmd = [PY, "-m", "golive", "migrate", "files", "--source", str(src), "--dest",
                           f"s3://{bucket}/media", "--endpoint-url", endpoint, "--workers", str(a.workers),
                           "--state-dir", str(work / f"state-{rnd}"), "--create-bucket"]
                    times.setdefault("golive", []).append(timed(cmd, env, work))
                    times.setdefault("golive rerun", []).append(timed(cmd, env, work))
                elif name == "engine":
                    code = ("import sys; from golive.files.sync import upload_folder; r = upload_folder("
                            f"{str(src)!r}, 's3://{bucket}/media', endpoint_url={endpoint!r}, workers={a.workers}, "
                            f"state_dir={str(work / f'engine-{rnd}')!r}, create_bucket=True); sys.exit(r.exit_code)")
                    times.setdefault("engine", []).append(timed([PY, "-c", code], env, work))
                elif name == "flow":  # the flow call alone, Python start-up and imports excluded
                    code = ("import json, sys, time; t0 = time.perf_counter()\n"
                            "from flows.migrate_files import MigrateFilesParams, migrate_files\n"
                            "t1 = time.perf_counter()\n"
                            f"migrate_files(MigrateFilesParams(source={str(src)!r}, dest='s3://{bucket}/media', "
                            f"endpoint_url={endpoint!r}, workers={a.workers}, state_dir={str(work / f'flow-{rnd}')!r}, "
                            "create_bucket=True))\n"
                            "print(json.dumps([t1 - t0, time.perf_counter() - t1]))\n")
                    r = subprocess.run([PY, "-c", code], env={**env, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"},
                                       cwd=work, capture_output=True, text=True)
                    if r.returncode:
                        raise SystemExit(f"flow run failed:\n{r.stderr[-2000:]}")
                    imports, flow_s = json.loads(r.stdout.strip().splitlines()[-1])
                    times.setdefault("flow", []).append(flow_s)
                    times.setdefault("imports", []).append(imports)
                elif name == "naive":
                    times.setdefault("naive", []).append(timed([PY, str(NAIVE), str(src), bucket, endpoint], env, work))
                else:
                    cmd = [rclone, "--config", str(work / "rclone.conf"), "copy", str(src), f"moto:{bucket}",
                           "--transfers", str(a.workers), "--checkers", str(a.workers)]
                    times.setdefault("rclone", []).append(timed(cmd, rc_env, work))
                print(f"  round {rnd}: {name:<7} {times[name][-1]:6.2f} s"
                      + (f"   rerun {times['golive rerun'][-1]:5.2f} s" if name == "golive" else ""), flush=True)
            urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST")).read()
    finally:
        moto.kill()
        if prefect:
            prefect.terminate()
            prefect.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    print("\nmedians (s): " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    rows = [("golive / naive", med["golive"] / med["naive"], "<= 1.0")]
    if "rclone" in med:
        rows.append(("golive / rclone", med["golive"] / med["rclone"], "<= 0.7"))
    rows.append(("golive rerun / golive", med["golive rerun"] / med["golive"], "<= 0.1"))
    rows.append(("flow call / naive", med["flow"] / med["naive"], "(flow call only: no start-up, no imports)"))
    rows.append(("engine / naive", med["engine"] / med["naive"], "(no Prefect, for context)"))
    if "rclone" in med:
        rows.append(("engine / rclone", med["engine"] / med["rclone"], "(no Prefect, for context)"))
    for name, ratio, target in rows:
        print(f"  {name:<24} {ratio:5.2f}   target {target}")
    if a.json:
        a.json.write_text(json.dumps({"times": times, "medians": med, "files": n, "bytes": size}, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The chaos campaign: every flow under every fault, N seeded trials each; a table flow x fault -> trials,
survived, failures.

    .venv/bin/python bench/chaos.py --trials 3 --seed 1
                                    [--flows files,backup,restore,verify,restore-pg,migrate-pg,migrate-mysql,
                                             backup-pg,backup-mysql,restore-mysql,validate,files-verify,rewrite,
                                             backups-verify,backups-prune,release,purge,migrate-mysql-src,
                                             migrate-pg-src]
                                    [--faults reset,lost,503,stall,truncate,disk,kill,restart] [--rates 0.1,1]
                                    [--out chaos.md] [--replay FLOW:FAULT:SEED]

Faults (the trials are in tests/chaos/chaoslib.py; the quick sample of ``make test`` is tests/chaos/test_chaos.py):

- object storage, through a fault proxy in front of a moto server (tests/s3proxy.py), on each ``--rates`` share of
  the requests: ``reset`` (the connection drops before the request arrives), ``lost`` (the request is carried out,
  the answer lost), ``503`` (SlowDown), ``stall`` (1.5 s late), ``truncate`` (the answer's body cut in half). Below
  100 %: every request may fail, the run must finish and what it stored equal the source. At 100 %: the writes
  (``files``, ``backup``) or the reads (``restore``, ``verify``) all fail, the run must fail with one line, claim
  nothing that is not there, and the next run without faults finish equal and leave nothing behind;
- ``disk``: a 2 MiB tmpfs, nearly full, under the state directory (``files``), the backup staging (``backup``) or the
  restore scratch (``restore``) (needs root to mount; skipped otherwise);
- ``kill``: ``kill -9`` of the command at a seeded moment between 0.3 s and 90 % of the length of an uninterrupted
  run (measured first, per flow), then the same command again: exit 0, the end state of an uninterrupted run,
  nothing left behind (open multipart uploads, objects of no backup, scratch files, processes, tables). A command
  that ended before its moment (the machine was quicker this time) is not run again; its end state is checked;
- ``restart``: the harness's own PostgreSQL 15 and MariaDB (tests/chaos/servers.py, ports 55400-55499) run the
  database flows (tests/chaos/dbflows.py); the source's or the target's server is restarted (PostgreSQL:
  ``pg_ctl restart -m immediate``; MariaDB: ``SIGKILL`` and started again on the same datadir and port) at a seeded
  moment between 0.3 s and 75 % of an uninterrupted run; the command must exit 0 with the end state of an
  uninterrupted run, or exit non-zero with one line (no traceback, no exception class), and then the same command
  exit 0 with that end state, leaving nothing behind (scratch databases, temp files, processes, uploads).

Every trial prints its seed; ``--replay FLOW:FAULT:SEED`` (FAULT as in the table, e.g. ``lost@10%``, ``kill``) runs
that one trial again (``restart source``/``restart target`` for restarts). Uses the machine's PostgreSQL and MariaDB (``GOLIVE_TEST_PG``, ``GOLIVE_TEST_MYSQL``), a
moto server and a Prefect API of its own (or ``PREFECT_API_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "tests"), str(ROOT)]

import chaoslib  # noqa: E402
import dbflows as db_flows  # noqa: E402 - registers the database flows' kill setups
import servers as chaos_servers  # noqa: E402
from chaoslib import Env, Outcome  # noqa: E402

S3_FLOWS = ("files", "backup", "restore", "verify")
KILL_FLOWS = ("files", "backup", "restore", "restore-pg", "migrate-pg", "migrate-mysql", *db_flows.SETUPS)
RESTART_FLOWS = tuple(db_flows.RESTARTS)
DISK_PLACE = {"files": "state", "backup": "staging", "restore": "scratch"}


def trial_seed(base: int, flow: str, fault: str, i: int) -> int:
    return random.Random(f"{base}:{flow}:{fault}:{i}").randrange(1 << 30)


def cells(flows, faults, rates) -> list[tuple[str, str]]:
    """(flow, fault label) pairs the campaign runs, in table order."""
    out = []
    for flow in flows:
        for fault in faults:
            if fault in chaoslib.S3_FAULTS and flow in S3_FLOWS:
                out += [(flow, f"{fault}@{r:.0%}") for r in rates]
            elif fault == "disk" and flow in DISK_PLACE:
                out.append((flow, "disk full"))
            elif fault == "kill" and flow in KILL_FLOWS:
                out.append((flow, "kill -9"))
            elif fault == "restart" and flow in RESTART_FLOWS:
                out += [(flow, f"restart {side}") for side in db_flows.RESTARTS[flow]]
    return out


def run_one(env: Env, flow: str, fault: str, seed: int, lengths: dict, servers=None) -> Outcome:
    if fault.startswith("restart "):
        at = random.Random(seed).uniform(0.3, max(0.5, 0.75 * lengths[flow]))
        return db_flows.restart_trial(env, servers, flow, fault.split()[1], seed, at=at)
    if fault == "kill -9":
        at = random.Random(seed).uniform(0.3, max(0.5, 0.9 * lengths[flow]))
        return chaoslib.kill_trial(env, flow, seed, at=at)
    if fault == "disk full":
        return chaoslib.DISK_TRIALS[DISK_PLACE[flow]](env, seed)
    kind, _, rate = fault.partition("@")
    return chaoslib.S3_TRIALS[flow](env, kind, float(rate.rstrip("%")) / 100, seed)


def reference_length(env: Env, flow: str) -> float:
    """Seconds of an uninterrupted run of ``flow``'s command (and its end state checked)."""
    d = env.trial_dir("ref-" + flow)
    setup = chaoslib.KILL_SETUPS[flow](env, d, 0)
    (d / "tmp").mkdir()
    cli = Env(env.s3_endpoint, env.proxy, env.work, env.pg_admin_url, env.mysql_admin_url,
              dict(env.cli_env, TMPDIR=str(d / "tmp")))
    t0 = time.monotonic()
    res = chaoslib.golive_cli(cli, *setup.args, cwd=d)
    took = time.monotonic() - t0
    problems = setup.check() if res.returncode == 0 else [f"exit {res.returncode}: {res.stderr.strip()[-300:]}"]
    if setup.cleanup:
        setup.cleanup()
    print(f"  uninterrupted {flow}: {took:.1f} s" + (f"  PROBLEMS: {problems}" if problems else ""), flush=True)
    return took


def table(results: dict[tuple[str, str], list[Outcome]]) -> str:
    """flow x fault -> trials, survived, failures (kill -9: how many were killed before they ended, too)."""
    lines = ["| flow | fault | trials | survived | failures |", "|---|---|---:|---:|---|"]
    for (flow, fault), outs in results.items():
        fails = [f"seed {o.seed}: {'; '.join(o.failures)[:160]}" for o in outs if not o.survived]
        killed = sum(o.note.startswith("killed") for o in outs)
        restarted = sum(" restarted at " in o.note for o in outs)
        label = (f"{fault} ({killed} killed mid-run)" if fault == "kill -9"
                 else f"{fault} ({restarted} mid-run)" if fault.startswith("restart") else fault)
        lines.append(f"| {flow} | {label} | {len(outs)} | {sum(o.survived for o in outs)} | "
                     + ("<br>".join(fails).replace("|", "\\|") or "—") + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def environment(work: Path, prefect: bool = True):
    """A moto server, the fault proxy in front of it, and (``prefect``: for the commands) a Prefect API
    (``PREFECT_API_URL`` or one of our own)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from golive.runtime import apply_offline_defaults

    apply_offline_defaults()
    from moto.server import ThreadedMotoServer
    from s3proxy import S3Proxy

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    proxy = S3Proxy(f"http://{host}:{port}")
    env = Env(s3_endpoint=f"http://{host}:{port}", proxy=proxy, work=work,
              pg_admin_url=os.environ.get("GOLIVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
              mysql_admin_url=os.environ.get("GOLIVE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
              cli_env={"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    try:
        if not prefect:
            yield env
        elif os.environ.get("PREFECT_API_URL"):
            env.cli_env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"]
            yield env
        else:
            from prefect.testing.utilities import prefect_test_harness

            with prefect_test_harness(server_startup_timeout=120):
                from prefect.settings import PREFECT_API_URL

                env.cli_env["PREFECT_API_URL"] = PREFECT_API_URL.value()
                yield env
    finally:
        proxy.close()
        moto.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=3, help="trials per flow x fault")
    ap.add_argument("--seed", type=int, default=1, help="base seed: the same seed, the same trials")
    ap.add_argument("--flows", default=",".join(dict.fromkeys(S3_FLOWS + KILL_FLOWS)))
    ap.add_argument("--faults", default="reset,lost,503,stall,truncate,disk,kill,restart")
    ap.add_argument("--rates", default="0.1,1", help="shares of the requests the storage faults hit")
    ap.add_argument("--out", default="chaos.md", help="write the table (markdown) here")
    ap.add_argument("--replay", help="FLOW:FAULT:SEED, one trial (FAULT as the table names it)")
    args = ap.parse_args()

    flows = [f for f in args.flows.split(",") if f]
    faults = [f for f in args.faults.split(",") if f]
    rates = [float(r) for r in args.rates.split(",") if r]
    replay_fault = args.replay.split(":")[1] if args.replay else ""
    commands = replay_fault.startswith(("kill", "restart")) if args.replay else bool({"kill", "restart"} & set(faults))
    restarts = replay_fault.startswith("restart") or (not args.replay and "restart" in faults)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="golive-chaos-"))
        env = stack.enter_context(environment(Path(tmp), commands))
        servers = stack.enter_context(chaos_servers.Servers()) if restarts else None
        lengths: dict[str, float] = {}
        if args.replay:
            flow, fault, seed = args.replay.rsplit(":", 2)
            if fault == "kill -9" or fault == "kill" or fault.startswith("restart"):
                fault = "kill -9" if fault.startswith("kill") else fault
                lengths[flow] = reference_length(env, flow)
            out = run_one(env, flow, fault, int(seed), lengths, servers)
            print(out, out.note)
            return 0 if out.survived else 1
        plan = cells(flows, faults, rates)
        print(f"chaos campaign: {len(plan)} cells x {args.trials} trials, seed {args.seed}", flush=True)
        for flow in dict.fromkeys(f for f, fault in plan if fault == "kill -9" or fault.startswith("restart")):
            try:
                lengths[flow] = reference_length(env, flow)
            except Exception as exc:  # noqa: BLE001 - the machine's server failed the setup: a default length
                print(f"  uninterrupted {flow}: could not run ({type(exc).__name__}: {str(exc)[:200]}); 15 s assumed",
                      flush=True)
                lengths[flow] = 15.0
        results: dict[tuple[str, str], list[Outcome]] = {}
        started = time.monotonic()
        for flow, fault in plan:
            for i in range(args.trials):
                seed = trial_seed(args.seed, flow, fault, i)
                try:
                    out = run_one(env, flow, fault, seed, lengths, servers)
                except chaoslib.MountRefused as exc:
                    print(f"  {flow} x {fault}: skipped ({exc})", flush=True)
                    break
                except Exception as exc:  # noqa: BLE001 - the harness itself failed: a failure of the trial
                    out = Outcome(flow, fault, seed, [f"the trial crashed: {type(exc).__name__}: {exc}"])
                results.setdefault((flow, fault), []).append(out)
                mark = "ok  " if out.survived else "FAIL"
                print(f"  {mark} {flow:<14} {fault:<14} seed {seed:<10} {out.seconds:6.1f} s  {out.note}"
                      + ("" if out.survived else "\n       " + "\n       ".join(out.failures)), flush=True)
        text = table(results)
        total = sum(len(v) for v in results.values())
        survived = sum(o.survived for v in results.values() for o in v)
        head = (f"chaos campaign {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, seed {args.seed}, "
                f"{args.trials} trial(s) per cell: {survived} of {total} survived in "
                f"{time.monotonic() - started:.0f} s")
        print("\n" + head + "\n\n" + text)
        Path(args.out).write_text(head + "\n\n" + text + "\n", encoding="utf-8")
        return 0 if survived == total else 1


if __name__ == "__main__":
    sys.exit(main())

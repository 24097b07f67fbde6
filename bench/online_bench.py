#!/usr/bin/env python3
"""Benchmark of online migration (``golive migrate db --online``): the write freeze an app sees, the cost of the
whole online run against the offline one, the catch-up's speed, what capture costs the app's writes.

Per source (``--sources``, default sqlite,mariadb,postgresql), into the machine's PostgreSQL, on the scale-1 bench
database (``bench/data/app-<scale>.db``, made by ../shared/bench/gen_appdb.py):

- **offline**: ``golive migrate db --no-validate`` of the source (quiet), timed;
- **writer baseline**: ``../shared/bench/app_writer.py --rate R --seconds 20`` with no capture: its p99 latency;
- **online**: ``golive migrate db --online --cutover-command 'touch F'`` while ``app_writer.py --rate R
  --switch-file F`` writes the whole time: wall time and peak RSS of the golive process tree, the write freeze
  the writer saw (its last acknowledged write to the switch file's mtime) and golive's own figure, the writer's p99
  during the run (capture and the copy's load);
- **checker**: ``golive validate`` of source (fenced) against target after the cut-over: equal value for value;
- **capture's cost**: capture on, the copy done, the writer at ``--rate R`` for 20 s: its p99 against the baseline;
- **catch-up**: in this process, capture begun, the writer at ``--rate 0`` for ``--backlog-seconds``, then one
  timed ``golive.migrate.online.catch_up`` of the whole backlog: changes applied per second.

A MariaDB source is a throwaway ``mariadbd`` with ``--log-bin`` (binlog ROW), a PostgreSQL source a throwaway
``initdb`` + ``pg_ctl`` with ``wal_level=logical`` (the machine's servers are never reconfigured); each is loaded
once from the SQLite bench database by golive itself. Every target is a fresh database on the machine's
PostgreSQL. Quote ratios, not seconds: the machine is shared.

usage: online_bench.py [--scale 1] [--sources sqlite,mariadb,postgresql] [--rate 500] [--rounds 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from migrate_bench import (DEFAULT_PG, ROOT, SHARED, BenchError, Pg, PrefectServer, db_url, ensure_db,  # noqa: E402
                           free_port, kill_group, log, run_measured)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WRITER = SHARED / "app_writer.py"
GOLIVE = [sys.executable, "-m", "golive"]
TARGETS = {"freeze_s": 5.0, "online_over_offline": 1.3, "changes_per_s": 20_000, "p99_ratio": 1.5, "rss_mb": 500}


# ---------------------------------------------------------------------- throwaway source servers


class ThrowawayPostgres:
    """PostgreSQL 15 with wal_level=logical in its own data directory and port (stopped on exit)."""

    def __init__(self, tmp: Path):
        self.dir, self.port = tmp / "pgsrc", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self):
        self.dir.mkdir()
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_pg:  # the postgres user must reach its directory through the (mkdtemp, 0700) parent
            self.dir.parent.chmod(0o755)
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(as_pg + [str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c wal_level=logical "
                "-c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off -c shared_buffers=256MB")
        subprocess.run(as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-o", opts, "-l",
                                str(self.dir / "log"), "-w", "start"], check=True, capture_output=True)
        self.as_pg = as_pg
        log(f"throwaway PostgreSQL (wal_level=logical) on port {self.port}")
        return self

    def __exit__(self, *exc):
        subprocess.run(self.as_pg + [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        return False


class ThrowawayMariaDB:
    """mariadbd with the binlog on (ROW, FULL image) in its own datadir and port (stopped on exit)."""

    def __init__(self, tmp: Path):
        self.dir, self.port = tmp / "mysrc", free_port()
        self.url = f"mysql://root@127.0.0.1:{self.port}/app"
        self.app_url = f"mysql://app:app-pw@127.0.0.1:{self.port}/app"

    def __enter__(self):
        self.dir.mkdir()
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir}", "--user=root"], check=True,
                       capture_output=True)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir}", "--user=root", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.dir}/sock", f"--log-bin={self.dir}/binlog",
             "--server-id=1", "--binlog-format=ROW", "--binlog-row-image=FULL", "--innodb-flush-log-at-trx-commit=2",
             "--innodb-buffer-pool-size=512M", "--local-infile=1", "--skip-name-resolve"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "err.log", "wb"), start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # root over TCP from 127.0.0.1, no password (the datadir's root@localhost is socket-only)
            r = subprocess.run(["mariadb", f"--socket={self.dir}/sock", "-uroot", "-e",
                                "CREATE DATABASE IF NOT EXISTS app; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; "
                                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; "
                                # the app's own user: no SUPER / READ_ONLY ADMIN, so the fence applies to it
                                "CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'; "
                                "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'app'@'127.0.0.1'"],
                               capture_output=True)
            if r.returncode == 0:
                log(f"throwaway MariaDB (binlog ROW) on port {self.port}")
                return self
            time.sleep(0.5)
        self.__exit__()
        raise BenchError(f"the throwaway MariaDB did not start (see {self.dir}/err.log)")

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            kill_group(self.proc)
        return False


# ---------------------------------------------------------------------- one source


class Writer:
    """``app_writer.py`` in the background; ``result()`` stops it (if running) and returns its JSON summary."""

    def __init__(self, url: str, *, rate: float, seconds: float = 0, switch: Path | None = None, env: dict,
                 commits: Path | None = None):
        cmd = [sys.executable, str(WRITER), url, "--rate", str(rate), "--seconds", str(seconds)]
        if switch is not None:
            cmd += ["--switch-file", str(switch)]
        if commits is not None:
            cmd += ["--log", str(commits)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     start_new_session=True, text=True)

    def result(self, timeout: float = 120, stop: bool = False) -> dict:
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            raise BenchError("app_writer.py did not stop") from None
        lines = [x for x in out.strip().splitlines() if x.startswith("{")]
        if not lines:
            raise BenchError(f"app_writer.py printed no summary: {err.strip()[-300:]}")
        return json.loads(lines[-1])


class Source:
    """A bench source: a URL for golive and the writer, and how to get a fresh copy of it per run."""

    made = 0  # across rounds (a Source per round): every copy its own name

    def __init__(self, kind: str, tmp: Path, app_db: Path, servers: dict):
        self.kind, self.tmp, self.app_db, self.servers, self.n = kind, tmp, app_db, servers, 0

    def fresh(self) -> str:
        Source.made += 1
        self.n = Source.made
        if self.kind == "sqlite":
            path = self.tmp / f"src-{self.n}.db"
            shutil.copy(self.app_db, path)
            subprocess.run(["sqlite3", str(path), "PRAGMA journal_mode=WAL;"], check=True, capture_output=True)
            self.last = path
            return f"sqlite:///{path}"
        if self.kind == "postgresql":
            srv = self.servers["postgresql"]
            name = f"src{self.n}"
            import psycopg

            with psycopg.connect(srv.url, autocommit=True) as c:
                c.execute(f"CREATE DATABASE {name} TEMPLATE app")
            return db_url(srv.url, name)
        return self.servers["mariadb"].url  # one database: golive migrate abort leaves it writable again

    def app(self, url: str) -> str:
        """The URL the app writes with (MariaDB: a user the fence applies to; root would write through it)."""
        return self.servers["mariadb"].app_url if self.kind == "mariadb" else url

    def done(self, url: str, env: dict) -> None:
        subprocess.run(GOLIVE + ["migrate", "abort", "-s", url, "-t", self.target_for_abort], env=env,
                       capture_output=True)
        if self.kind == "sqlite":
            for p in self.tmp.glob(f"src-{self.n}.db*"):
                p.unlink()


def load_sources(kinds: list[str], tmp: Path, app_db: Path, env: dict, stack) -> dict:
    """Start the throwaway servers and load the bench database into each, once (by golive, offline)."""
    servers = {}
    if "postgresql" in kinds:
        srv = stack(ThrowawayPostgres(tmp))
        import psycopg

        with psycopg.connect(srv.url, autocommit=True) as c:
            c.execute("CREATE DATABASE app")
        _load(app_db, db_url(srv.url, "app"), env)
        servers["postgresql"] = srv
    if "mariadb" in kinds:
        srv = stack(ThrowawayMariaDB(tmp))
        _load(app_db, srv.url, env)
        servers["mariadb"] = srv
    return servers


def _load(app_db: Path, url: str, env: dict) -> None:
    t0 = time.perf_counter()
    r = subprocess.run(GOLIVE + ["migrate", "db", "-s", f"sqlite:///{app_db}", "-t", url, "--no-validate",
                                 "--max-rejects", "1000000"], env=env, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise BenchError(f"loading the source {url}: {r.stderr.strip()[-400:]}")
    log(f"loaded {url.split('@')[-1]} in {time.perf_counter() - t0:.1f} s")


def bench_source(kind: str, src: Source, pg: Pg, env: dict, tmp: Path, rate: float, backlog: float) -> dict:
    out: dict = {"source": kind}
    # offline, the source quiet
    url = src.fresh()
    tgt = pg.fresh(f"off_{kind[:2]}")
    res = run_measured(GOLIVE + ["migrate", "db", "-s", url, "-t", db_url(pg.admin_url, tgt), "--no-validate"],
                       env=env, log_path=tmp / f"offline-{kind}.log", pg=pg, dbname=tgt)
    if res["rc"] != 0:
        raise BenchError(f"{kind}: the offline migration failed (log {tmp / f'offline-{kind}.log'})")
    out["offline_s"], out["offline_rss_mb"] = res["seconds"], res["peak_rss_mb"]
    pg.drop(tgt)
    src.target_for_abort = db_url(pg.admin_url, "postgres")
    # the writer alone: its latency without capture
    w = Writer(src.app(url), rate=rate, seconds=20, env=env)
    base = w.result()
    out["writer_baseline"] = {"committed": base["committed"], "p99_ms": base["latency_ms"]["p99"]}
    # online, the writer writing the whole time
    tgt = pg.fresh(f"on_{kind[:2]}")
    target = db_url(pg.admin_url, tgt)
    switch = tmp / f"switch-{kind}"
    switch.unlink(missing_ok=True)
    commits = tmp / f"commits-{kind}.jsonl"
    w = Writer(src.app(url), rate=rate, switch=switch, env=env, commits=commits)
    time.sleep(2)
    report = tmp / f"online-{kind}.json"
    res = run_measured(GOLIVE + ["migrate", "db", "-s", url, "-t", target, "--online", "--cutover-command",
                                 f"touch {switch}", "--report", str(report)],
                       env=env, log_path=tmp / f"online-{kind}.log", pg=pg, dbname=tgt)
    seen = w.result(stop=res["rc"] != 0)
    if res["rc"] != 0:
        raise BenchError(f"{kind}: the online migration failed (log {tmp / f'online-{kind}.log'})")
    rep = json.loads(report.read_text())
    # the freeze the app saw: from its last write the source acknowledged to the moment the cut-over command told
    # it to use the target (the switch file's mtime); the writer's own final_gap_s ends when it gives up on a
    # fenced source (50 refusals), not when it is switched
    last = json.loads(commits.read_text().splitlines()[-1])["t"]
    out.update(online_s=res["seconds"], online_rss_mb=res["peak_rss_mb"],
               freeze_writer_s=round(switch.stat().st_mtime - last, 3), freeze_golive_s=rep["online"]["freeze_seconds"],
               freeze_steps=rep["online"].get("freeze_steps"), phases=rep["online"].get("phases"),
               changes_applied=rep["online"]["changes_applied"], checked_rows=rep["online"].get("checked_rows"),
               writer_online={"committed": seen["committed"], "p99_ms": seen["latency_ms"]["p99"],
                              "errors": seen["errors"], "stopped": seen["stopped"]})
    # the checker: every row, source (fenced) against target
    chk = subprocess.run(GOLIVE + ["validate", "-s", url, "-t", target, "--no-data-docs"], env=env,
                         capture_output=True, text=True)
    if chk.returncode != 0 and "no-data-docs" in chk.stderr:
        chk = subprocess.run(GOLIVE + ["validate", "-s", url, "-t", target], env=env, capture_output=True, text=True)
    out["checker"] = "equal" if chk.returncode == 0 else f"DIFFERENT: {(chk.stdout + chk.stderr).strip()[-300:]}"
    src.target_for_abort = target
    src.done(url, env)
    pg.drop(tgt)
    # the catch-up's speed: a backlog written as fast as the writer can, then applied in one go
    out["catch_up"] = catch_up_rate(src, pg, env, tmp, backlog, rate)
    out["ratios"] = {"online_over_offline": round(out["online_s"] / out["offline_s"], 2),
                     "p99_during_run_over_none": round(out["writer_online"]["p99_ms"] / max(
                         0.001, out["writer_baseline"]["p99_ms"]), 2),
                     "p99_capture_over_none": round(out["catch_up"]["p99_ms_capture_no_copy"] / max(
                         0.001, out["writer_baseline"]["p99_ms"]), 2)}
    return out


def catch_up_rate(src: Source, pg: Pg, env: dict, tmp: Path, seconds: float, rate: float) -> dict:
    """Capture on, the copy done, the writer at --rate 0 for ``seconds``, then the backlog applied and timed."""
    from golive.config import MigrateOptions
    from golive.dialects import dialect_of
    from golive.migrate import copy as copying, online, planning, target as tgt_mod
    from golive.urls import parse_url

    url = src.fresh()
    tgt = pg.fresh(f"cu_{src.kind[:2]}")
    s, d = parse_url(url), parse_url(db_url(pg.admin_url, tgt))
    options = MigrateOptions(online=True)
    plan = planning.build_plan(s, d, options)
    online.check(s, plan)
    with dialect_of(s).capture.begin(s, plan, workers=2) as (snapshot, state):
        tgt_mod.prepare(d, plan, options)
        online.save_state(d, state)
        for tp in plan.tables:
            for ch in tp.chunks:
                copying.copy_chunk(s, d, plan.context(), tp, ch, snapshot=snapshot)
            tgt_mod.finish_table(d, plan.schema_of(tp), tp)
    # what capture alone costs the app: the writer at the online run's rate, capture on, no copy running
    steady = Writer(src.app(url), rate=rate, seconds=20, env=env).result()
    w = Writer(src.app(url), rate=0, seconds=seconds, env=env)
    written = w.result(timeout=seconds + 120)
    t0 = time.perf_counter()
    lag = online.catch_up(s, d, plan, state)
    took = time.perf_counter() - t0
    applied = state.meta.get("changes_applied", 0)
    online.abort(s, d, state)
    pg.drop(tgt)
    return {"writes": written["committed"], "changed_rows_applied": applied, "seconds": round(took, 3),
            "changes_per_s": round(applied / took) if took else None, "left": lag.pending,
            "p99_ms_capture_no_copy": steady["latency_ms"]["p99"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--db", help="the SQLite bench database (default bench/data/app-<scale>.db, built if missing)")
    ap.add_argument("--sources", default="sqlite,mariadb,postgresql")
    ap.add_argument("--rate", type=float, default=500, help="the app's writes per second during the online run")
    ap.add_argument("--backlog-seconds", type=float, default=15, help="the catch-up measure's backlog (writer --rate 0)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--pg-url", default=os.environ.get("GOLIVE_BENCH_PG", DEFAULT_PG))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the run's logs (their folder is printed)")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.sources.split(",") if k.strip()]
    app_db = ensure_db(args.scale, args.db)
    pg = Pg(args.pg_url)
    tmp = Path(tempfile.mkdtemp(prefix="golive-online-bench-"))
    env = dict(os.environ, DO_NOT_TRACK="1", PYTHONPATH=str(ROOT), PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL")
    from contextlib import ExitStack

    results = []
    try:
        with ExitStack() as stack, PrefectServer(tmp, env) as server:
            env["PREFECT_API_URL"] = server.api_url
            servers = load_sources(kinds, tmp, app_db, env, stack.enter_context)
            for r in range(args.rounds):
                for kind in kinds:
                    log(f"round {r + 1}: {kind} -> PostgreSQL")
                    res = bench_source(kind, Source(kind, tmp, app_db, servers), pg, env, tmp, args.rate,
                                       args.backlog_seconds)
                    log(json.dumps(res))
                    results.append(res)
    finally:
        pg.drop_all()
    summary = summarize(results)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": summary}, indent=2))
    if args.keep:
        log(f"logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def summarize(results: list[dict]) -> dict:
    out = {}
    for kind in dict.fromkeys(r["source"] for r in results):
        rs = [r for r in results if r["source"] == kind]

        def med(f):
            vals = [f(r) for r in rs if f(r) is not None]
            return round(statistics.median(vals), 3) if vals else None

        out[kind] = {
            "offline_s": med(lambda r: r["offline_s"]), "online_s": med(lambda r: r["online_s"]),
            "online_over_offline": med(lambda r: r["ratios"]["online_over_offline"]),
            "freeze_writer_s": med(lambda r: r["freeze_writer_s"]), "freeze_golive_s": med(lambda r: r["freeze_golive_s"]),
            "catch_up_changes_per_s": med(lambda r: r["catch_up"]["changes_per_s"]),
            "p99_ms_without_capture": med(lambda r: r["writer_baseline"]["p99_ms"]),
            "p99_ms_during_run": med(lambda r: r["writer_online"]["p99_ms"]),
            "p99_ms_with_capture": med(lambda r: r["catch_up"]["p99_ms_capture_no_copy"]),
            "p99_ratio": med(lambda r: r["ratios"]["p99_capture_over_none"]),
            "peak_rss_mb": med(lambda r: r["online_rss_mb"]), "checker": [r["checker"] for r in rs],
            "targets": TARGETS,
        }
    return out


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(2)

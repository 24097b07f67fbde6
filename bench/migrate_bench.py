#!/usr/bin/env python3
"""Throughput benchmark of ``golive migrate db`` (SQLite -> PostgreSQL) against the C floor and pgloader.

Everything runs on the same data in the same run, alternating the order round by round, so the ratios
hold even on a shared, noisy machine (quote ratios, not seconds). Per round:

- ``golive``: ``python -m golive migrate db --no-validate`` of this checkout into a fresh database, with a
  Prefect server already running on loopback (PREFECT_API_URL set), as in production;
- ``direct``: the same engine steps without Prefect (``bench/direct_migrate.py``): golive minus direct is
  Prefect's cost, and its phases say where the engine spends its time;
- ``floor``: ``floor.sh`` (sqlite3 CLI piped into psql COPY, then golive's own indexes and constraints);
- ``pgloader`` (when installed), tuned as the bench kit's README says.

Then, once, golive in Prefect's ephemeral mode (no server, a fresh PREFECT_HOME: a user's first run).
Peak RSS is the sum over a tool's process tree, sampled every 50 ms; time to the first copied row is
when PostgreSQL's ``pg_stat_progress_copy`` first shows a row for the target database.

usage: migrate_bench.py [--scale S | --scales 1,2 | --db PATH] [--rounds N] [--json OUT] ...
(``make bench BENCH_ARGS="..."``; see README "Benchmarks".)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SHARED = ROOT.parent / "shared" / "bench"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MB = 1 << 20
#: bytes of SQLite file per unit of scale (scale 1 = 474 MB) and PostgreSQL bytes per SQLite byte (rough)
SQLITE_BYTES_PER_SCALE = 474 * MB
PG_PER_SQLITE = 1.6
#: the issue's targets
TARGET_FLOOR_RATIO = 1.25
TARGET_RSS_MB = 500
TARGET_LINEAR = 1.05  # scale k·S may take at most 1.05·k times as long as scale S (2.1x for 2x)
TARGET_FIRST_ROW = 3.0


class BenchError(Exception):
    """A one-line, user-facing failure of the benchmark (not of the tool measured)."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _need(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise BenchError(f"Python module {module!r} is missing for {sys.executable}: run `make bench` "
                         f"(or `make install` then .venv/bin/python bench/migrate_bench.py)") from None


# ---------------------------------------------------------------------- PostgreSQL


def db_url(admin_url: str, dbname: str) -> str:
    u = urlsplit(admin_url)
    return urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def masked(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class Pg:
    """Creates and drops the benchmark's databases through the admin URL; remembers what it created."""

    def __init__(self, admin_url: str):
        self.psycopg = _need("psycopg")
        self.admin_url = admin_url
        self.prefix = f"gbench_{os.getpid()}_"
        self.created: list[str] = []
        self.n = 0
        try:
            with self.connect() as c:
                self.version = c.execute("SHOW server_version").fetchone()[0]
        except self.psycopg.Error as exc:
            raise BenchError(f"cannot connect to PostgreSQL at {masked(admin_url)}: "
                             f"{str(exc).strip().splitlines()[0]} (use --pg-url)") from None

    def connect(self, dbname: str | None = None):
        return self.psycopg.connect(db_url(self.admin_url, dbname) if dbname else self.admin_url, autocommit=True)

    def fresh(self, tool: str) -> str:
        self.n += 1
        name = f"{self.prefix}{self.n:02d}_{tool}"
        with self.connect() as c:
            c.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        try:
            with self.connect() as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if name in self.created:
                self.created.remove(name)
        except Exception as exc:  # cleanup must go on
            log(f"could not drop database {name}: {str(exc).strip().splitlines()[0]}")

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)

    def size_mb(self, name: str) -> float:
        with self.connect() as c:
            return round(c.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0] / MB, 1)

    def count_rows(self, name: str, tables: list[str]) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        with self.connect(name) as c:
            for t in tables:
                row = c.execute(
                    "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
                    "WHERE lower(table_name) = lower(%s) AND table_type = 'BASE TABLE' "
                    "AND table_schema NOT IN ('pg_catalog', 'information_schema', '_golive') LIMIT 1", (t,)).fetchone()
                out[t] = c.execute(f"SELECT count(*) FROM {row[0]}").fetchone()[0] if row else None
        return out


# ---------------------------------------------------------------------- the data


def source_info(path: Path) -> dict:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    return {"path": str(path), "mb": round(path.stat().st_size / MB, 1), "tables": counts,
            "rows": sum(counts.values())}


def ensure_db(scale: float, explicit: str | None) -> Path:
    """The scale-S database: ``--db`` as given, or bench/data/app-S.db (generated once, then reused)."""
    if explicit:
        p = Path(explicit).resolve()
        if not p.is_file():
            raise BenchError(f"--db {explicit}: no such file")
        return p
    data = BENCH / "data"
    data.mkdir(parents=True, exist_ok=True)
    p = data / f"app-{scale:g}.db"
    if p.is_file():
        return p
    gen = SHARED / "gen_appdb.py"
    if not gen.is_file():
        gen = BENCH / "gen_appdb.py"  # vendored copy of the shared kit's generator
    need = scale * SQLITE_BYTES_PER_SCALE * 1.1
    free = shutil.disk_usage(data).free
    if free < need:
        raise BenchError(f"generating scale {scale:g} needs about {need / MB:.0f} MB in {data}, "
                         f"only {free / MB:.0f} MB free")
    tmp = p.with_name(p.name + ".partial")
    log(f"generating {p.relative_to(ROOT)} (scale {scale:g}, about {scale * 25:.0f} s) with {gen}")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(gen), str(tmp), "--scale", f"{scale:g}"], capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BenchError(f"{gen.name} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    os.replace(tmp, p)
    log(f"generated in {time.perf_counter() - t0:.0f} s")
    return p


def warm_cache(path: Path) -> None:
    """Read the file once so the first tool measured does not pay for a cold page cache."""
    with open(path, "rb") as fh:
        while fh.read(16 * MB):
            pass


# ---------------------------------------------------------------------- running and sampling


def proc_rss(p, ps) -> tuple[int | None, int]:
    """(RSS, anonymous part of it) of one process. RSS also counts file pages mapped in (SQLite's mmap of the
    source file), which the kernel can drop at will; the anonymous part is the process's own heap."""
    try:
        with open(f"/proc/{p.pid}/status", "rb") as fh:
            f = {}
            for line in fh:
                if line.startswith((b"VmRSS:", b"RssAnon:")):
                    k, v = line.split(b":", 1)
                    f[k] = int(v.split()[0]) * 1024
            if b"VmRSS" in f:
                return f[b"VmRSS"], f.get(b"RssAnon", f[b"VmRSS"])
    except OSError:
        pass
    try:
        rss = p.memory_info().rss
        return rss, rss
    except (ps.NoSuchProcess, ps.AccessDenied):
        return None, 0


class Sampler(threading.Thread):
    """Every ``interval`` s: the summed RSS of a process tree; until it appears, the first copied row."""

    def __init__(self, pid: int, t0: float, pg: Pg | None = None, dbname: str | None = None,
                 interval: float = 0.05):
        super().__init__(daemon=True)
        self.psutil = _need("psutil")
        self.pid, self.t0, self.interval = pid, t0, interval
        self.pg, self.dbname = pg, dbname
        self.peak_rss = 0
        self.peak_root_rss = 0
        self.peak_anon = 0
        self.peak_procs = 0
        self.samples = 0
        self.first_row: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        ps = self.psutil
        try:
            root = ps.Process(self.pid)
        except ps.NoSuchProcess:
            return
        conn = None
        if self.pg and self.dbname:
            try:
                conn = self.pg.connect()
            except Exception:
                conn = None
        try:
            while not self.stop.is_set():
                try:
                    procs = [root] + root.children(recursive=True)
                except ps.NoSuchProcess:
                    break
                total = anon = 0
                for p in procs:
                    rss, a = proc_rss(p, ps)
                    if rss is None:
                        continue
                    total += rss
                    anon += a
                    if p is root and rss > self.peak_root_rss:
                        self.peak_root_rss = rss
                self.samples += 1
                if total > self.peak_rss:
                    self.peak_rss, self.peak_procs = total, len(procs)
                self.peak_anon = max(self.peak_anon, anon)
                if conn is not None and self.first_row is None:
                    try:
                        n = conn.execute("SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy "
                                         "WHERE datname = %s", (self.dbname,)).fetchone()[0]
                        if n > 0:
                            self.first_row = time.perf_counter() - self.t0
                    except Exception:
                        conn = None
                self.stop.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()


def run_measured(cmd: list[str], *, env: dict, log_path: Path, pg: Pg | None = None, dbname: str | None = None,
                 timeout: float = 3600, cwd: Path = ROOT) -> dict:
    """Run ``cmd``; wall time (monotonic), summed peak RSS, CPU of the tree, first copied row, timed output."""
    lines: list[tuple[float, str, str]] = []
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    wall0 = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    sampler = Sampler(proc.pid, t0, pg, dbname)
    sampler.start()

    def reader(stream, name):
        for raw in iter(stream.readline, b""):
            lines.append((round(time.perf_counter() - t0, 3), name, raw.decode("utf-8", "replace").rstrip("\n")))
        stream.close()

    readers = [threading.Thread(target=reader, args=(proc.stdout, "out"), daemon=True),
               threading.Thread(target=reader, args=(proc.stderr, "err"), daemon=True)]
    for r in readers:
        r.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise BenchError(f"{Path(cmd[0]).name} ... took more than {timeout:.0f} s; stopped (log: {log_path})")
    except BaseException:
        kill_group(proc)
        raise
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join(5)
    for r in readers:
        r.join(5)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_path.write_text("".join(f"{t:8.3f} {s} {line}\n" for t, s, line in lines), encoding="utf-8")
    return {
        "rc": rc, "seconds": round(wall, 3), "started_at": wall0, "load_1m_before": round(load, 2),
        "peak_rss_mb": round(sampler.peak_rss / MB, 1), "peak_procs": sampler.peak_procs,
        "peak_root_rss_mb": round(sampler.peak_root_rss / MB, 1),
        "peak_anon_rss_mb": round(sampler.peak_anon / MB, 1),
        "rss_samples": sampler.samples,
        "cpu_seconds": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2),
        "first_row_seconds": round(sampler.first_row, 3) if sampler.first_row is not None else None,
        "lines": lines,
    }


def kill_group(proc: subprocess.Popen, grace: float = 8.0) -> None:
    """SIGTERM the process group, again after a while (Prefect ignores the first one for some time), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace / 2), (signal.SIGTERM, grace / 2), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            # the leader is gone; children of the group may linger
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
        except subprocess.TimeoutExpired:
            pass


def tail(res: dict, n: int = 3) -> str:
    text = [line for _, _, line in res.get("lines", []) if line.strip()]
    return " | ".join(text[-n:]) or "(no output)"


def first_line_time(res: dict, pattern: str) -> float | None:
    rx = re.compile(pattern)
    return next((t for t, _, line in res["lines"] if rx.search(line)), None)


# ---------------------------------------------------------------------- Prefect server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_exe() -> list[str]:
    exe = Path(sys.executable).parent / "prefect"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


class PrefectServer:
    """``prefect server start`` on loopback with a temporary PREFECT_HOME; stopped (process group) on exit."""

    def __init__(self, tmp: Path, env: dict):
        self.home = tmp / "prefect-server-home"
        self.home.mkdir()
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.env = dict(env, PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                        PREFECT_UI_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false")
        self.env.pop("PREFECT_API_URL", None)
        self.log_path = tmp / "prefect-server.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds = None

    def __enter__(self):
        log(f"starting a Prefect server on 127.0.0.1:{self.port}")
        t0 = time.perf_counter()
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(prefect_exe() + ["server", "start", "--host", "127.0.0.1", "--port",
                                                       str(self.port), "--no-ui", "--analytics-off"],
                                     env=self.env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                last = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise BenchError(f"the Prefect server exited with code {self.proc.returncode}: {last[0]}")
            try:
                with urllib.request.urlopen(self.api_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = round(time.perf_counter() - t0, 2)
                        log(f"Prefect server ready in {self.startup_seconds} s")
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise BenchError(f"the Prefect server did not answer {self.api_url}/health within 180 s (log: {self.log_path})")

    def cpu_seconds(self) -> float:
        """User+system CPU of the server's process tree so far (to charge golive runs with their server work)."""
        psutil = _need("psutil")
        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            for p in [root] + root.children(recursive=True):
                try:
                    c = p.cpu_times()
                    total += c.user + c.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        return total

    def rss_mb(self) -> float:
        psutil = _need("psutil")
        try:
            root = psutil.Process(self.proc.pid)
            return round(sum(p.memory_info().rss for p in [root] + root.children(recursive=True)) / MB, 1)
        except psutil.NoSuchProcess:
            return 0.0

    def api(self, path: str, body: dict) -> list | dict:
        req = urllib.request.Request(self.api_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            kill_group(self.proc)
        if getattr(self, "logf", None):
            self.logf.close()
        return False


def _ts(s: str | None) -> float | None:
    if not s:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def prefect_run_stats(server: PrefectServer, started_at: float, chunk_seconds: float | None) -> dict:
    """What the server recorded for the latest flow run: its start after the command, and task-run time."""
    runs = server.api("/flow_runs/filter", {"sort": "EXPECTED_START_TIME_DESC", "limit": 1})
    if not runs:
        return {"error": "no flow run recorded"}
    fr = runs[0]
    tasks: list = []
    last = -1
    for _ in range(20):  # task runs arrive as events: wait until the count settles
        tasks = []
        while True:
            page = server.api("/task_runs/filter", {"flow_runs": {"id": {"any_": [fr["id"]]}},
                                                    "limit": 200, "offset": len(tasks)})
            tasks += page
            if len(page) < 200:
                break
        if len(tasks) == last and all(t.get("end_time") for t in tasks):
            break
        last = len(tasks)
        time.sleep(0.5)
    kinds: dict[str, dict] = {}
    for t in tasks:
        name = t.get("name") or "?"
        kind = name.split("-")[0] if "-" in name else name
        d = kinds.setdefault(kind, {"count": 0, "seconds": 0.0})
        d["count"] += 1
        s, e = _ts(t.get("start_time")), _ts(t.get("end_time"))
        d["seconds"] += (e - s) if s and e else (t.get("total_run_time") or 0.0)
    for d in kinds.values():
        d["seconds"] = round(d["seconds"], 3)
    out = {
        "flow_run": fr.get("name"),
        "flow_start_after_command": round(_ts(fr["start_time"]) - started_at, 3) if fr.get("start_time") else None,
        "flow_run_seconds": round(_ts(fr["end_time"]) - _ts(fr["start_time"]), 3)
        if fr.get("end_time") and fr.get("start_time") else None,
        "task_runs": len(tasks), "task_kinds": kinds,
    }
    copy = kinds.get("copy")
    if copy and chunk_seconds is not None and copy["count"]:
        out["copy_task_overhead_each"] = round((copy["seconds"] - chunk_seconds) / copy["count"], 4)
    return out


# ---------------------------------------------------------------------- the tools


class Bench:
    def __init__(self, args, pg: Pg, tmp: Path, server: PrefectServer | None):
        self.a, self.pg, self.tmp, self.server = args, pg, tmp, server
        self.client_home = tmp / "prefect-client-home"
        self.client_home.mkdir(exist_ok=True)
        self.base_env = dict(os.environ, DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                             GX_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
        self.base_env.pop("PREFECT_PROFILE", None)
        self.template: str | None = None  # the latest golive database: the floor's template
        self.golive_dbs: list[str] = []
        self.seq = 0
        floor = SHARED / "floor.sh"
        self.floor_sh = floor if floor.is_file() else BENCH / "floor.sh"
        self.extra = shlex.split(args.golive_args or "")
        self.imports: dict | None = None

    def _log(self, tool: str) -> Path:
        self.seq += 1
        return self.tmp / f"{self.seq:02d}-{tool}.log"

    def golive_env(self, ephemeral_home: Path | None = None) -> dict:
        env = dict(self.base_env)
        if ephemeral_home is not None:
            env.pop("PREFECT_API_URL", None)
            env["PREFECT_HOME"] = str(ephemeral_home)
            env["GOLIVE_NO_SERVER"] = "1"  # Prefect's temporary server, not the golive server started on first use
        else:
            env["PREFECT_API_URL"] = self.server.api_url
            env["PREFECT_HOME"] = str(self.client_home)
        return env

    def golive(self, db: Path, *, ephemeral_home: Path | None = None) -> dict:
        name = self.pg.fresh("golive" if ephemeral_home is None else "ephem")
        report = self.tmp / f"{name}.report.json"
        cmd = [sys.executable, "-m", "golive", "migrate", "db", "--source", str(db),
               "--target", db_url(self.pg.admin_url, name), "--no-validate", "--report", str(report)]
        if self.a.workers:
            cmd += ["--workers", str(self.a.workers)]
        if self.a.chunk_rows:
            cmd += ["--chunk-rows", str(self.a.chunk_rows)]
        cmd += self.extra
        server_cpu0 = self.server.cpu_seconds() if self.server and ephemeral_home is None else None
        res = run_measured(cmd, env=self.golive_env(ephemeral_home), log_path=self._log("golive"), pg=self.pg,
                           dbname=name, timeout=self.a.timeout)
        res.update(tool="golive" if ephemeral_home is None else "golive-ephemeral", db=name)
        if server_cpu0 is not None:
            res["prefect_server_cpu_seconds"] = round(self.server.cpu_seconds() - server_cpu0, 2)
        res["planned_line_seconds"] = first_line_time(res, r"^(Copying|Resuming) \d+ tables")
        res["ephemeral_note_seconds"] = first_line_time(res, r"Starting Prefect")
        # the flow has returned when the CLI prints its result table on stdout
        res["output_line_seconds"] = next((t for t, src, _ in res["lines"] if src == "out"), None)
        if report.is_file():
            res["report"] = summarize_report(json.loads(report.read_text(encoding="utf-8")))
        if res["rc"] != 0:
            self.pg.drop(name)
            raise BenchError(f"golive exited with code {res['rc']}: {tail(res)}")
        if ephemeral_home is None:
            if self.server is not None:
                try:
                    res["prefect"] = prefect_run_stats(self.server, res["started_at"],
                                                       res.get("report", {}).get("chunk_seconds"))
                except Exception as exc:
                    res["prefect"] = {"error": f"{type(exc).__name__}: {exc}"}
            self.golive_dbs.append(name)
            self.template = name
        return res

    def direct(self, db: Path) -> dict:
        name = self.pg.fresh("direct")
        out = self.tmp / f"{name}.timings.json"
        cmd = [sys.executable, str(BENCH / "direct_migrate.py"), "--source", str(db),
               "--target", db_url(self.pg.admin_url, name), "--out", str(out)]
        if self.a.workers:
            cmd += ["--workers", str(self.a.workers)]
        if self.a.chunk_rows:
            cmd += ["--chunk-rows", str(self.a.chunk_rows)]
        res = run_measured(cmd, env=self.base_env, log_path=self._log("direct"), pg=self.pg, dbname=name,
                           timeout=self.a.timeout)
        res.update(tool="direct", db=name)
        if out.is_file():
            res["timings"] = json.loads(out.read_text(encoding="utf-8"))
        if res["rc"] != 0:
            res["error"] = tail(res, 1)
        return res

    def floor(self, db: Path) -> dict:
        if self.template is None:
            raise BenchError("the floor needs a golive database as its template; none was made")
        name = self.pg.fresh("floor")
        cmd = ["bash", str(self.floor_sh), str(db), db_url(self.pg.admin_url, self.template),
               db_url(self.pg.admin_url, name)]
        res = run_measured(cmd, env=self.base_env, log_path=self._log("floor"), pg=self.pg, dbname=name,
                           timeout=self.a.timeout)
        res.update(tool="floor", db=name, template=self.template)
        m = next((re.search(r"floor: copy (\d+)s, total (\d+)s", line) for _, _, line in res["lines"]
                  if "floor:" in line), None)
        if m:
            res["floor_copy_seconds"], res["floor_total_seconds"] = int(m.group(1)), int(m.group(2))
        if res["rc"] != 0 or not m:
            raise BenchError(f"floor.sh failed (exit {res['rc']}): {tail(res)}")
        # keep only the newest golive database (the next floor's template)
        for old in self.golive_dbs[:-1]:
            self.pg.drop(old)
        self.golive_dbs = self.golive_dbs[-1:]
        return res

    def pgloader(self, db: Path) -> dict:
        name = self.pg.fresh("pgloader")
        root = self.tmp / f"pgloader-{name}"
        root.mkdir()
        cmd = ["pgloader", "--root-dir", str(root), "--with", "prefetch rows = 10000", "--with",
               "batch rows = 10000", f"sqlite://{db}", db_url(self.pg.admin_url, name)]
        res = run_measured(cmd, env=self.base_env, log_path=self._log("pgloader"), pg=self.pg, dbname=name,
                           timeout=self.a.timeout)
        res.update(tool="pgloader", db=name)
        m = next((re.search(r"Total import time.*?([\d.]+)s\s*$", line) for _, _, line in res["lines"]
                  if "Total import time" in line), None)
        if m:
            res["pgloader_reported_seconds"] = float(m.group(1))
        if res["rc"] != 0:
            res["error"] = tail(res, 1)
        shutil.rmtree(root, ignore_errors=True)
        return res

    def verify(self, res: dict, src: dict) -> None:
        """Outside the timing: rows per table in the target equal the source's (so every tool did the job)."""
        if self.a.no_verify or not res.get("db"):
            return
        try:
            got = self.pg.count_rows(res["db"], list(src["tables"]))
            bad = {t: (n, got.get(t)) for t, n in src["tables"].items() if got.get(t) != n}
            res["rows_ok"] = not bad
            if bad:
                res["rows_mismatch"] = {t: {"source": a, "target": b} for t, (a, b) in bad.items()}
            res["target_mb"] = self.pg.size_mb(res["db"])
        except Exception as exc:
            res["rows_ok"] = False
            res["rows_mismatch"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def summarize_report(rep: dict) -> dict:
    """golive's own numbers from its JSON report: totals, per table, and any phase timings it adds later."""
    out = {k: rep.get(k) for k in ("ok", "seconds", "chunks", "rows_written", "rows_rejected") if k in rep}
    out["errors"] = (rep.get("errors") or [])[:3]
    tables = rep.get("tables") or []
    out["table_seconds"] = {t.get("source"): t.get("seconds") for t in tables}
    out["chunk_seconds"] = round(sum(t.get("seconds") or 0 for t in tables), 3)
    for k, v in rep.items():  # forward compatible: phases, first-row time, planning time, ...
        if k in out or k in ("tables", "run_key", "exit_code", "max_rejects"):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
        elif isinstance(v, dict) and v and all(isinstance(x, (int, float)) for x in v.values()):
            out[k] = v
    return out


# ---------------------------------------------------------------------- one scale


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def stats(runs: list[dict], key: str = "seconds") -> dict:
    xs = [r[key] for r in runs if r.get(key) is not None]
    if not xs:
        return {}
    return {"median": med(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def import_costs(env: dict, rounds: int = 3) -> dict:
    """Seconds to import the engine alone vs. the engine plus the Prefect flow (alternated, medians)."""
    code = "import time,sys; t=time.perf_counter(); import {m}; print(time.perf_counter()-t)"
    mods = {"engine": "golive.commands, golive.migrate.copy, golive.migrate.target, golive.migrate.report",
            "engine+prefect flow": "flows.migrate_database"}
    got: dict[str, list[float]] = {k: [] for k in mods}
    for _ in range(rounds):
        for k, m in mods.items():
            r = subprocess.run([sys.executable, "-c", code.format(m=m)], cwd=ROOT, env=env, capture_output=True,
                               text=True)
            if r.returncode == 0:
                got[k].append(float(r.stdout.strip().splitlines()[-1]))
    return {k: med(v) for k, v in got.items()}


def bench_all(b: Bench, dbs: list[tuple[float, Path]]) -> list[dict]:
    """All rounds. Several scales are interleaved inside each round (alternating order, like the tools), so
    a change in the machine's load hits every scale alike and the linearity ratio stays meaningful."""
    a = b.a
    tools = ["golive"]
    if not a.skip_direct:
        tools.append("direct")
    tools.append("floor")
    if not a.skip_pgloader:
        if shutil.which("pgloader"):
            tools.append("pgloader")
        else:
            log("pgloader is not installed (apt-get install -y pgloader): skipped")
    srcs = {}
    for scale, db in dbs:
        srcs[scale] = source_info(db)
        log(f"scale {scale:g}: {db} ({srcs[scale]['rows']:,} rows, {srcs[scale]['mb']:.0f} MB)")
    runs: dict[float, list[dict]] = {scale: [] for scale, _ in dbs}
    keep: dict[float, tuple] = {scale: (None, []) for scale, _ in dbs}  # per scale: floor template, golive dbs
    for rnd in range(a.rounds):
        for scale, db in (dbs if rnd % 2 == 0 else dbs[::-1]):
            warm_cache(db)
            b.template, b.golive_dbs = keep[scale]
            for tool in (tools if rnd % 2 == 0 else tools[::-1]):
                log(f"round {rnd + 1}/{a.rounds}, scale {scale:g}: {tool}")
                res = getattr(b, tool)(db)
                res["round"] = rnd + 1
                b.verify(res, srcs[scale])
                if tool != "golive":  # golive's database stays as the floor's template until the next one
                    b.pg.drop(res["db"])
                runs[scale].append(res)
                log(f"  {tool}: {res['seconds']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB"
                    + (f", first row {res['first_row_seconds']:.1f} s" if res.get("first_row_seconds") else "")
                    + ("" if res.get("rows_ok", True) else f"  ROW COUNTS DIFFER: {res.get('rows_mismatch')}")
                    + (f"  ({res['error']})" if res.get("error") else ""))
            keep[scale] = (b.template, b.golive_dbs)
    for _, dbnames in keep.values():
        for name in dbnames:
            b.pg.drop(name)
    b.golive_dbs, b.template = [], None
    eph = []
    if a.ephemeral:
        scale, db = dbs[0]
        home = b.tmp / "prefect-ephemeral-home"  # fresh: a user's first run; later runs reuse it (warm)
        home.mkdir(exist_ok=True)
        for i in range(a.ephemeral):
            log(f"ephemeral Prefect, scale {scale:g} ({'cold, fresh PREFECT_HOME' if i == 0 else 'warm'}): golive")
            res = b.golive(db, ephemeral_home=home)
            res["round"] = f"ephemeral-{i + 1}"
            res["cold"] = i == 0
            b.verify(res, srcs[scale])
            b.pg.drop(res["db"])
            log(f"  golive (ephemeral): {res['seconds']:.1f} s")
            eph.append(res)
    return [summarize_scale(b, scale, srcs[scale], runs[scale], eph if i == 0 else [])
            for i, (scale, _) in enumerate(dbs)]


def timeline(gl: list[dict]) -> dict:
    """Medians, seconds after the command: where the CLI's wall time goes around the flow body."""
    def body_end(r):
        fs = r.get("prefect", {}).get("flow_start_after_command")
        fl = r.get("report", {}).get("seconds")
        return round(fs + fl, 3) if fs is not None and fl is not None else None
    return {"flow_starts": med([r.get("prefect", {}).get("flow_start_after_command") for r in gl]),
            "plan_done": med([r.get("planned_line_seconds") for r in gl]),
            "first_row": med([r.get("first_row_seconds") for r in gl]),
            "flow_body_ends": med([body_end(r) for r in gl]),
            "result_printed": med([r.get("output_line_seconds") for r in gl]),
            "exit": med([r.get("seconds") for r in gl])}


def summarize_scale(b: Bench, scale: float, src: dict, runs: list[dict], eph: list[dict]) -> dict:
    by = {}
    for r in runs:
        by.setdefault(r["tool"], []).append(r)
    out = {"scale": scale, "source": src, "tools": {}}
    for tool, rs in by.items():
        out["tools"][tool] = {"seconds": stats(rs), "peak_rss_mb": stats(rs, "peak_rss_mb"),
                              "peak_anon_rss_mb": stats(rs, "peak_anon_rss_mb"),
                              "cpu_seconds": stats(rs, "cpu_seconds"), "first_row_seconds": stats(rs, "first_row_seconds"),
                              "rows_ok": all(r.get("rows_ok", True) for r in rs)}
    g = out["tools"].get("golive", {}).get("seconds", {}).get("median")
    f = out["tools"].get("floor", {}).get("seconds", {}).get("median")
    p = out["tools"].get("pgloader", {}).get("seconds", {}).get("median")
    d = out["tools"].get("direct", {}).get("seconds", {}).get("median")
    fs = med([r.get("floor_total_seconds") for r in by.get("floor", [])])
    out["ratios"] = {"golive/floor": ratio(g, f), "golive/floor(self-reported total)": ratio(g, fs),
                     "golive/pgloader": ratio(g, p), "pgloader/floor": ratio(p, f), "direct/floor": ratio(d, f)}
    mn = {t: out["tools"].get(t, {}).get("seconds", {}).get("min") for t in ("golive", "direct", "floor", "pgloader")}
    out["ratios_of_minimums"] = {"golive/floor": ratio(mn["golive"], mn["floor"]),
                                 "golive/pgloader": ratio(mn["golive"], mn["pgloader"]),
                                 "direct/floor": ratio(mn["direct"], mn["floor"])}
    # per round ratios (same round, adjacent runs)
    per_round = []
    rounds = sorted({r["round"] for r in runs})
    for rnd in rounds:
        t = {r["tool"]: r["seconds"] for r in runs if r["round"] == rnd}
        per_round.append({"round": rnd, "golive/floor": ratio(t.get("golive"), t.get("floor")),
                          "golive/pgloader": ratio(t.get("golive"), t.get("pgloader"))})
    out["per_round"] = per_round
    out["floor_self_reported"] = {"copy_median": med([r.get("floor_copy_seconds") for r in by.get("floor", [])]),
                                  "total_median": fs}
    gl = by.get("golive", [])
    if gl:
        out["golive_report"] = {
            "flow_seconds_median": med([r.get("report", {}).get("seconds") for r in gl]),
            "chunk_seconds_sum_median": med([r.get("report", {}).get("chunk_seconds") for r in gl]),
            "chunks": gl[0].get("report", {}).get("chunks"),
            "planned_line_median": med([r.get("planned_line_seconds") for r in gl]),
            "timeline_median": timeline(gl),
            "table_seconds_median": {t: med([r.get("report", {}).get("table_seconds", {}).get(t) for r in gl])
                                     for t in gl[0].get("report", {}).get("table_seconds", {})},
        }
        pf = [r.get("prefect", {}) for r in gl if "error" not in r.get("prefect", {"error": 1})]
        if pf:
            out["prefect_server_view"] = {
                "flow_start_after_command_median": med([x.get("flow_start_after_command") for x in pf]),
                "flow_run_seconds_median": med([x.get("flow_run_seconds") for x in pf]),
                "task_runs": pf[0].get("task_runs"),
                "copy_task_overhead_each_median": med([x.get("copy_task_overhead_each") for x in pf]),
                "server_cpu_seconds_median": med([r.get("prefect_server_cpu_seconds") for r in gl]),
            }
    dr = [r for r in by.get("direct", []) if r.get("timings") and r["rc"] == 0]
    if dr:
        tm = [r["timings"] for r in dr]
        phases = {k: med([t["phases"].get(k) for t in tm]) for k in tm[0]["phases"]}
        out["direct"] = {"phases_median": phases, "first_row_median": med([t.get("first_row_seconds") for t in tm]),
                         "chunk_seconds_sum_median": med([t.get("chunk_seconds_sum") for t in tm]),
                         "keys_seconds": tm[0].get("keys_seconds"), "foreign_key_seconds": tm[0].get("foreign_key_seconds"),
                         "chunks": tm[0].get("chunks"), "tables": tm[0].get("tables"),
                         "foreign_key_tables": tm[0].get("foreign_key_tables")}
        if g and d:
            n_tasks = tm[0]["chunks"] + tm[0]["tables"] + tm[0]["foreign_key_tables"] + 6
            imp = b.imports or {}
            startup = None
            if imp.get("engine") is not None and imp.get("engine+prefect flow") is not None:
                startup = round(imp["engine+prefect flow"] - imp["engine"], 3)
            total = round(g - d, 3)
            # split golive - direct into: before the flow body, inside it (spread over its tasks), after it
            tl = out.get("golive_report", {}).get("timeline_median", {})
            d_pre = med([t["phases"].get("import", 0) + t["phases"].get("preflight", 0) for t in tm])
            d_body = med([t["seconds"] - t["phases"].get("import", 0) - t["phases"].get("preflight", 0) for t in tm])
            g_body = out.get("golive_report", {}).get("flow_seconds_median")
            before = round(tl["flow_starts"] - d_pre, 3) if tl.get("flow_starts") is not None else None
            inside = round(g_body - d_body, 3) if g_body is not None else None
            after = round(tl["exit"] - tl["flow_body_ends"], 3) if tl.get("flow_body_ends") is not None else None
            out["prefect_overhead"] = {
                "golive_minus_direct_seconds": total,
                "share_of_golive": ratio(total, g),
                "prefect_import_seconds": startup,
                "before_flow_body_seconds": before,
                "inside_flow_body_seconds": inside,
                "after_flow_body_seconds": after,
                "tasks": n_tasks,
                "per_task_seconds": round(inside / n_tasks, 4) if inside is not None else None,
                "note": "before = flow start after the command - direct's import+preflight; inside = flow body "
                        "(report seconds) - direct's plan..report; per task = inside / (chunks + tables + FK tables "
                        "+ 6 fixed tasks); after = exit - flow body end",
            }
    elif by.get("direct"):
        out["direct"] = {"error": by["direct"][0].get("error", "failed")}
    if eph:
        e = eph[0]
        out["ephemeral"] = {
            "runs": [{"cold": r["cold"], "seconds": r["seconds"], "flow_seconds": r.get("report", {}).get("seconds"),
                      "note_seconds": r.get("ephemeral_note_seconds"), "planned_line_seconds": r.get("planned_line_seconds"),
                      "first_row_seconds": r.get("first_row_seconds"), "peak_rss_mb": r["peak_rss_mb"],
                      "peak_cli_rss_mb": r.get("peak_root_rss_mb")} for r in eph],
            "extra_vs_server_seconds": round(e["seconds"] - g, 3) if g else None,
            "startup_seconds": round(e["seconds"] - (e.get("report", {}).get("seconds") or 0), 3),
        }
    out["runs"] = [{k: v for k, v in r.items() if k != "lines"} for r in runs]
    out["ephemeral_runs"] = [{k: v for k, v in r.items() if k != "lines"} for r in eph]
    return out


# ---------------------------------------------------------------------- printing


def fmt(x, unit="", nd=1):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def print_scale(s: dict) -> None:
    src = s["source"]
    print(f"\n== scale {s['scale']:g}: {src['rows']:,} rows, {src['mb']:.0f} MB ({src['path']})")
    print(f"{'tool':<10} {'median s':>9} {'min':>7} {'max':>7} {'n':>2}  {'peak RSS MB med/max':>20} {'anon':>5} "
          f"{'CPU s':>6} {'1st row s':>9}  rows")
    for tool in ("golive", "direct", "floor", "pgloader"):
        t = s["tools"].get(tool)
        if not t or not t["seconds"]:
            continue
        sec, rss = t["seconds"], t["peak_rss_mb"]
        print(f"{tool:<10} {fmt(sec['median']):>9} {fmt(sec['min']):>7} {fmt(sec['max']):>7} {sec['n']:>2}  "
              f"{fmt(rss.get('median'), nd=0):>10} / {fmt(rss.get('max'), nd=0):<7} "
              f"{fmt(t['peak_anon_rss_mb'].get('median'), nd=0):>5} "
              f"{fmt(t['cpu_seconds'].get('median')):>6} {fmt(t['first_row_seconds'].get('median')):>9}  "
              f"{'ok' if t['rows_ok'] else 'DIFFER'}")
    r = s["ratios"]
    print(f"ratios of medians: golive/floor {fmt(r['golive/floor'], nd=2)} (target <= {TARGET_FLOOR_RATIO}), "
          f"golive/pgloader {fmt(r['golive/pgloader'], nd=2)}, pgloader/floor {fmt(r['pgloader/floor'], nd=2)}, "
          f"direct/floor {fmt(r['direct/floor'], nd=2)}")
    rm = s["ratios_of_minimums"]
    print(f"ratios of minimums (the least disturbed runs): golive/floor {fmt(rm['golive/floor'], nd=2)}, "
          f"golive/pgloader {fmt(rm['golive/pgloader'], nd=2)}, direct/floor {fmt(rm['direct/floor'], nd=2)}")
    print("per round golive/floor: " + ", ".join(fmt(x["golive/floor"], nd=2) for x in s["per_round"])
          + "; golive/pgloader: " + ", ".join(fmt(x["golive/pgloader"], nd=2) for x in s["per_round"]))
    fl = s["floor_self_reported"]
    print(f"floor.sh's own line (whole seconds): copy {fmt(fl['copy_median'], nd=0)} s, "
          f"total {fmt(fl['total_median'], nd=0)} s")
    gr = s.get("golive_report")
    if gr:
        print(f"golive report: flow {fmt(gr['flow_seconds_median'])} s, {gr['chunks']} chunks, chunk time summed "
              f"{fmt(gr['chunk_seconds_sum_median'])} s; plan line at {fmt(gr['planned_line_median'])} s; per table "
              + ", ".join(f"{k} {fmt(v)}" for k, v in gr["table_seconds_median"].items()))
    if gr and gr.get("timeline_median"):
        print("golive timeline (median s after the command): "
              + ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in gr["timeline_median"].items()))
    d = s.get("direct")
    if d and "phases_median" in d:
        print("engine phases without Prefect (direct, medians, s): "
              + ", ".join(f"{k} {fmt(v)}" for k, v in d["phases_median"].items())
              + f"; first row {fmt(d['first_row_median'])} s")
        print("  keys per table (s): " + ", ".join(f"{k} {fmt(v)}" for k, v in (d["keys_seconds"] or {}).items())
              + "; FK validation per child (s): "
              + ", ".join(f"{k} {fmt(v)}" for k, v in (d["foreign_key_seconds"] or {}).items()))
    elif d:
        print(f"direct probe unavailable: {d.get('error')}")
    po = s.get("prefect_overhead")
    if po:
        print(f"Prefect overhead (server mode): golive - direct = {fmt(po['golive_minus_direct_seconds'])} s "
              f"({fmt(100 * (po['share_of_golive'] or 0), nd=0)}% of golive): before the flow body "
              f"{fmt(po['before_flow_body_seconds'])} s (import of prefect+flow {fmt(po['prefect_import_seconds'], nd=2)} s), "
              f"inside {fmt(po['inside_flow_body_seconds'])} s = {po['tasks']} tasks x "
              f"{fmt(po['per_task_seconds'], nd=3)} s, after {fmt(po['after_flow_body_seconds'])} s")
    pv = s.get("prefect_server_view")
    if pv:
        print(f"Prefect server's view: flow starts {fmt(pv['flow_start_after_command_median'], nd=2)} s after the command, "
              f"{pv['task_runs']} task runs, copy-task overhead {fmt(pv['copy_task_overhead_each_median'], nd=3)} s each, "
              f"server CPU {fmt(pv['server_cpu_seconds_median'])} s per run")
    e = s.get("ephemeral")
    if e:
        for x in e["runs"]:
            print(f"ephemeral ({'cold' if x['cold'] else 'warm'}): {fmt(x['seconds'])} s total, golive flow "
                  f"{fmt(x['flow_seconds'])} s, note at {fmt(x['note_seconds'], nd=2)} s, plan line at "
                  f"{fmt(x['planned_line_seconds'])} s, first row {fmt(x['first_row_seconds'])} s, "
                  f"peak RSS {fmt(x['peak_rss_mb'], nd=0)} MB with the temporary server, "
                  f"{fmt(x['peak_cli_rss_mb'], nd=0)} MB the CLI process alone")
        print(f"  ephemeral minus server-mode median: {fmt(e['extra_vs_server_seconds'])} s")


def linearity(scales: list[dict]) -> list[dict]:
    if len(scales) < 2:
        return []
    base = scales[0]
    out = []
    for s in scales[1:]:
        k = s["scale"] / base["scale"]
        row = {"from": base["scale"], "to": s["scale"], "data_factor": round(s["source"]["rows"] / base["source"]["rows"], 3)}
        for tool in ("golive", "direct", "floor", "pgloader"):
            a = base["tools"].get(tool, {}).get("seconds", {})
            b = s["tools"].get(tool, {}).get("seconds", {})
            row[tool] = ratio(b.get("median"), a.get("median"))
            row[tool + "_min"] = ratio(b.get("min"), a.get("min"))
        # per round: the same round's runs of both scales ran back to back
        pr = []
        for rnd in sorted({r["round"] for r in s["runs"] if r["tool"] == "golive"}):
            x = next((r["seconds"] for r in base["runs"] if r["tool"] == "golive" and r["round"] == rnd), None)
            y = next((r["seconds"] for r in s["runs"] if r["tool"] == "golive" and r["round"] == rnd), None)
            pr.append(ratio(y, x))
        row["golive_per_round"] = pr
        row["golive_ok"] = row["golive"] is not None and row["golive"] <= TARGET_LINEAR * k
        out.append(row)
    return out


# ---------------------------------------------------------------------- main


def git_info() -> dict:
    def g(*args):
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    return {"commit": g("rev-parse", "--short", "HEAD"), "branch": g("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(g("status", "--porcelain", "--", "golive", "flows", "tasks"))}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Benchmark golive migrate db against the floor and pgloader.")
    ap.add_argument("--scale", type=float, default=1.0, help="database scale (1 = 3.65 M rows, 452 MiB)")
    ap.add_argument("--scales", help="several scales in one run, e.g. 1,2 (linearity); overrides --scale")
    ap.add_argument("--db", help="use this SQLite file instead of bench/data/app-S.db")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg-url", default=os.environ.get("GOLIVE_BENCH_PG", DEFAULT_PG),
                    help=f"admin URL; fresh databases are created and dropped through it (default {DEFAULT_PG})")
    ap.add_argument("--workers", type=int, help="golive --workers (default: golive's own)")
    ap.add_argument("--chunk-rows", type=int, help="golive --chunk-rows, for golive and direct (default: golive's own)")
    ap.add_argument("--golive-args", help="extra arguments for golive migrate db only, e.g. '--runner dask'")
    ap.add_argument("--skip-pgloader", action="store_true")
    ap.add_argument("--skip-direct", action="store_true", help="do not run the engine without Prefect")
    ap.add_argument("--ephemeral", type=int, default=1,
                    help="golive runs in Prefect's ephemeral mode after the rounds, on the first scale (first cold, "
                         "then warm); 0 = none")
    ap.add_argument("--no-verify", action="store_true", help="skip counting the rows of every target")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per tool run")
    ap.add_argument("--json", help="write everything here (default bench/data/bench-<time>.json)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the per-run logs (path printed at the end)")
    a = ap.parse_args(argv)
    a.scale_list = [float(x) for x in a.scales.split(",")] if a.scales else [a.scale]
    if a.db and len(a.scale_list) > 1:
        ap.error("--db takes one database; use --scales without --db")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    _need("psutil")
    for exe in ("sqlite3", "psql", "pg_dump"):
        if not shutil.which(exe):
            raise BenchError(f"{exe} not found: floor.sh needs it (Debian: apt-get install -y sqlite3 postgresql-client)")
    pg = Pg(a.pg_url)
    tmp = Path(tempfile.mkdtemp(prefix="golive-bench-"))
    started = dt.datetime.now().astimezone()
    result = {"started": started.isoformat(timespec="seconds"), "args": {k: v for k, v in vars(a).items()},
              "repo": git_info(), "python": sys.executable, "cpus": os.cpu_count(), "postgres": pg.version,
              "pgloader": subprocess.run(["pgloader", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
              if shutil.which("pgloader") else None, "scales": []}
    out_path = Path(a.json) if a.json else BENCH / "data" / f"bench-{started:%Y%m%d-%H%M%S}.json"
    ok = False
    return_code = 1

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        dbs = [(s, ensure_db(s, a.db)) for s in a.scale_list]
        with PrefectServer(tmp, dict(os.environ)) as server:
            b = Bench(a, pg, tmp, server)
            log("timing imports (engine alone vs. engine + Prefect flow)")
            b.imports = import_costs(b.golive_env())
            result["imports"] = b.imports
            result["prefect_server_startup_seconds"] = server.startup_seconds
            result["scales"] = bench_all(b, dbs)
            for s in result["scales"]:
                print_scale(s)
            result["prefect_server_rss_mb_at_end"] = server.rss_mb()
        result["linearity"] = linearity(result["scales"])
        for row in result["linearity"]:
            k = row["to"] / row["from"]
            print(f"\nlinearity {row['from']:g} -> {row['to']:g} (data x{row['data_factor']}): golive x{fmt(row['golive'], nd=2)} "
                  f"(target <= {TARGET_LINEAR * k:.2f}: {'ok' if row['golive_ok'] else 'NOT MET'}), "
                  f"direct x{fmt(row['direct'], nd=2)}, floor x{fmt(row['floor'], nd=2)}, pgloader x{fmt(row['pgloader'], nd=2)}; "
                  f"ratios of minimums: golive x{fmt(row['golive_min'], nd=2)}, direct x{fmt(row['direct_min'], nd=2)}, "
                  f"floor x{fmt(row['floor_min'], nd=2)}; golive per round " + ", ".join(fmt(x, nd=2) for x in row["golive_per_round"]))
        for s in result["scales"]:
            t = s["tools"].get("golive", {})
            x, y = t.get("peak_rss_mb", {}).get("max"), t.get("peak_anon_rss_mb", {}).get("max")
            print(f"peak RSS of golive, scale {s['scale']:g}: {fmt(x, ' MB', 0)} (anonymous {fmt(y, ' MB', 0)}; "
                  f"target <= {TARGET_RSS_MB} MB): {'ok' if x is not None and x <= TARGET_RSS_MB else 'NOT MET'}")
        print(f"imports: {result['imports']}; Prefect server started in {server.startup_seconds} s")
        ok = True
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        result["interrupted"] = True
        return_code = 130
    finally:
        pg.drop_all()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        log(f"results: {out_path}")
        if a.keep_logs or not ok:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else return_code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(2)

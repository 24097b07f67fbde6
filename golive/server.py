"""A local Prefect server in the background, started once and reused by every later golive command.

Without ``PREFECT_API_URL`` each golive command that runs a flow would start Prefect's temporary server
and stop it at the end: 10-30 s per command. ``golive server start`` starts ``prefect server start`` on
loopback as a background process, waits until its API answers, and records it in a small state file
(``$PREFECT_HOME/golive-server.json``). Later golive commands with no ``PREFECT_API_URL`` (neither in the
environment nor in the active Prefect profile) find it there and use it (``use_recorded_server``), and say
so. The server keeps its runs in Prefect's usual database (``$PREFECT_HOME``), so its UI shows every run.

No Prefect import here: this runs before Prefect is loaded (and ``golive --help`` must stay fast).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from golive.errors import ConfigError, GoliveError

DEFAULT_PORT = 4200
STATE_NAME = "golive-server.json"
LOG_NAME = "golive-server.log"


@dataclass
class ServerState:
    """What the state file records about the running server."""

    pid: int
    url: str  # the API URL, http://127.0.0.1:PORT/api
    ui: str  # http://127.0.0.1:PORT
    log: str
    started_at: float
    start_seconds: float = 0.0


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or os.path.expanduser("~/.prefect"))


def state_path() -> Path:
    return prefect_home() / STATE_NAME


def read_state() -> ServerState | None:
    """The recorded server if its process still runs (a stale file is removed), else None."""
    path = state_path()
    try:
        state = ServerState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if not _alive(state.pid):
        path.unlink(missing_ok=True)
        return None
    return state


def healthy(api_url: str, timeout: float = 1.0) -> bool:
    """True when ``GET <api_url>/health`` answers 200."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def use_recorded_server() -> ServerState | None:
    """Point this process (and its children) at the server ``golive server start`` left running, when no
    Prefect API is configured otherwise; returns it, or None when nothing was changed."""
    from golive.runtime import using_ephemeral_prefect

    if not using_ephemeral_prefect():
        return None
    state = read_state()
    if state is None or not healthy(state.url, timeout=2.0):
        return None
    os.environ["PREFECT_API_URL"] = state.url
    return state


def free_port(host: str, preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise GoliveError(f"no free TCP port on {host}")


def prefect_executable() -> str:
    exe = Path(sys.executable).parent / "prefect"
    return str(exe) if exe.exists() else "prefect"


def start(host: str = "127.0.0.1", port: int | None = None, timeout: float = 180.0) -> tuple[ServerState, bool]:
    """Start the server (or find the one already running); returns ``(state, started_now)``.

    Raises:
        GoliveError: the server did not answer within ``timeout`` seconds (its log is named, the process
            is stopped), or the port asked for is taken.
    """
    running = read_state()
    if running is not None:
        return running, False
    if port is not None:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                raise ConfigError(f"port {port} on {host} is in use: choose another with --port") from None
    port = port or free_port(host, DEFAULT_PORT)
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_NAME
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_HOME": str(home),
                "PREFECT_UI_API_URL": f"http://{host}:{port}/api"})
    t0 = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen([prefect_executable(), "server", "start", "--host", host, "--port", str(port)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=str(home))
    url = f"http://{host}:{port}/api"
    while not healthy(url, timeout=1.0):
        if proc.poll() is not None:
            raise GoliveError(f"the Prefect server exited with status {proc.returncode} before answering; "
                              f"see {log}")
        if time.monotonic() - t0 > timeout:
            _stop_pid(proc.pid)
            raise GoliveError(f"the Prefect server did not answer within {timeout:.0f} s; see {log}")
        time.sleep(0.2)
    state = ServerState(pid=proc.pid, url=url, ui=f"http://{host}:{port}", log=str(log), started_at=time.time(),
                        start_seconds=round(time.monotonic() - t0, 1))
    tmp = state_path().with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
    tmp.replace(state_path())
    return state, True


def stop(timeout: float = 15.0) -> ServerState | None:
    """Stop the recorded server (its whole process group); returns what was stopped, or None."""
    state = read_state()
    if state is None:
        state_path().unlink(missing_ok=True)
        return None
    _stop_pid(state.pid, timeout)
    state_path().unlink(missing_ok=True)
    return state


def _stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + wait
        while time.monotonic() < end:
            _reap(pid)
            if not _alive(pid):
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int) -> bool:
    """The process runs and is a Prefect server (not another process that got the same pid later)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # no /proc (macOS): trust the pid
    args = cmdline.split(b"\0")
    is_server = any(os.path.basename(a) == b"prefect" and args[i + 1:i + 3] == [b"server", b"start"]
                    for i, a in enumerate(args))
    return status != "Z" and is_server

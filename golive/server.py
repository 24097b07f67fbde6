"""A local Prefect server in the background, started once and reused by every later golive command.

Without ``PREFECT_API_URL`` each golive command that runs a flow would start Prefect's temporary server
and stop it at the end: 10-30 s per command. ``golive server start`` starts ``prefect server start`` on
loopback as a background process, waits until its API answers, and records it in a small state file
(``$PREFECT_HOME/golive-server.json``). Later golive commands with no ``PREFECT_API_URL`` (neither in the
environment nor in the active Prefect profile) find it there and use it (``use_recorded_server``), and say
so. The server keeps its runs in Prefect's usual database (``$PREFECT_HOME``), so its UI shows every run.

The first command that needs the API and finds none starts that same server itself (``auto_start``: the
process is spawned at once and the command waits for it only when its flow is about to run, ``ready``),
unless ``GOLIVE_NO_SERVER=1`` asks for Prefect's temporary server as before. The state file is written as
soon as the server is spawned, under a lock, so two commands started together share one server.

No Prefect import here: this runs before Prefect is loaded (and ``golive --help`` must stay fast).
"""

from __future__ import annotations

import contextlib
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
LOCK_NAME = "golive-server.lock"
#: seconds a recorded server that does not answer yet is taken to be still starting
STARTING_SECONDS = 180.0
#: the environment variable that keeps Prefect's temporary server (no golive server started on first use)
NO_SERVER_ENV = "GOLIVE_NO_SERVER"


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


#: the server this process started or found starting, until ``ready`` saw it answer
_PENDING: dict[str, ServerState] = {}


def use_recorded_server() -> ServerState | None:
    """Point this process (and its children) at the server ``golive server start`` left running (or that
    another command is starting right now), when no Prefect API is configured otherwise; returns it, or
    None when nothing was changed."""
    from golive.runtime import using_ephemeral_prefect

    if not using_ephemeral_prefect():
        return None
    state = read_state()
    if state is None:
        return None
    if not healthy(state.url, timeout=2.0):
        if time.time() - state.started_at > STARTING_SECONDS:
            return None  # it should answer by now: Prefect's temporary server rather than a hung one
        _PENDING["state"] = state  # starting: ``ready`` waits for it before a flow runs
    os.environ["PREFECT_API_URL"] = state.url
    return state


def server_wanted() -> bool:
    """True when this process has no Prefect API and may start the golive server (``GOLIVE_NO_SERVER`` unset)."""
    from golive.runtime import using_ephemeral_prefect

    opted_out = os.environ.get(NO_SERVER_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return using_ephemeral_prefect() and not opted_out


def auto_start() -> tuple[ServerState, bool]:
    """Start the golive server in the background (or take the one running or starting) and point this
    process at it; returns ``(state, started_now)`` at once. ``ready`` waits until it answers."""
    state, started = spawn()
    os.environ["PREFECT_API_URL"] = state.url
    if started or not healthy(state.url, timeout=1.0):
        _PENDING["state"] = state
    return state, started


def ready(timeout: float = STARTING_SECONDS) -> ServerState | None:
    """Wait until the server this process started (or found starting) answers; returns it, or None when
    there was nothing to wait for.

    Raises:
        GoliveError: it exited or did not answer within ``timeout`` seconds (its log is named).
    """
    state = _PENDING.get("state")
    if state is None:
        return None
    wait_until_healthy(state, timeout)
    _PENDING.pop("state", None)
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


def start(host: str = "127.0.0.1", port: int | None = None, timeout: float = STARTING_SECONDS
          ) -> tuple[ServerState, bool]:
    """Start the server (or find the one already running) and wait until it answers; returns
    ``(state, started_now)``.

    Raises:
        GoliveError: the server did not answer within ``timeout`` seconds (its log is named, the process
            is stopped), or the port asked for is taken.
    """
    state, started = spawn(host, port)
    wait_until_healthy(state, timeout)
    return state, started


def spawn(host: str = "127.0.0.1", port: int | None = None) -> tuple[ServerState, bool]:
    """Spawn ``prefect server start`` in its own session and record it at once (or find the recorded one,
    running or starting); returns ``(state, started_now)`` without waiting for the API.

    Raises:
        ConfigError: the port asked for is taken.
    """
    with _locked():
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
        log = home / LOG_NAME
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_HOME": str(home),
                    "PREFECT_UI_API_URL": f"http://{host}:{port}/api"})
        with open(log, "ab") as out:
            proc = subprocess.Popen([prefect_executable(), "server", "start", "--host", host, "--port", str(port)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, cwd=str(home))
        state = ServerState(pid=proc.pid, url=f"http://{host}:{port}/api", ui=f"http://{host}:{port}", log=str(log),
                            started_at=time.time())
        _write_state(state)
        return state, True


def wait_until_healthy(state: ServerState, timeout: float = STARTING_SECONDS) -> None:
    """Wait until the recorded server answers; record how long its start took.

    Raises:
        GoliveError: the server exited, or did not answer within ``timeout`` seconds of its start (it is
            stopped); the message names its log.
    """
    while not healthy(state.url, timeout=1.0):
        _reap(state.pid)
        if not _alive(state.pid):
            _forget(state)
            raise GoliveError(f"the Prefect server exited before answering; see {state.log} (or set "
                              f"{NO_SERVER_ENV}=1 to use Prefect's temporary server)")
        if time.time() - state.started_at > timeout:
            _stop_pid(state.pid)
            _forget(state)
            raise GoliveError(f"the Prefect server did not answer within {timeout:.0f} s; see {state.log}")
        time.sleep(0.2)
    if not state.start_seconds:
        state.start_seconds = round(time.time() - state.started_at, 1)
        with _locked():
            current = read_state()
            if current is not None and current.pid == state.pid:
                _write_state(state)


def _forget(state: ServerState) -> None:
    """Remove the state file if it still records ``state`` (not a server another command started since)."""
    with _locked():
        try:
            recorded = json.loads(state_path().read_text(encoding="utf-8")).get("pid")
        except (OSError, ValueError, AttributeError):
            return
        if recorded == state.pid:
            state_path().unlink(missing_ok=True)


def _write_state(state: ServerState) -> None:
    tmp = state_path().with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
    tmp.replace(state_path())


@contextlib.contextmanager
def _locked():
    """One process at a time reads-and-spawns or rewrites the state file (``$PREFECT_HOME/golive-server.lock``)."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock (two commands started together may start two servers)
        yield
        return
    with open(home / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stop(timeout: float = 15.0) -> ServerState | None:
    """Stop the recorded server (its whole process group); returns what was stopped, or None."""
    with _locked():
        state = read_state()
        if state is None:
            state_path().unlink(missing_ok=True)
            return None
        _stop_pid(state.pid, timeout)
        state_path().unlink(missing_ok=True)
        _PENDING.pop("state", None)
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
    from golive.model.backup import alive

    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        comm, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
        status = rest.split()[0]
    except OSError:
        return True  # no /proc (macOS): trust the pid
    if not cmdline.strip(b"\0"):  # the exec is not done yet (just spawned): its name is already there
        comm = comm.split("(", 1)[-1]
        return status != "Z" and (comm == "prefect" or comm.startswith("python"))
    args = cmdline.split(b"\0")
    is_server = any(os.path.basename(a) == b"prefect" and args[i + 1:i + 3] == [b"server", b"start"]
                    for i, a in enumerate(args))
    return status != "Z" and is_server

"""Embedded defaults for a new user with nothing installed: PostgreSQL 16 from the ``pgserver`` package.

``embedded://DIR`` as a target URL starts (or reuses) a PostgreSQL server whose data lives in DIR and
which listens on a Unix socket inside DIR. The server keeps running after golive exits so the app (or
``psql``) can use it; ``golive embedded status`` lists the ones running and ``golive embedded stop DIR`` stops
one. A dry run starts none: ``resolve(url, start=False)`` uses the server only when it already runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from golive.errors import ConfigError, TerminalError
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)


def _pgserver():
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a dependency
        raise ConfigError(f"embedded PostgreSQL needs the pgserver package: {exc}") from None
    return pgserver


def start_postgres(data_dir: str | os.PathLike, database: str = "postgres") -> DatabaseURL:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; return its URL."""
    pgserver = _pgserver()
    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    srv = pgserver.get_server(str(path), cleanup_mode=None)
    uri = srv.get_uri(database)
    if database != "postgres":
        import psycopg

        with psycopg.connect(srv.get_uri("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{database}"')
    return parse_url(uri)


def _postmaster(path: Path):
    """pgserver's reading of ``DIR/postmaster.pid`` when a server runs there and accepts connections, else None."""
    if not (path / "postmaster.pid").is_file():
        return None
    from pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (OSError, ValueError, AssertionError):  # a stale or half-written file
        return None
    return info if info is not None and info.is_running() and info.status == "ready" else None


def running_url(data_dir: str | os.PathLike, database: str = "postgres") -> DatabaseURL | None:
    """The URL of ``database`` on the embedded PostgreSQL in ``data_dir`` if that server already runs and holds
    the database; None otherwise. Starts, creates and writes nothing."""
    _pgserver()
    info = _postmaster(Path(data_dir).resolve())
    if info is None:
        return None
    if database != "postgres":
        import psycopg

        try:
            with psycopg.connect(info.get_uri(database="postgres"), autocommit=True, connect_timeout=5) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                    return None
        except psycopg.Error:
            return None
    return parse_url(info.get_uri(database=database))


def bin_dir() -> Path:
    """Where pgserver's PostgreSQL binaries (pg_dump, psql, ...) live."""
    return Path(_pgserver().__file__).parent / "pginstall" / "bin"


def resolve(url: DatabaseURL, *, start: bool = True) -> DatabaseURL:
    """Turn ``embedded://DIR`` into the running server's real URL; other URLs pass through.

    ``start=False`` (dry runs): the server is used only if it already runs; otherwise ``url`` comes back as it was
    (nothing is created or started), and the caller plans against an empty database.
    """
    if url.dialect != "embedded":
        return url
    data_dir, database = url.path or "golive-pgdata", url.query.get("database", "postgres")
    if not start:
        return running_url(data_dir, database) or url
    return start_postgres(data_dir, database=database)


# ---------------------------------------------------------------- the servers golive left running


@dataclass(frozen=True)
class Running:
    """An embedded PostgreSQL that is running."""

    data_dir: Path
    pid: int
    url: str  # embedded://DIR

    def line(self) -> str:
        return f"{self.url} (pid {self.pid})"


def running_servers() -> list[Running]:
    """Every embedded PostgreSQL (this pgserver's binaries) running on this machine, by data folder."""
    import psutil

    postgres = os.path.realpath(bin_dir() / "postgres")
    out: dict[Path, Running] = {}
    for proc in psutil.process_iter(attrs=["pid", "cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if not cmd or "-D" not in cmd[:-1] or os.path.realpath(cmd[0]) != postgres:
            continue  # not pgserver's postmaster (its children carry no -D)
        data_dir = Path(cmd[cmd.index("-D") + 1]).resolve()
        out.setdefault(data_dir, Running(data_dir, proc.info["pid"], f"embedded://{data_dir}"))
    return sorted(out.values(), key=lambda r: str(r.data_dir))


def stop_server(data_dir: str | os.PathLike) -> Running | None:
    """Stop the embedded PostgreSQL running in ``data_dir`` (fast shutdown: sessions are ended, committed data
    stays); returns what was stopped, None when none was running there. The data folder stays.

    The postmaster named in ``DIR/postmaster.pid`` gets SIGINT, which is what ``pg_ctl stop -m fast`` sends: pg_ctl
    itself would run as the server's user ("pgserver" when root started it), who may no longer be allowed into the
    folder's parents (pytest resets its base folder to 0700, for one).
    """
    import signal

    import psutil

    _pgserver()
    path = Path(data_dir).resolve()
    info = _postmaster(path)
    if info is not None:
        pid = info.pid
    else:  # no readable postmaster.pid: a server whose folder was deleted (or locked away) under it still runs
        pid = next((r.pid for r in running_servers() if r.data_dir == path), None)
        if pid is None:
            if not path.exists():
                raise ConfigError(f"{path} does not exist (golive embedded status lists the running servers)")
            return None
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    except psutil.NoSuchProcess:
        pass
    except (psutil.TimeoutExpired, psutil.AccessDenied) as exc:
        raise TerminalError(f"could not stop the embedded PostgreSQL in {path} (pid {pid}): "
                            f"{type(exc).__name__}") from None
    return Running(path, pid, f"embedded://{path}")

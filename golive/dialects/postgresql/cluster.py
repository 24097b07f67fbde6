"""A PostgreSQL cluster of golive's own, from the machine's server binaries: the restored cluster of a point-in-time
restore (``archive.py``). Run as the ``postgres`` user when golive runs as root (the server refuses root), in a data
directory that user can reach; started, followed through its log, and stopped.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from golive.errors import ConfigError, TerminalError
from golive.model.backup import alive, first_line
from golive.urls import DatabaseURL

_alive = alive

# ---------------------------------------------------------------- running the server's programs

def _root() -> bool:
    return os.geteuid() == 0


def _as_postgres(args: list[str]) -> list[str]:
    """The server (pg_ctl, postgres) refuses to run as root: as root, run it as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *args] if _root() else args


def _chown_postgres(path: Path, recursive: bool = False) -> None:
    if not _root():
        return
    os.chown(path, *_postgres_ids())
    if recursive:
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    os.chown(os.path.join(root, n), *_postgres_ids(), follow_symlinks=False)
                except FileNotFoundError:
                    pass


def _postgres_ids() -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise ConfigError("golive runs as root, and a restored PostgreSQL cannot: it runs as the postgres user, "
                          "which this machine does not have (install PostgreSQL's server package, or run golive "
                          "as another user)") from None
    return pw.pw_uid, pw.pw_gid


def _reachable_by_postgres(path: Path) -> None:
    """As root, ``postgres`` must be able to traverse to ``path`` (a scratch directory made 0700 is not): make our
    own directories searchable (not listable), and name any other that is not."""
    if not _root():
        return
    uid, gid = _postgres_ids()
    resolved = path.resolve()
    for parent in [*reversed(resolved.parents), resolved]:
        st = parent.stat()
        ok = (st.st_uid == uid and st.st_mode & 0o100) or (st.st_gid == gid and st.st_mode & 0o010) \
            or st.st_mode & 0o001
        if not ok:
            if st.st_uid == os.geteuid() and str(parent).startswith(tempfile.gettempdir()):
                os.chmod(parent, st.st_mode | 0o001)
            else:
                raise ConfigError(f"the postgres user cannot reach {path}: {parent} is not searchable by it "
                                  f"(chmod o+x {parent}, or restore elsewhere)")


def server_bin(major: int) -> Path:
    """The directory of PostgreSQL ``major``'s server programs: a data directory only starts with its own."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    try:
        from golive.dialects.postgresql.embedded import bin_dir

        candidates.append(Path(bin_dir()))
    except Exception:  # noqa: BLE001 - pgserver missing: fine
        pass
    for d in candidates:
        if (d / "pg_ctl").exists() and (d / "postgres").exists():
            try:
                out = subprocess.run([str(d / "postgres"), "--version"], capture_output=True, text=True,
                                     timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
            if m and int(m.group(1)) == major:
                return d
    raise ConfigError(f"restoring a PostgreSQL {major} base needs PostgreSQL {major}'s server programs (pg_ctl, "
                      f"postgres): none found in /usr/lib/postgresql/{major}/bin (install postgresql-{major})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc)


# ---------------------------------------------------------------- the receiver

# ---------------------------------------------------------------- the restored cluster

def _log_tail(log_file: Path, offset: int = 0) -> str:
    try:
        with open(log_file, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _message(line: str) -> str:
    """A server log line without its prefix (``2026-… UTC [123] LOG:  ``)."""
    return re.sub(r"^.*?\b(LOG|FATAL|PANIC|ERROR|WARNING|DETAIL|HINT):\s+", r"\1: ", line.strip())


def _worst_line(text: str) -> str:
    for level in ("PANIC", "FATAL", "ERROR"):
        lines = [ln for ln in text.splitlines() if f"{level}:" in ln]
        if lines:
            return _message(lines[0])
    return first_line(text)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


_alive = alive  # (golive.model.backup)


def _bin_for(data_dir: Path) -> Path:
    try:
        major = int((data_dir / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError):
        raise TerminalError(f"{data_dir} is not a PostgreSQL data directory (no PG_VERSION)") from None
    return server_bin(major)


def stop_cluster(data_dir: Path | str, *, mode: str = "fast") -> None:
    """Stop the cluster a restore left running in ``data_dir`` (quietly when it is not running)."""
    data_dir = Path(data_dir)
    pid = _postmaster_pid(data_dir)
    if not _alive(pid):
        return
    pg_ctl = str(_bin_for(data_dir) / "pg_ctl")
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data_dir), "-m", mode, "-w", "-t", "60", "stop"]),
                   capture_output=True, timeout=90)
    if _alive(pid):  # it did not stop in time: nothing is kept from it anyway
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)


def _socket_conninfo(data_dir: Path, port: int, user: str, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=str(data_dir), port=str(port), user=user, dbname=dbname, connect_timeout="5",
                         application_name="golive")


def _socket_url(data_dir: Path, port: int, user: str, dbname: str) -> DatabaseURL:
    from urllib.parse import quote

    from golive.urls import parse_url

    return parse_url(f"postgresql://{quote(user)}@/{quote(dbname)}?host={quote(str(data_dir))}&port={port}",
                     role="restored cluster")

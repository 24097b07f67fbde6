"""A throwaway PostgreSQL 15 with ``wal_level = logical``, for change-capture tests.

The machine's own PostgreSQL (``wal_level = replica``) is never reconfigured: this starts a server of its own from
the machine's binaries (``initdb`` + ``pg_ctl``), in a temporary directory, on a free port, once per test session,
and stops it (and removes its files) at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN = Path(os.environ.get("GOLIVE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server's tools as the ``postgres`` user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def available() -> str:
    """Why a throwaway server cannot start here ('' when it can)."""
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {BIN} (set GOLIVE_TEST_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return ""


@contextlib.contextmanager
def pg_logical_server(*settings: str):
    """Start a PostgreSQL with ``wal_level = logical``; yields its admin URL (``postgres``, trust auth, loopback)."""
    base = tempfile.mkdtemp(prefix="golive-pglogical-")
    data = os.path.join(base, "data")
    os.makedirs(data)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    pg_ctl = str(BIN / "pg_ctl")
    started = False
    try:
        subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                                     "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, capture_output=True, timeout=120)
        opts = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 "
                f"-c max_wal_senders=10 -c fsync=off -c full_page_writes=off -c shared_buffers=64MB "
                + " ".join(f"-c {s}" for s in settings))
        subprocess.run(_as_postgres([pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w",
                                     "-t", "60", "start"]), check=True, capture_output=True, timeout=120)
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(_as_postgres([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]),
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)

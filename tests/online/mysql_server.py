"""A throwaway MariaDB with the binary log on, for the MySQL change-capture tests.

The machine's own MariaDB (127.0.0.1:3306) has ``log_bin`` off and is never reconfigured: the tests that need a
binlog start this server once per session, in a temporary directory, on a free port, and stop it at the end.
``mariadb_binlog_server()`` yields a ``BinlogServer`` with an admin URL (a user with every privilege and a
password, over TCP) and ``make_db()`` / ``app_url()`` for fresh databases and their app user (a password, no SUPER:
the fence applies to it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

ADMIN_USER, ADMIN_PASSWORD = "golive_admin", "adm1n-pw"
APP_USER, APP_PASSWORD = "app", "app-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BinlogServer:
    def __init__(self, port: int, datadir: str):
        self.port, self.datadir = port, datadir
        self.url = f"mysql://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{port}/mysql"

    def connect(self, database: str | None = None, *, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user=user, password=password, database=database,
                               autocommit=True, connect_timeout=10)

    def admin(self, *stmts: str, database: str | None = None) -> list:
        conn = self.connect(database)
        try:
            out = []
            with conn.cursor() as cur:
                for s in stmts:
                    cur.execute(s)
                    out = list(cur.fetchall())
            return out
        finally:
            conn.close()

    def make_db(self) -> str:
        """A fresh database the app user may read and write (no SUPER); returns the admin URL of it."""
        name = "golive_cap_" + uuid.uuid4().hex[:8]
        self.admin(f"CREATE DATABASE `{name}`",
                   f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES "
                   f"ON `{name}`.* TO '{APP_USER}'@'%'")
        return f"mysql://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def app_url(self, database: str) -> str:
        return f"mysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/{database}"


def _wait(port: int, proc: subprocess.Popen, log: str, timeout: float = 60) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({proc.returncode}): {open(log).read()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"mariadbd did not listen on {port} within {timeout:g} s: {open(log).read()[-2000:]}")


@contextlib.contextmanager
def mariadb_binlog_server(*extra: str):
    """Start ``mariadbd`` with ``--log-bin --binlog-format=ROW`` in a temporary directory; stop it after."""
    if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db"):
        import pytest

        pytest.skip("needs mariadbd and mariadb-install-db")
    datadir = tempfile.mkdtemp(prefix="golive-binlog-")
    log = os.path.join(datadir, "server.log")
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}/data", "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True, timeout=180)
    port = free_port()
    sock = os.path.join(datadir, "sock")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={datadir}/data", "--user=root", f"--port={port}",
             "--bind-address=127.0.0.1", f"--socket={sock}", f"--log-bin={datadir}/data/binlog", "--server-id=1",
             "--binlog-format=ROW", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
             "--max-connections=200", "--skip-name-resolve", f"--pid-file={datadir}/pid", *extra],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(port, proc, log)
        import pymysql

        root = pymysql.connect(unix_socket=sock, user="root", autocommit=True)
        with root.cursor() as cur:
            cur.execute(f"CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION")
            cur.execute(f"CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}'")
        root.close()
        yield BinlogServer(port, datadir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(datadir, ignore_errors=True)

"""Throwaway database servers the chaos harness owns and restarts: a PostgreSQL 15 (``initdb`` + ``pg_ctl``) and a
MariaDB (``mariadb-install-db`` + ``mariadbd``), each in its own directory under /tmp, on a port in 55400-55499.

The machine's servers are never touched: a restart trial (``restarts.restart_trial``) restarts these, so their
admin URLs go into the trial's ``Env`` (``pg_admin_url``, ``mysql_admin_url``). ``restart("pg")`` is
``pg_ctl restart -m immediate`` (every session ends at once, crash recovery on start); ``restart("mysql")`` kills
``mariadbd`` (``SIGKILL``) and starts it again on the same datadir and port (InnoDB recovery on start). The start
commands are those of ``tests/online/postgresql_server.py`` and ``tests/online/mysql_server.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

try:  # pytest imports tests/ as the root of packages; bench/chaos.py puts tests/ on sys.path
    from online.mysql_server import _wait as _wait_mysql
    from online.postgresql_server import BIN, _as_postgres
except ImportError:  # pragma: no cover
    from tests.online.mysql_server import _wait as _wait_mysql
    from tests.online.postgresql_server import BIN, _as_postgres

PORTS = range(55400, 55500)


def free_port() -> int:
    """A free port of the range this harness may use."""
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 55400-55499")


def available() -> str:
    """Why the throwaway servers cannot start here ('' when they can)."""
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {BIN}"
    if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db"):
        return "no mariadbd / mariadb-install-db"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return ""


class Servers:
    """The harness's PostgreSQL and MariaDB (``kinds``: which of the two to start)."""

    def __init__(self, kinds=("pg", "mysql")):
        self.kinds = tuple(kinds)
        self.base = tempfile.mkdtemp(prefix="golive-chaos22-srv-")
        os.chmod(self.base, 0o755)
        self.pg_port = self.my_port = None
        self.my_proc = None
        self.restarts = 0

    # ------------------------------------------------------------ PostgreSQL

    @property
    def pg_data(self) -> str:
        return os.path.join(self.base, "pg", "data")

    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", self.pg_data, *args]), check=True,
                       capture_output=True, timeout=timeout)

    def _start_pg(self) -> None:
        pg = os.path.join(self.base, "pg")
        os.makedirs(self.pg_data)
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres", "postgres")
            shutil.chown(self.pg_data, "postgres", "postgres")
        subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", self.pg_data, "-U", "postgres", "--auth=trust",
                                     "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, capture_output=True, timeout=180)
        for attempt in range(5):  # another harness may take the same free port at the same moment: the next one
            self.pg_port = free_port()
            opts = (f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=64MB "
                    "-c max_connections=60")
            try:
                self._pg_ctl("-o", opts, "-l", os.path.join(pg, "log"), "-w", "-t", "60", "start")
                return
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise
                time.sleep(0.5 + attempt)

    # ------------------------------------------------------------ MariaDB

    @property
    def my_url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.my_port}/mysql"

    def _start_mysql_process(self) -> None:
        my = os.path.join(self.base, "my")
        log = os.path.join(my, "server.log")
        with open(log, "a") as out:
            self.my_proc = subprocess.Popen(
                ["mariadbd", "--no-defaults", f"--datadir={my}/data", "--user=root", f"--port={self.my_port}",
                 "--bind-address=127.0.0.1", f"--socket={my}/sock", "--character-set-server=utf8mb4",
                 "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=64M", "--skip-name-resolve",
                 "--max-connections=100", f"--pid-file={my}/pid"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_mysql(self.my_port, self.my_proc, log, timeout=120)

    def _start_mysql(self) -> None:
        my = os.path.join(self.base, "my")
        os.makedirs(my)
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={my}/data", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=180)
        for attempt in range(5):
            self.my_port = free_port()
            try:
                self._start_mysql_process()
                break
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.5 + attempt)
        import pymysql

        conn = pymysql.connect(unix_socket=f"{my}/sock", user="root", autocommit=True)
        with conn.cursor() as cur:  # root over TCP without a password, as the machine's server
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ''")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
        conn.close()

    # ------------------------------------------------------------ both

    def __enter__(self) -> "Servers":
        try:
            if "pg" in self.kinds:
                self._start_pg()
            if "mysql" in self.kinds:
                self._start_mysql()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.pg_port is not None:
            with contextlib.suppress(Exception):
                self._pg_ctl("-m", "immediate", "-w", "stop", timeout=60)
        if self.my_proc is not None:
            self.my_proc.kill()
            self.my_proc.wait(timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)

    def restart(self, kind: str, mode: str = "immediate") -> float:
        """Restart the ``kind`` server (``pg``: ``pg_ctl restart -m mode``; ``mysql``: ``SIGKILL`` and start);
        returns the seconds it was away."""
        t0 = time.monotonic()
        if kind == "pg":
            self._pg_ctl("-m", mode, "-l", os.path.join(self.base, "pg", "log"), "-w", "-t", "60", "restart")
        else:
            os.kill(self.my_proc.pid, signal.SIGKILL)
            self.my_proc.wait(timeout=30)
            self._start_mysql_process()
        self.restarts += 1
        return time.monotonic() - t0

    def url(self, kind: str) -> str:
        return self.pg_url if kind == "pg" else self.my_url

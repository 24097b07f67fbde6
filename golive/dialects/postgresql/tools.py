"""PostgreSQL's client programs (pg_dump, pg_restore, psql): find one new enough, run it without leaking secrets.

pg_dump must be at least as new as the server it dumps. Candidates, in order: ``$PATH``, Debian's
``/usr/lib/postgresql/<major>/bin``, and the binaries the ``pgserver`` package ships (PostgreSQL 16); the
oldest one that is new enough is taken (its output suits the widest range of targets).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from functools import lru_cache

from golive.errors import ConfigError
from golive.urls import DatabaseURL


@lru_cache(maxsize=None)
def _version(path: str) -> int:
    """``pg_dump (PostgreSQL) 15.19`` -> 15."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    return int(m.group(1)) if m else 0


def candidates(name: str) -> list[str]:
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(os.path.realpath(on_path))
    found += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    try:
        from golive.dialects.postgresql.embedded import bin_dir

        p = bin_dir() / name
        if p.exists():
            found.append(str(p))
    except Exception:  # noqa: BLE001 - pgserver missing: fine
        pass
    out = []
    for p in found:
        if p not in out and os.access(p, os.X_OK):
            out.append(p)
    return out


def find(name: str, server_major: int) -> tuple[str, int]:
    """The oldest ``name`` whose major version is >= the server's; raises ``ConfigError`` naming what was found."""
    versions = sorted(((v, p) for p in candidates(name) if (v := _version(p))), key=lambda x: x[0])
    for v, p in versions:
        if v >= server_major:
            return p, v
    seen = ", ".join(f"{p} ({v})" for v, p in versions) or "none"
    raise ConfigError(f"{name} {server_major} or newer is needed for a PostgreSQL {server_major} server; found: {seen} "
                      f"(install postgresql-client-{server_major}, or the pgserver package)")


def env_for(url: DatabaseURL) -> tuple[list[str], dict]:
    """Connection arguments and environment for a client program: the password goes in PGPASSWORD,
    never on the command line (where ``ps`` would show it)."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = url.password_text
    args = []
    if url.host:
        args += ["-h", url.host]
    elif url.query.get("host"):
        args += ["-h", url.query["host"]]
    if url.port:
        args += ["-p", str(url.port)]
    elif url.query.get("port"):  # a socket directory's server: ?host=/dir&port=N
        args += ["-p", url.query["port"]]
    if url.user:
        args += ["-U", url.user]
    for k, v in url.query.items():  # sslmode, sslrootcert, ... as libpq environment variables
        if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name"):
            env["PG" + {"sslmode": "SSLMODE", "sslrootcert": "SSLROOTCERT", "sslcert": "SSLCERT", "sslkey": "SSLKEY",
                        "connect_timeout": "CONNECT_TIMEOUT", "application_name": "APPNAME"}[k]] = v
    args += ["-d", url.database or "postgres"]
    return args, env

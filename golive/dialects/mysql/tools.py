"""MySQL's client programs (``mariadb-dump``/``mysqldump``, ``mariadb``/``mysql``): find one, and hand it the
connection without leaking the password."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from golive.dialects.mysql.options import client_options, resolve
from golive.errors import ConfigError
from golive.model.backup import Tool, make_scratch
from golive.urls import DatabaseURL


def find_client(*names: str) -> Tool:
    """The first of ``names`` found on PATH, with its version line; ``ConfigError`` saying what to install."""
    for name in names:
        path = shutil.which(name)
        if path:
            try:
                out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            return Tool(name=name, version=out.split("\n")[0][:120], path=path)
    raise ConfigError(f"{' or '.join(names)} is not installed (apt-get install mariadb-client)")


class OptionsFile:
    """A private ``--defaults-extra-file`` with the connection (password included) for the client tools:
    the password never appears on a command line or in the environment of other processes."""

    def __init__(self, url: DatabaseURL):
        lines = client_options(resolve(url))
        self.dir = make_scratch(None, "gbk-my-")  # holds its owner: a killed run's is the next one's to remove
        self.path = os.path.join(self.dir, "client.cnf")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

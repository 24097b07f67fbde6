"""Process-wide settings applied before Prefect or Great Expectations are imported.

golive must run offline: no analytics, no telemetry, nothing that needs the internet. These defaults
are set with ``setdefault`` so a user's explicit environment still wins.
"""

from __future__ import annotations

import os
import sys

OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    # Prefect's temporary (ephemeral) API takes 9-22 s to start on small machines.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Prefect 3 prints a line per task run by default; golive's CLI prints its own progress.
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
}


def apply_offline_defaults() -> None:
    """Set the offline defaults in ``os.environ`` (only where the user did not set them)."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def using_ephemeral_prefect() -> bool:
    """True when no Prefect API is configured, so Prefect will start a temporary local server."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    try:  # a profile may set it too; read the profile file without importing prefect
        home = os.environ.get("PREFECT_HOME") or os.path.expanduser("~/.prefect")
        with open(os.path.join(home, "profiles.toml"), encoding="utf-8") as fh:
            text = fh.read()
        active = os.environ.get("PREFECT_PROFILE")
        if active is None:
            for line in text.splitlines():
                if line.strip().startswith("active"):
                    active = line.split("=", 1)[1].strip().strip("\"'")
                    break
        if active:
            section = text.split(f"[profiles.{active}]", 1)
            if len(section) == 2 and "PREFECT_API_URL" in section[1].split("[profiles.", 1)[0]:
                return False
    except OSError:
        pass
    return True


def die_with_parent():
    """The ``preexec_fn`` for a tool golive waits for (``subprocess.run``): on Linux the tool is killed when the
    thread that started it ends, so a golive killed with ``kill -9`` does not leave a ``pg_restore`` or ``mysql``
    writing into a database that the same command, run again, is about to replace. None elsewhere.

    libc is looked up here, in the parent: the child only makes the one system call (no loading after fork)."""
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL

    return hook


#: malloc arenas per process (glibc's M_ARENA_MAX), unless MALLOC_ARENA_MAX says otherwise
MALLOC_ARENAS = 2


def fewer_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and memory freed in one stays
    there: a migration's worker, read-ahead, reader and Prefect's threads each grow one, and the process's resident
    memory with them (a 10,000-table migration peaked at 535 MB). Two arenas, as ``MALLOC_ARENA_MAX=2`` would set,
    before any thread starts; a user's ``MALLOC_ARENA_MAX`` wins. Not glibc (musl, macOS): nothing to do."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


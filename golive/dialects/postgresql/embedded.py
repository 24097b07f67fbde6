"""Embedded defaults for a new user with nothing installed: PostgreSQL 16 from the ``pgserver`` package.

``embedded://DIR`` as a target URL starts (or reuses) a PostgreSQL server whose data lives in DIR and
which listens on a Unix socket inside DIR. The server keeps running after golive exits so the app (or
``psql``) can use it; ``golive embedded stop DIR`` stops it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from golive.errors import ConfigError
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)


def start_postgres(data_dir: str | os.PathLike, database: str = "postgres") -> DatabaseURL:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; return its URL."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a dependency
        raise ConfigError(f"embedded PostgreSQL needs the pgserver package: {exc}") from None
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


def bin_dir() -> Path:
    """Where pgserver's PostgreSQL binaries (pg_dump, psql, ...) live."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def resolve(url: DatabaseURL) -> DatabaseURL:
    """Turn ``embedded://DIR`` into the running server's real URL; other URLs pass through."""
    if url.dialect != "embedded":
        return url
    return start_postgres(url.path or "golive-pgdata", database=url.query.get("database", "postgres"))

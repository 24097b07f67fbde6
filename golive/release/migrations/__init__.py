"""Migration folders, one module per kind: ``sql`` (golive's own history table), ``alembic`` (the app's
alembic.ini and env.py, driven in a helper process), ``prisma`` (``prisma/migrations`` and
``_prisma_migrations``, applied as ``prisma migrate deploy`` does). ``base`` holds the interface and the
executor every kind shares.

Adding a kind: a ``MigrationSource`` subclass with ``load``, ``status``, ``prepare``, ``apply``, ``down``,
``forget_failed`` and ``probe``, registered in ``KINDS``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from golive.errors import ConfigError
from golive.release.migrations.base import BOOKKEEPING, Executor, MigrationSource

KINDS = ("sql", "alembic", "prisma")


def parse_spec(spec: str) -> tuple[str, Path]:
    """``KIND:PATH`` -> (kind, path); a clear error for an unknown kind or a missing path."""
    kind, sep, path = (spec or "").partition(":")
    kind = kind.strip().lower()
    if not sep or not path.strip():
        raise ConfigError(f"--migrations {spec!r}: write KIND:PATH, e.g. sql:migrations, alembic:., prisma:prisma")
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        raise ConfigError(f"--migrations {spec!r}: unknown kind {kind!r}" + (f" (did you mean {close[0]}?)" if close else "")
                          + f"; kinds: {', '.join(KINDS)}")
    p = Path(path.strip()).expanduser()
    if not p.exists():
        raise ConfigError(f"--migrations {spec!r}: {p} does not exist")
    return kind, p


def open_source(spec: str, url) -> MigrationSource:
    kind, path = parse_spec(spec)
    if kind == "sql":
        from golive.release.migrations.sql import SqlSource as cls
    elif kind == "alembic":
        from golive.release.migrations.alembic import AlembicSource as cls
    else:
        from golive.release.migrations.prisma import PrismaSource as cls
    return cls(path.resolve(), url)


__all__ = ["KINDS", "parse_spec", "open_source", "MigrationSource", "Executor", "BOOKKEEPING"]

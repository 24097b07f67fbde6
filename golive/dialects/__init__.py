"""Dialects: one package per database engine, holding everything golive knows about it, behind one contract.

Each engine is a package ``golive/dialects/<engine>/`` with one module per concern:

    dialect.py      the class: settings with their sources (``max_identifier_length = 63``, ``has_schemas``, …) and
                    which class implements each concern (``source = Implementation("…source:MySQLSource")``)
    session.py      connect, timeouts, error translation (``Session``)
    types.py        the engine's types to and from the neutral ``golive.model.types.TargetType``
    source.py       reading it: introspect, profile, decide types, chunks, rows in the wire format (``Source``)
    target.py       writing it: DDL, bulk loads, keys, bookkeeping (``Target``)
    checksums.py    its side of a content comparison (``Checksums``)
    backup.py       back up, restore, count and check (``Backup``)
    health.py       the checks of ``golive report db`` (``Health``)
    maintenance.py  vacuum/analyze, reindex, views, purges (``Maintenance``)
    release.py      what a release needs: sessions with timeouts, pre-check reads, history tables (``Release``)
    capture.py      change capture for online migration (``Capture``)

``base.py`` declares every concern's methods, with a default or ``NotImplementedError``; an engine that lacks a
concern leaves it ``Unsupported`` and golive says so in one line. Capability packages (``golive.migrate``,
``golive.validation``, ``golive.backup``, …) call ``dialect_of(url).<concern>.<method>(…)`` and read settings; they
never compare engine names and never import an engine package. Engines meet through ``golive.model``.

Adding an engine:

1. Create ``golive/dialects/<name>/`` with ``dialect.py`` (a ``Dialect`` subclass: settings with links to the
   vendor's documentation, and an ``Implementation`` per concern it supports) and the modules of those concerns.
2. Register it below: one line in ``DIALECTS``.
3. ``tests/dialects/test_standard.py`` runs the standard suite (connect, introspect, types round trip, chunks,
   checksums, backup/restore round trip, health checks) against every registered dialect; give it a server.
"""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

from golive.errors import ConfigError

if TYPE_CHECKING:
    from golive.dialects.base import Dialect
    from golive.urls import DatabaseURL

#: name -> "module:Class", imported on demand so unused drivers cost nothing
DIALECTS = {
    "sqlite": "golive.dialects.sqlite.dialect:SQLiteDialect",
    "postgresql": "golive.dialects.postgresql.dialect:PostgresDialect",
    "mysql": "golive.dialects.mysql.dialect:MySQLDialect",
}


@lru_cache(maxsize=None)
def get_dialect(name: str) -> "Dialect":
    """The dialect registered as ``name`` (one instance per process); an unknown name gets the closest suggestion."""
    spec = DIALECTS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, DIALECTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Known: {', '.join(sorted(DIALECTS))}."
        raise ConfigError(f"unsupported dialect {name!r}.{hint}")
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)()


def dialect_of(url: "DatabaseURL") -> "Dialect":
    """The dialect of a parsed URL (an ``embedded://`` URL is the embedded PostgreSQL)."""
    return get_dialect(url.engine)


def resolve(url: "DatabaseURL", *, start: bool = True) -> "DatabaseURL":
    """The URL of a running database: ``embedded://DIR`` starts (or reuses) its PostgreSQL; others as they are.

    ``start=False`` (a dry run writes nothing): a server golive would start is used only if it already runs;
    otherwise the URL comes back unresolved (``not_started``) and the caller plans against an empty database.
    """
    return dialect_of(url).resolve(url, start=start)


def not_started(url: "DatabaseURL") -> bool:
    """A URL naming a server golive starts itself (``embedded://DIR``) that ``resolve(start=False)`` found not
    running: no database to connect to, so a dry run treats it as empty."""
    return url.form == "dir"


def all_dialects() -> list["Dialect"]:
    """Every registered dialect (the standard test suite runs against each)."""
    return [get_dialect(name) for name in DIALECTS]

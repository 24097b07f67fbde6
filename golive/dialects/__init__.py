"""Dialects: one module and one class per database, differences as data.

Adding a dialect:

1. Create ``golive/dialects/<name>.py`` with a class deriving from ``Dialect`` (``base.py``). Set the
   class attributes (``name``, ``can_read``/``can_write``, ``max_identifier_length`` with a link to the
   vendor's limits page, ...).
2. A *source* dialect provides introspection into ``golive.schema.SourceSchema``, a value profile per
   column, the type decision into ``golive.types.TargetType`` and the SQL that renders each row for the
   target's bulk loader. See ``sqlite.py``.
3. A *target* dialect renders ``TargetType`` through its ``WRITE_TYPES`` table, creates tables,
   constraints and indexes, bulk-loads chunks and translates driver errors into ``golive.errors``.
   See ``postgresql.py``.
4. Register it in ``DIALECTS`` below and add a test table in ``tests/dialects/test_<name>.py``.
"""

from __future__ import annotations

import difflib

from golive.errors import ConfigError

#: name -> "module:Class", imported on demand so unused drivers cost nothing
DIALECTS = {
    "sqlite": "golive.dialects.sqlite:SQLiteDialect",
    "postgresql": "golive.dialects.postgresql:PostgresDialect",
    "mysql": "golive.dialects.mysql:MySQLDialect",
}


def get_dialect(name: str):
    """Return the dialect instance for ``name``; an unknown name gets the closest suggestion."""
    spec = DIALECTS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, DIALECTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Known: {', '.join(sorted(DIALECTS))}."
        raise ConfigError(f"unsupported dialect {name!r}.{hint}")
    import importlib

    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)()

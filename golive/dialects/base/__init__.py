"""The contract every engine package fulfils, and how sources and targets meet.

An engine is a ``Dialect`` (``golive/dialects/<engine>/dialect.py``): mostly settings, each with its source, plus
one *implementation* per concern, loaded when first used (so a SQLite run never imports a MySQL driver)::

    class MySQLDialect(Dialect):
        name = "mysql"
        max_identifier_length = 64      # https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html
        session = Implementation("golive.dialects.mysql.session:MySQLSession")
        source = Implementation("golive.dialects.mysql.source:MySQLSource")

The concerns are declared in this package, one module per concern (as each engine package has one module
per concern), as classes (alembic's ``DefaultImpl``): every method a capability package may call,
with a docstring and either a default or ``NotImplementedError``. Capability code asks ``dialect.source.profile(...)``
or ``dialect.has_schemas``; it never probes with ``hasattr`` and never compares engine names. A concern an engine
lacks is ``Unsupported``: touching it raises one readable ``ConfigError`` (``dialect.supports("target")`` asks first).

Sources and targets meet through the neutral models (``golive.model``: types, schema, plan, results) and the wire
format (``migrate.Wire``), so N sources and M targets need N + M pieces of code, not N × M.
"""

from golive.dialects.base.archive import Archive, Receiver
from golive.dialects.base.backup import Backup
from golive.dialects.base.capture import Capture
from golive.dialects.base.checksums import Checksums
from golive.dialects.base.concern import Concern, Implementation, Unsupported
from golive.dialects.base.dialect import Dialect
from golive.dialects.base.health import Health
from golive.dialects.base.maintenance import Maintenance
from golive.dialects.base.migrate import (SNAPSHOT_LOST, Decision, Source, Target, Wire, fit_table_ddl,
                                          plan_views_and_others, rename_sql, target_not_empty, translate_sql)
from golive.dialects.base.release import Release
from golive.dialects.base.session import Session, StatementFailure, lock_key

__all__ = ["Archive", "Receiver", "Backup", "Capture", "Checksums", "Concern", "Decision", "Dialect", "Health", "Implementation", "Maintenance",
           "Release", "SNAPSHOT_LOST", "Session", "Source", "StatementFailure", "Target", "Unsupported", "Wire",
           "fit_table_ddl", "lock_key", "plan_views_and_others", "rename_sql", "target_not_empty", "translate_sql"]

"""The dialect itself: settings (class attributes, each with its source) and one implementation per concern,
loaded on first use (``Implementation``), or ``Unsupported``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Unsupported

if TYPE_CHECKING:
    from golive.dialects.base.archive import Archive
    from golive.dialects.base.backup import Backup
    from golive.dialects.base.capture import Capture
    from golive.dialects.base.checksums import Checksums
    from golive.dialects.base.health import Health
    from golive.dialects.base.maintenance import Maintenance
    from golive.dialects.base.migrate import Source, Target, Wire
    from golive.dialects.base.release import Release
    from golive.dialects.base.session import Session
    from golive.urls import DatabaseURL


class Dialect:
    """One database engine: settings (class attributes, each with its source) and its concerns."""

    #: registry name, as used in URLs and plans
    name: str = ""
    #: the name people read in messages
    title: str = ""
    #: URL schemes naming this engine (``golive.urls``)
    url_schemes: tuple[str, ...] = ()
    #: the URL names a file (SQLite), not a server
    file_based: bool = False
    #: the server's port when the URL names none
    default_port: int | None = None
    #: longest identifier (0 = no practical limit), counted in ``identifier_unit`` ("bytes" or "characters")
    max_identifier_length: int = 0
    identifier_unit: str = "bytes"
    #: a database holds schemas (namespaces); else a table lives directly in the database
    has_schemas: bool = False
    #: the schema a URL's tables live in when none is named (None: no schemas)
    default_schema: str | None = None
    #: index names share the namespace of tables (PostgreSQL) instead of being per table (MySQL)
    indexes_share_table_namespace: bool = False
    #: column names compare case-insensitively (MySQL: always)
    column_names_fold_case: bool = False
    #: keys over a prefix of a column (``KEY (name(20))``)
    supports_prefix_indexes: bool = False
    #: index methods kept as they are between two databases of this engine (MySQL: FULLTEXT, SPATIAL)
    keeps_index_methods: tuple[str, ...] = ()
    #: DDL runs inside transactions
    transactional_ddl: bool = False
    #: GENERATED ALWAYS AS (...) STORED columns, as a target
    supports_generated: bool = False
    #: as a source: its CHECK constraints / views are translated to the target (else reported)
    translates_checks: bool = False
    #: as a target: the planner measures the longest stored value of text, JSON and binary columns (MySQL sizes
    #: TEXT/MEDIUMTEXT/LONGTEXT by it)
    wants_lengths: bool = False
    #: sqlglot's name of this dialect (translating views, CHECKs and expressions between engines)
    sqlglot_name: str = ""
    #: the bulk-load format this dialect reads as a target (None: not a target)
    wire: Wire | None = None
    #: the driver's placeholder in SQL text ("%s": psycopg, PyMySQL; "?": sqlite3)
    paramstyle: str = "%s"
    #: appended to a SELECT to lock the rows it reads until the transaction ends ("" where a transaction takes
    #: the write lock itself: SQLite's BEGIN IMMEDIATE)
    row_lock_clause: str = " FOR UPDATE"
    #: column types of golive's own small tables: text usable in a primary key, and long text
    key_text_type: str = "TEXT"
    long_text_type: str = "TEXT"
    #: appended to golive's own CREATE TABLE statements
    table_options: str = ""

    # --- concerns (each engine package names its implementations; see the classes below)
    session: "Session" = Unsupported("connect to")
    source: "Source" = Unsupported("read")
    target: "Target" = Unsupported("write")
    checksums: "Checksums" = Unsupported("validate")
    backup: "Backup" = Unsupported("back up")
    health: "Health" = Unsupported("report on")
    maintenance: "Maintenance" = Unsupported("maintain")
    release: "Release" = Unsupported("release to")
    capture: "Capture" = Unsupported("capture changes of")
    archive: "Archive" = Unsupported("archive the change log of")

    def supports(self, concern: str) -> bool:
        """Does this engine implement ``concern`` ("source", "target", "backup", …)?"""
        for klass in type(self).__mro__:
            if concern in klass.__dict__:
                return not isinstance(klass.__dict__[concern], Unsupported)
        raise AttributeError(concern)

    @property
    def can_read(self) -> bool:
        return self.supports("source")

    @property
    def can_write(self) -> bool:
        return self.supports("target")

    def quote(self, name: str) -> str:
        """The identifier quoted for this engine's SQL."""
        raise NotImplementedError

    def qualified(self, schema: str | None, name: str) -> str:
        """``schema.name`` quoted (just ``name`` where the engine has no schemas)."""
        return f"{self.quote(schema)}.{self.quote(name)}" if schema and self.has_schemas else self.quote(name)

    def check(self, url: "DatabaseURL") -> None:
        """Cheap checks of a URL of this engine (names a database; a SQLite file exists and is SQLite)."""

    def resolve(self, url: "DatabaseURL", *, start: bool = True) -> "DatabaseURL":
        """The URL of a running database (an ``embedded://`` URL starts its server); others as they are.
        ``start=False`` (dry runs): a server golive would start is used only if it already runs, else ``url`` comes
        back as it was (``form == "dir"``): nothing is created or started."""
        return url

    def running_servers(self) -> list:
        """The servers golive started for this engine's URLs (``embedded://DIR``) that still run: objects with
        ``data_dir``, ``pid``, ``url`` and ``line()``."""
        return []

    def stop_server(self, url: "DatabaseURL"):
        """Stop the server golive started for ``url`` (``embedded://DIR``); what was stopped, None if none ran."""
        from golive.errors import ConfigError

        raise ConfigError(f"golive starts no {self.title} server for {url.masked}: only embedded://DIR is its own")

    def location(self, url: "DatabaseURL") -> str:
        """Where the URL's database is (host, port, database; a file's path), without credentials."""
        return f"{url.host}:{url.port}/{url.database}"

    def connect(self, url: "DatabaseURL", **kwargs):
        """A DB-API connection (``session.connect``); any failure is one ``ConnectionFailed`` line."""
        return self.session.connect(url, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

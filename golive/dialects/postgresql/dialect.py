"""PostgreSQL: settings, and where each concern is implemented."""

from __future__ import annotations

from golive.dialects.base import Dialect, Implementation, Wire
from golive.dialects.postgresql.session import libpq, qi
from golive.urls import DatabaseURL


class PostgresDialect(Dialect):
    name = "postgresql"
    title = "PostgreSQL"
    url_schemes = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")
    default_port = 5432
    # https://www.postgresql.org/docs/current/limits.html (NAMEDATALEN - 1)
    max_identifier_length = 63
    identifier_unit = "bytes"
    # https://www.postgresql.org/docs/current/ddl-schemas.html
    has_schemas = True
    default_schema = "public"
    # https://www.postgresql.org/docs/current/sql-createindex.html: an index is a relation of its schema
    indexes_share_table_namespace = True
    # https://wiki.postgresql.org/wiki/Transactional_DDL_in_PostgreSQL:_A_Competitive_Analysis
    transactional_ddl = True
    # https://www.postgresql.org/docs/current/ddl-generated-columns.html
    supports_generated = True
    translates_checks = True
    sqlglot_name = "postgres"
    #: COPY … (FORMAT csv, QUOTE '''', NULL 'NULL') reads the wire format as base.Wire's defaults say
    wire = Wire(name="postgresql")

    session = Implementation("golive.dialects.postgresql.session:PostgresSession")
    source = Implementation("golive.dialects.postgresql.source:PostgresSource")
    target = Implementation("golive.dialects.postgresql.target:PostgresTarget")
    checksums = Implementation("golive.dialects.postgresql.checksums:PostgresChecksums")
    backup = Implementation("golive.dialects.postgresql.backup:PostgresBackup")
    health = Implementation("golive.dialects.postgresql.health:PostgresHealth")
    maintenance = Implementation("golive.dialects.postgresql.maintenance:PostgresMaintenance")
    release = Implementation("golive.dialects.postgresql.release:PostgresRelease")
    capture = Implementation("golive.dialects.postgresql.capture:PostgresCapture")
    archive = Implementation("golive.dialects.postgresql.archive:PostgresArchive")

    def quote(self, name: str) -> str:
        return qi(name)

    def check(self, url: DatabaseURL) -> None:
        libpq(url)  # a PostgreSQL URL

    def resolve(self, url: DatabaseURL, *, start: bool = True) -> DatabaseURL:
        """``embedded://DIR``: start (or reuse) the embedded PostgreSQL kept in DIR and return its real URL
        (``start=False``: only a server already running)."""
        if url.dialect == url.engine:
            return url
        from golive.dialects.postgresql.embedded import resolve

        return resolve(url, start=start)

    def running_servers(self) -> list:
        from golive.dialects.postgresql.embedded import running_servers

        return running_servers()

    def stop_server(self, url: DatabaseURL):
        if url.dialect == url.engine:
            return super().stop_server(url)
        from golive.dialects.postgresql.embedded import stop_server

        return stop_server(url.path or "golive-pgdata")

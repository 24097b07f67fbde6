"""MySQL / MariaDB: settings, and where each concern is implemented."""

from __future__ import annotations

from golive.dialects.base import Dialect, Implementation, Wire
from golive.dialects.mysql.options import resolve
from golive.dialects.mysql.session import qi
from golive.urls import DatabaseURL


class MySQLDialect(Dialect):
    name = "mysql"
    title = "MySQL/MariaDB"
    url_schemes = ("mysql", "mariadb", "mysql+pymysql")
    default_port = 3306
    # https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html (64 characters)
    max_identifier_length = 64
    identifier_unit = "characters"
    # https://dev.mysql.com/doc/refman/8.0/en/identifier-case-sensitivity.html: "Column, index, stored routine,
    # event, and resource group names are not case-sensitive on any platform"
    column_names_fold_case = True
    # https://dev.mysql.com/doc/refman/8.0/en/column-indexes.html#column-indexes-prefix
    supports_prefix_indexes = True
    keeps_index_methods = ("fulltext", "spatial")
    # https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html: DDL commits implicitly
    transactional_ddl = False
    # https://mariadb.com/kb/en/generated-columns/
    supports_generated = True
    translates_checks = True
    #: the planner gives text, JSON and binary columns their longest stored value (MySQL sizes types by it)
    wants_lengths = True
    sqlglot_name = "mysql"
    #: LOAD DATA reads numbers for booleans, plain hex (UNHEX on the way in), timestamps as
    #: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, arrays as JSON; text may hold NUL bytes
    wire = Wire(name="mysql", bool_true="1", bool_false="0", binary="hex", timestamps="plain", arrays="json",
                zone_aware=False, nul_in_text=True)

    key_text_type = "VARCHAR(255)"
    long_text_type = "LONGTEXT"
    table_options = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    session = Implementation("golive.dialects.mysql.session:MySQLSession")
    source = Implementation("golive.dialects.mysql.source:MySQLSource")
    target = Implementation("golive.dialects.mysql.target:MySQLTarget")
    checksums = Implementation("golive.dialects.mysql.checksums:MySQLChecksums")
    backup = Implementation("golive.dialects.mysql.backup:MySQLBackup")
    health = Implementation("golive.dialects.mysql.health:MySQLHealth")
    maintenance = Implementation("golive.dialects.mysql.maintenance:MySQLMaintenance")
    release = Implementation("golive.dialects.mysql.release:MySQLRelease")
    capture = Implementation("golive.dialects.mysql.capture:MySQLCapture")
    archive = Implementation("golive.dialects.mysql.archive:MySQLArchive")

    def quote(self, name: str) -> str:
        return qi(name)

    def check(self, url: DatabaseURL) -> None:
        resolve(url)  # a MySQL URL naming a database, known parameters, an option file that exists

    def location(self, url: DatabaseURL) -> str:
        return f"mysql:{url.query.get('unix_socket') or url.host}:{url.port}/{url.database}"

"""What every dialect declares. Differences are class attributes (alembic/dlt style), each with its source."""

from __future__ import annotations


class Dialect:
    #: registry name, as used in URLs
    name: str = ""
    #: can golive read from it / write to it
    can_read: bool = False
    can_write: bool = False
    #: longest identifier in bytes (0 = no practical limit)
    max_identifier_length: int = 0
    #: DDL runs inside transactions
    transactional_ddl: bool = False

    def quote(self, name: str) -> str:
        raise NotImplementedError

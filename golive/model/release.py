"""What a release and an engine's ``Release`` concern share: the catalog facts the pre-check reads, its check lines,
the lint rules and their hits, how migration SQL reads on an engine.

Neutral: no engine is named here, and nothing here imports ``golive.release`` or a dialect. The engines
(``golive/dialects/<engine>/release.py``) return these; ``golive.release`` reads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field

#: a table as the release names it: (schema, table); schema None where the engine has no schemas
TableKey = tuple[str | None, str]


def label(key: TableKey) -> str:
    """``schema.table``, or ``table`` where there is no schema."""
    return f"{key[0]}.{key[1]}" if key[0] else key[1]


def text_of(value) -> str:
    """A catalog value as text (drivers hand some back as bytes; NULL as '')."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` as UTC wall-clock time without a zone (a DATETIME column)."""
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


# ---------------------------------------------------------------- how migration SQL reads


@dataclass(frozen=True)
class SqlSyntax:
    """The lexical rules that decide where a statement of a migration ends, and how a name reads."""

    #: ``#`` starts a comment (MySQL)
    hash_comments: bool = False
    #: a backslash escapes the next character inside '…' and "…" (MySQL, unless NO_BACKSLASH_ESCAPES)
    backslash_escapes: bool = False
    #: ``$tag$ … $tag$`` quotes a string (PostgreSQL dollar quoting)
    dollar_quotes: bool = False
    #: the command-line client's ``DELIMITER //`` directive changes the statement terminator
    delimiter_directive: bool = False
    #: unquoted names fold to lower case (PostgreSQL); else they are kept as written
    folds_unquoted: bool = False


# ---------------------------------------------------------------- catalog facts


class ServerInfo(BaseModel):
    """The server and the session the pre-check connected as."""

    product: str = Field(description="PostgreSQL, MySQL or MariaDB")
    version: str
    version_num: int = Field(0, description="PostgreSQL's server_version_num (110000 = 11.0); 0 elsewhere")
    database: str
    user: str
    schema_name: str | None = Field(None, description="The schema unqualified names resolve to (None: no schemas)")
    bytes: int = 0
    superuser: bool = False


class TableInfo(BaseModel):
    """A table the migrations change, as the live catalog sizes it."""

    schema_name: str | None
    name: str
    bytes: int
    rows: int = Field(description="The planner's estimate")
    has_rows: bool

    @property
    def key(self) -> TableKey:
        return (self.schema_name, self.name)

    @property
    def label(self) -> str:
        return label(self.key)


class LongTransaction(BaseModel):
    """A transaction open longer than the pre-check's threshold."""

    session: int | str = Field(description="The server's id of its session (pid, connection id)")
    name: str = Field(description="How messages name the session: 'pid 123', 'connection 45'")
    who: str
    seconds: float
    query: str = ""
    tables: set[str] = Field(default_factory=set, description="Tables it holds locks on (labels: schema.table)")


class Check(BaseModel):
    """One pre-check line."""

    id: str
    status: Literal["pass", "warn", "fail"]
    message: str
    details: dict = Field(default_factory=dict)


def ok(id: str, message: str, **details) -> Check:
    return Check(id=id, status="pass", message=message, details=details)


def warn(id: str, message: str, **details) -> Check:
    return Check(id=id, status="warn", message=message, details=details)


def fail(id: str, message: str, **details) -> Check:
    return Check(id=id, status="fail", message=message, details=details)


# ---------------------------------------------------------------- lint rules


@dataclass(frozen=True)
class Rule:
    """A lint rule: an ID for ``--allow``, how size decides its severity, the message and the fix."""

    id: str
    sizing: str  # size | rows | dml | always | advice
    message: str
    fix: str
    #: the statement rewrites the whole table (the pre-check wants that much free space on the server)
    rewrites: bool = False


@dataclass
class Hit:
    """A rule found in one statement, on one table."""

    rule: str
    table: TableKey | None
    detail: str = ""


class LintFacts(Protocol):
    """What an engine's lint rules may ask of the live database while reading one statement."""

    #: PostgreSQL's server_version_num (0 elsewhere)
    version_num: int

    def coltype(self, table: TableKey, column: str) -> str | None:
        """The column's type as the server prints it now (None: unknown, or a table the release creates)."""

    def column(self, text: str) -> str:
        """A column name as written in the SQL, as the server resolves it (quotes removed, case folded)."""

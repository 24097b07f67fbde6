"""Database URLs: parse, describe, and print without secrets.

Accepted forms::

    sqlite:///relative/app.db   sqlite:////abs/app.db   ./app.db (a bare path means SQLite)
    postgresql://user:pass@host:5432/db?sslmode=require   (also postgres://, postgresql+psycopg://)
    mysql://user:pass@host:3306/db                        (also mariadb://, mysql+pymysql://)
    embedded://DIR     an embedded PostgreSQL 16 (pgserver) kept in DIR
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from golive.errors import ConfigError

_SCHEMES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "postgresql+psycopg2": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mysql+pymysql": "mysql",
    "embedded": "embedded",
}

_PW_RE = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)(?P<pw>[^@/?#]*)(?P<post>@)")
_QS_PW_RE = re.compile(r"(?P<pre>[?&](?:password|passwd|secret|token|sslpassword)=)(?P<pw>[^&\s]*)", re.I)


def mask(text: str) -> str:
    """Replace every password in URLs inside ``text`` with ``***``.

    Works on whole messages as well as on single URLs, so it can be applied to anything that is
    about to be printed, logged or written to a report.
    """
    if not text:
        return text
    text = _PW_RE.sub(lambda m: m.group("pre") + ("***" if m.group("pw") else "") + m.group("post"), text)
    return _QS_PW_RE.sub(lambda m: m.group("pre") + "***", text)


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL. ``str()`` gives the masked form; ``raw`` keeps the original."""

    raw: str
    dialect: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return mask(self.raw)

    def __repr__(self) -> str:
        return f"DatabaseURL({mask(self.raw)!r})"

    @property
    def masked(self) -> str:
        return mask(self.raw)

    def libpq(self) -> str:
        """A URL for psycopg/libpq (drops SQLAlchemy-style driver suffixes)."""
        if self.dialect != "postgresql":
            raise ConfigError(f"{self.masked} is not a PostgreSQL URL")
        return re.sub(r"^[a-zA-Z0-9+.-]+://", "postgresql://", self.raw, count=1)


def parse_url(url: str, *, role: str = "database") -> DatabaseURL:
    """Parse ``url`` or raise ``ConfigError`` naming what is wrong, with the password masked."""
    if not url or not url.strip():
        raise ConfigError(f"no {role} URL given")
    url = url.strip()
    if "://" not in url:
        # a bare path: SQLite, as users type it
        return DatabaseURL(raw=f"sqlite:///{url}", dialect="sqlite", path=Path(url))
    scheme = url.split("://", 1)[0].lower()
    dialect = _SCHEMES.get(scheme)
    if dialect is None:
        known = ", ".join(sorted({"sqlite", "postgresql", "mysql", "embedded"}))
        raise ConfigError(f"{role} URL {mask(url)!r}: unknown scheme {scheme!r} (known: {known})")
    if dialect == "sqlite":
        rest = url.split("://", 1)[1]
        if rest.startswith("/"):
            rest = rest[1:]  # sqlite:///rel -> rel ; sqlite:////abs -> /abs
        rest = rest.split("?", 1)[0]
        if not rest:
            raise ConfigError(f"{role} URL {url!r} names no SQLite file (sqlite:///path/to/app.db)")
        return DatabaseURL(raw=url, dialect="sqlite", path=Path(unquote(rest)))
    if dialect == "embedded":
        rest = url.split("://", 1)[1] or "golive-pgdata"
        return DatabaseURL(raw=url, dialect="embedded", path=Path(unquote(rest)))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{role} URL {mask(url)!r} is malformed: {exc}") from None
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host")
    database = unquote(parts.path.lstrip("/")) or None
    if dialect == "mysql" and not database:
        raise ConfigError(f"{role} URL {mask(url)!r} names no database (mysql://user@host/dbname)")
    return DatabaseURL(
        raw=url,
        dialect=dialect,
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
        query=query,
    )

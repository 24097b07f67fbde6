"""Database URLs: parse once into a typed ``DatabaseURL``, describe, and print without secrets.

Accepted forms::

    sqlite:///relative/app.db   sqlite:////abs/app.db   ./app.db (a bare path means SQLite)
    postgresql://user:pass@host:5432/db?sslmode=require   (also postgres://, postgresql+psycopg://)
    mysql://user:pass@host:3306/db                        (also mariadb://, mysql+pymysql://)
    embedded://DIR     an embedded PostgreSQL 16 (pgserver) kept in DIR (?database=NAME: that database, created)

Entry points (the CLI, a flow's first step, a public function called with a string) call ``as_url`` once; everything
below them passes the ``DatabaseURL`` on. Its password is a ``SecretStr`` and ``str()``/``repr()`` mask it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

from golive.errors import ConfigError

#: scheme -> (what the URL names: its ``dialect``, the engine behind it, and how the rest of the URL reads:
#: "file" a path, "dir" a directory, "server" host/port/database, "server+db" the same with a database required)
_SCHEMES = {
    "sqlite": ("sqlite", "sqlite", "file"),
    "postgresql": ("postgresql", "postgresql", "server"),
    "postgres": ("postgresql", "postgresql", "server"),
    "postgresql+psycopg": ("postgresql", "postgresql", "server"),
    "postgresql+psycopg2": ("postgresql", "postgresql", "server"),
    "mysql": ("mysql", "mysql", "server+db"),
    "mariadb": ("mysql", "mysql", "server+db"),
    "mysql+pymysql": ("mysql", "mysql", "server+db"),
    "embedded": ("embedded", "postgresql", "dir"),
}

#: a URL given as the name of a Prefect Secret block holding it (``golive.credentials``)
BLOCK_PREFIX = "block:"

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


def secret(value):
    """The plain string of a value given as ``str``, pydantic ``SecretStr`` or ``DatabaseURL`` (None stays None):
    the one place that unwraps a secret."""
    if value is None:
        return None
    if isinstance(value, DatabaseURL):
        return value.raw
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


@dataclass(frozen=True, eq=False)
class DatabaseURL:
    """A parsed database URL. ``str()``/``repr()`` give the masked form; ``raw`` is the URL as given, password
    included: hand it to drivers, never print it."""

    secret_url: SecretStr = field(repr=False)
    #: what the URL names: "sqlite", "postgresql", "mysql" or "embedded"
    dialect: str
    #: the engine behind it (an embedded URL names a PostgreSQL)
    engine: str
    #: how the URL reads: "file" (a path), "dir" (a directory), "server" (host, port, database)
    form: str = "server"
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> str:
        return self.secret_url.get_secret_value()

    def __str__(self) -> str:
        return mask(self.raw)

    def __repr__(self) -> str:
        return f"DatabaseURL({mask(self.raw)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, DatabaseURL) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    @property
    def masked(self) -> str:
        return mask(self.raw)

    @property
    def name(self) -> str | None:
        """What the URL names, without anything secret: the file's stem, the directory's name, the database."""
        if self.form == "file":
            return self.path.stem if self.path else None
        if self.form == "dir":
            return self.path.name if self.path else None
        return self.database

    @property
    def password_text(self) -> str | None:
        """The password in plain text, for a driver (never print it)."""
        return self.password.get_secret_value() if self.password is not None else None

    def with_database(self, name: str, *, role: str = "database") -> "DatabaseURL":
        """The same server and credentials, another database."""
        from urllib.parse import urlunsplit

        parts = urlsplit(self.raw)
        return parse_url(urlunsplit(parts._replace(path="/" + name)), role=role)


def as_url(value, *, role: str = "database") -> DatabaseURL:
    """``value`` as a ``DatabaseURL``: an already parsed one as it is, a string or ``SecretStr`` parsed;
    ``block:NAME`` is the URL that Prefect Secret block holds (``golive.credentials``)."""
    if isinstance(value, DatabaseURL):
        return value
    text = secret(value) or ""
    if text.strip().startswith(BLOCK_PREFIX):
        text = resolve_secret(text)  # reads the Prefect API: only when a block is named
    return parse_url(text, role=role)


def parse_url(url: str, *, role: str = "database") -> DatabaseURL:
    """Parse ``url`` or raise ``ConfigError`` naming what is wrong, with the password masked."""
    if not url or not url.strip():
        raise ConfigError(f"no {role} URL given")
    url = url.strip()
    if url.startswith(BLOCK_PREFIX):  # never a file named "block:…": as_url reads the block first
        raise ConfigError(f"{role} {url!r} names a Prefect Secret block: it is read where the URL is taken (as_url)")
    if "://" not in url:
        # a bare path: SQLite, as users type it
        return DatabaseURL(secret_url=SecretStr(f"sqlite:///{url}"), dialect="sqlite", engine="sqlite", form="file",
                           path=Path(url))
    scheme = url.split("://", 1)[0].lower()
    known = _SCHEMES.get(scheme)
    if known is None:
        names = ", ".join(sorted({d for d, _, _ in _SCHEMES.values()}))
        raise ConfigError(f"{role} URL {mask(url)!r}: unknown scheme {scheme!r} (known: {names})")
    dialect, engine, form = known
    rest = url.split("://", 1)[1]
    if form == "file":
        if rest.startswith("/"):
            rest = rest[1:]  # sqlite:///rel -> rel ; sqlite:////abs -> /abs
        rest = rest.split("?", 1)[0]
        if not rest:
            raise ConfigError(f"{role} URL {url!r} names no SQLite file (sqlite:///path/to/app.db)")
        return DatabaseURL(secret_url=SecretStr(url), dialect=dialect, engine=engine, form=form,
                           path=Path(unquote(rest)))
    if form == "dir":  # embedded://DIR[?database=NAME]
        rest, _, qs = rest.partition("?")
        return DatabaseURL(secret_url=SecretStr(url), dialect=dialect, engine=engine, form=form,
                           path=Path(unquote(rest or "golive-pgdata")), query=dict(parse_qsl(qs)))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{role} URL {mask(url)!r} is malformed: {exc}") from None
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host")
    database = unquote(parts.path.lstrip("/")) or None
    if form == "server+db" and not database:
        raise ConfigError(f"{role} URL {mask(url)!r} names no database ({scheme}://user@host/dbname)")
    return DatabaseURL(
        secret_url=SecretStr(url),
        dialect=dialect,
        engine=engine,
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password is not None else None,
        database=database,
        query=query,
    )


# ---------------------------------------------------------------------- block:NAME
# Any URL (or key) golive takes may be written ``block:NAME``: the value of the Prefect ``Secret`` block NAME, read
# from the Prefect API in use (``PREFECT_API_URL`` or the local server). The CLI and the flows both resolve through
# ``resolve_secret`` at their entry point; what they pass on is the value, as a ``SecretStr`` or a parsed
# ``DatabaseURL``. Reading a block is the one place ``golive/`` talks to Prefect, and it imports Prefect only then.


def is_block_ref(value) -> bool:
    return secret(value).strip().startswith(BLOCK_PREFIX)


def resolve_secret(value) -> str:
    """The plain value of a parameter given as a string, a ``SecretStr``, or ``block:NAME`` (a Secret block)."""
    raw = secret(value).strip()
    if not raw.startswith(BLOCK_PREFIX):
        return raw
    name = raw[len(BLOCK_PREFIX):].strip()
    if not name:
        raise ConfigError("'block:' names no Prefect block (write block:NAME)")
    try:
        got = _load_secret_block(name)
    except ValueError as exc:
        raise ConfigError(f"Prefect Secret block {name!r} not found ({exc}); create it with "
                          f"prefect block create secret, or Secret(value=...).save({name!r})") from None
    if not isinstance(got, str):
        raise ConfigError(f"Prefect Secret block {name!r} holds a {type(got).__name__}, not a URL string")
    return got


def _load_secret_block(name: str):
    """The value of Prefect ``Secret`` block ``name`` (raises ``ValueError`` when there is none)."""
    from prefect.blocks.system import Secret  # only when a block is named: plain URLs never import Prefect

    return Secret.load(name).get()

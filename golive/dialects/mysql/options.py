"""How a MySQL URL becomes a connection: its parameters, the option files and environment the MySQL client reads,
and TLS.

Each setting comes from the first place that has it, as the ``mysql`` client decides
(https://dev.mysql.com/doc/refman/8.0/en/connecting.html, /option-files.html, /environment-variables.html):

1. the URL: ``mysql://user:password@host:port/db?ssl_mode=REQUIRED&…``;
2. an option file: the one ``?defaults_file=PATH`` names (also spelled ``read_default_file``), else
   ``~/.my.cnf``; its ``[client]`` and ``[mysql]`` groups, and ``?defaults_group=NAME`` (``read_default_group``)
   after them. Keys: ``user``, ``password``, ``host``, ``port``, ``socket``, ``ssl-mode``, ``ssl``, ``skip-ssl``,
   ``ssl-ca``, ``ssl-capath``, ``ssl-cert``, ``ssl-key``, ``ssl-cipher``, ``ssl-verify-server-cert``;
3. the environment: ``MYSQL_PWD``, ``MYSQL_HOST``, ``MYSQL_TCP_PORT``, ``MYSQL_UNIX_PORT`` (a socket);
4. the defaults: your login name, localhost, 3306.

So a password never has to be on a command line. TLS (``ssl_mode``, any of the spellings in ``TLS_MODES``): a
request for TLS gets TLS or an error, never a plaintext connection. ``DISABLED``: no TLS; ``PREFERRED``: TLS when
the server offers it, unverified; ``REQUIRED``: TLS, unverified (verified against ``ssl_ca`` when one is given);
``VERIFY_CA``: the server's certificate must be signed by ``ssl_ca`` (or a CA the system trusts);
``VERIFY_IDENTITY``: and name the host. Giving ``ssl_ca``, ``ssl_cert`` or ``ssl_key`` alone means
``VERIFY_CA`` (with a CA) or ``REQUIRED``. A Unix socket is local: no TLS is needed to reach it, as MySQL counts it a
secure transport. Without any TLS parameter golive connects as the driver does by default (PyMySQL ≥ 1.2:
TLS when the server offers it).
"""

from __future__ import annotations

import getpass
import os
import re
import ssl as ssl_module
from dataclasses import dataclass, field
from pathlib import Path

from golive.errors import ConfigError
from golive.urls import DatabaseURL

#: the URL parameters golive reads, as written in its messages (``-`` and ``_`` are the same, case is ignored)
PARAMETERS = ("charset", "connect_timeout", "read_timeout", "write_timeout", "unix_socket", "defaults_file",
              "defaults_group", "ssl_mode", "ssl", "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_cipher",
              "ssl_verify_cert", "ssl_verify_identity")
#: other spellings people use: PyMySQL's, PostgreSQL's (``sslmode``, ``sslrootcert``…), MariaDB's, SQLAlchemy's
ALIASES = {"sslmode": "ssl_mode", "read_default_file": "defaults_file", "read_default_group": "defaults_group",
           "socket": "unix_socket", "sslrootcert": "ssl_ca", "sslcert": "ssl_cert", "sslkey": "ssl_key",
           "ssl_verify_server_cert": "ssl_verify_identity", "ssl_check_hostname": "ssl_verify_identity",
           "tls": "ssl", "useSSL": "ssl"}
#: every ``ssl_mode`` spelling -> MySQL's name for it (PostgreSQL's sslmode values included)
TLS_MODES = {"DISABLED": "DISABLED", "DISABLE": "DISABLED", "PREFERRED": "PREFERRED", "PREFER": "PREFERRED",
             "ALLOW": "PREFERRED", "REQUIRED": "REQUIRED", "REQUIRE": "REQUIRED", "VERIFY_CA": "VERIFY_CA",
             "VERIFY_IDENTITY": "VERIFY_IDENTITY", "VERIFY_FULL": "VERIFY_IDENTITY"}
#: the modes that must end in TLS (or an error)
REQUIRES_TLS = ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
#: the option-file groups read, in order (later ones win, as in the mysql client)
GROUPS = ("client", "mysql")


#: TLS contexts made in this process, by the settings they were made of
_CONTEXTS: dict[tuple, ssl_module.SSLContext] = {}
#: (host, port) of the servers found to offer no TLS, in this process: a connection that only prefers TLS goes
#: there without at once (rather than make a context, be refused and connect again)
PLAINTEXT: set[tuple] = set()


@dataclass
class TLS:
    """What the URL (or the option file) asks of TLS; ``mode`` None: nothing asked, the driver's default."""

    mode: str | None = None
    ca: str | None = None
    capath: str | None = None
    cert: str | None = None
    key: str | None = None
    cipher: str | None = None

    @property
    def required(self) -> bool:
        return self.mode in REQUIRES_TLS

    def context(self) -> ssl_module.SSLContext:
        """The ``ssl.SSLContext`` of ``mode`` (not for DISABLED), made once per process for the same settings:
        making one loads the system's CA certificates (50-100 ms), and golive opens many connections."""
        key = (self.mode, self.ca, self.capath, self.cert, self.key, self.cipher)
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = _CONTEXTS[key] = self._context()
        return ctx

    def _context(self) -> ssl_module.SSLContext:
        verify = self.mode in ("VERIFY_CA", "VERIFY_IDENTITY")
        try:
            ctx = ssl_module.create_default_context(cafile=self.ca, capath=self.capath)
        except (ssl_module.SSLError, OSError) as exc:
            raise ConfigError(f"ssl_ca {self.ca or self.capath}: not a CA certificate "
                              f"({getattr(exc, 'reason', None) or exc})") from None
        # the certificates MySQL generates for itself fail Python 3.13's strict X.509 checks (PyMySQL does the same)
        ctx.verify_flags &= ~getattr(ssl_module, "VERIFY_X509_STRICT", 0)
        ctx.check_hostname = self.mode == "VERIFY_IDENTITY"
        ctx.verify_mode = ssl_module.CERT_REQUIRED if verify else ssl_module.CERT_NONE
        try:
            if self.cert:
                ctx.load_cert_chain(self.cert, keyfile=self.key)
            if self.cipher:
                ctx.set_ciphers(self.cipher)
        except (ssl_module.SSLError, OSError) as exc:
            what = f"ssl_cipher {self.cipher}" if self.cipher and not self.cert else f"ssl_cert {self.cert}"
            raise ConfigError(f"{what}: {getattr(exc, 'reason', None) or exc}") from None
        return ctx


@dataclass
class Params:
    """Where and as whom to connect, after the URL, the option file, the environment and the defaults."""

    user: str
    password: str = field(repr=False)
    database: str | None
    host: str
    port: int
    unix_socket: str | None
    charset: str
    connect_timeout: int
    tls: TLS
    #: where the password came from ("the URL", "MYSQL_PWD", the option file's path, or "" for none)
    password_from: str = ""
    extra: dict = field(default_factory=dict)


def _name(key: str) -> str:
    k = key.strip().replace("-", "_")
    return ALIASES.get(k, ALIASES.get(k.lower(), k.lower()))


def _bool(value: str, what: str) -> bool:
    v = (value or "").strip().lower()
    if v in _TRUE or v == "":
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{what}={value!r}: use true or false")


def url_parameters(url: DatabaseURL) -> dict[str, str]:
    """The URL's parameters under golive's names; an unknown one is one line listing the known ones."""
    out: dict[str, str] = {}
    for key, value in url.query.items():
        name = _name(key)
        if name not in PARAMETERS:
            raise ConfigError(f"{url.masked}: unknown MySQL URL parameter {key!r} (known: {', '.join(PARAMETERS)}; "
                              "also sslmode, read_default_file, sslrootcert, ssl_verify_server_cert)")
        out[name] = value
    return out


def tls_mode(value: str, where: str) -> str:
    """``value`` as MySQL's mode name; ``ConfigError`` listing the accepted ones."""
    mode = TLS_MODES.get(value.strip().upper().replace("-", "_"))
    if mode is None:
        raise ConfigError(f"{where}: unknown ssl_mode {value!r} (use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or "
                          "VERIFY_IDENTITY; PostgreSQL's disable, prefer, require, verify-ca, verify-full also work)")
    return mode


def read_option_file(path: Path, groups: tuple[str, ...], seen: set | None = None) -> dict[str, str]:
    """The options of ``groups`` in the MySQL option file ``path`` (``!include``/``!includedir`` followed),
    later groups and later lines winning; keys with ``_`` for ``-``, the ``loose-`` prefix dropped."""
    seen = set() if seen is None else seen
    if path in seen:
        return {}
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read the MySQL option file {path}: {exc.strerror or exc}") from None
    found: dict[str, dict[str, str]] = {}
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!include "):
            for g, v in _included([path.parent / line.split(None, 1)[1].strip()], groups, seen).items():
                found.setdefault(g, {}).update(v)
            continue
        if line.startswith("!includedir "):
            folder = path.parent / line.split(None, 1)[1].strip()
            files = sorted(p for p in folder.glob("*") if p.suffix in (".cnf", ".ini")) if folder.is_dir() else []
            for g, v in _included(files, groups, seen).items():
                found.setdefault(g, {}).update(v)
            continue
        m = re.fullmatch(r"\[\s*([^\]]+?)\s*\]", line)
        if m:
            group = m.group(1).lower()
            continue
        if group is None:
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower().replace("-", "_")
        key = key[len("loose_"):] if key.startswith("loose_") else key
        value = _unquote(_strip_comment(value.strip())) if sep else ""
        found.setdefault(group, {})[key] = value
    out: dict[str, str] = {}
    for g in groups:
        out.update(found.get(g, {}))
    return out


def _included(files, groups, seen) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for f in files:
        for g in groups:  # read per group so the caller's order of groups still decides
            out.setdefault(g, {}).update(read_option_file(f, (g,), seen=set(seen)))
    return out


def _strip_comment(value: str) -> str:
    if value[:1] in "'\"":
        return value
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "b": "\b", "r": "\r", "s": " "}.get(m.group(1),
                                                                                                   m.group(1)), inner)
    return value


def option_file(q: dict[str, str]) -> tuple[dict[str, str], str]:
    """The option file's settings and its path ('' when there is none): ``defaults_file`` if the URL names one (it
    must exist), else ``~/.my.cnf`` if it exists."""
    named = q.get("defaults_file")
    groups = GROUPS + ((q["defaults_group"],) if q.get("defaults_group") else ())
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"defaults_file {named}: no such file (a MySQL option file with a [client] group)")
        return read_option_file(path, groups), str(path)
    home = Path("~/.my.cnf").expanduser()
    if home.is_file():
        return read_option_file(home, groups), str(home)
    return {}, ""


def resolve(url: DatabaseURL) -> Params:
    """The connection ``url`` names, completed from the option file and the environment (see the module)."""
    if url.dialect != "mysql":
        raise ConfigError(f"{url.masked} is not a MySQL/MariaDB URL")
    q = url_parameters(url)
    opts, opt_path = option_file(q)
    env = os.environ
    password, password_from = None, ""
    if url.password is not None:
        password, password_from = url.password_text, "the URL"
    elif opts.get("password"):
        password, password_from = opts["password"], opt_path
    elif env.get("MYSQL_PWD"):
        password, password_from = env["MYSQL_PWD"], "MYSQL_PWD"
    socket = q.get("unix_socket") or (None if url.host else opts.get("socket") or env.get("MYSQL_UNIX_PORT"))
    host = url.host or opts.get("host") or env.get("MYSQL_HOST") or "localhost"
    port = url.port or _int(opts.get("port"), "port in " + opt_path) or _int(env.get("MYSQL_TCP_PORT"),
                                                                             "MYSQL_TCP_PORT") or 3306
    return Params(user=url.user or opts.get("user") or _login_name(), password=password or "",
                  database=url.database, host=host, port=port, unix_socket=socket,
                  charset=q.get("charset", "utf8mb4"), connect_timeout=_int(q.get("connect_timeout"),
                                                                            "connect_timeout") or 10,
                  tls=_tls(q, opts, url.masked, opt_path), password_from=password_from,
                  extra={k: _int(q[k], k) for k in ("read_timeout", "write_timeout") if q.get(k)})


def _int(value, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what}={value!r} is not a whole number") from None


def _login_name() -> str:
    """The MySQL client's default user: your login name (root when running as root)."""
    try:
        return "root" if os.geteuid() == 0 else getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name at all (a container without a passwd entry)
        return "root"


def _tls(q: dict[str, str], opts: dict[str, str], where: str, opt_path: str) -> TLS:
    """The TLS the URL asks for, else the option file (each file's key named as MySQL spells it)."""
    tls = TLS()
    for key in ("ca", "capath", "cert", "key", "cipher"):
        value = q.get(f"ssl_{key}") or opts.get(f"ssl_{key}")
        setattr(tls, key, value or None)
    for k in ("ca", "capath", "cert", "key"):
        path = getattr(tls, k)
        if path and not Path(path).expanduser().exists():
            raise ConfigError(f"{where}: ssl_{k} {path}: no such file")
        if path:
            setattr(tls, k, str(Path(path).expanduser()))
    mode = None
    if q.get("ssl_mode"):
        mode = tls_mode(q["ssl_mode"], where)
    elif "ssl" in q:
        mode = "REQUIRED" if _bool(q["ssl"], "ssl") else "DISABLED"
    verify = _bool(q["ssl_verify_cert"], "ssl_verify_cert") if q.get("ssl_verify_cert") else None
    if q.get("ssl_verify_identity") and _bool(q["ssl_verify_identity"], "ssl_verify_identity"):
        mode = _stricter(mode, "VERIFY_IDENTITY", where, "ssl_verify_identity=true")
    if verify:
        mode = _stricter(mode, "VERIFY_CA", where, "ssl_verify_cert=true")
    elif verify is False and mode in ("VERIFY_CA", "VERIFY_IDENTITY"):
        raise ConfigError(f"{where}: ssl_verify_cert=false contradicts ssl_mode={mode}")
    if mode is None and opt_path:  # the option file's, as MySQL's and MariaDB's clients spell them
        if opts.get("ssl_mode"):
            mode = tls_mode(opts["ssl_mode"], f"ssl-mode in {opt_path}")
        elif "skip_ssl" in opts or opts.get("ssl", "x").lower() in _FALSE:
            mode = "DISABLED"
        elif "ssl_verify_server_cert" in opts and _bool(opts["ssl_verify_server_cert"], "ssl-verify-server-cert"):
            mode = "VERIFY_IDENTITY"
        elif "ssl" in opts:
            mode = "REQUIRED"
    has_ca = bool(tls.ca or tls.capath)
    if (mode is None or mode == "REQUIRED") and has_ca and verify is not False:
        mode = "VERIFY_CA"  # a CA given is used to verify (as libpq does with sslrootcert)
    elif mode is None and (has_ca or tls.cert or tls.key):
        mode = "REQUIRED"  # certificates given: a TLS request
    if mode == "DISABLED" and any(q.get(f"ssl_{k}") for k in ("ca", "capath", "cert", "key")):
        raise ConfigError(f"{where}: ssl_mode=DISABLED contradicts the certificates given (ssl_ca, ssl_cert, ssl_key)")
    tls.mode = mode
    return tls


def _stricter(mode: str | None, wanted: str, where: str, what: str) -> str:
    order = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
    if mode == "DISABLED":
        raise ConfigError(f"{where}: {what} contradicts ssl_mode=DISABLED")
    return wanted if mode is None or order.index(wanted) > order.index(mode) else mode


def driver_kwargs(p: Params) -> dict:
    """PyMySQL keyword arguments of ``p`` (password included: never log the result)."""
    kwargs: dict = {"user": p.user, "password": p.password, "database": p.database, "charset": p.charset,
                    "connect_timeout": p.connect_timeout, **p.extra}
    if p.unix_socket:
        kwargs["unix_socket"] = p.unix_socket
    else:
        kwargs["host"], kwargs["port"] = p.host, p.port
    if p.tls.mode == "DISABLED" or (not p.tls.required and not p.unix_socket and (p.host, p.port) in PLAINTEXT):
        kwargs["ssl_disabled"] = True
    elif p.tls.mode is not None:
        kwargs["ssl"] = p.tls.context()
    return kwargs


def client_options(p: Params) -> list[str]:
    """The lines of a ``[client]`` option file for MySQL's and MariaDB's own programs (``mariadb-dump``, ``mysql``):
    the same server, user, password and TLS. ``loose-`` options are ignored by a program that lacks them (MySQL 8
    has ``ssl-mode``; MariaDB has ``ssl`` and ``ssl-verify-server-cert``)."""
    lines = ["[client]", f"user={p.user}", f"password={_quote(p.password)}"]
    if p.unix_socket:
        lines.append(f"socket={p.unix_socket}")
    else:
        lines += [f"host={p.host}", f"port={p.port}", "protocol=tcp"]
    t = p.tls
    for k in ("ca", "capath", "cert", "key", "cipher"):
        if getattr(t, k):
            lines.append(f"ssl-{k}={getattr(t, k)}")
    if t.mode:
        lines.append(f"loose-ssl-mode={t.mode}")
    if t.mode == "DISABLED":
        lines.append("loose-skip-ssl")
    elif t.required:
        lines.append("loose-ssl")
    if t.mode == "VERIFY_IDENTITY":
        lines.append("loose-ssl-verify-server-cert")
    return lines


def _quote(value: str) -> str:
    """An option file value as written (quoted when it has spaces, quotes, # or backslashes)."""
    if value and not re.search(r"[\s'\"#\\;]", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sqlalchemy_query(p: Params) -> dict[str, str]:
    """The TLS of ``p`` as ``mysql+pymysql://`` URL parameters (Great Expectations and Alembic connect through
    SQLAlchemy). SQLAlchemy builds PyMySQL's ``ssl`` settings from ``ssl_ca``, ``ssl_capath``, ``ssl_cert``,
    ``ssl_key``, ``ssl_cipher`` and ``ssl_check_hostname``, and passes any other parameter to PyMySQL as given."""
    t = p.tls
    if t.mode == "DISABLED":
        return {"ssl_disabled": "1"}
    if t.mode in (None, "PREFERRED"):
        return {}
    verify = t.mode in ("VERIFY_CA", "VERIFY_IDENTITY")
    if t.cert or t.key or (verify and (t.ca or t.capath)):
        out = {f"ssl_{k}": getattr(t, k) for k in ("cert", "key", "cipher") if getattr(t, k)}
        if verify:
            ca, capath = t.ca, t.capath
            if not (ca or capath):  # no CA named: the ones the system trusts
                paths = ssl_module.get_default_verify_paths()
                ca, capath = paths.cafile, paths.capath
            out.update({k: v for k, v in (("ssl_ca", ca), ("ssl_capath", capath)) if v})
        out["ssl_check_hostname"] = "true" if t.mode == "VERIFY_IDENTITY" else "false"
        return out
    if t.mode == "VERIFY_IDENTITY":
        return {"ssl_verify_identity": "true"}
    if t.mode == "VERIFY_CA":
        return {"ssl_verify_cert": "true"}
    return {"ssl_verify_cert": "false"}  # REQUIRED: a TLS request PyMySQL sees, unverified

"""Fixtures of the release tests: databases named grl_* (PostgreSQL 15 and MariaDB 10.11), migration folders
written in the test, a tiny HTTP app whose health depends on the schema, a local server receiving
notifications, and comparisons of content that do not trust golive (pg_dump text and row digests; SHOW
CREATE TABLE and CHECKSUM TABLE)."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pymysql
import pytest

from conftest import _with_db
from golive.urls import parse_url

#: golive's and the migration tools' bookkeeping: left out of "equal to before" (the journal row changes)
BOOKKEEPING = ("_golive", "_golive_releases", "_golive_migrations")


@pytest.fixture
def pg_db(pg_admin_url):
    """A fresh PostgreSQL database grl_<random>; dropped afterwards."""
    name = "grl_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def my_connect(url: str, database: bool = True):
    u = parse_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.user or "root", password=u.password or "",
                           database=u.database if database else None, charset="utf8mb4", autocommit=True)


@pytest.fixture
def my_db(mysql_admin_url):
    """A fresh MariaDB database grl_<random>; dropped afterwards."""
    name = "grl_" + uuid.uuid4().hex[:10]
    conn = my_connect(mysql_admin_url, database=False)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    yield _with_db(mysql_admin_url, name)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def pg_exec(url: str, *stmts: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in stmts:
            conn.execute(s)


def pg_rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def my_exec(url: str, *stmts: str) -> None:
    conn = my_connect(url)
    with conn.cursor() as cur:
        for s in stmts:
            cur.execute(s)
    conn.close()


def my_rows(url: str, sql: str, *args) -> list[tuple]:
    conn = my_connect(url)
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
        out = list(cur.fetchall())
    conn.close()
    return out


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return folder


# ---------------------------------------------------------------- content, compared without golive

def pg_digest(url: str) -> dict:
    """The schema (pg_dump text) and a digest of every table's rows, golive's bookkeeping left out."""
    schema = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--exclude-schema=_golive", "-d", url],
                            capture_output=True, text=True, check=True).stdout
    out = {"schema": "\n".join(ln for ln in schema.splitlines() if not ln.startswith(("--", "\\restrict", "\\unrestrict")))}
    with psycopg.connect(url) as conn:
        for s, t in conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                                 "('pg_catalog', 'information_schema', '_golive') ORDER BY 1, 2").fetchall():
            out[f"{s}.{t}"] = conn.execute(f'SELECT md5(coalesce(string_agg(x::text, E\'\\n\' ORDER BY x::text), \'\')), '
                                           f'count(*) FROM "{s}"."{t}" x').fetchone()
        out["sequences"] = conn.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE "
                                        "schemaname <> '_golive' ORDER BY 1, 2").fetchall()
    return out


def my_digest(url: str) -> dict:
    conn = my_connect(url)
    out = {}
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        for t, kind in sorted(cur.fetchall()):
            if t.startswith(BOOKKEEPING):
                continue
            cur.execute(f"SHOW CREATE TABLE `{t}`")
            out[f"ddl {t}"] = cur.fetchone()[1]
            if kind == "BASE TABLE":
                cur.execute(f"CHECKSUM TABLE `{t}`")
                out[f"checksum {t}"] = cur.fetchone()[1]
                cur.execute(f"SELECT COUNT(*) FROM `{t}`")
                out[f"rows {t}"] = cur.fetchone()[0]
    conn.close()
    return out


# ---------------------------------------------------------------- a tiny app, a webhook receiver

class _Server:
    def __init__(self, handler_cls):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def app():
    """The app: ``/health`` is 200 when its query runs on its database, 500 when it fails (the schema changed
    under it); ``/never`` is always 503. Set ``app.db`` (a PostgreSQL or MySQL URL) and ``app.query``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):  # noqa: N802
            state = self.server.state
            state["hits"] += 1
            if self.path.startswith("/never"):
                return self._reply(503, "maintenance")
            try:
                if state["db"].startswith("mysql"):
                    my_rows(state["db"], state["query"])
                else:
                    pg_rows(state["db"], state["query"])
            except Exception as exc:  # noqa: BLE001
                return self._reply(500, f"error: {str(exc).splitlines()[0]}")
            return self._reply(200, "ok")

        def _reply(self, code, text):
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _Server(Handler)
    srv.httpd.state = {"db": "", "query": "SELECT 1", "hits": 0}

    class App:
        url = srv.url

        @property
        def health(self):
            return f"{srv.url}/health"

        def set(self, db: str, query: str):
            srv.httpd.state.update(db=db, query=query)

        @property
        def hits(self):
            return srv.httpd.state["hits"]

    yield App()
    srv.close()


@pytest.fixture
def hooks():
    """A webhook receiver: every POST is kept (path, query, JSON body); ``/feishu*``, ``/lark*`` answer
    ``{"code": 0}``, ``/dingtalk*``, ``/wecom*`` ``{"errcode": 0}``, ``/refuse`` ``{"errcode": 310000}``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            parts = urlsplit(self.path)
            self.server.got.append({"path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                                    "body": body})
            if parts.path.startswith(("/feishu", "/lark")):
                reply = {"code": 0, "msg": "success"}
            elif parts.path.startswith(("/dingtalk", "/wecom")):
                reply = {"errcode": 0, "errmsg": "ok"}
            elif parts.path.startswith("/refuse"):
                reply = {"errcode": 310000, "errmsg": "sign not match"}
            else:
                reply = {"ok": True}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = _Server(Handler)
    srv.httpd.got = []

    class Hooks:
        url = srv.url
        got = srv.httpd.got

    yield Hooks()
    srv.close()


# ---------------------------------------------------------------- running a release

def run_flow(db: str, **settings):
    """The ``release`` flow in this process (the session's Prefect API): (final state, report dict)."""
    from pydantic import SecretStr

    from flows.backup_params import StorageParams
    from flows.release import ReleaseParams, release

    storage = settings.pop("storage", {})
    notify = [SecretStr(n) for n in settings.pop("notify", [])]
    state = release(ReleaseParams(db=SecretStr(db), notify=notify, storage=StorageParams(**storage), **settings),
                    return_state=True)
    data = state.result(raise_on_failure=False)
    assert isinstance(data, dict), data
    return state, data


def run_engine(db: str, **settings):
    """A release without Prefect (``golive.release.run_release``)."""
    from golive.release import ReleaseOptions, run_release

    return run_release(db, ReleaseOptions(**settings))

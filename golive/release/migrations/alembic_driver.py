"""The process that drives an app's Alembic set-up (its alembic.ini and env.py) for a release.

Run as ``python -m golive.release.migrations.alembic_driver`` with the folder of alembic.ini as its working
directory: the app's env.py imports the app's own modules, which must not run inside golive's process (and
cannot change its state). Protocol (as ``golive.validation.gx_worker``): one JSON request per line on stdin,
one JSON reply per line on the original stdout; whatever Alembic and env.py print goes to stderr. The
database URL travels on stdin, never on the command line.

golive sets ``sqlalchemy.url`` of the config to the release's database (the generic env.py reads it), and
``DATABASE_URL`` / ``GOLIVE_DATABASE_URL`` in this process's environment for env.py files that read those.
Every connection SQLAlchemy opens here gets the release's lock timeout and statement timeout, as the
database's dialect spells them (``Release.alembic_session``: PostgreSQL ``lock_timeout``; MySQL
``lock_wait_timeout`` / ``innodb_lock_wait_timeout``, MariaDB ``max_statement_time``), whatever driver env.py
builds; statements are counted so a failure can tell whether it left anything. Errors are sorted by SQLSTATE or
server error code alone, so any driver's exceptions read the same (``describe``).

Requests: ``init`` (the revisions, linear order and heads), ``sql`` (offline ``--sql`` output of revision
ranges, for the lint), ``upgrade`` / ``downgrade`` (one target revision).
"""

from __future__ import annotations

import ast
import io
import json
import os
import sys

STATE: dict = {"settings": {}, "count": 0, "dialect": None}


def _install_events() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    @event.listens_for(Pool, "connect")
    def _on_connect(dbapi_conn, record):  # noqa: ARG001
        s = STATE["settings"]
        if not s:
            return
        from golive.dialects import get_dialect

        get_dialect(STATE["dialect"]).release.alembic_session(dbapi_conn, lock_timeout_ms=int(s["lock_timeout_ms"]),
                                                              statement_timeout_ms=s.get("statement_timeout_ms") or 0)

    @event.listens_for(Engine, "after_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if "alembic_version" not in statement:
            STATE["count"] += 1


def _config(ini: str, url: str, buffer=None):
    from alembic.config import Config

    cfg = Config(ini, output_buffer=buffer) if buffer is not None else Config(ini)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _has_downgrade(path: str) -> bool:
    """Whether the revision's ``downgrade()`` does anything (not only ``pass``, a docstring or ``...``)."""
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
            return any(not isinstance(b, ast.Pass) for b in body)
    return False


def op_init(req: dict) -> dict:
    from alembic.script import ScriptDirectory

    STATE["ini"], STATE["url"], STATE["dialect"] = req["ini"], req["url"], req["dialect"]
    os.environ["DATABASE_URL"] = os.environ["GOLIVE_DATABASE_URL"] = req["url"]
    _install_events()
    script = ScriptDirectory.from_config(_config(req["ini"], req["url"]))
    revisions = []
    for rev in script.walk_revisions():
        path = rev.path
        text = open(path, encoding="utf-8").read() if path and os.path.exists(path) else ""
        down = rev.down_revision
        revisions.append({"revision": rev.revision, "down_revision": list(down) if isinstance(down, tuple) else down,
                          "doc": (rev.doc or "").strip(), "path": path, "has_downgrade": _has_downgrade(path),
                          "autocommit": "autocommit_block" in text})
    return {"heads": list(script.get_heads()), "revisions": revisions}


def op_sql(req: dict) -> dict:
    from alembic import command

    out = []
    for start, end in req["ranges"]:
        buf = io.StringIO()
        cfg = _config(STATE["ini"], STATE["url"], buf)
        command.upgrade(cfg, f"{start}:{end}" if start else end, sql=True)
        out.append(buf.getvalue())
    return {"sql": out}


def op_upgrade(req: dict) -> dict:
    from alembic import command

    STATE["settings"] = req.get("settings") or {}
    STATE["count"] = 0
    command.upgrade(_config(STATE["ini"], STATE["url"]), req["to"])
    return {"statements": STATE["count"]}


def op_downgrade(req: dict) -> dict:
    from alembic import command

    STATE["settings"] = req.get("settings") or {}
    STATE["count"] = 0
    command.downgrade(_config(STATE["ini"], STATE["url"]), req["to"])
    return {"statements": STATE["count"]}


def describe(exc: BaseException) -> dict:
    """The error as the parent classifies it: kind (lock, timeout, error), one line, statements run before it."""
    orig = exc
    seen = set()
    while orig is not None and id(orig) not in seen:
        seen.add(id(orig))
        inner = getattr(orig, "orig", None) or orig.__cause__
        if inner is None:
            break
        orig = inner
    kind = "error"
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    args = getattr(orig, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    if state == "55P03" or code == 1205:
        kind = "lock"
    elif state == "57014" or code in (1969, 3024):
        kind = "timeout"
    text = (str(args[1]) if code and len(args) > 1 else str(orig)).strip() or type(orig).__name__
    from golive.urls import mask

    return {"ok": False, "kind": kind, "error": mask(text.splitlines()[0]), "code": str(state or code or ""),
            "statements": STATE["count"]}


OPS = {"init": op_init, "sql": op_sql, "upgrade": op_upgrade, "downgrade": op_downgrade}


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what Alembic and env.py print must not mix with the replies
    sys.path.insert(0, os.getcwd())
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            reply = {"ok": True, "result": OPS[req["op"]](req)}
        except BaseException as exc:  # noqa: BLE001 - reported to the release, one line
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = describe(exc)
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()

"""``alembic:DIR``: the app's own alembic.ini and env.py, driven in a helper process (``alembic_driver``).

* Pending revisions: from the database's ``alembic_version`` (Alembic's own history) up to the single head.
  Linear histories only: several heads or merge revisions are refused with the command that fixes them.
* Lint: the SQL each pending revision would run, from Alembic's offline mode (``upgrade A:B --sql``).
* Apply: ``upgrade <rev>`` one revision at a time, so every revision is its own step (and, on an engine with
  transactional DDL such as PostgreSQL, with Alembic's default ``transactional_ddl``, its own transaction: a lock timeout is retried with backoff,
  a failure leaves nothing). After each, golive reads ``alembic_version`` itself: an env.py that migrated
  another database (one that ignores ``sqlalchemy.url``) is caught there.
* Drift: Alembic keeps no checksums, so golive records the SHA-256 of each revision file it applies in its
  own history table (kind ``alembic``); a recorded file that changed stops the release. Revisions applied
  before golive managed releases have no checksum (the report says how many).
* Down: ``downgrade <previous>`` when the revision's ``downgrade()`` does something.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from golive.errors import ConfigError, TransientError
from golive.model.release import text_of
from golive.release.migrations.base import (Executor, MigrationSource, delete_history, ensure_history, read_history,
                                            record_history, sha256_file)
from golive.release.model import Applied, LockTimeout, Migration, MigrationFailed, SourceStatus
from golive.urls import mask


def find_ini(path: Path) -> Path:
    if path.is_file():
        return path
    ini = path / "alembic.ini"
    if ini.is_file():
        return ini
    raise ConfigError(f"alembic:{path}: no alembic.ini there (give the folder of the app's alembic.ini, or the file)")


class Driver:
    """The helper process; one per release."""

    def __init__(self, ini: Path) -> None:
        root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ini.parent), root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8", prefix="golive-alembic-")
        self.proc = subprocess.Popen([sys.executable, "-m", "golive.release.migrations.alembic_driver"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env, cwd=str(ini.parent), encoding="utf-8")
        self.lock = threading.Lock()

    def call(self, op: str, **req) -> dict:
        with self.lock:
            try:
                self.proc.stdin.write(json.dumps({"op": op, **req}) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
        if not line:
            raise TransientError(f"the Alembic helper process stopped ({self.last_log() or 'no output'})")
        return json.loads(line)

    def last_log(self) -> str:
        try:
            self.log.seek(0)
            lines = [ln for ln in self.log.read().splitlines() if ln.strip()]
            return mask(lines[-1].strip()) if lines else ""
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


class AlembicSource(MigrationSource):
    kind = "alembic"

    def __init__(self, path: Path, url) -> None:
        super().__init__(path, url)
        self.ini = find_ini(path)
        self._driver: Driver | None = None
        self._chain: list[Migration] | None = None

    def driver(self) -> Driver:
        if self._driver is None:
            self._driver = Driver(self.ini)
            reply = self._driver.call("init", ini=str(self.ini), url=self.release.sqlalchemy_url(self.url),
                                      dialect=self.dialect.name)
            if not reply["ok"]:
                raise ConfigError(f"alembic:{self.ini}: Alembic could not read the scripts: {reply['error']}")
            self._init = reply["result"]
        return self._driver

    def load(self) -> list[Migration]:
        if self._chain is not None:
            return self._chain
        self.driver()
        info = self._init
        heads = info["heads"]
        if not heads:
            raise ConfigError(f"alembic:{self.ini}: no revisions")
        if len(heads) > 1:
            raise ConfigError(f"alembic:{self.ini}: {len(heads)} heads ({', '.join(heads)}): golive releases one line of "
                              "revisions; merge them first (alembic merge heads)")
        by_rev = {r["revision"]: r for r in info["revisions"]}
        chain, rev = [], heads[0]
        while rev is not None:
            r = by_rev[rev]
            if isinstance(r["down_revision"], list):
                raise ConfigError(f"alembic:{self.ini}: revision {rev} merges {', '.join(r['down_revision'])}: "
                                  "golive releases linear histories only")
            chain.append(r)
            rev = r["down_revision"]
        out = []
        for r in reversed(chain):
            path = Path(r["path"])
            slug = re.sub(r"[^a-z0-9]+", "_", (r["doc"] or path.stem).lower()).strip("_")[:60] or r["revision"]
            out.append(Migration(kind="alembic", version=r["revision"], name=slug, path=str(path),
                                 checksum=sha256_file(path), has_down=r["has_downgrade"],
                                 transactional=self.dialect.transactional_ddl and not r["autocommit"],
                                 notes=["uses autocommit_block(): runs outside a transaction"] if r["autocommit"] else []))
        self._chain = out
        return out

    def current(self, conn) -> list[str]:
        if not self.release.table_exists(conn, None, "alembic_version"):
            return []
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            return [text_of(r[0]) for r in cur.fetchall()]

    def status(self, conn) -> SourceStatus:
        chain = self.load()
        st = SourceStatus(migrations=chain)
        index = {m.version: i for i, m in enumerate(chain)}
        current = self.current(conn)
        if len(current) > 1:
            st.problems.append(f"alembic_version holds {len(current)} revisions ({', '.join(current)}): the database "
                               "has several heads; golive releases one line of revisions")
            return st
        at = -1
        if current:
            if current[0] not in index:
                st.missing.append(current[0])
                st.problems.append(f"the database is at revision {current[0]}, which is not among the scripts in "
                                   f"{self.ini.parent} (an older checkout, or a revision that was deleted)")
                return st
            at = index[current[0]]
            st.current = chain[at].label
        recorded = {a.version: a for a, ok in read_history(conn, self.dialect, "alembic") if ok}
        unrecorded = 0
        for m in chain[: at + 1]:
            a = recorded.get(m.version)
            if a is None:
                unrecorded += 1
            elif a.checksum != m.checksum:
                st.drift.append(f"{m.label}: the revision file changed after golive applied it")
        if unrecorded:
            st.notes.append(f"{unrecorded} applied revision(s) have no checksum on record (applied before golive "
                            "released them): their files are not checked for drift")
        for m in chain[: at + 1]:
            st.applied.append(Applied(
                version=m.version, name=m.name, checksum=recorded[m.version].checksum if m.version in recorded else None))
        st.pending = chain[at + 1:]
        self._offline_sql(st.pending, chain[at].version if at >= 0 else None)
        return st

    def _offline_sql(self, pending: list[Migration], start: str | None) -> None:
        if not pending:
            return
        ranges, prev = [], start
        for m in pending:
            ranges.append([prev, m.version])
            prev = m.version
        reply = self.driver().call("sql", ranges=ranges)
        if not reply["ok"]:
            raise ConfigError(f"alembic:{self.ini}: the offline --sql mode failed: {reply['error']} (golive lints the SQL "
                              "Alembic would run; env.py must support run_migrations_offline)")
        for m, text in zip(pending, reply["result"]["sql"]):
            m.sql = text

    def prepare(self, conn) -> None:
        ensure_history(conn, self.dialect)

    def _previous(self, m: Migration) -> str:
        chain = self.load()
        i = [c.version for c in chain].index(m.version)
        return chain[i - 1].version if i > 0 else "base"

    def _settings(self, ex: Executor) -> dict:
        return {"lock_timeout_ms": max(int(ex.lock_timeout_s * 1000), 1) if ex.lock_timeout_s else 0,
                "statement_timeout_ms": ex.deadline.statement_ms()}

    def _run(self, ex: Executor, op: str, target: str, m: Migration, what: str) -> int:
        attempt = 0
        while True:
            ex._check_time(what)
            ex.attempts += 1
            reply = self.driver().call(op, to=target, settings=self._settings(ex))
            if reply["ok"]:
                return int(reply["result"]["statements"])
            n = int(reply.get("statements") or 0)
            left = m.transactional or n == 0
            if reply.get("kind") == "lock":
                attempt += 1
                if m.transactional and ex._pause(attempt, what, reply["error"]):
                    continue
                raise LockTimeout(f"{what}: could not get its lock within lock_timeout ({reply['error']})",
                                  left_nothing=left, statements_done=n)
            state = ("its transaction was rolled back: nothing of it is left" if m.transactional else
                     "nothing of it was applied" if n == 0 else f"{n} statement(s) of it may stay applied (MySQL DDL "
                                                                 "commits on its own)")
            timeout = " (statement timeout)" if reply.get("kind") == "timeout" else ""
            raise MigrationFailed(f"{what}: {reply['error']}{timeout}; {state}", left_nothing=left, statements_done=n,
                                  code=reply.get("code", ""))

    def apply(self, ex: Executor, m: Migration, release_id: str) -> int:
        t0 = time.perf_counter()
        n = self._run(ex, "upgrade", m.version, m, f"revision {m.label}")
        conn = ex.session()
        try:
            now_at = self.current(conn)
            if now_at != [m.version]:
                raise MigrationFailed(f"revision {m.label}: Alembic reported success, but this database's alembic_version "
                                  f"is {now_at or 'empty'}: env.py migrated another database (make it use "
                                  "config.get_main_option('sqlalchemy.url') or DATABASE_URL)", left_nothing=False,
                                  statements_done=n)
            record_history(conn, self.dialect, "alembic", m, success=True, release_id=release_id,
                           execution_ms=int((time.perf_counter() - t0) * 1000))
        finally:
            conn.close()
        return n

    def down(self, ex: Executor, m: Migration) -> int:
        n = self._run(ex, "downgrade", self._previous(m), m, f"downgrade of {m.label}")
        conn = ex.session()
        try:
            delete_history(conn, self.dialect, "alembic", m.version)
        finally:
            conn.close()
        return n

    def probe(self, conn, m: Migration) -> str:
        chain = [c.version for c in self.load()]
        cur = self.current(conn)
        if not cur or cur[0] not in chain or m.version not in chain:
            return "absent"
        return "applied" if chain.index(m.version) <= chain.index(cur[0]) else "absent"

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

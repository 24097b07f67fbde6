"""SQLite change capture: triggers that write each changed row's table and key into a change table golive owns.

SQLite has no change log another process can read, so golive adds one to the file: ``_golive_changes``
(``id`` in commit order, the table, the key as JSON, the time) and, on every copied table, triggers after
INSERT, UPDATE and DELETE that add a line to it (an UPDATE that changes the key adds both keys). The triggers
are installed in one transaction *before* the copy reads anything, so every write after that moment is captured;
a row the copy already read and the app changed again is captured and re-applied (the catch-up re-reads it). The
writes cost the app a trigger and one small insert each (``bench/online_bench.py`` measures it).

* **Fence**: triggers *before* INSERT, UPDATE and DELETE that ``RAISE(ABORT, …)`` golive's message: the app's
  later writes fail loudly. ``end`` removes every trigger, the change table and the fence.
* **DDL**: the file's ``PRAGMA schema_version`` moves with any schema change; golive records it after installing
  its own objects, and any later change of a copied table's definition stops the run, naming the table.
* WAL journal mode is advised (the app's readers are not blocked by golive's reads); golive reads in short
  transactions either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3

from golive.dialects.base import Capture
from golive.dialects.sqlite.session import check, qi
from golive.errors import SourceError
from golive.model.capture import CaptureState, Change, ChangeBatch, SchemaChanged
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

CHANGES = "_golive_changes"
PREFIX = "_golive_capture_"
FENCE = "_golive_fence_"
MESSAGE = "golive: this database has moved; writes are refused here (golive migrate db --online cut over)"


def _open(url: DatabaseURL) -> sqlite3.Connection:
    path = check(url)
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA busy_timeout = 60000")
    return conn


def _key_exprs(tp, row: str) -> str:
    return "json_array(" + ", ".join(f"{row}.{qi(k)}" for k in tp.key) + ")"


def _fingerprint(conn, tables: list[str]) -> dict[str, str]:
    """A hash of each copied table's definition (its CREATE statement), to name the one a DDL changed."""
    out = {}
    for name in tables:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        out[name] = hashlib.sha1((row[0] if row else "").encode()).hexdigest()
    return out


class SQLiteCapture(Capture):
    method = "triggers on each copied table write the changed rows' keys into _golive_changes"
    fence_method = "BEFORE INSERT/UPDATE/DELETE triggers that raise golive's message"

    def check(self, url: DatabaseURL, plan, *, keyless: bool = False) -> list[str]:
        problems = []
        path = check(url)
        if not os.access(path, os.W_OK) or not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            problems.append(f"{path}: golive adds a change table and triggers to the file: give it (and its folder, "
                            "for the journal) write access")
        keyless_tables = [tp.source for tp in plan.tables if tp.key == ["rowid"] or not tp.key]
        if keyless_tables and not keyless:
            problems.append(f"tables without a primary key: {', '.join(keyless_tables)} (a changed row cannot be "
                            "found again in the target): add a primary key, or --exclude them")
        return problems

    @contextlib.contextmanager
    def begin(self, url: DatabaseURL, plan, *, workers: int):
        conn = _open(url)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the app's writes wait for this short transaction, none is missed
            try:
                # ids grow with each change (the table is only ever appended to; no AUTOINCREMENT: that would leave
                # a sqlite_sequence table behind in the app's file)
                conn.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES} (id INTEGER PRIMARY KEY, "
                             "tbl TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, at REAL NOT NULL)")
                objects = [f"table {CHANGES}"]
                for tp in plan.tables:
                    objects += self._triggers(conn, tp)
                start = conn.execute(f"SELECT coalesce(max(id), 0) FROM {CHANGES}").fetchone()[0]
                version = conn.execute("PRAGMA schema_version").fetchone()[0]
                tables = [tp.source for tp in plan.tables]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            state = CaptureState(run_key=plan.run_key, engine="sqlite", started_at=str(start), applied=str(start),
                                 objects=objects,
                                 meta={"schema_version": version, "tables": _fingerprint(conn, tables)})
        finally:
            conn.close()
        yield None, state  # the copy reads the file as it is: every write from now on is captured

    def _triggers(self, conn, tp) -> list[str]:
        t = tp.source
        made = []
        for op, when, rows in (("i", "INSERT", ["NEW"]), ("u", "UPDATE", ["OLD", "NEW"]), ("d", "DELETE", ["OLD"])):
            name = f"{PREFIX}{t}_{op}"
            inserts = " ".join(
                f"INSERT INTO {CHANGES} (tbl, key, op, at) VALUES ({_lit(t)}, {_key_exprs(tp, r)}, '{op}', "
                f"julianday('now'));" for r in rows)
            if op == "u":  # a key that did not change is one line
                inserts = (f"INSERT INTO {CHANGES} (tbl, key, op, at) VALUES ({_lit(t)}, {_key_exprs(tp, 'NEW')}, 'u', "
                           f"julianday('now')); INSERT INTO {CHANGES} (tbl, key, op, at) SELECT {_lit(t)}, "
                           f"{_key_exprs(tp, 'OLD')}, 'u', julianday('now') WHERE {_key_exprs(tp, 'OLD')} <> "
                           f"{_key_exprs(tp, 'NEW')};")
            conn.execute(f"CREATE TRIGGER IF NOT EXISTS {qi(name)} AFTER {when} ON {qi(t)} BEGIN {inserts} END")
            made.append(f"trigger {name}")
        return made

    def changes(self, url: DatabaseURL, state: CaptureState, after: str, *, limit: int) -> ChangeBatch:
        conn = _open(url)
        try:
            self._schema_unchanged(conn, state)
            rows = conn.execute(f"SELECT id, tbl, key, op, at FROM {CHANGES} WHERE id > ? ORDER BY id LIMIT ?",
                                (int(after or 0), limit)).fetchall()
            if not rows:
                return ChangeBatch(changes=[], position=str(after or 0), pending=0)
            last = rows[-1][0]
            pending = conn.execute(f"SELECT count(*), min(at) FROM {CHANGES} WHERE id > ?", (last,)).fetchone()
        finally:
            conn.close()
        changes = [Change(tbl, _key(key), op == "d") for _, tbl, key, op, _ in rows]
        oldest = _epoch(pending[1]) if pending[0] else _epoch(rows[0][4])
        return ChangeBatch(changes=changes, position=str(last), pending=int(pending[0]), oldest_at=oldest)

    def head(self, url: DatabaseURL, state: CaptureState) -> str | None:
        conn = _open(url)
        try:
            return str(conn.execute(f"SELECT coalesce(max(id), 0) FROM {CHANGES}").fetchone()[0])
        finally:
            conn.close()

    def position_key(self, position: str) -> int:
        return int(position or 0)

    def _schema_unchanged(self, conn, state: CaptureState) -> None:
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        if version == state.meta.get("schema_version"):
            return
        now = _fingerprint(conn, list(state.meta.get("tables", {})))
        changed = [t for t, h in state.meta.get("tables", {}).items() if now.get(t) != h]
        if changed:
            raise SchemaChanged(f"the source's schema changed during capture: table {', '.join(changed)} was altered "
                                "or dropped; golive does not apply DDL: stop the app's migration, then run the same "
                                "command with --drop-existing (or --abort to remove what golive added)")
        state.meta["schema_version"] = version  # another table's DDL (or golive's own fence): not this run's

    def fence(self, url: DatabaseURL, state: CaptureState) -> None:
        conn = _open(url)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for t in state.meta.get("tables", {}):
                for when in ("INSERT", "UPDATE", "DELETE"):
                    name = f"{FENCE}{t}_{when.lower()}"
                    conn.execute(f"CREATE TRIGGER IF NOT EXISTS {qi(name)} BEFORE {when} ON {qi(t)} "
                                 f"BEGIN SELECT RAISE(ABORT, {_lit(MESSAGE)}); END")
            state.meta["schema_version"] = conn.execute("PRAGMA schema_version").fetchone()[0]
            conn.execute("COMMIT")
        finally:
            conn.close()

    def unfence(self, url: DatabaseURL, state: CaptureState) -> None:
        self._drop(url, [n for n in self._objects(url) if n.startswith(FENCE)])

    def end(self, url: DatabaseURL, state: CaptureState, *, keep_fence: bool = False) -> list[str]:
        names = [n for n in self._objects(url) if not (keep_fence and n.startswith(FENCE))]
        removed = self._drop(url, names)
        conn = _open(url)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (CHANGES,)).fetchone():
                conn.execute(f"DROP TABLE {CHANGES}")
                removed.append(f"table {CHANGES}")
        finally:
            conn.close()
        return removed

    def leftovers(self, url: DatabaseURL) -> list[str]:
        out = [f"trigger {n}" for n in self._objects(url)]
        conn = _open(url)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (CHANGES,)).fetchone():
                out.append(f"table {CHANGES}")
        finally:
            conn.close()
        return out

    def _objects(self, url: DatabaseURL) -> list[str]:
        conn = _open(url)
        try:
            return [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND (name LIKE ? ESCAPE '\\' OR name LIKE ? "
                "ESCAPE '\\')", (PREFIX.replace("_", "\\_") + "%", FENCE.replace("_", "\\_") + "%"))]
        finally:
            conn.close()

    def _drop(self, url: DatabaseURL, names: list[str]) -> list[str]:
        if not names:
            return []
        conn = _open(url)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for n in names:
                conn.execute(f"DROP TRIGGER IF EXISTS {qi(n)}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise SourceError(f"removing golive's triggers from {url.path}: {exc}") from None
        finally:
            conn.close()
        return [f"trigger {n}" for n in names]


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _key(text: str) -> tuple:
    """A change's key from its JSON array; one integer (the usual key) without the JSON parser."""
    inner = text[1:-1]
    return (int(inner),) if inner.isdigit() else tuple(json.loads(text))


def _epoch(julian: float | None) -> float | None:
    return None if julian is None else (julian - 2440587.5) * 86400.0


"""Online migration tests: an app keeps writing while golive copies, catches up and cuts over.

``move_online`` drives golive's engine the way the online flow does (``golive.migrate.online``), without Prefect,
so each engine's capture is tested on its own; ``tests/online/test_cli.py`` runs the command end to end.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading

import pytest

from conftest import CASES

from golive import validation
from golive.config import MigrateOptions
from golive.dialects import dialect_of
from golive.migrate import copy as copying, online, planning, target as tgt
from golive.urls import parse_url


def pytest_collection_modifyitems(items):
    """A stuck catch-up fails in minutes, not after the suite's 10 (the slowest online test takes about one)."""
    for item in items:
        if "/online/" in str(item.fspath) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(240))


def move_online(source: str, target: str, *, options: MigrateOptions | None = None, during_copy=None,
                cut: bool = True, command: str = ""):
    """Plan, check, begin capture, copy (``during_copy()`` runs after the capture began, before the copy), catch up
    and (``cut``) cut over. Returns ``(plan, state, result)``."""
    s, d = parse_url(source), parse_url(target)
    options = options or MigrateOptions()
    plan = planning.build_plan(s, d, options)
    online.check(s, plan)
    with dialect_of(s).capture.begin(s, plan, workers=2) as (snapshot, state):
        if during_copy is not None:
            during_copy()
        tgt.prepare(d, plan, options)
        online.save_state(d, state)
        for tp in plan.tables:
            for ch in tp.chunks:
                copying.copy_chunk(s, d, plan.context(), tp, ch, snapshot=snapshot)
            tgt.finish_table(d, plan.schema_of(tp), tp)
        for tp in plan.tables:
            if tp.foreign_keys:
                tgt.link_table(d, plan.schema_of(tp), tp.target, tp.foreign_keys)
    online.catch_up(s, d, plan, state)
    def check(keys):  # the rows the catch-up applied, compared value by value before the switch
        return validation.check_keys(s, d, plan, keys, {})

    result = online.cut_over(s, d, plan, state, command=command, check=check) if cut else None
    return plan, state, result


@pytest.fixture
def app(tmp_path):
    """Chinook as an app's SQLite file, in WAL mode as apps run it."""
    path = tmp_path / "app.db"
    shutil.copy(CASES / "chinook" / "Chinook_Sqlite.sqlite", path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    return path


class Writer:
    """A thread writing like an app until stopped or refused (the fence); counts what it committed."""

    def __init__(self, write):
        self.write, self.n, self.refused, self.error = write, 0, None, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.write(self.n)
                self.n += 1
            except Exception as exc:  # noqa: BLE001 - a fenced source refuses: that ends the app's writes
                self.refused = str(exc)
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)

"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
from pydantic import SecretStr

from golive.config import MigrateOptions


def migrate(source, target: str, **options) -> dict:
    """Run the migration flow in this process (under the session's Prefect API) and return its report."""
    from flows.migrate_database import migrate_database

    src = str(source) if "://" in str(source) else f"sqlite:///{source}"
    state = migrate_database(source=SecretStr(src), target=SecretStr(target), options=MigrateOptions(**options),
                             return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    return result


def rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def scalar(url: str, sql: str, *args):
    return rows(url, sql, *args)[0][0]


def column_types(url: str, table: str, schema: str = "public") -> dict[str, str]:
    return dict(rows(url, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                          "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
                     f'"{schema}"."{table}"'))


def source_counts(path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for (t,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}
    finally:
        db.close()


def execute(url: str, *stmts: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in stmts:
            conn.execute(s)


def task_runs(flow_run_id, timeout: float = 30) -> dict[str, tuple[str, str, str | None, str | None]]:
    """``task run name -> (state type, state name, state message, cache key)`` of one flow run, from the API.

    Task run states reach the API as events, a moment after the flow run ends: read until every task run has a
    final state."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    deadline = time.monotonic() + timeout
    while True:
        runs = asyncio.run(read())
        if all(t.state is not None and t.state.is_final() for t in runs) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    return {t.name: (t.state.type.value, t.state.name, t.state.message, t.state.state_details.cache_key)
            if t.state is not None else (None, None, None, None) for t in runs}

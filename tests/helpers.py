"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

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

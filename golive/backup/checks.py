"""Which engine module handles a database URL, and the checks every restore ends with."""

from __future__ import annotations

import logging
from pathlib import Path

from golive.errors import ConfigError
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


def engine(name: str):
    if name == "postgresql":
        from golive.backup import postgresql as mod
    elif name == "mysql":
        from golive.backup import mysql as mod
    elif name == "sqlite":
        from golive.backup import sqlite as mod
    else:
        raise ConfigError(f"no backups for {name} databases (PostgreSQL, MySQL/MariaDB and SQLite are supported)")
    return mod


def check_connects(url: DatabaseURL, role: str) -> None:
    """A wrong password or host fails here, in one line, before anything is downloaded or dumped."""
    if url.dialect == "postgresql":
        from golive.backup.postgresql import connect
    elif url.dialect == "mysql":
        from golive.backup.mysql import connect
    else:
        return
    connect(url, role=role).close()


def check_restored(url: DatabaseURL, manifest, out_dir: Path, *, gx: bool = True) -> tuple[list[str], list[str]]:
    """Compare a restored database with its manifest: every table's row count (Great Expectations'
    ``expect_table_row_count_to_equal``) and the schema fingerprint. Returns (checks, problems)."""
    mod = engine(manifest.engine)
    checks, problems = [], []
    tables, fp = mod.inspect(url, counts=not gx)  # Great Expectations counts them
    if fp == manifest.schema_fingerprint:
        checks.append("schema fingerprint matches")
    else:
        problems.append("schema fingerprint differs from the manifest's (tables, columns, keys or indexes are not "
                        "as they were backed up)")
    have = {t.name for t in tables}
    missing = [t.name for t in manifest.tables if t.name not in have]
    problems += [f"{name}: table missing after the restore" for name in missing]
    wanted = [{"name": t.name, "schema": t.schema_name, "table": t.table, "rows": t.rows}
              for t in manifest.tables if t.name in have]
    if gx and wanted:
        from golive.validation import gx_worker

        out = gx_worker.take().run({"kind": "row_counts", "target": url.raw, "tables": wanted, "out_dir": str(out_dir)})
        bad = [o for o in out["outcomes"] if not o["success"]]
        problems += [f"{o['table']}: row count: {o['detail']}" for o in bad]
        checks.append(f"row counts of {len(wanted) - len(bad)} of {len(wanted)} tables match "
                      "(Great Expectations expect_table_row_count_to_equal)")
    elif wanted:
        counts = {t.name: t.rows for t in tables}
        bad = [w for w in wanted if counts.get(w["name"]) != w["rows"]]
        problems += [f"{w['name']}: the restored table has {counts.get(w['name'])} rows, the manifest {w['rows']}"
                     for w in bad]
        checks.append(f"row counts of {len(wanted) - len(bad)} of {len(wanted)} tables match")
    return checks, problems

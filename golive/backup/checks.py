"""The checks every restore ends with: the restored database against its manifest."""

from __future__ import annotations

from pathlib import Path

from golive.dialects import get_dialect
from golive.urls import DatabaseURL


def check_restored(url: DatabaseURL, manifest, out_dir: Path, *, gx: bool = True) -> tuple[list[str], list[str]]:
    """Compare a restored database with its manifest: every table's row count (Great Expectations'
    ``expect_table_row_count_to_equal``) and the schema fingerprint. Returns (checks, problems)."""
    checks, problems = [], []
    tables, fp = get_dialect(manifest.engine).backup.inspect(url, counts=not gx)  # Great Expectations counts them
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

"""The run report: per-table counts, rejects, skipped objects, warnings, and the exit code they imply.

Invariant checked here for every table: rows read = rows written + rows rejected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from golive.config import MigrateOptions
from golive.model.plan import MigrationPlan
from golive.report import write_json


def rejects_path(options: MigrateOptions, run_key: str, total_rejects: int) -> str | None:
    if options.rejects:
        return options.rejects
    if options.report:
        return str(Path(options.report).with_suffix("")) + ".rejects.jsonl"
    if total_rejects:
        return os.path.abspath(os.path.join("golive-runs", "rejects", f"{run_key}.jsonl"))
    return None


def build_report(plan: MigrationPlan, options: MigrateOptions, chunks: list, steps: list, *,
                 source_counts: dict[str, int] | None = None, seconds: float = 0.0,
                 validation: dict | None = None) -> dict:
    """Assemble the JSON report from the plan and the results of every task.

    Args:
        chunks: ``ChunkResult``-like dicts/models, one per chunk.
        steps: ``StepResult``-like dicts/models from the post-load steps.
        source_counts: rows in each source table counted after the copy (detects a changing source).
    """
    chunks = [c if isinstance(c, dict) else c.model_dump() for c in chunks]
    steps = [s if isinstance(s, dict) else s.model_dump() for s in steps]
    errors: list[str] = []
    warnings: list[str] = list(plan.warnings)
    skipped = [s.model_dump() for s in plan.skipped]
    tables = []
    all_rejects: list[dict] = []
    converted: list[dict] = []
    by_table: dict[str, list[dict]] = {}  # not a scan of every chunk per table (10,000 x 10,000)
    for c in chunks:
        by_table.setdefault(c["table"], []).append(c)
    for tp in plan.tables:
        mine = by_table.get(tp.source, [])
        read = sum(c["rows_read"] for c in mine)
        written = sum(c["rows_written"] for c in mine)
        rejected = sum(c["rows_rejected"] for c in mine)
        busy = round(sum(c["seconds"] or 0 for c in mine), 3)
        changed: dict[str, int] = {}
        for c in sorted(mine, key=lambda c: c["chunk"]):
            all_rejects.extend(c.get("rejects") or [])
            for what, n in (c.get("converted") or {}).items():
                changed[what] = changed.get(what, 0) + n
        for what, n in sorted(changed.items()):
            if n:
                converted.append({"table": tp.source, "what": what, "count": n})
                warnings.append(f"{tp.source}.{what}: {n} values")
        if len(mine) != len(tp.chunks):
            errors.append(f"{tp.source}: {len(tp.chunks) - len(mine)} of {len(tp.chunks)} chunks were not copied")
        if read != written + rejected:
            errors.append(f"{tp.source}: read {read} rows but wrote {written} and rejected {rejected}")
        if source_counts is not None and tp.source in source_counts and source_counts[tp.source] != read:
            errors.append(f"{tp.source}: the source now has {source_counts[tp.source]} rows but {read} were read "
                          "(the source changed during the copy; stop the app's writes and re-run with --drop-existing)")
        tables.append({
            "source": tp.source, "target": tp.target, "rows_read": read, "rows_written": written,
            "rows_rejected": rejected, "seconds": busy,
            "rows_per_second": round(read / busy) if busy else None,
            "chunks": len(tp.chunks), "resumed_chunks": sum(1 for c in mine if c.get("resumed")),
            "careful_chunks": sum(1 for c in mine if c.get("careful")),
        })
    for s in steps:
        errors.extend(s.get("errors", []))
        warnings.extend(s.get("warnings", []))
        skipped.extend(s.get("skipped", []))
    total_rejected = len(all_rejects)
    path = rejects_path(options, plan.run_key, total_rejected)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            for r in all_rejects:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    if validation is not None and not validation.get("ok", True):
        errors.append("validation failed: " + "; ".join(validation.get("failures", [])[:5]))
    too_many = total_rejected > options.max_rejects
    ok = not errors and not too_many
    report = {
        "ok": ok,
        "exit_code": 0 if ok else 1,
        "run_key": plan.run_key,
        "source": plan.source,
        "target": plan.target,
        "source_dialect": plan.source_dialect,
        "target_dialect": plan.target_dialect,
        "schema": plan.target_schema,
        "resumed": plan.resumed,
        "tables": tables,
        "rows_read": sum(t["rows_read"] for t in tables),
        "rows_written": sum(t["rows_written"] for t in tables),
        "rows_rejected": total_rejected,
        "max_rejects": options.max_rejects,
        "rejects": path,
        "reject_summary": summarize_rejects(all_rejects),
        "errors": errors,
        "warnings": warnings,
        "skipped": skipped,
        "renamed": [r.model_dump() for r in plan.renamed],
        "converted": converted,
        "consistency": plan.consistency,
        "created": [x for s in steps for x in s.get("created", [])],
        "seconds": round(seconds, 3),
        "chunks": plan.chunk_count,
    }
    if validation is not None:
        report["validation"] = validation
    if too_many:
        report["errors"].append(f"{total_rejected} rows rejected (allowed: {options.max_rejects}); see {path}")
    if options.report:
        write_json(options.report, report)
    return report


def summarize_rejects(rejects: list[dict], limit: int = 20) -> list[dict]:
    """Group rejects by (table, column, reason) with a count and one example key."""
    groups: dict[tuple, dict] = {}
    for r in rejects:
        k = (r.get("table"), r.get("column"), r.get("reason"))
        g = groups.setdefault(k, {"table": k[0], "column": k[1], "reason": k[2], "count": 0, "example_key": r.get("key")})
        g["count"] += 1
    return sorted(groups.values(), key=lambda g: -g["count"])[:limit]

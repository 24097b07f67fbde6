"""``golive go-live --dry-run``: every step's dry run, as one plan; nothing is written anywhere.

- precheck: the same checks as the real run (no probe object, nothing created);
- backup: what would be backed up, and where;
- migrate-db: the migration's deep plan (types, renames, values that would be rejected, existing tables);
- validate: what would be compared;
- migrate-files: the upload's dry run (files that would go up, those already there, problems);
- verify-files: how many files would be compared;
- rewrite-paths: read from the *source* (the target has no tables yet): per column, how many values name a
  file in the uploads folder (would be rewritten, with samples before -> after), how many name a file that
  is not there (would stay as they are, and fail the step), how many name no file (left alone).
"""

from __future__ import annotations

import os
import time
from urllib.parse import quote

from golive.errors import GoliveError
from golive.go_live.precheck import Resolved, precheck
from golive.units import human_bytes
from golive.urls import mask

SAMPLES = 3


def dry_run(r: Resolved) -> dict:
    """The combined plan: ``{"ok", "key", "steps": {step: {...}}, "errors": [...]}``."""
    t0 = time.perf_counter()
    steps: dict[str, dict] = {}
    pre, plan = precheck(r, dry_run=True)
    steps["precheck"] = {**pre.summary(), "lines": [c.line() for c in pre.checks]}
    cfg = r.config
    if cfg.backup.enabled:
        steps["backup"] = {"to": r.backup_to, "verify": cfg.backup.verify, "compress": cfg.backup.compress,
                           "about": f"{human_bytes(pre.source_bytes)} of data" if pre.source_bytes else "",
                           "line": f"would back up the source to {r.backup_to}"
                                   + (" and restore it to check" if cfg.backup.verify else "")}
    if plan is not None:
        predicted = sum(c.predicted_rejects for tp in plan.tables for c in tp.columns)
        steps["migrate-db"] = {
            "tables": len(plan.tables), "rows": plan.total_rows, "chunks": plan.chunk_count,
            "predicted_rejects": predicted, "resumed": plan.resumed,
            "renamed": [f"{x.kind} {x.source} -> {x.target}" for x in plan.renamed],
            "skipped": [f"{x.kind} {x.name}: {x.reason}" for x in plan.skipped],
            "warnings": plan.warnings, "notes": [f"{tp.source}.{c.source}: {'; '.join(c.notes)}"
                                                 for tp in plan.tables for c in tp.columns if c.notes],
            "line": f"would copy {len(plan.tables)} tables, {plan.total_rows} rows ({plan.chunk_count} chunks) "
                    f"{plan.source_dialect} -> {plan.target_dialect}"
                    + (f"; about {predicted} values would be rejected" if predicted else ""),
            "plan": plan.model_dump(mode="json")}
        steps["validate"] = {"tables": len(plan.tables),
                             "line": f"would compare every row of {len(plan.tables)} tables by content checksum "
                                     "and run their Great Expectations suites"}
    bucket_ok = not any(c.name == "bucket" and c.level == "error" for c in pre.checks)
    if cfg.has_files():
        steps["migrate-files"] = _files(r) if bucket_ok else {"line": "not planned: the bucket check failed"}
        steps["verify-files"] = {"line": f"would compare {pre.files} files with {r.bucket}"}
    if cfg.rewrite:
        steps["rewrite-paths"] = {"columns": [_rewrite(r, rw, plan) for rw in cfg.rewrite]}
        steps["rewrite-paths"]["line"] = "; ".join(c["line"] for c in steps["rewrite-paths"]["columns"])
    errors = pre.errors() + [e for s in steps.values() for e in s.get("errors", [])]
    for c in steps.get("rewrite-paths", {}).get("columns", []):
        if c.get("would_fail"):
            errors.append(f"rewrite {c['table']}.{c['column']}: {c['missing']} row(s) name a file that is not in "
                          "the uploads folder (set allow_missing = true to accept that, or restore the files)")
    return {"ok": not errors, "dry_run": True, "key": r.key, "steps": steps, "errors": errors,
            "seconds": round(time.perf_counter() - t0, 3)}


def _files(r: Resolved) -> dict:
    from golive.files import sync

    cfg = r.config
    try:
        job = sync.make_job(cfg.source.uploads, r.bucket, workers=cfg.files.workers, state_dir=r.state_dir,
                            follow_symlinks=cfg.files.follow_symlinks, **_storage_kwargs(r.bucket_storage))
        report = sync.dry_run_report(job, sync.plan_upload(job, dry_run=True), time.time())
    except GoliveError as exc:
        if cfg.files.create_bucket and "does not exist" in str(exc):  # created by the real run: all of it goes up
            return {"would_upload": "all", "line": f"would upload every file of {cfg.source.uploads} to {r.bucket}"}
        return {"errors": [f"migrate-files: {exc}"], "line": f"cannot plan the upload: {exc}"}
    return {"files": report.files_total, "would_upload": report.uploaded, "bytes": report.uploaded_bytes,
            "unchanged": report.unchanged, "problems": [p.line() for p in report.problems],
            "errors": [f"migrate-files: {p.line()}" for p in report.problems],
            "line": report.summary() + f" to {r.bucket}"}


def _storage_kwargs(storage) -> dict:
    """``sync.make_job`` keywords from a StorageConfig (endpoint, region, style, keys)."""
    if storage is None:
        return {}
    creds = {k: getattr(storage, k).get_secret_value() for k in ("access_key_id", "secret_access_key", "session_token")
             if getattr(storage, k, None)}
    return {"endpoint_url": storage.endpoint_url, "region": storage.region,
            "addressing_style": storage.addressing_style,
            "credentials": {f"aws_{k}": v for k, v in creds.items()} or None}


def _rewrite(r: Resolved, rw, plan) -> dict:
    """What ``rewrite-paths`` would do to one column, read from the source's table of that name."""
    from golive.files import rewrite as rwm
    from golive.files.db import connect
    from golive.storage import parse_dest

    out = {"table": rw.table, "column": rw.column, "scanned": 0, "would_rewrite": 0, "missing": 0, "other": 0,
           "samples": [], "missing_samples": [], "other_samples": []}
    source_table = next((tp.source_name or tp.source for tp in (plan.tables if plan else []) if tp.target == rw.table),
                        rw.table)
    source_column = rw.column
    if plan is not None:
        tp = next((t for t in plan.tables if t.target == rw.table), None)
        if tp is not None:
            source_column = next((c.source for c in tp.columns if c.target == rw.column), rw.column)
    dest = parse_dest(r.bucket)
    url = rw.template.startswith(("http://", "https://"))
    root = r.config.source.uploads
    try:
        db = connect(r.source.get_secret_value())
    except GoliveError as exc:
        return {**out, "errors": [f"rewrite {rw.table}.{rw.column}: {exc}"], "line": str(exc)}
    try:
        pk = db.primary_key(source_table)
        if len(pk) != 1:
            return {**out, "line": f"{rw.table}.{rw.column}: no one-column primary key in the source"}
        after = None
        while True:
            rows = db.fetch(source_table, pk[0], source_column, after, 5000, lock=False)
            for key, value in rows:
                out["scanned"] += 1
                rel = rwm.path_of(value, rw.strip_prefix)
                if rel is None:
                    out["other"] += 1
                    if len(out["other_samples"]) < SAMPLES:
                        out["other_samples"].append({"key": str(key), "value": mask(str(value))[:200]})
                elif os.path.isfile(os.path.join(root, rel)):
                    out["would_rewrite"] += 1
                    if len(out["samples"]) < SAMPLES:
                        k = dest.key(rel)
                        new = rw.template.format(key=quote(k, safe="/~") if url else k,
                                                 path=quote(rel, safe="/~") if url else rel, bucket=dest.bucket)
                        out["samples"].append({"key": str(key), "before": value, "after": new})
                else:
                    out["missing"] += 1
                    if len(out["missing_samples"]) < SAMPLES:
                        out["missing_samples"].append({"key": str(key), "value": value})
            if len(rows) < 5000:
                break
            after = rows[-1][0]
    except GoliveError as exc:
        return {**out, "errors": [f"rewrite {rw.table}.{rw.column}: {exc}"], "line": str(exc)}
    finally:
        db.close()
    out["would_fail"] = bool(out["missing"]) and not rw.allow_missing
    out["line"] = (f"{rw.table}.{rw.column}: would rewrite {out['would_rewrite']} of {out['scanned']} rows, "
                   f"{out['missing']} name a missing file, {out['other']} name no file")
    return out

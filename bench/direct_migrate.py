#!/usr/bin/env python3
"""The migrate-database flow's steps without Prefect, timed phase by phase (a benchmark probe, not a product).

``migrate_bench.py`` runs this next to ``golive migrate db`` on the same data: the difference between the
two wall times is what Prefect costs (import, flow/task engine, API calls, state and event traffic), and
the phases printed here say where the engine itself spends its time.

It calls the same engine functions as ``flows/migrate_database.py`` in the same order with the same
concurrency rule (at most ``workers`` chunk copies or key builds in flight, biggest tables first, a
table's keys as soon as its last chunk is in, foreign keys added NOT VALID then validated per child
table in parallel, views, row counts, report). Keep it in step with that flow when the flow changes;
if the engine's functions change shape, this script fails with one line and the benchmark reports the
probe as unavailable instead of stopping.

usage: direct_migrate.py --source DB --target URL [--workers N] [--chunk-rows N] [--order flow|interleave]
                         [--pragma NAME=VALUE ...] [--out TIMINGS.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

T_START = time.perf_counter()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--chunk-rows", type=int, default=None)
    ap.add_argument("--out", help="write the timings JSON here (default: stdout)")
    ap.add_argument("--order", choices=["flow", "interleave"], default="flow",
                    help="chunk order: the flow's (biggest table first, its chunks together) or round-robin "
                         "over tables (an experiment: fewer concurrent COPYs into the same table)")
    ap.add_argument("--pragma", action="append", default=[],
                    help="experiment: extra SQLite PRAGMA run on every source connection after golive's own, "
                         "e.g. --pragma mmap_size=0 --pragma cache_size=-8192")
    a = ap.parse_args()

    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from golive import commands, progress
    from golive.config import MigrateOptions
    from golive.migrate import copy as copying, report as reports, target as tgt

    if a.pragma:
        from golive.dialects.sqlite.dialect import SQLiteDialect

        _connect = SQLiteDialect.connect

        def connect(self, url, **kw):
            conn = _connect(self, url, **kw)
            for p in a.pragma:
                conn.execute(f"PRAGMA {p}")
            return conn

        SQLiteDialect.connect = connect
    t_imported = time.perf_counter()
    kw = {"validate_after": False}
    if a.workers:
        kw["workers"] = a.workers
    if a.chunk_rows:
        kw["chunk_rows"] = a.chunk_rows
    options = MigrateOptions(**kw)
    workers = options.workers
    first_row: list[float] = []

    def on_event(event, **data):
        if event == "rows" and not first_row and data.get("rows", 0) > 0:
            first_row.append(time.perf_counter())

    progress.listen(on_event)
    phases: dict[str, float] = {}
    mark = [T_START]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name] = round(now - mark[0], 3)
        mark[0] = now

    phase("import")
    # the CLI's pre-flight (fail fast on bad URLs before any orchestration)
    src, dst = commands.database_urls(a.source, a.target)
    commands.check_target_connects(dst)
    phase("preflight")
    # 1. Plan
    plan = commands.plan_migration(src.raw, dst.raw, options)
    phase("plan")
    # 2. Prepare the target
    tgt.prepare(commands.parse_target(dst.raw), plan, options)
    phase("prepare")

    # 3. Copy, keys and foreign keys in the flow's own schedule (golive.migrate.schedule), on a thread pool,
    #    every reader in the flow's snapshot of the source
    from flows.copy_steps import source_snapshot
    from golive.migrate.schedule import run_schedule

    chunk_secs, key_secs, fk_secs = [], {}, {}
    t_copy0 = time.perf_counter()
    last_chunk = [t_copy0]
    def on_chunk(tp, result, done, total):
        chunk_secs.append(result.seconds)
        last_chunk[0] = time.perf_counter()

    def timed(kind, fn, *args):
        def run():
            r = fn(*args)
            (key_secs if kind == "keys" else fk_secs)[r.table] = r.seconds
            return r
        return run

    t_dst = commands.parse_target(dst.raw)
    context = plan.context()
    with source_snapshot(src.raw, plan, options) as snapshot, ThreadPoolExecutor(max_workers=max(8, workers * 2)) as ex:
        chunks, steps = run_schedule(
            plan, workers,
            copy=lambda tp, ch: ex.submit(copying.copy_chunk, commands.parse_source(src.raw), t_dst,
                                          context, tp, ch, snapshot=snapshot),
            keys=lambda tp: ex.submit(timed("keys", tgt.finish_table, t_dst, plan.target_schema, tp)),
            link=lambda tp: ex.submit(timed("link", tgt.link_table, t_dst, plan.schema_of(tp), tp.target,
                                            tp.foreign_keys)),
            first_done=lambda futs: next(iter(wait(futs, return_when=FIRST_COMPLETED)[0])),
            on_chunk=on_chunk, interleave=a.order == "interleave")
    t_done = time.perf_counter()
    phases["copy"] = round(last_chunk[0] - t_copy0, 3)
    phases["keys_and_foreign_keys_after_copy"] = round(t_done - last_chunk[0], 3)
    mark[0] = t_done
    steps.append(tgt.create_views(t_dst, plan, tgt.final_statements(commands.parse_source(src.raw), plan)))
    phase("views")

    # 5. Report
    counts = commands.count_source_rows(src.raw, [t.source for t in plan.tables], plan.source_fingerprint,
                                        plan.context())
    phase("count_source_rows")
    rep = reports.build_report(plan, options, chunks, steps, source_counts=counts,
                               seconds=time.perf_counter() - T_START)
    tgt.complete(commands.parse_target(dst.raw), plan.run_key, rep["ok"])
    phase("report")
    end = time.perf_counter()
    out = {
        "ok": rep["ok"],
        "errors": rep["errors"][:5],
        "rows_written": rep["rows_written"],
        "rows_rejected": rep["rows_rejected"],
        "chunks": plan.chunk_count,
        "tables": len(plan.tables),
        "foreign_key_tables": len(fk_secs),
        "workers": workers,
        "order": a.order,
        "pragmas": a.pragma,
        "seconds": round(end - T_START, 3),
        "import_seconds": round(t_imported - T_START, 3),
        "first_row_seconds": round(first_row[0] - T_START, 3) if first_row else None,
        "planned_seconds": plan.planned_seconds,
        "phases": phases,
        "chunk_seconds_sum": round(sum(chunk_secs), 3),
        "chunk_seconds_max": round(max(chunk_secs), 3) if chunk_secs else 0.0,
        "keys_seconds": key_secs,
        "foreign_key_seconds": fk_secs,
        "threads_at_end": threading.active_count(),
    }
    text = json.dumps(out, indent=2)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text)
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # one line for the harness; it reports the probe as unavailable
        print(f"direct_migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(3)

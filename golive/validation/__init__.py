"""Validation: prove that a migrated copy equals its source, and name what differs when it does not.

Two kinds of checks, run side by side:

* **content** (``content``, on the specs of ``specs``): per key range, digests of every value on both sides,
  each side from its engine's ``Checksums`` (``golive/dialects/<engine>/checksums.py``: the canonical SQL, the
  value streams, how the engine runs and judges them); a differing range is narrowed down by bisection to the
  differing keys;
* **expectations** (``suites`` + ``gx``): Great Expectations suites per table, stored under
  ``expectations/``: row counts, primary keys, NOT NULL, UNIQUE, orphan foreign keys, in the target's SQL.

``prepare`` gathers what both need (the migration's plan and rejects, source counts), ``report``
assembles the result. ``validate`` runs everything with threads; the Prefect flow
``flows/validate.py`` runs the same steps as tasks. Nothing here imports Prefect; Great Expectations is
imported only when the suites run. Nothing here names an engine.

Adding a dialect: implement ``golive.dialects.base.Checksums`` in its package (a ``Checksums.Side``: its
canonical SQL, the value streams and the canonical text of one value; for a target, its Great Expectations
datasource and the suites' queries).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from pydantic import SecretStr

from golive.urls import DatabaseURL, as_url
from golive.model.validation import RangeCheck, TableSpec, ValidationResult
from golive.validation.options import ValidateOptions

log = logging.getLogger(__name__)

__all__ = ["ValidateOptions", "ValidationResult", "check_keys", "check_range", "jobs", "validate"]


def jobs(setup) -> list[tuple[str, int]]:
    """``(table, range number)`` of every comparison, costliest ranges first (so the last to finish is cheap).

    The cost of a range is about its rows times its columns (JSON counts thrice: PostgreSQL parses it).
    """
    out = []
    for spec in setup.specs:
        weight = sum(3 if c.type.ct.value == "json" else 1 for c in spec.columns) + 1
        n = max(1, len(spec.ranges))
        per = spec.rows_hint / n * weight
        out += [(per, spec.source, i) for i in range(n)]
    return [(t, i) for _, t, i in sorted(out, key=lambda x: -x[0])]


URL = DatabaseURL | str | SecretStr


def check_range(source: URL, target: URL, spec: TableSpec, range_no: int, limit: int = 10) -> RangeCheck:
    """Compare one key range of one table (one retryable unit)."""
    from golive.validation.content import Comparer

    with Comparer(as_url(source, role="source"), as_url(target, role="target"), spec, limit=limit) as cmp:
        return cmp.check(range_no)


def check_keys(source: URL, target: URL, plan, keys: dict[str, list[tuple]], rejected: dict[str, list[dict]],
               *, limit: int = 10) -> tuple[int, list[str]]:
    """Compare the rows of ``keys`` (per source table, source key values) value by value on both sides; rows in
    ``rejected`` (their key columns) are expected to be missing. Returns ``(rows checked, differences)``: an
    online migration's cut-over checks the rows its catch-up applied before the app switches. Tables without a
    key are left to the full validation."""
    from golive.validation.content import compare_keys
    from golive.validation.specs import build_spec

    source, target = as_url(source), as_url(target)
    checked, found = 0, []
    for tp in plan.tables:
        ks = keys.get(tp.source)
        if not ks:
            continue
        spec = build_spec(tp, plan.target_schema, rejected.get(tp.source, []), plan)
        if spec.kind == "bag":
            continue
        checked += len(ks)
        found += [d.message() for d in compare_keys(source, target, spec, ks, limit=limit - len(found))]
        if len(found) >= limit:
            break
    return checked, found


def differing_keys(source: URL, target: URL, plan, keys: dict[str, list[tuple]], rejected: dict[str, list[dict]]
                   ) -> set[tuple[str, tuple[str, ...]]]:
    """Of the rows of ``keys`` (per source table), those that differ now, as ``(table, key values as text)``: an
    online migration compares ahead of its cut-over. Cautious: a table whose differences cannot all be matched to
    a key (a key value printed otherwise, a table without a key) counts as differing entirely."""
    from golive.validation.content import compare_keys
    from golive.validation.specs import build_spec

    source, target = as_url(source), as_url(target)
    bad: set[tuple[str, tuple[str, ...]]] = set()
    for tp in plan.tables:
        ks = keys.get(tp.source)
        if not ks:
            continue
        everything = {(tp.source, tuple(map(str, k))) for k in ks}
        spec = build_spec(tp, plan.target_schema, rejected.get(tp.source, []), plan)
        if spec.kind == "bag":
            bad |= everything
            continue
        for d in compare_keys(source, target, spec, ks, limit=len(ks) + 1):
            key = (tp.source, tuple(str(v) for v in d.key.values()))
            if key not in everything:
                bad |= everything
                break
            bad.add(key)
    return bad


def check_all(source: URL, target: URL, plan, rejected: dict[str, list[dict]], *, workers: int = 4,
              chunk_rows: int = 250_000, limit: int = 10) -> tuple[int, list[str]]:
    """Every row of every planned table compared (content checksums, narrowed to the differing rows), without
    the expectation suites: an online cut-over's full check (``--cutover-check full``), source fenced. Returns
    ``(source rows compared, differences)``; ``rejected`` (per table, the key columns of each refused row) are
    expected to be missing."""
    from golive.validation.specs import build_spec, key_ranges

    source, target = as_url(source), as_url(target)
    specs = {tp.source: key_ranges(source, build_spec(tp, plan.target_schema, rejected.get(tp.source, []), plan),
                                   chunk_rows) for tp in plan.tables}
    setup = type("Specs", (), {"specs": list(specs.values())})()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        checks = list(pool.map(lambda job: check_range(source, target, specs[job[0]], job[1], limit), jobs(setup)))
    found = [d.message() for c in checks for d in c.differences]
    return sum(c.source_rows for c in checks), found[:limit]


def run_expectations(target: URL, setup, *, data_docs: bool = True, in_process: bool = False) -> dict:
    """Run every table's suite with Great Expectations, in the helper process (``gx_worker``) unless ``in_process``."""
    from pathlib import Path

    from golive.model.validation import ExpectationOutcome

    target = as_url(target, role="target")
    tables = {s.source: [s.schema_name, s.target] for s in setup.specs}
    out_dir = Path(setup.output_dir) / "gx"
    if in_process:
        from golive.validation import gx

        return gx.run_suites(target, setup.plan.target_schema, setup.suites, tables, setup.expected_rows, out_dir,
                             data_docs=data_docs)
    from golive.validation import gx_worker

    out = gx_worker.take().run({"target": target.raw, "schema": setup.plan.target_schema, "suites": setup.suites,
                                "tables": tables, "expected_rows": setup.expected_rows, "out_dir": str(out_dir),
                                "data_docs": data_docs})
    out["outcomes"] = [ExpectationOutcome(**o) for o in out["outcomes"]]
    return out


def validate(source: URL, target: URL, options: ValidateOptions | None = None, *,
             plan=None, run_key: str | None = None) -> ValidationResult:
    """Validate without Prefect: content comparisons in a thread pool, Great Expectations alongside.

    Great Expectations runs in its helper process, started first, so its import overlaps the work.
    """
    from golive.dialects import resolve
    from golive.validation import gx_worker, prepare, report

    source, target = resolve(as_url(source, role="source")), resolve(as_url(target, role="target"))
    options = options or ValidateOptions()
    t0 = time.perf_counter()
    gx_worker.prestart()
    setup = prepare.prepare(source, target, options, plan=plan, run_key=run_key)
    specs = {s.source: s for s in setup.specs}
    with ThreadPoolExecutor(max_workers=options.workers) as pool:
        gx_future = pool.submit(run_expectations, target, setup, data_docs=options.data_docs)
        futures = [pool.submit(check_range, source, target, specs[t], i, options.max_differences)
                   for t, i in jobs(setup)]
        checks = [f.result() for f in futures]
        gx_result = gx_future.result()
    result = report.build(setup, checks, gx_result, source=source.masked, target=target.masked,
                          seconds=time.perf_counter() - t0, max_differences=options.max_differences,
                          timings={"prepare": setup.seconds, **gx_result.get("seconds", {})})
    report.write(result, options.report)
    if options.data_docs:
        gx_worker.wait_docs()
    return result

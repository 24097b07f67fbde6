"""Turn the comparisons and the expectations into one result: per table, one line per failure, a summary, markdown."""

from __future__ import annotations

from pathlib import Path

from golive.report import write_json
from golive.urls import mask
from golive.model.validation import ExpectationOutcome, RangeCheck, TableResult, ValidationResult


def build(setup, checks: list[RangeCheck], gx: dict | None, *, source: str, target: str, seconds: float,
          timings: dict | None = None, max_differences: int = 10) -> ValidationResult:
    """Assemble the validation result (``setup`` is ``prepare.Setup``; ``gx`` what ``gx.run_suites`` returned)."""
    outcomes: list[ExpectationOutcome] = list((gx or {}).get("outcomes", [])) + list(getattr(setup, "stale", []))
    tables = []
    failures: list[str] = []
    for spec in setup.specs:
        mine = [c for c in checks if c.table == spec.source]
        diffs = [d for c in mine for d in c.differences] + [d for d in setup.uncomparable if d.table == spec.source]
        exp = [o for o in outcomes if o.table == spec.source]
        t = TableResult(table=spec.source, target=spec.target, source_rows=setup.source_rows.get(spec.source, 0),
                        rejected_rows=setup.rejected_rows.get(spec.source, 0),
                        target_rows=sum(c.target_rows for c in mine) if mine else None,
                        content="differs" if diffs else ("match" if mine else "skipped"), ranges=len(mine),
                        expectations_passed=sum(o.success for o in exp),
                        expectations_failed=sum(not o.success for o in exp))
        missing_ranges = max(0, max(1, len(spec.ranges)) - len(mine))
        for d in diffs[:max_differences]:
            t.failures.append(d.message())
        if len(diffs) > max_differences:
            t.failures.append(f"{spec.source}: content: ... and more differing rows (first {max_differences} shown)")
        if missing_ranges and mine:
            t.failures.append(f"{spec.source}: content: {missing_ranges} key ranges were not compared")
        for o in exp:
            if not o.success:
                t.failures.append(f"{spec.source}: {o.check}: {o.detail}")
        failures.extend(t.failures)
        tables.append(t)
    if gx is None:
        failures.append("expectations: Great Expectations did not run")
    ok = not failures
    rows = sum(setup.source_rows.values())
    n_exp = len(outcomes)
    n_ranges = len(checks)
    if ok:
        summary = (f"{len(tables)} tables, {rows} source rows: content identical in {n_ranges} key ranges, "
                   f"{n_exp} expectations met")
    else:
        bad = sorted({t.table for t in tables if t.failures})
        summary = f"{len(failures)} problems in {len(bad)} of {len(tables)} tables ({', '.join(bad[:5])})"
    return ValidationResult(
        ok=ok, summary=summary, failures=[mask(f) for f in failures], tables=tables, source=mask(source),
        target=mask(target), schema_name=setup.plan.target_schema, run_key=setup.run_key,
        output_dir=setup.output_dir, data_docs=(gx or {}).get("data_docs"), results_dir=(gx or {}).get("results_dir"),
        expectations_dir=setup.expectations_dir, seconds=round(seconds, 3), timings=timings or {})


def markdown(result: ValidationResult) -> str:
    """The Prefect artifact: one row per table, the failures, where the Data Docs are."""
    lines = [f"# Validation {'passed' if result.ok else 'FAILED'}", "", result.summary, "",
             "| table | source rows | rejected | target rows | content | expectations | problems |",
             "|---|---:|---:|---:|---|---|---:|"]
    for t in result.tables:
        exp = f"{t.expectations_passed} met" + (f", **{t.expectations_failed} failed**" if t.expectations_failed else "")
        content = t.content if t.content != "differs" else "**differs**"
        lines.append(f"| {t.table} | {t.source_rows} | {t.rejected_rows} | "
                     f"{'' if t.target_rows is None else t.target_rows} | {content} | {exp} | {len(t.failures)} |")
    if result.failures:
        lines += ["", "## Problems", ""] + [f"- {_md(f)}" for f in result.failures[:50]]
        if len(result.failures) > 50:
            lines.append(f"- ... and {len(result.failures) - 50} more (see the JSON report)")
    lines += [""]
    if result.data_docs:
        uri = Path(result.data_docs).as_uri()
        lines.append(f"Great Expectations Data Docs: [{result.data_docs}]({uri}) (on the machine that ran the flow)")
    if result.results_dir:
        lines.append(f"\nValidation results (JSON): `{result.results_dir}`")
    return "\n".join(lines)


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def write(result: ValidationResult, path: str | None) -> None:
    """Write the report to ``path`` and always to ``<output>/validation.json``."""
    data = result.report()
    if result.output_dir:
        write_json(str(Path(result.output_dir) / "validation.json"), data)
    if path:
        write_json(path, data)

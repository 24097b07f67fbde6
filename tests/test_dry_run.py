"""--dry-run writes nothing and prints the plan: order, counts, type decisions with reasons, predicted rejects."""

from __future__ import annotations

import json

from fixtures import quirks
from helpers import rows


def test_dry_run_writes_nothing_and_explains(golive, pg_url, tmp_path):
    src = quirks.build(tmp_path / "q.db")
    res = golive("migrate", "db", "--source", src, "--target", pg_url, "--dry-run", "--report", tmp_path / "plan.json")
    assert res.code == 0, res
    out = " ".join(res.out.split())  # rich wraps long lines
    assert "nothing was written" in out
    assert rows(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')") \
        == [(0,)]
    assert rows(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = '_golive'") == [(0,)]
    plan = json.loads((tmp_path / "plan.json").read_text())["plan"]
    names = [t["source"] for t in plan["tables"]]
    # foreign-key dependency order: parents first
    assert names.index("User") < names.index("order") and names.index("parent2") < names.index("child2")
    bad = next(t for t in plan["tables"] if t["source"] == "bad")
    assert bad["rows"] == 10
    predicted = {c["source"]: c["predicted_rejects"] for c in bad["columns"]}
    assert predicted["n"] == 1 and predicted["t"] == 1 and predicted["j"] == 1 and predicted["b"] == 1
    assert predicted["ts"] == 1  # 'not a date' ('now' is caught at copy time)
    types = next(t for t in plan["tables"] if t["source"] == "types")
    reason = {c["source"]: c["reason"] for c in types["columns"]}
    assert "exceed" not in reason["a_int11"] and "longest value has 7 characters" in reason["k_varchar5"]
    assert "time of day" in reason["j_date_time"]
    # the printed plan names decisions, predicted rejects with samples, and what is skipped
    assert "varchar(120)" in out and "timestamptz" in out and "will likely be rejected" in out and "'abc'" in out
    assert "ghost" in out and "order_touch" in out

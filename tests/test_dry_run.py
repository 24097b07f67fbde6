"""--dry-run writes nothing and prints the plan: order, counts, type decisions with reasons, predicted rejects."""

from __future__ import annotations

import json

from fixtures import quirks
from helpers import rows


def test_dry_run_writes_nothing_and_explains(golive, pg_url, tmp_path):
    src = quirks.build(tmp_path / "q.db")
    res = golive("migrate", "db", "--source", src, "--target", pg_url, "--dry-run", "--report", tmp_path / "plan.json")
    # issue 24 (one rule for every dry run): the bad rows' predicted rejects exceed --max-rejects 0, so the run would
    # fail, and the dry run exits 1 as it would (it exited 0 before; test_dry_run_exits_as_the_run_would)
    assert res.code == 1, res
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


def test_dry_run_exits_as_the_run_would(golive, pg_url, tmp_path):
    """Issue 24: 1 when more values would be rejected than --max-rejects allows, 2 when the target's tables would
    refuse the run, 0 otherwise; the report says the same."""
    from helpers import execute

    src = quirks.build(tmp_path / "q.db")
    dry = ("migrate", "db", "--source", src, "--target", pg_url, "--dry-run")
    res = golive(*dry, "--report", tmp_path / "p.json")
    assert res.code == 1 and "The migration would fail" in res.out and "--max-rejects" in res.out, res
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["exit_code"] == 1 and rep["ok"] is False and "would be rejected" in rep["problem"]
    assert golive(*dry, "--max-rejects", "1000").code == 0
    execute(pg_url, 'CREATE TABLE "User" (id int)')
    res = golive(*dry, "--max-rejects", "1000")
    assert res.code == 2 and "The migration would be refused" in res.out and "--drop-existing" in res.out, res
    assert golive(*dry, "--max-rejects", "1000", "--drop-existing").code == 0
    assert rows(pg_url, 'SELECT count(*) FROM "User"') == [(0,)]  # still nothing written


def test_the_flow_dry_run_ends_as_the_run_would(prefect_api, pg_url, tmp_path):
    """The migrate-database flow (a deployment's dry run) follows the same rule: Failed, with the reason, when the
    run would fail; its report says the exit code."""
    from pydantic import SecretStr

    from flows.migrate_database import migrate_database
    from golive.config import MigrateOptions

    src = SecretStr(f"sqlite:///{quirks.build(tmp_path / 'q.db')}")
    state = migrate_database(source=src, target=SecretStr(pg_url), options=MigrateOptions(dry_run=True),
                             return_state=True)
    assert state.is_failed() and "would be rejected" in state.message, state
    state = migrate_database(source=src, target=SecretStr(pg_url),
                             options=MigrateOptions(dry_run=True, max_rejects=1000), return_state=True)
    assert state.is_completed() and state.result()["exit_code"] == 0
    assert rows(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]

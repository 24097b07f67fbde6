"""The validation flow and CLI end to end: Chinook migrated by golive, then the target changed behind its back.

Real PostgreSQL (``pg_admin_url``), real Prefect API (``prefect_api``), Great Expectations offline.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from conftest import CASES, _with_db
from helpers import migrate

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"
pytestmark = pytest.mark.skipif(not CHINOOK.exists(), reason="needs ../shared/cases/chinook")


@pytest.fixture(scope="module")
def golden(pg_admin_url, prefect_api, tmp_path_factory):
    """Chinook migrated once (validation off); each test gets a copy (CREATE DATABASE ... TEMPLATE)."""
    name = "golive_vg_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    report = migrate(CHINOOK, url, validate_after=False, report=str(tmp_path_factory.mktemp("g") / "r.json"))
    assert report["ok"], report["errors"]
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def chinook(golden, pg_admin_url):
    name = "golive_vc_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{golden}"')
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_flow(url: str, tmp_path: Path, **options):
    """The validation flow in this process; returns (flow run state, report)."""
    from flows.validate import validate_migration
    from golive.cli.validate import report_of
    from golive.validation.options import ValidateOptions

    opts = ValidateOptions(output_dir=str(tmp_path / "out"), expectations_dir=str(tmp_path / "expectations"),
                           **options)
    state = validate_migration(source=SecretStr(f"sqlite:///{CHINOOK}"), target=SecretStr(url), options=opts,
                               return_state=True)
    return state, report_of(state)


def execute(url: str, *stmts: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in stmts:
            conn.execute(s)


def test_clean_copy_validates_with_exit_0(chinook, golive, tmp_path):
    with_password = chinook.replace("postgres@", "postgres:Sekret-pw-1@")  # trust auth ignores it
    r = golive("validate", "--source", CHINOOK, "--target", with_password, "--report", tmp_path / "v.json",
               "--out", tmp_path / "out", cwd=tmp_path)
    assert r.code == 0, r
    assert "OK: 11 tables, 15607 source rows" in r.out
    rep = json.loads((tmp_path / "v.json").read_text())
    assert rep["ok"] is True and rep["failures"] == []
    assert {t["table"]: t["content"] for t in rep["tables"]} == dict.fromkeys(
        ["Artist", "Employee", "Genre", "MediaType", "Playlist", "Album", "Customer", "Invoice", "Track",
         "InvoiceLine", "PlaylistTrack"], "match")
    assert all(t["expectations_failed"] == 0 and t["expectations_passed"] >= 3 for t in rep["tables"])
    # suites under golive-runs/expectations/<source>/ (in the working directory), GX results as JSON, Data Docs
    (path,) = (tmp_path / "golive-runs" / "expectations").glob("Chinook_Sqlite-*/public.Track.json")
    suite = json.loads(path.read_text())
    checks = {e["meta"]["golive"]["check"] for e in suite["expectations"]}
    assert checks == {"row count", "primary key not null", "not null", "primary key unique", "foreign key"}
    assert Path(rep["data_docs"]).is_file() and rep["data_docs"] in r.out
    assert len(list(Path(rep["results_dir"]).glob("*.json"))) == 11
    # the password is never printed or stored
    everything = r.all + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert "Sekret-pw-1" not in everything


MUTATIONS = {
    "changed value": (['UPDATE "Track" SET "Name" = \'Changed\' WHERE "TrackId" = 42'],
                      ["Track: content: row TrackId=42, column Name: target has 'Changed'"]),
    "deleted row": (['DELETE FROM "InvoiceLine" WHERE "InvoiceLineId" = 7'],
                    ["InvoiceLine: content: row InvoiceLineId=7 is in the source but missing from the target",
                     "InvoiceLine: row count: the target has 2239 rows, expected 2240"]),
    "orphan row": (['ALTER TABLE "Album" DROP CONSTRAINT "Album_ArtistId_fkey"',
                    'INSERT INTO "Album" VALUES (9001, \'Orphan\', 424242)'],
                   ["Album: foreign key: 1 dangling references (Album_ArtistId_fkey -> Artist): ArtistId=424242",
                    "Album: content: row AlbumId=9001 is in the target but not in the source"]),
    "orphan row, triggers bypassed": (["SET session_replication_role = replica",
                                       'INSERT INTO "Album" VALUES (9002, \'Orphan\', 434343)'],
                                      ["Album: content: row AlbumId=9002 is in the target but not in the source"]),
    "NOT NULL column nulled": (['ALTER TABLE "Customer" ALTER COLUMN "Email" DROP NOT NULL',
                                'UPDATE "Customer" SET "Email" = NULL WHERE "CustomerId" = 5'],
                               ["Customer: not null: column Email has 1 NULL values",
                                "Customer: content: row CustomerId=5, column Email: target has None"]),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=[m.replace(" ", "-") for m in MUTATIONS])
def test_each_change_fails_the_flow_and_names_table_check_and_key(mutation, chinook, tmp_path):
    stmts, expected = MUTATIONS[mutation]
    execute(chinook, *stmts)
    state, rep = run_flow(chinook, tmp_path)
    assert state.is_failed()
    assert rep["ok"] is False
    for line in expected:
        assert any(f.startswith(line) for f in rep["failures"]), (line, rep["failures"])
    bad = {t["table"] for t in rep["tables"] if t["failures"]}
    assert bad == {expected[0].split(":")[0]}


def test_cli_exits_1_and_prints_what_differs(chinook, golive, tmp_path):
    execute(chinook, 'UPDATE "Invoice" SET "Total" = 0.01 WHERE "InvoiceId" = 98')
    r = golive("validate", "--source", CHINOOK, "--target", chinook, "--tables", "Invoice,Customer",
               "--out", tmp_path / "out", "--no-data-docs", cwd=tmp_path)
    assert r.code == 1, r
    assert "Invoice: content: row InvoiceId=98, column Total: target has '0.01', source has '3.98'" in r.out
    assert "FAILED: 1 problems in 1 of 2 tables (Invoice)" in r.out


def test_markdown_artifact_summarises_per_table(chinook, tmp_path):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.artifacts import artifact_key

    state, rep = run_flow(chinook, tmp_path, tables=["Genre", "MediaType"])
    assert state.is_completed() and rep["ok"]

    async def latest():
        async with get_client() as client:
            key = artifact_key("validation-summary", chinook)  # one key per database: its history
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                               limit=50)
            return [a for a in arts if a.flow_run_id == state.state_details.flow_run_id]

    (art,) = asyncio.run(latest())
    assert art.type == "markdown"
    assert "| Genre | 25 | 0 | 25 | match | 3 met |" in art.data
    assert "Data Docs" in art.data and rep["data_docs"] in art.data


def test_hand_written_expectations_survive_regeneration_and_run(chinook, golive, tmp_path):
    r = golive("expectations", "generate", "--source", CHINOOK, "--target", chinook, "--tables", "Track",
               "--dir", tmp_path / "expectations", cwd=tmp_path)
    assert r.code == 0, r
    (path,) = (tmp_path / "expectations").glob("*/public.Track.json")
    suite = json.loads(path.read_text())
    suite["expectations"].append({"type": "expect_column_values_to_be_between",
                                  "kwargs": {"column": "Milliseconds", "min_value": 5000}, "meta": {}})
    path.write_text(json.dumps(suite))
    r = golive("expectations", "generate", "--source", CHINOOK, "--target", chinook, "--tables", "Track",
               "--dir", tmp_path / "expectations", cwd=tmp_path)
    assert "1 kept (hand-written)" in r.out, r
    state, rep = run_flow(chinook, tmp_path, tables=["Track"])
    assert state.is_failed()
    assert any(f.startswith("Track: hand-written:") for f in rep["failures"]), rep["failures"]


def test_migration_with_rejects_and_source_orphans_validates(pg_url, prefect_api, tmp_path):
    """The quirks database: rejected rows are expected to be missing, orphans the source already had are
    allowed (SQLite does not enforce foreign keys), and every other value compares equal."""
    from fixtures import quirks

    src = quirks.build(tmp_path / "quirks.db")
    report = migrate(src, pg_url, report=str(tmp_path / "r.json"))
    val = report["validation"]
    assert val["ok"] is True, val["failures"]
    assert report["ok"] is False  # because of the rejects, not because of validation
    assert not any(e.startswith("validation failed") for e in report["errors"])
    bad = next(t for t in val["tables"] if t["table"] == "bad")
    assert bad["rejected_rows"] == len(quirks.EXPECTED_REJECTS) and bad["content"] == "match"
    # one more orphan than the source had is not allowed
    execute(pg_url, "SET session_replication_role = replica", "INSERT INTO orphan_child VALUES (3, 77)")
    from flows.validate import validate_migration
    from golive.cli.validate import report_of
    from golive.validation.options import ValidateOptions

    state = validate_migration(source=SecretStr(f"sqlite:///{src}"), target=SecretStr(pg_url),
                               options=ValidateOptions(output_dir=str(tmp_path / "o2"), tables=["orphan_child"],
                                                       expectations_dir=str(tmp_path / "e2")),
                               return_state=True)
    rep = report_of(state)
    assert state.is_failed()
    assert any(f.startswith("orphan_child: foreign key: 1 dangling references") and "tree_id=77" in f
               for f in rep["failures"]), rep["failures"]
    assert not any("tree_id=99" in f for f in rep["failures"])  # the source's own orphan


def test_help_does_not_import_great_expectations():
    import subprocess
    import sys

    code = ("import sys; from golive.cli import _register, app; _register(); import flows.migrate_database; "
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

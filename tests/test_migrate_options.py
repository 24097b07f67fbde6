"""Options that change where and how things land: --identifiers snake, --schema, --tables, embedded://."""

from __future__ import annotations

from conftest import CASES
from helpers import column_types, migrate, rows, scalar

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"


def test_snake_case_identifiers_into_another_schema(pg_url, prefect_api, tmp_path):
    report = migrate(CHINOOK, pg_url, identifiers="snake", target_schema="shop", report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    tables = {r[0] for r in rows(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'shop'")}
    assert {"invoice_line", "media_type", "playlist_track", "artist"} <= tables
    assert not rows(pg_url, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'")
    assert set(column_types(pg_url, "invoice_line", schema="shop")) == {
        "invoice_line_id", "invoice_id", "track_id", "unit_price", "quantity"}
    fk = scalar(pg_url, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'invoice_line_invoice_id_fkey'")
    assert fk == "FOREIGN KEY (invoice_id) REFERENCES shop.invoice(invoice_id)"
    renamed = {(r["kind"], r["source"]): r["target"] for r in report["renamed"]}
    assert renamed[("table", "InvoiceLine")] == "invoice_line"
    assert scalar(pg_url, "SELECT count(*) FROM shop.playlist_track") == 8715


def test_only_some_tables(pg_url, prefect_api):
    report = migrate(CHINOOK, pg_url, tables=["Artist", "Album"])
    assert report["ok"] and [t["source"] for t in report["tables"]] == ["Artist", "Album"]
    assert {r[0] for r in rows(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")} == \
        {"Artist", "Album"}
    report = migrate(CHINOOK, pg_url, exclude=["Artist", "Album", "Track", "PlaylistTrack", "InvoiceLine"])
    skipped = [s for s in report["skipped"] if s["kind"] == "foreign key"]
    assert not skipped or all("not migrated" in s["reason"] for s in skipped)
    assert report["ok"]


def test_embedded_target(prefect_api, embedded_dir):
    report = migrate(CHINOOK, f"embedded://{embedded_dir}", tables=["Genre", "MediaType"])
    assert report["ok"] and report["rows_written"] == 30
    from golive.dialects.postgresql.embedded import start_postgres

    url = start_postgres(embedded_dir).raw
    assert scalar(url, 'SELECT count(*) FROM "Genre"') == 25

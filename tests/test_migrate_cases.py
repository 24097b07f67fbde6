"""Real sample databases written by others (../shared/cases): Chinook and Sakila, end to end."""

from __future__ import annotations

import pytest

from conftest import CASES
from helpers import column_types, migrate, rows, scalar

CHINOOK = CASES / "chinook" / "Chinook_Sqlite.sqlite"
SAKILA = CASES / "sakila" / "sakila.sqlite"

CHINOOK_COUNTS = {"Album": 347, "Artist": 275, "Customer": 59, "Employee": 8, "Genre": 25, "Invoice": 412,
                  "InvoiceLine": 2240, "MediaType": 5, "Playlist": 18, "PlaylistTrack": 8715, "Track": 3503}
SAKILA_COUNTS = {"actor": 200, "address": 603, "category": 16, "city": 600, "country": 109, "customer": 599,
                 "film": 1000, "film_actor": 5462, "film_category": 1000, "film_text": 1000, "inventory": 4581,
                 "language": 6, "payment": 16049, "rental": 16044, "staff": 2, "store": 2}


@pytest.mark.skipif(not CHINOOK.exists(), reason="needs ../shared/cases/chinook")
def test_chinook(pg_url, prefect_api, tmp_path):
    report = migrate(CHINOOK, pg_url, report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    assert {t["source"]: t["rows_written"] for t in report["tables"]} == CHINOOK_COUNTS
    for name, n in CHINOOK_COUNTS.items():
        assert scalar(pg_url, f'SELECT count(*) FROM "{name}"') == n
    fks = scalar(pg_url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")
    assert fks == 11
    assert column_types(pg_url, "Invoice")["Total"] == "numeric(10,2)"
    assert column_types(pg_url, "Invoice")["InvoiceDate"] == "timestamp with time zone"
    # the numbers the app shows are unchanged
    assert scalar(pg_url, 'SELECT sum("Total")::text FROM "Invoice"') == "2328.60"
    assert scalar(pg_url, 'SELECT "Name" FROM "Artist" WHERE "ArtistId" = 1') == "AC/DC"
    # the app can insert without giving an id, and gets the next one
    assert scalar(pg_url, 'INSERT INTO "Genre" ("Name") VALUES (\'Synthwave\') RETURNING "GenreId"') == 26


@pytest.mark.skipif(not SAKILA.exists(), reason="needs ../shared/cases/sakila")
def test_sakila(pg_url, prefect_api, tmp_path):
    report = migrate(SAKILA, pg_url, report=str(tmp_path / "r.json"))
    assert report["ok"], report["errors"]
    assert {t["source"]: t["rows_written"] for t in report["tables"]} == SAKILA_COUNTS
    # ENUM, YEAR, unsigned types, a column without a declared type, decimals stored as integers and reals
    film = column_types(pg_url, "film")
    assert film["rating"] == "text" and film["release_year"] == "smallint" and film["special_features"] == "text"
    assert film["rental_rate"] == "numeric(4,2)"
    assert scalar(pg_url, "SELECT sum(rental_rate)::text FROM film") == "2980.00"
    assert scalar(pg_url, "SELECT sum(amount)::text FROM payment") == "67416.51"
    skipped = {(s["kind"], s["name"]) for s in report["skipped"]}
    assert {("trigger", "ins_film"), ("trigger", "upd_film"), ("trigger", "del_film")} <= skipped
    views = [s for s in report["skipped"] if s["kind"] == "view"]
    assert views and all("PostgreSQL" in s["reason"] for s in views)
    assert scalar(pg_url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") >= 20
    assert not rows(pg_url, "SELECT 1 FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")

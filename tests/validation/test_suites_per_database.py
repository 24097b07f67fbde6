"""Generated suites belong to the database they were made for, follow its schema, and never land in a
project's tracked folders; a stale hand-written expectation is reported as such."""

from __future__ import annotations

import json
import sqlite3

from helpers import migrate


def _app(path, ddl: list[str]) -> str:
    db = sqlite3.connect(path)
    for stmt in ddl:
        db.execute(stmt)
    db.commit()
    db.close()
    return str(path)


APP_ONE = ['CREATE TABLE "User" (id INTEGER PRIMARY KEY, "createdAt" DATETIME NOT NULL, "isAdmin" BOOLEAN NOT NULL)',
           "INSERT INTO \"User\" VALUES (1, '2024-01-01 10:00:00', 1), (2, '2024-02-01 10:00:00', 0)"]
APP_TWO = ['CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)',
           "INSERT INTO \"User\" VALUES (1, 'a@example.com', 'A'), (2, 'b@example.com', NULL)"]


def _suite_files(root):
    return sorted(p.relative_to(root).as_posix() for p in (root / "golive-runs" / "expectations").rglob("*.json"))


def test_two_apps_with_a_user_table_from_the_same_directory_both_validate(tmp_path, pg_admin_url, pg_url, monkeypatch,
                                                                        prefect_api):
    import psycopg

    from conftest import _with_db

    monkeypatch.chdir(tmp_path)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _app(tmp_path / "one" / "app.db", APP_ONE)
    two = _app(tmp_path / "two" / "app.db", APP_TWO)  # same file name, other folder
    rep1 = migrate(one, pg_url)
    assert rep1["ok"] and rep1["validation"]["ok"], rep1["validation"]["failures"]
    second = pg_url + "_b"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{second.rsplit("/", 1)[1]}"')
    try:
        rep2 = migrate(two, _with_db(pg_admin_url, second.rsplit("/", 1)[1]))
        assert rep2["ok"] and rep2["validation"]["ok"], rep2["validation"]["failures"]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{second.rsplit("/", 1)[1]}" WITH (FORCE)')
    files = _suite_files(tmp_path)
    assert len(files) == 2 and len({f.split("/")[2] for f in files}) == 2, files  # one folder per database
    assert all(f.startswith("golive-runs/expectations/app-") and f.endswith("/public.User.json") for f in files)
    # nothing outside golive's state folder was written in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golive-runs", "one", "two"]


def test_schema_change_between_two_runs_regenerates_the_generated_part(tmp_path, pg_url, monkeypatch, prefect_api):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "app.db"
    _app(path, APP_ONE)
    assert migrate(str(path), pg_url)["validation"]["ok"]
    (suite_path,) = (tmp_path / "golive-runs" / "expectations").rglob("public.User.json")
    suite = json.loads(suite_path.read_text())
    # a hand-written expectation that stays valid, and one on a column the next version drops
    suite["expectations"] += [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "id", "min_value": 1}, "meta": {}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "isAdmin"}, "meta": {}}]
    suite_path.write_text(json.dumps(suite))
    # the app's schema changes: isAdmin goes, role (NOT NULL) comes
    db = sqlite3.connect(path)
    db.executescript('ALTER TABLE "User" DROP COLUMN "isAdmin"; ALTER TABLE "User" ADD COLUMN role TEXT NOT NULL '
                     "DEFAULT 'member';")
    db.close()
    rep = migrate(str(path), pg_url, drop_existing=True)
    val = rep["validation"]
    assert not val["ok"]
    # only the stale hand-written expectation fails, and it says why; nothing about NULL counts of None
    assert val["failures"] == ["User: hand-written: hand-written expectation on column isAdmin, which the table "
                               "does not have (columns: id, createdAt, role)"], val["failures"]
    regenerated = json.loads(suite_path.read_text())
    generated = [e for e in regenerated["expectations"] if "golive" in e["meta"]]
    assert {e["kwargs"].get("column") for e in generated if e["type"] == "expect_column_values_to_not_be_null"} == {
        "id", "createdAt", "role"}
    assert sum("golive" not in e["meta"] for e in regenerated["expectations"]) == 2  # both hand-written kept
    # once the person removes the stale one, the copy validates
    regenerated["expectations"] = [e for e in regenerated["expectations"] if e["kwargs"].get("column") != "isAdmin"]
    suite_path.write_text(json.dumps(regenerated))
    from flows.validate import validate_migration
    from golive.cli.validate import report_of
    from golive.validation.options import ValidateOptions
    from pydantic import SecretStr

    state = validate_migration(source=SecretStr(f"sqlite:///{path}"), target=SecretStr(pg_url),
                               options=ValidateOptions(data_docs=False), return_state=True)
    assert report_of(state)["ok"], report_of(state)["failures"]

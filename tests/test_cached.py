"""Caching as the Prefect UI shows it: a re-run after an interrupted run shows the work golive skips as ``Cached``
task runs (chunks an earlier run committed, files it uploaded), keyed on what makes the work the same, and only
when golive's own check against the target finds it still there: rows or objects deleted since make it a miss,
and the work is done again. Against the session's real Prefect API, PostgreSQL and moto's S3."""

from __future__ import annotations

import os
import sqlite3
import uuid

import psycopg
import pytest
from pydantic import SecretStr

from helpers import scalar, task_runs


# ---------------------------------------------------------------- chunks


def build_app(path) -> dict[str, int]:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind_id INTEGER REFERENCES kinds(id), note TEXT)")
    db.execute("CREATE TABLE notes (body TEXT)")  # no key: chunked by rowid, which the target does not have
    db.executemany("INSERT INTO kinds VALUES (?, ?)", [(i, f"k{i}") for i in range(1, 4)])
    db.executemany("INSERT INTO events VALUES (?, ?, ?)", [(i, i % 3 + 1, f"e{i}") for i in range(1, 1201)])
    db.executemany("INSERT INTO notes VALUES (?)", [(f"n{i}",) for i in range(900)])
    db.commit()
    db.close()
    return {"kinds": 3, "events": 1200, "notes": 900}


def migrate(src, url):
    from flows.migrate_database import migrate_database
    from golive.config import MigrateOptions

    state = migrate_database(source=SecretStr(f"sqlite:///{src}"), target=SecretStr(url),
                             options=MigrateOptions(chunk_rows=300, workers=2, validate_after=False),
                             return_state=True)
    report = state.result(raise_on_failure=False)
    assert not isinstance(report, BaseException), report
    return state.state_details.flow_run_id, report


def test_a_resumed_copy_shows_its_committed_chunks_as_cached_unless_their_rows_are_gone(prefect_api, pg_url,
                                                                                         tmp_path):
    src = tmp_path / "app.db"
    counts = build_app(src)
    first_id, first = migrate(src, pg_url)
    assert first["ok"] and first["rows_written"] == sum(counts.values())
    assert not any(name == "Cached" for _, name, _, _ in task_runs(first_id).values())

    # the run is cut short after its chunks committed (as a kill before the report); meanwhile someone deletes
    # rows of one table in the target, and the other table without a key loses nothing
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE _golive.runs SET status = 'copying', finished_at = NULL")
        conn.execute("DELETE FROM events WHERE id > 1000")
    second_id, second = migrate(src, pg_url)
    assert second["ok"] and second["resumed"], second
    runs = task_runs(second_id)
    chunks = {n: r for n, r in runs.items() if n.startswith("copy-")}
    assert len(chunks) == 1 + 4 + 3, sorted(chunks)  # kinds 1 chunk, events 4, notes 3
    cached = sorted(n for n, (kind, name, _, _) in chunks.items() if kind == "COMPLETED" and name == "Cached")
    assert cached == ["copy-kinds-0", "copy-notes-0", "copy-notes-1", "copy-notes-2"], chunks
    # the rows that were gone make the events chunks a miss: copied again, as ordinary runs
    assert all(chunks[f"copy-events-{i}"][:2] == ("COMPLETED", "Completed") for i in range(4)), chunks
    kind, name, message, key = chunks["copy-kinds-0"]
    assert key.startswith("golive-chunk-") and "copied by an earlier run" in message and "3 rows" in message
    assert "events: the interrupted run copied 1200 rows, the target holds 1000 now" in " ".join(second["warnings"])
    # nothing lost, nothing doubled
    for table, n in counts.items():
        assert scalar(pg_url, f"SELECT count(*) FROM {table}") == n
    assert scalar(pg_url, "SELECT count(DISTINCT id) FROM events") == 1200
    assert scalar(pg_url, "SELECT status FROM _golive.runs") == "complete"


# ---------------------------------------------------------------- file batches


@pytest.fixture
def uploads(tmp_path):
    root = tmp_path / "uploads"
    for i in range(9):
        p = root / f"d{i % 3}" / f"f{i}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1000 + i))
    return root


def test_a_rerun_shows_uploaded_batches_as_cached_and_puts_back_a_deleted_object(prefect_api, uploads, bucket, s3,
                                                                                 s3_endpoint, tmp_path):
    from flows.migrate_files import MigrateFilesParams, migrate_files

    dest = f"s3://{bucket}/m"
    params = MigrateFilesParams(source=str(uploads), dest=dest, endpoint_url=s3_endpoint, workers=2,
                                state_dir=str(tmp_path / "state"))
    state = migrate_files(params, return_state=True)
    assert state.result().uploaded == 9
    assert not any(name == "Cached" for _, name, _, _ in task_runs(state.state_details.flow_run_id).values())

    # the re-run has work (a file added since, as after a failure), and an object is gone from the destination
    (uploads / "d2" / "new.jpg").write_bytes(b"new")
    s3.delete_object(Bucket=bucket, Key="m/d1/f4.jpg")
    state = migrate_files(params, return_state=True)
    report = state.result()
    assert report.ok and sorted(report.uploaded_paths) == ["d1/f4.jpg", "d2/new.jpg"] and report.unchanged == 8
    assert any("gone from the destination" in n for n in report.notes), report.notes
    assert s3.head_object(Bucket=bucket, Key="m/d1/f4.jpg")["ContentLength"] == 1004
    runs = task_runs(state.state_details.flow_run_id)
    done = {n: r for n, r in runs.items() if n.startswith("upload-batch-done-")}
    assert done and all(r[:2] == ("COMPLETED", "Cached") for r in done.values()), runs
    assert sum(int(r[2].split(" ", 1)[0]) for r in done.values()) == 8  # "N file(s) ... uploaded ... earlier run"
    assert all(r[3].startswith("golive-files-") for r in done.values())
    uploaded = [r for n, r in runs.items() if n.startswith("upload-batch-") and n not in done]
    assert uploaded and all(r[1] == "Completed" for r in uploaded), runs

    again = migrate_files(params, return_state=True)  # nothing to do: the manifest alone decides, nothing Cached
    assert again.result().unchanged == 10
    assert not any(r[1] == "Cached" for r in task_runs(again.state_details.flow_run_id).values())


def test_cached_states_name_no_secret_and_prefect_caches_nothing():
    """golive decides what is done: every task keeps Prefect's result cache off and results in memory."""
    import importlib

    from prefect.cache_policies import NO_CACHE

    from tasks import cached

    state = cached({"rows": 3}, "fingerprint", "users", 0, 10, what="chunk", message="users chunk 0")
    assert state.is_completed() and state.name == "Cached" and state.state_details.cache_key.startswith("golive-chunk-")
    secret = "pw-" + uuid.uuid4().hex
    assert secret not in cached(1, f"postgresql://u:{secret}@h/db", what="x", message="m").state_details.cache_key
    for module in ("tasks.migrate", "tasks.files", "tasks.go_live"):
        mod = importlib.import_module(module)
        for obj in vars(mod).values():
            if hasattr(obj, "cache_policy") and hasattr(obj, "fn"):
                assert obj.cache_policy is NO_CACHE and obj.persist_result is False, (module, obj.name)

"""``golive release`` end to end: two releases at once (the second refused), ``kill -9`` in the middle (the next
run says what state it found, and goes on once told to), ``--lint-only`` for pull requests, bad input in one
line with exit 2 and no password printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .conftest import pg_exec, pg_rows, write


def start(args: list[str], cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "golive", *args], cwd=str(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=dict(os.environ))


def wait_for(pred, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def journal_step(url: str):
    try:
        rows = pg_rows(url, "SELECT step, detail FROM _golive.releases WHERE state = 'running'")
    except Exception:  # noqa: BLE001 - not created yet
        return None
    return rows[0] if rows else None


def test_two_releases_at_once_the_second_is_refused(golive, pg_db, tmp_path):
    # the first release's migration waits until the test opens the gate (a fixed sleep lost the race when the
    # second command took longer to start than the sleep lasted, on a loaded machine)
    pg_exec(pg_db, "CREATE TABLE t (id int PRIMARY KEY)", "CREATE TABLE gate (open int)")
    mig = write(tmp_path / "m", {"001_slow.sql": (
        "ALTER TABLE t ADD COLUMN a int;\n"
        "DO $$ BEGIN FOR i IN 1..1200 LOOP EXIT WHEN EXISTS (SELECT 1 FROM gate); PERFORM pg_sleep(0.05); "
        "END LOOP; END $$;\n")})
    args = ["release", "--db", pg_db, "--migrations", f"sql:{mig}", "--backup-to", f"file://{tmp_path}/b"]
    first = start(args, tmp_path)
    try:
        wait_for(lambda: journal_step(pg_db) == ("migrate", "001_slow"), what="the first release to migrate")
        res = golive(*args)
        assert res.code == 2, res
        assert "another golive release is running" in res.all and "golive-release-lock" in res.all, res
        assert "refused" in res.err and len(res.err.strip().splitlines()) == 1
    finally:
        pg_exec(pg_db, "INSERT INTO gate VALUES (1)")
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert pg_rows(pg_db, "SELECT count(*) FROM _golive.releases") == [(1,)]  # the refused one wrote nothing


def test_kill_9_in_the_middle_then_the_next_run_says_what_it_found(golive, pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t SELECT generate_series(1, 100)")
    mig = write(tmp_path / "m", {"001_fast.sql": "ALTER TABLE t ADD COLUMN a int;\n",
                                 "002_slow.sql": "ALTER TABLE t ADD COLUMN b int;\nSELECT pg_sleep(60);\n"})
    args = ["release", "--db", pg_db, "--migrations", f"sql:{mig}", "--backup-to", f"file://{tmp_path}/b"]
    proc = start(args, tmp_path)
    try:
        wait_for(lambda: journal_step(pg_db) == ("migrate", "002_slow"), what="002 to start")
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    # the server ends the killed release's sessions (its lock with them, its transaction rolled back)
    wait_for(lambda: pg_rows(pg_db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                                    "application_name LIKE 'golive-release%%'") == [(0,)], what="the sessions to end")
    res = golive(*args)
    assert res.code == 2, res
    text = " ".join(res.all.split())
    assert "was interrupted during migrate (002_slow)" in text, text
    assert "applied now: 001_fast" in text and "002_slow was being applied and left nothing" in text
    assert "golive restore --from file://" in text and "--resolve-interrupted" in text
    assert pg_rows(pg_db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'"
                   ) == [(0,)]
    # accept that state and go on (002 fixed meanwhile: it was never applied, so it is no drift)
    write(mig, {"002_slow.sql": "ALTER TABLE t ADD COLUMN b int;\n"})
    res = golive(*args, "--resolve-interrupted")
    assert res.code == 0, res
    assert pg_rows(pg_db, "SELECT state FROM _golive.releases ORDER BY started_at") == [("interrupted",), ("released",)]
    assert pg_rows(pg_db, "SELECT version FROM _golive.migrations ORDER BY 1") == [("001",), ("002",)]


def test_lint_only_for_pull_requests(golive, pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE t (id int PRIMARY KEY, v text)",
            "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g")
    mig = write(tmp_path / "m", {"001_drop.sql": "ALTER TABLE t DROP COLUMN v;\n"})
    res = golive("release", "--db", pg_db, "--migrations", f"sql:{mig}", "--lint-only")
    assert res.code == 2 and "drop-column" in res.out and "5,000 rows" in " ".join(res.out.split()), res
    res = golive("release", "--db", pg_db, "--migrations", f"sql:{mig}", "--lint-only", "--allow", "drop-column")
    assert res.code == 0 and "allowed" in res.out, res
    assert pg_rows(pg_db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't'") == [(2,)]


def test_bad_input_one_line_exit_2_no_password(golive, pg_db, tmp_path):
    mig = write(tmp_path / "m", {"001_a.sql": "SELECT 1;\n"})
    cases = [
        (["--migrations", f"flyway:{mig}"], "unknown kind 'flyway'"),
        (["--migrations", f"sql:{tmp_path}/nope"], "does not exist"),
        # issue 24: --backup-to is no longer required (it defaults to file://<state dir>/backups, as go-live):
        # test_release_backs_up_to_the_state_dir_by_default; a bad one is still refused in one line
        (["--migrations", f"sql:{mig}", "--backup-to", "ftp://x/y"], "ftp://x/y"),
        (["--migrations", f"sql:{mig}", "--dry-run", "--allow", "drop-colum"], "did you mean drop-column"),
        (["--migrations", f"sql:{mig}", "--dry-run", "--lock-timeout", "soon"], "is not a duration"),
        (["--migrations", f"sql:{mig}", "--dry-run", "--notify", "teams+https://x.example/hook"], "expected [KIND+]"),
    ]
    for extra, expected in cases:
        res = golive("release", "--db", pg_db, *extra)
        assert res.code == 2 and expected in res.err and len(res.err.strip().splitlines()) == 1, (extra, res)
    wrong = pg_db.replace("postgres@", "postgres:Sekrit99@").rsplit("/", 1)[0] + "/grl_does_not_exist"
    res = golive("release", "--db", wrong, "--migrations", f"sql:{mig}", "--backup-to", f"file://{tmp_path}/b")
    assert res.code == 2 and "does not exist" in res.all and "Sekrit99" not in res.all, res


def test_release_backs_up_to_the_state_dir_by_default_and_says_where(golive, pg_db, tmp_path):
    """Issue 24: `golive release` defaults --backup-to to file://<state dir>/backups as go-live does, prints where
    the backup went, and says each state once ("released: …", not "released: released: …")."""
    pg_exec(pg_db, "CREATE TABLE t (id int PRIMARY KEY)")
    mig = write(tmp_path / "m", {"001_a.sql": "ALTER TABLE t ADD COLUMN a int;\n"})
    backups = tmp_path / "golive-runs" / "backups"
    res = golive("release", "--db", pg_db, "--migrations", f"sql:{mig}", "--dry-run", cwd=tmp_path)
    assert res.code == 0, res
    assert "dry run: the release would apply 1 migration(s)" in res.out and "dry-run: dry run" not in res.out, res
    assert f"file://{backups}" in res.out and not backups.exists(), res  # checked, not created
    res = golive("release", "--db", pg_db, "--migrations", f"sql:{mig}", cwd=tmp_path)
    assert res.code == 0, res
    assert "released: 1 migration(s) applied" in res.out and "released: released" not in res.out, res
    assert f"backup: file://{backups}/" in res.out and "golive restore --from" in res.out, res
    assert [p.name for p in backups.iterdir()], res
    res = golive("release", "--db", pg_db, "--migrations", f"sql:{mig}", "--state-dir", tmp_path / "s2",
                 cwd=tmp_path)
    assert res.code == 0 and "nothing to release" in res.out, res

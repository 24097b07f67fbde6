"""Rollback: decide how, then undo what the release did.

* **nothing-to-undo**: no migration of the release had been applied and the one that failed left nothing
  (its transaction rolled back, or it failed on its first statement): its failed record is removed and the
  schema compared with the one before the release.
* **down**: with ``--rollback down``, when every applied migration has a down-migration and the failed one
  left nothing; they run newest first, each recorded as not applied in the tool's history; then the schema
  is compared with the one before the release, and the row counts of the counted tables with theirs.
* **restore** (default, and whenever down cannot be trusted): the release's backup restored onto the same
  database with ``restore_backup(force=True)``: afterwards it equals the backup (checked by the restore's
  own row counts and schema fingerprint).
"""

from __future__ import annotations

import time

from golive.errors import GoliveError
from golive.release import db
from golive.release.model import Migration, MigrationRun, Rollback
from golive.release.state import ReleaseState, executor, reconnect, runtime, write_journal


def decide(method: str, applied: list[Migration], failed: MigrationRun | None) -> Rollback:
    """The rollback to run for a release that applied ``applied`` and then failed (``failed``: the migration that
    failed, None when a later step did)."""
    left_nothing = failed is None or bool(failed.left_nothing)
    if not applied and left_nothing:
        what = f"{failed.label} left nothing" if failed else "nothing was applied"
        return Rollback(method="nothing-to-undo", why=f"no migration had been applied and {what}")
    if method == "down":
        missing = [m.label for m in applied if not m.has_down]
        if missing:
            return Rollback(method="restore", why=f"--rollback down, but {', '.join(missing)} "
                                                  f"ha{'s' if len(missing) == 1 else 've'} no down-migration")
        if not left_nothing:
            return Rollback(method="restore", why=f"{failed.label} stopped half-way (its statements commit one by one), "
                                                  "so down-migrations cannot be trusted")
        return Rollback(method="down", why="every applied migration has a down-migration")
    return Rollback(method="restore", why="--rollback restore (the default)")


# ---------------------------------------------------------------- the steps

def plan(state: ReleaseState) -> ReleaseState:
    """Decide how to undo the release (``decide``) and say so."""
    applied_versions = [r.version for r in state.report.runs if r.status == "applied"]
    applied = [m for m in state.pending if m.version in applied_versions]
    failed_run = next((r for r in state.report.runs if r.status == "failed"), None)
    rb = decide(state.options.rollback, applied, failed_run)
    state.report.rollback = rb
    state.event("rollback", "start", f"{rb.method}: {rb.why}")
    return state


def _failed_migration(state: ReleaseState) -> Migration | None:
    failed_run = next((r for r in state.report.runs if r.status == "failed"), None)
    return next((m for m in state.pending if failed_run and m.version == failed_run.version), None)


def undo(state: ReleaseState) -> ReleaseState:
    """nothing-to-undo and down: the failed attempt's record removed, the down-migrations run newest first; then
    the schema and the row counts compared with before (restore: ``restore``, or the flow's restore subflow)."""
    rt = runtime(state)
    rb = state.report.rollback
    write_journal(state, step=f"rollback-{rb.method}")
    ex = executor(state, "rollback", until=time.time() + state.timeout_s)  # the rollback gets a whole timeout
    try:
        if rb.method == "down":
            applied_versions = [r.version for r in state.report.runs if r.status == "applied"]
            for m in reversed([m for m in state.pending if m.version in applied_versions]):
                rt.source.down(ex, m)
                run = next(r for r in state.report.runs if r.version == m.version)
                run.status = "rolled-back"
                rb.checks.append(f"down-migration of {m.label} ran")
                state.event("rollback", "ok", f"down-migration of {m.label} ran")
        failed = _failed_migration(state)
        if failed is not None:
            reconnect(state)
            rt.source.forget_failed(rt.conn, failed)
    except GoliveError as exc:
        rb.ok, rb.message = False, str(exc)
        rb.problems.append(str(exc))
        state.event("rollback", "failed", str(exc))
        return state
    _compare(state, rb)
    return state


def _compare(state: ReleaseState, rb: Rollback) -> None:
    from golive.release.validate import schema_diff, schema_rows

    if state.before_schema is not None:
        diff = schema_diff(state.before_schema, schema_rows(state.url))
        if diff:
            rb.problems.append(f"the schema differs from before the release in: {', '.join(diff)}")
        else:
            rb.checks.append("the schema is as before the release")
    if state.before_counts:
        reconnect(state)
        before = {(s, t): n for s, t, n in state.before_counts}
        now = db.count_rows(runtime(state).conn, state.url, list(before))
        bad = [f"{k[1]}: {now.get(k)} rows, {n} before" for k, n in before.items() if now.get(k) != n]
        if bad:
            rb.problems.append("row counts differ from before the release: " + "; ".join(bad))
        else:
            rb.checks.append(f"row counts of {len(before)} table(s) as before")
    rb.ok = not rb.problems
    rb.message = "; ".join(rb.problems) if rb.problems else "; ".join(rb.checks)
    state.event("rollback", "ok" if rb.ok else "failed", rb.message)


def restore(state: ReleaseState) -> ReleaseState:
    """Restore the release's backup onto the database, in this process (the flow runs the restore-database flow)."""
    from golive import backup as bk

    before_restore(state)
    o = state.options
    try:
        result = bk.restore_backup(state.report.backup.url, state.url, bk.RestoreOptions(
            force=True, storage=o.storage, encryption_key=o.encryption_key))
    except GoliveError as exc:
        return restored(state, False, [], [], str(exc))
    return restored(state, result.ok, result.checks, result.problems)


def before_restore(state: ReleaseState) -> None:
    """The journal says so; nothing of ours may hold a lock the restore's DROP waits for."""
    rt = runtime(state)
    write_journal(state, step="rollback-restore")
    state.event("rollback", "start", f"restoring {state.report.backup.url} onto {state.url.masked}")
    if rt.conn is not None:
        rt.conn.close()
        rt.conn = None


def restored(state: ReleaseState, ok: bool, checks: list[str], problems: list[str],
             error: str | None = None) -> ReleaseState:
    """Record how the restore went (whoever ran it)."""
    rb = state.report.rollback
    rb.checks = list(checks)
    rb.problems = list(problems) + ([error] if error else [])
    rb.ok = ok and not error and not problems
    rb.message = error or ("; ".join(problems) if problems else f"backup {state.report.backup.id} restored")
    reconnect(state)
    state.event("rollback", "ok" if rb.ok else "failed", rb.message + (f" ({'; '.join(checks)})" if checks else ""))
    return state

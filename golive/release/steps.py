"""The steps of a release, declared once: ``STEPS``, in order, each a function ``(state, *args) -> state`` with the
condition it runs under. The plain runner (``golive.release.runner.run_release``) calls them in this process; the
``release`` flow runs each as a task (``backup`` and ``restore`` as the backup-database and restore-database
subflows). Both go through ``drive``, so adding a step is one line here.

The order: pre-check (the release lock is taken there and held to the end) → lint → begin (journal row,
bookkeeping tables, row counts and schema before) → backup → migrate, one migration at a time → validate →
health → on any failure after the backup: rollback (plan; nothing-to-undo, down, or restore) → health again →
conclude (state, exit code, what state the database is in) → notify; then ``finish`` (journal, report file,
sessions closed), whatever happened.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from golive.errors import GoliveError
from golive.model.release import fail
from golive.release import db, journal, rollback
from golive.release.review import lint_step
from golive.release.migrations.base import run_record
from golive.release.model import BackupRef, Failure, Migration, ReleaseReport, Rollback
from golive.release.precheck import precheck
from golive.release.report import conclude as conclude_report
from golive.release.state import ReleaseState, close, executor, reconnect, runtime, write_journal
from golive.urls import mask, secret


# ---------------------------------------------------------------- 3. begin and back up

def begin(state: ReleaseState) -> ReleaseState:
    """The journal row, the tools' history tables (so the backup holds them), the state before."""
    from golive.release.validate import counted, schema_rows

    state.went_ahead = True
    rt = runtime(state)
    state.event("begin", "start", f"release {state.id}: {len(state.pending)} migration(s)")
    journal.ensure(rt.conn, state.dialect)
    rt.source.prepare(rt.conn)
    if state.interrupted is not None and state.resolve_interrupted:
        close_interrupted(state)
    journal.begin(rt.conn, state.dialect, journal.JournalRow(
        id=state.id, started_at=state.report.started_at, updated_at=state.report.started_at, state="running",
        step="backup", kind=rt.source.kind, source=state.options.migrations,
        pending=[m.version for m in state.pending], backup_to=state.options.backup_to))
    state.journaled = True
    tables, notes = counted(state)
    state.before_counts = [(s, t, n) for (s, t), n in db.count_rows(rt.conn, state.url, tables).items()]
    state.report.validation["notes"] = notes
    try:
        state.before_schema = schema_rows(state.url)
    except GoliveError as exc:
        state.report.warnings.append(f"schema before the release not read: {exc}")
    if state.before_counts:
        from golive.validation import gx_worker

        gx_worker.prestart()  # Great Expectations imports while the backup runs
    state.event("begin", "ok", f"journal row written; {len(state.before_counts)} table(s) counted")
    return state


def close_interrupted(state: ReleaseState) -> None:
    """Mark the interrupted earlier release ``interrupted`` (no longer ``running``): its state was accepted, by
    ``--resolve-interrupted`` or because it left the database as before."""
    journal.update(runtime(state).conn, state.dialect, state.interrupted.id, state="interrupted",
                   finished_at=dt.datetime.now(dt.timezone.utc),
                   statement=f"interrupted; the state it left was accepted by release {state.id}")
    state.interrupted = None


def backup_name(state: ReleaseState) -> str:
    return state.info.database if state.info else "db"


def backup(state: ReleaseState) -> ReleaseState:
    """The backup, in this process (the flow runs the backup-database flow instead)."""
    from golive import backup as bk

    o = state.options
    state.event("backup", "start", f"backing up to {o.backup_to}")
    try:
        result = bk.backup_database(state.url, o.backup_to, bk.BackupOptions(
            name=backup_name(state), storage=o.storage, encryption_key=o.encryption_key))
        verified = None
        if o.verify_backup:
            from pydantic import SecretStr

            try:
                v = bk.verify_backup(result.url, bk.VerifyOptions(storage=o.storage, encryption_key=o.encryption_key,
                                                                  own_server=SecretStr(state.url.raw)))
            except GoliveError as exc:  # the verification could not run: the backup exists, unproven
                raise GoliveError(f"backup {result.id} written, not verified: {exc}") from None
            verified = v.verification.status
            if not v.ok:
                raise GoliveError(f"backup {result.id} failed verification: " + "; ".join(v.verification.problems[:3]))
    except GoliveError as exc:
        return backup_failed(state, str(exc))
    m = result.manifest
    return backed_up(state, BackupRef(id=result.id, url=result.url, verified=verified, rows=m.rows,
                                      stored_bytes=m.stored_bytes, seconds=m.duration_seconds))


def backed_up(state: ReleaseState, ref: BackupRef) -> ReleaseState:
    """Record the backup (whoever made it)."""
    state.report.backup = ref
    write_journal(state, step="migrate", backup_url=ref.url)
    state.event("backup", "ok", f"backup {ref.id} ({ref.rows} rows, {ref.stored_bytes} bytes stored"
                                + (f", verification {ref.verified}" if ref.verified else "") + ")")
    return state


def backup_failed(state: ReleaseState, message: str) -> ReleaseState:
    state.report.failed = Failure(step="backup", message=message)
    state.event("backup", "failed", message)
    return state


# ---------------------------------------------------------------- 4. migrate

def migrate(state: ReleaseState, migration: Migration) -> ReleaseState:
    """One migration under the lock and statement timeouts (lock timeouts retried with backoff), within the
    overall timeout of all of them."""
    m = migration
    rt = runtime(state)
    ex = executor(state, "migrate")
    run = run_record(m)
    state.report.runs.append(run)
    write_journal(state, step="migrate", detail=m.label)
    state.event("migrate", "start", f"{m.label} ({'one transaction' if m.transactional else 'statement by statement'})")
    t0 = time.perf_counter()
    try:
        run.statements = rt.source.apply(ex, m, state.id)
        run.status = "applied"
    except GoliveError as exc:
        run.status, run.error = "failed", str(exc)
        run.left_nothing = bool(exc.context.get("left_nothing", False))
        run.statements = int(exc.context.get("statements_done", 0) or 0)
        state.report.failed = Failure(step="migrate", migration=m.label, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - an unexpected error: assume it left something
        run.status, run.error, run.left_nothing = "failed", mask(f"{type(exc).__name__}: {exc}"), False
        state.report.failed = Failure(step="migrate", migration=m.label, message=run.error)
    run.attempts = ex.attempts
    run.seconds = round(time.perf_counter() - t0, 3)
    if run.status == "applied":
        write_journal(state, applied=[r.version for r in state.report.runs if r.status == "applied"])
        state.event("migrate", "ok", f"{m.label}: {run.statements} statement(s) in {run.seconds:.2f} s"
                                     + (f" ({run.attempts} attempts)" if run.attempts > 1 else ""))
    else:
        state.event("migrate", "failed", run.error)
    return state


# ---------------------------------------------------------------- 5. validate, 6. health

def validate(state: ReleaseState) -> ReleaseState:
    """--check-sql queries and the Great Expectations row counts of the changed tables."""
    if state.failed:
        return state
    from golive.release import validate as v

    write_journal(state, step="validate", detail=None)
    state.event("validate", "start", "the app's checks and the row counts")
    checks, problems = [], []
    if state.options.check_sql:
        c, p = v.run_check_sql(state.url, state.options.check_sql)
        checks += c
        problems += p
    try:
        out_dir = Path("golive-runs") / "release" / state.id / "gx"
        before = {(s, t): n for s, t, n in state.before_counts}
        c, p = v.row_counts(state.url, before, state.touch, out_dir)
    except GoliveError as exc:
        c, p = [], [f"row counts could not be checked: {exc}"]
    checks += c
    problems += p
    state.report.validation.update(checks=checks, problems=problems)
    if problems:
        state.report.failed = Failure(step="validate", message="; ".join(problems[:3]))
        state.event("validate", "failed", "; ".join(problems[:3]))
    else:
        state.event("validate", "ok", "; ".join(checks) or "nothing to check")
    return state


def health(state: ReleaseState, phase: str) -> ReleaseState:
    """Poll the health URLs (and command) until green or the health timeout; ``phase``: after the release, or
    after its rollback."""
    from golive.release.health import wait_healthy

    o = state.options
    if not o.health_urls and not o.health_cmd:
        return state
    if phase == "release" and state.failed:
        return state
    write_journal(state, step=f"health-{phase}")
    state.event(f"health-{phase}", "start", f"polling {len(o.health_urls) + (1 if o.health_cmd else 0)} check(s) "
                                            f"for up to {o.health_timeout}")
    results = wait_healthy(o.health_urls, o.health_cmd, state.health_timeout_s,
                           on_event=lambda status, msg: state.event(f"health-{phase}", status, msg))
    for r in results:
        r.detail = f"{phase}: {r.detail}"
    state.report.health += results
    bad = [r for r in results if not r.ok]
    if not bad:
        return state
    if phase == "release":
        state.report.failed = Failure(step="health", message="; ".join(f"{r.target} not healthy after {r.attempts} "
                                                                       f"attempts ({r.detail})" for r in bad))
    else:
        state.rollback_health_ok = False
    return state


# ---------------------------------------------------------------- 8. conclude, notify; finish

def conclude(state: ReleaseState) -> ReleaseState:
    """The final state, its exit code, and what state the database is in, in words."""
    state.concluded = True
    rt = runtime(state)
    at = None
    if rt.conn is None:
        reconnect(state)
    if rt.conn is not None and state.status is not None:
        try:
            at = rt.source.status(rt.conn).current
        except Exception:  # noqa: BLE001
            at = "(unreadable)"
    state.report.seconds = state.seconds()
    conclude_report(state.report, dry_run=state.options.dry_run, lint_only=state.options.lint_only,
                    refused=state.refused, nothing=state.status is not None and not state.pending and not state.refused,
                    rollback_health_ok=state.rollback_health_ok, at_now=at)
    state.event("release", {0: "ok", 1: "warn"}.get(state.report.exit_code, "failed"), state.report.statement)
    return state


def notify(state: ReleaseState) -> ReleaseState:
    """The summary to each webhook in its payload shape (``block:NAME`` URL parts read now, never stored)."""
    from golive.release.notify import notify_all, resolve_blocks

    if not state.options.notify or state.preview:
        return state
    results = notify_all(resolve_blocks([secret(n) for n in state.options.notify]), state.report)
    state.report.notifications = results
    for r in results:
        state.event("notify", "ok" if r.ok else "warn", f"{r.target}: {'sent' if r.ok else 'failed: ' + r.detail}")
        if not r.ok:
            state.report.warnings.append(f"notification to {r.target} failed: {r.detail}")
    return state


def finish(state: ReleaseState) -> ReleaseReport:
    """The end of every release, however it went: concluded (if the sequence was cut short), the journal row's
    final state, the report file, the lock released and the sessions closed."""
    if state.finished:
        return state.report
    state.finished = True
    if not state.concluded:  # the sequence was cut short (an interrupt, a crash)
        try:
            conclude(state)
        except Exception as exc:  # noqa: BLE001
            state.report.warnings.append(f"could not conclude: {mask(str(exc))}")
    state.report.seconds = state.seconds()
    if (state.interrupted is not None and state.resolve_interrupted and not state.journaled and not state.preview
            and not state.refused):
        # nothing was left to apply (it was killed after its migrations): no journal row of this release, yet the
        # accepted one must stop saying running, or every later release finds it again
        try:
            close_interrupted(state)
        except Exception as exc:  # noqa: BLE001
            state.report.warnings.append(f"could not close the interrupted release's journal row: {mask(str(exc))}")
    if state.journaled:
        write_journal(state, state=state.report.state, step="done", detail=None,
                      finished_at=dt.datetime.now(dt.timezone.utc), statement=state.report.statement,
                      report=state.report.as_dict())
    if state.options.report_path:
        from golive.report import write_json

        write_json(state.options.report_path, state.report.as_dict())
    close(state)
    return state.report


# ---------------------------------------------------------------- a step that raised

def crashed(state: ReleaseState, step: str, exc) -> ReleaseState:
    """A step that raised instead of recording its outcome (a bug, a lost worker): record it as that step's
    failure, so the release still rolls back and says what happened."""
    r = state.report
    text = str(exc).strip() if exc is not None else ""
    msg = mask(f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__)
    state.event(step, "failed", f"the step crashed: {msg}")
    if step in ("precheck", "lint"):
        r.prechecks.append(fail(step, f"the {step} could not run: {msg}"))
    elif step in ("begin-release", "backup"):
        r.failed = r.failed or Failure(step="backup", message=f"could not start: {msg}")
    elif step == "health" and r.failed is not None:
        state.rollback_health_ok = False  # the health check after a rollback
    elif step in ("migrate", "validate", "health"):
        r.failed = r.failed or Failure(step=step, message=msg)
    elif step == "rollback-plan" and r.rollback is None:  # the safe way back: the release's backup
        r.rollback = Rollback(method="restore", why=f"the rollback could not be planned ({msg})")
    elif step in ("rollback", "restore") and r.rollback is not None:
        r.rollback.ok = False
        r.rollback.problems.append(msg)
        r.rollback.message = msg
    else:
        r.warnings.append(f"{step}: {msg}")
    return state


# ---------------------------------------------------------------- the sequence


def _always(state: ReleaseState) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """One step: its name (the task's, and the one ``crashed`` sorts by), what it runs, when."""

    name: str
    run: Callable[..., ReleaseState]
    #: runs when this holds (read again before each item of ``each``)
    when: Callable[[ReleaseState], bool] = _always
    #: its arguments after the state
    args: tuple = ()
    #: one run per item, as the only argument after the state (migrate: each pending migration)
    each: Callable[[ReleaseState], list] | None = None
    #: the flow's task run name (a template of the step function's parameters)
    run_name: str | None = None

    def calls(self, state: ReleaseState) -> list[tuple]:
        return [(item,) for item in self.each(state)] if self.each is not None else [self.args]


def _went_ahead(s: ReleaseState) -> bool:
    return s.went_ahead


def _migrating(s: ReleaseState) -> bool:
    return s.went_ahead and not s.failed


def _rolling_back(s: ReleaseState) -> bool:
    return s.needs_rollback and s.report.rollback is not None


STEPS: tuple[Step, ...] = (
    # 1. Pre-check: connectivity, version, the release lock (held to the end), pending, drift, privileges, disk…
    Step("precheck", precheck),
    # 2. Lint the pending SQL, sized by the live tables
    Step("lint", lint_step),
    # 3. Begin (journal row, state before) and back up
    Step("begin-release", begin, when=lambda s: s.go),
    Step("backup", backup, when=_migrating),
    # 4. Migrate, one migration at a time, until one fails
    Step("migrate", migrate, when=_migrating, each=lambda s: s.pending, run_name="migrate-{migration.version}"),
    # 5. Validate: the app's checks and the row counts; 6. Health: the app answers
    Step("validate", validate, when=_went_ahead),
    Step("health", health, when=_went_ahead, args=("release",), run_name="health-{phase}"),
    # 7. Rollback on any failure after the backup, then health again
    Step("rollback-plan", rollback.plan, when=lambda s: s.needs_rollback and s.report.rollback is None),
    Step("rollback", rollback.undo, when=lambda s: _rolling_back(s) and s.report.rollback.method != "restore"),
    Step("restore", rollback.restore, when=lambda s: _rolling_back(s) and s.report.rollback.method == "restore"),
    Step("health", health, when=lambda s: _rolling_back(s) and s.report.rollback.ok, args=("rollback",),
         run_name="health-{phase}"),
    # 8. Conclude, and notify
    Step("conclude", conclude),
    Step("notify", notify),
)


def run_step(step: Step, state: ReleaseState, *args) -> ReleaseState:
    """Run one step in this process; a step that raised is recorded as that step's failure."""
    try:
        return step.run(state, *args)
    except Exception as exc:  # noqa: BLE001 - recorded: the release goes on to its rollback and its report
        return crashed(state, step.name, exc)


def drive(state: ReleaseState, call: Callable[..., ReleaseState] = run_step) -> ReleaseState:
    """Go through ``STEPS``: each whose condition holds, with its arguments, by ``call(step, state, *args)``
    (the runner: ``run_step``; the flow: the step's task or subflow). ``finish`` is the caller's."""
    for step in STEPS:
        for args in step.calls(state):
            if not step.when(state):
                break
            state = call(step, state, *args)
    return state

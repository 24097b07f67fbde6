"""One release from start to end: ``Release`` holds its state and does each step; ``run_release`` is the
sequence without Prefect (the ``release`` flow calls the same steps as tasks and subflows).

The order: pre-check (the release lock is taken there and held to the end) → lint → begin (journal row,
bookkeeping tables, row counts and schema before) → backup → migrate, one migration at a time → validate →
health → on any failure after the backup: rollback (nothing-to-undo, down, or restore) → health again →
conclude (state, exit code, what state the database is in) → notify → finish (journal, report file).
Steps never raise for what can go wrong in a release: they record it, and the later steps read it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from pathlib import Path

from golive.errors import ConfigError, GoliveError
from golive.maintenance.safety import AdvisoryLock
from golive.release import db, journal, precheck as pc
from golive.release.health import wait_healthy
from golive.release.lint import LintContext, Touch, check_allowed, detect, lint, statements, touches
from golive.release.migrations import open_source
from golive.release.migrations.base import Executor, run_record
from golive.release.model import (BackupRef, Event, Failure, Migration, ReleaseOptions, ReleaseReport, Rollback,
                                  SourceStatus)
from golive.release.report import conclude
from golive.release.rollback import decide
from golive.units import parse_duration, parse_size
from golive.urls import mask, secret

log = logging.getLogger(__name__)

REWRITES = ("volatile-default", "alter-type-rewrite", "mysql-copy-alter", "mysql-enum-reorder")


class ReleaseBusy(GoliveError):
    """Another release holds this database's release lock."""

    exit_code = 2


class ReleaseLock(AdvisoryLock):
    """The release lock: ``pg_try_advisory_lock`` / ``GET_LOCK('golive-release:<db>')`` on its own session,
    held from the pre-check to the end of the release (a killed release's lock ends with its session)."""

    name = "golive-release"

    def connect(self):
        return db.connect(self.url, application="golive-release-lock")

    def busy(self, holder: str) -> GoliveError:
        return ReleaseBusy(f"another golive release is running on {self.url.masked}"
                           + (f" ({holder})" if holder else "") + ": releases never overlap; try again when it is done",
                           holder=holder)


def new_release_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def parse_db(db_url):
    from golive.health.report import parse_db as parse

    url = parse(db_url)
    return url


class Release:
    """The state of one release and its steps."""

    def __init__(self, db_url, options: ReleaseOptions, *, release_id: str | None = None) -> None:
        self.options = options
        self.url = parse_db(db_url)
        self.dialect = self.url.dialect
        self.source = open_source(options.migrations, self.url)
        self.allow = check_allowed(options.allow)
        self.lock_timeout_s = parse_duration(options.lock_timeout, name="--lock-timeout")
        self.statement_timeout_s = (parse_duration(options.statement_timeout, name="--statement-timeout")
                                    if options.statement_timeout else None)
        self.timeout_s = parse_duration(options.timeout, name="--timeout")
        self.health_timeout_s = parse_duration(options.health_timeout, name="--health-timeout")
        self.long_tx_s = parse_duration(options.long_transaction, name="--long-transaction")
        self.large_bytes = parse_size(options.large_table, name="--large-table")
        self.preview = options.dry_run or options.lint_only
        if options.check_sql and not Path(options.check_sql).is_file():
            raise ConfigError(f"--check-sql {options.check_sql}: no such file")
        if not self.preview:
            if not options.backup_to:
                raise ConfigError("--backup-to is required (s3://bucket/prefix or file:///dir): a release starts "
                                  "with a backup it can roll back to (--dry-run and --lint-only need none)")
        if options.backup_to:
            from golive.backup.naming import parse_location

            parse_location(options.backup_to, want_backup=False)
        from golive.release.notify import split_kind

        for n in options.notify:
            split_kind(secret(n).strip())
        now = dt.datetime.now(dt.timezone.utc)
        self.id = release_id or new_release_id(now)
        self.report = ReleaseReport(release_id=self.id, database=self.url.masked, migrations=options.migrations,
                                    kind=self.source.kind, started_at=now)
        self.t0 = time.monotonic()
        self.conn = None
        self.lock: ReleaseLock | None = None
        self.info: dict = {}
        self.status: SourceStatus | None = None
        self.touch: Touch | None = None
        self.existing: dict = {}
        self.before_counts: dict = {}
        self.before_schema: list | None = None
        self.interrupted = None
        self.journaled = False
        self.executor: Executor | None = None
        self.rollback_health_ok = True
        self.resolve_interrupted = False
        self._found_backup = None
        self.finished = False

    # ------------------------------------------------------------ bookkeeping

    def event(self, step: str, status: str, message: str) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.report.timeline.append(Event(at=now, t=round(time.monotonic() - self.t0, 2), step=step, status=status,
                                          message=mask(message)))
        (log.warning if status in ("failed", "warn", "retry") else log.info)("%s: %s", step, mask(message))

    def _journal(self, **fields) -> None:
        if not self.journaled or self.conn is None:
            return
        try:
            journal.update(self.conn, self.dialect, self.id, **fields)
        except Exception as exc:  # noqa: BLE001 - a journal write must never fail the release
            self._reconnect()
            try:
                journal.update(self.conn, self.dialect, self.id, **fields)
            except Exception:  # noqa: BLE001
                self.report.warnings.append(f"journal not updated ({fields.get('step') or fields.get('state')}): "
                                            f"{mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}")

    def _reconnect(self) -> None:
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.conn = db.connect(self.url, lock_timeout_s=self.lock_timeout_s or 5)
        except GoliveError:
            self.conn = None

    @property
    def pending(self) -> list[Migration]:
        return list(self.status.pending) if self.status else []

    @property
    def refused(self) -> bool:
        return (any(c.status == "fail" for c in self.report.prechecks) or any(f.blocks for f in self.report.findings)
                or (self.report.failed is not None and self.report.failed.step == "backup"))

    @property
    def go(self) -> bool:
        """Whether the release goes ahead to its backup and migrations."""
        return not self.preview and not self.refused and bool(self.pending)

    @property
    def failed(self) -> bool:
        return self.report.failed is not None

    @property
    def needs_rollback(self) -> bool:
        return self.report.failed is not None and self.report.failed.step in ("migrate", "validate", "health")

    def crashed(self, step: str, exc) -> None:
        """A step that raised instead of recording its outcome (a bug, a lost worker): record it as that step's
        failure, so the release still rolls back and says what happened."""
        text = str(exc).strip() if exc is not None else ""
        msg = mask(f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__)
        self.event(step, "failed", f"the step crashed: {msg}")
        if step in ("precheck", "lint"):
            self.report.prechecks.append(pc.fail(step, f"the {step} could not run: {msg}"))
        elif step in ("begin-release", "backup"):
            self.report.failed = self.report.failed or Failure(step="backup", message=f"could not start: {msg}")
        elif step == "health" and self.report.failed is not None:
            self.rollback_health_ok = False  # the health check after a rollback
        elif step in ("migrate", "validate", "health"):
            self.report.failed = self.report.failed or Failure(step=step, message=msg)
        elif step == "rollback" and self.report.rollback is not None:
            self.report.rollback.ok = False
            self.report.rollback.problems.append(msg)
            self.report.rollback.message = msg
        else:
            self.report.warnings.append(f"{step}: {msg}")

    # ------------------------------------------------------------ 1. pre-check

    def precheck(self) -> list:
        checks = self.report.prechecks
        self.event("precheck", "start", f"pre-check of {self.url.masked} ({self.options.migrations})")
        try:
            self.conn = db.connect(self.url, lock_timeout_s=self.lock_timeout_s or 5)
            self.info = db.server_info(self.conn, self.dialect)
        except GoliveError as exc:
            checks.append(pc.fail("connectivity", str(exc)))
            self.event("precheck", "failed", str(exc))
            return checks
        info = self.info
        self.report.dbname, self.report.engine = info["database"], self.dialect
        self.report.server_version = info["version"]
        checks.append(pc.ok("connectivity", f"connected to {info['database']} as {info['user']}"))
        checks.append(pc.server_version(info, self.dialect))
        if not self.options.lint_only:
            self._take_lock(checks)
        try:
            self.status = self.source.status(self.conn)
        except GoliveError as exc:
            checks.append(pc.fail("migrations", str(exc)))
            self.event("precheck", "failed", str(exc))
            return checks
        checks.extend(pc.migrations(self.status))
        if self.lock is not None and self.lock.conn is not None:
            found = self._previous_release()
            if found is not None:
                checks.append(found)
        self.touch = touches(self.pending, self.dialect, info.get("schema"))
        self.existing = db.table_info(self.conn, self.dialect, list(self.touch.changed))
        if self.options.lint_only:
            self._precheck_done()
            return checks
        ext = pc.extensions(self.conn, self.dialect, self.touch.extensions)
        if ext:
            checks.append(ext)
        checks.extend(pc.privileges(self.conn, self.dialect, info, list(self.existing)))
        checks.append(pc.long_transactions(self.conn, self.dialect, set(self.existing), self.long_tx_s))
        expected = self._backup_destination(checks)
        checks.extend(pc.disk(self.conn, self.url, info, self._largest_rewrite(), self.options.backup_to,
                              expected[0], expected[1]))
        checks.append(pc.rollback_plan(self.options.rollback, self.pending, self.dialect, self.conn))
        health = pc.health_before(self.options.health_urls, self.options.health_cmd)
        if health:
            checks.append(health)
        self._precheck_done()
        return checks

    def _precheck_done(self) -> None:
        bad = [c for c in self.report.prechecks if c.status == "fail"]
        warns = [c for c in self.report.prechecks if c.status == "warn"]
        if bad:
            self.event("precheck", "failed", "; ".join(f"{c.id}: {c.message}" for c in bad))
        else:
            self.event("precheck", "ok", f"{len(self.report.prechecks)} checks, {len(warns)} warning(s); "
                                         f"{len(self.pending)} migration(s) pending")

    def _take_lock(self, checks) -> None:
        lock = ReleaseLock(self.url)
        try:
            lock.__enter__()
        except ReleaseBusy as exc:
            checks.append(pc.fail("release-lock", str(exc)))
            return
        except GoliveError as exc:
            checks.append(pc.fail("release-lock", f"could not take the release lock: {exc}"))
            return
        self.lock = lock
        msg = "no other release running (the release lock is held until the end)"
        if self.source.kind == "prisma":
            if not self.source.take_tool_lock(lock.conn):
                checks.append(pc.fail("release-lock", "Prisma Migrate's advisory lock is held: prisma migrate deploy "
                                                      "(or dev) is running against this database now"))
                return
            msg += "; Prisma Migrate's lock is held too"
        if self.options.dry_run:
            msg = "no other release running"
        checks.append(pc.ok("release-lock", msg))

    def _backup_destination(self, checks) -> tuple[int | None, int | None]:
        """Check the backup destination; (stored, raw) bytes of its newest backup, when there is one."""
        if not self.options.backup_to:
            return None, None
        from golive.backup.retention import list_backups

        try:
            from golive.backup.store import BackupStore

            store = BackupStore(self.options.backup_to, self.options.storage)
            store.check(create=False)
            listing = list_backups(self.options.backup_to, self.options.storage)
        except GoliveError as exc:
            checks.append(pc.fail("backup-destination", f"{self.options.backup_to}: {exc}"))
            return None, None
        mine = [b for b in listing.backups if b.database == self.info.get("database")] or listing.backups
        if mine:
            newest = mine[-1]
            checks.append(pc.ok("backup-destination", f"{self.options.backup_to} is reachable; newest backup there: "
                                                      f"{newest.id}"))
            return newest.stored_bytes, newest.raw_bytes
        checks.append(pc.ok("backup-destination", f"{self.options.backup_to} is reachable (no backups there yet)"))
        return None, None

    def _lint_context(self) -> LintContext:
        return LintContext(dialect=self.dialect, conn=self.conn, default_schema=self.info.get("schema"),
                           version_num=int(self.info.get("version_num") or 0), large_bytes=self.large_bytes,
                           lock_timeout_s=self.lock_timeout_s, allow=self.allow)

    def _largest_rewrite(self) -> int:
        ctx = self._lint_context()
        biggest = 0
        for m in self.pending:
            for st in statements(m, self.dialect):
                for hit in detect(st, ctx):
                    if hit.rule in REWRITES and hit.table in self.existing:
                        biggest = max(biggest, self.existing[hit.table].bytes)
        return biggest

    def _previous_release(self):
        """What an interrupted release left (its journal row says running, yet nobody holds the lock)."""
        from golive.release.precheck import fail, warn

        try:
            rows = journal.unfinished(self.conn, self.dialect)
        except Exception as exc:  # noqa: BLE001
            return warn("previous-release", f"could not read the release journal: {exc}")
        if not rows:
            return None
        row = rows[0]
        self.interrupted = row
        by_version = {m.version: m for m in self.status.migrations}
        applied, half, clean_in_progress = [], [], None
        for v in row.pending:
            m = by_version.get(v)
            if m is None:
                continue
            state = self.source.probe(self.conn, m)
            if state == "applied":
                applied.append(m.label)
            elif state == "failed":
                half.append(f"{m.label} is recorded as started but not finished (it stopped half-way)")
        step = row.step
        if step == "migrate" and row.detail:
            m = next((x for x in self.status.migrations if x.label == row.detail), None)
            if m is not None and m.label not in applied and not any(h.startswith(m.label) for h in half):
                if m.transactional:
                    clean_in_progress = (f"{m.label} was being applied and left nothing (PostgreSQL rolled its "
                                         "transaction back when the session ended)")
                else:
                    half.append(f"{m.label} was being applied and may be half-applied (its statements commit one by one)")
        when = row.started_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts = [f"release {row.id} (started {when} on {row.host or '?'}, pid {row.pid or '?'}) was interrupted during "
                 f"{step}" + (f" ({row.detail})" if row.detail else "")]
        uncertain = False
        if step == "backup":
            text, uncertain = self._interrupted_backup(row)
            parts.append(text)
        if step.startswith("rollback"):
            parts.append("it was rolling back; the database may be partly restored")
        parts.append(f"of its migrations, {'applied now: ' + ', '.join(applied) if applied else 'none is applied'}")
        if clean_in_progress:
            parts.append(clean_in_progress)
        parts += half
        if row.backup_url:
            parts.append(f"its backup {row.backup_url} holds the database as it was before it")
        text = "; ".join(parts)
        clean = not applied and not half and not uncertain and not step.startswith("rollback")
        self.report.found = text
        if clean:
            self.resolve_interrupted = True
            return warn("previous-release", text + ": the database is as it was before it, so this release goes on")
        backup_url = row.backup_url or self._found_backup
        restore = (f"golive restore --from {backup_url} --to <the database> --force" if backup_url else
                   "restore your latest backup")
        if self.options.resolve_interrupted and not step.startswith("rollback"):
            self.resolve_interrupted = True
            return warn("previous-release", text + ": accepted with --resolve-interrupted; this release continues from "
                                                   "the state above")
        return fail("previous-release", text + f". Choose: roll it back ({restore}), or accept this state and continue "
                                               "with --resolve-interrupted")

    def _interrupted_backup(self, row) -> tuple[str, bool]:
        """(what is known about its backup, whether the database may not be as before)."""
        if not row.backup_to:
            return "it had not started its backup", False
        try:
            from golive.backup.retention import list_backups

            listing = list_backups(row.backup_to, self.options.storage)
        except GoliveError:
            return f"whether its backup finished is unknown ({row.backup_to} cannot be listed)", True
        done = [b for b in listing.backups if dt.datetime.fromisoformat(b.started_at.replace("Z", "+00:00")) >=
                row.started_at]
        if done:
            self._found_backup = done[0].url
            return (f"a backup finished after it started ({done[0].url}): it stopped right after its backup, or during "
                    "a rollback that restored it (the journal row then is the backup's; the restore may be "
                    "incomplete)"), True
        return "it stopped during its backup (no finished backup after its start); no migration had run", False

    # ------------------------------------------------------------ 2. lint

    def lint(self) -> list:
        if self.status is None:
            return []
        self.event("lint", "start", f"linting {len(self.pending)} pending migration(s)")
        findings = lint(self.pending, self._lint_context())
        self.report.findings = findings
        blocking = [f for f in findings if f.blocks]
        allowed = [f for f in findings if f.allowed and f.severity == "error"]
        msg = (f"{len(findings)} finding(s): {len(blocking)} blocking, {len(allowed)} allowed, "
               f"{len([f for f in findings if f.severity == 'warning'])} warning(s)")
        self.event("lint", "failed" if blocking else "ok", msg + (f"; e.g. {blocking[0].rule} in {blocking[0].migration}: "
                                                                  f"{blocking[0].message}" if blocking else ""))
        self.report.plan = self.plan()
        self.report.steps = self.plan_lines()
        return findings

    def plan(self) -> list[dict]:
        out = []
        for m in self.pending:
            out.append({"migration": m.label, "statements": len(statements(m, self.dialect)),
                        "transactional": m.transactional, "has_down": m.has_down, "path": m.path, "notes": m.notes})
        return out

    def plan_lines(self) -> list[str]:
        """What would run, in words (``--dry-run``)."""
        o = self.options
        lines = [f"back up to {o.backup_to or '(no --backup-to given)'}" + (" and verify it" if o.verify_backup else "")]
        for p in self.report.plan:
            lines.append(f"apply {p['migration']}: {p['statements']} statement(s), "
                         f"{'in one transaction' if p['transactional'] else 'statement by statement (not transactional)'}"
                         f"{', has a down-migration' if p['has_down'] else ''}")
        lines.append(f"with lock_timeout {o.lock_timeout} (retried {o.lock_retries}x with backoff), "
                     f"statement timeout {o.statement_timeout or 'none'}, overall {o.timeout}")
        counted = self._counted()[0] if self.touch else []
        lines.append("validate: " + ", ".join(filter(None, [f"--check-sql {o.check_sql}" if o.check_sql else "",
                                                              f"row counts of {len(counted)} table(s)"])))
        if o.health_urls or o.health_cmd:
            lines.append(f"health: {', '.join(mask(u) for u in o.health_urls)}{' + command' if o.health_cmd else ''} "
                         f"within {o.health_timeout}")
        lines.append(f"on failure: {'down-migrations when every migration has one, else ' if o.rollback == 'down' else ''}"
                     "restore the backup")
        if o.notify:
            from golive.release.notify import describe_raw, split_kind

            lines.append("notify: " + ", ".join(f"{split_kind(secret(n))[0]} {describe_raw(split_kind(secret(n))[1])}"
                                                for n in o.notify))
        return lines

    def _counted(self):
        from golive.release.validate import counted_tables

        return counted_tables(self.touch, set(self.existing), self.options.rows_may_change, self.dialect,
                              self.info.get("schema"))

    # ------------------------------------------------------------ 3. begin + backup

    def begin(self) -> None:
        """The journal row, the tools' history tables (so the backup holds them), the state before."""
        self.event("begin", "start", f"release {self.id}: {len(self.pending)} migration(s)")
        journal.ensure(self.conn, self.dialect)
        self.source.prepare(self.conn)
        if self.interrupted is not None and getattr(self, "resolve_interrupted", False):
            journal.update(self.conn, self.dialect, self.interrupted.id, state="interrupted",
                           finished_at=dt.datetime.now(dt.timezone.utc),
                           statement=f"interrupted; the state it left was accepted by release {self.id}")
        journal.begin(self.conn, self.dialect, journal.JournalRow(
            id=self.id, started_at=self.report.started_at, updated_at=self.report.started_at, state="running",
            step="backup", kind=self.source.kind, source=self.options.migrations,
            pending=[m.version for m in self.pending], backup_to=self.options.backup_to))
        self.journaled = True
        counted, notes = self._counted()
        self.before_counts = db.count_rows(self.conn, self.dialect, counted)
        self.report.validation["notes"] = notes
        try:
            from golive.release.validate import schema_rows

            self.before_schema = schema_rows(self.url)
        except GoliveError as exc:
            self.report.warnings.append(f"schema before the release not read: {exc}")
        if self.before_counts:
            from golive.validation import gx_worker

            gx_worker.prestart()  # Great Expectations imports while the backup runs
        self.event("begin", "ok", f"journal row written; {len(self.before_counts)} table(s) counted")

    def backup_name(self) -> str:
        return self.info.get("database") or "db"

    def backup(self) -> None:
        """The backup, in this process (the flow runs the backup-database flow instead)."""
        from golive import backup as bk

        self.event("backup", "start", f"backing up to {self.options.backup_to}")
        try:
            result = bk.backup_database(self.url.raw, self.options.backup_to, bk.BackupOptions(
                name=self.backup_name(), storage=self.options.storage, encryption_key=self.options.encryption_key))
            verified = None
            if self.options.verify_backup:
                v = bk.verify_backup(result.url, bk.VerifyOptions(storage=self.options.storage,
                                                                  encryption_key=self.options.encryption_key))
                verified = v.verification.status
                if not v.ok:
                    raise GoliveError(f"backup {result.id} failed verification: " + "; ".join(v.verification.problems[:3]))
        except GoliveError as exc:
            self.backup_failed(str(exc))
            return
        m = result.manifest
        self.backed_up(BackupRef(id=result.id, url=result.url, verified=verified, rows=m.rows,
                                 stored_bytes=m.stored_bytes, seconds=m.duration_seconds))

    def backed_up(self, ref: BackupRef) -> None:
        self.report.backup = ref
        self._journal(step="migrate", backup_url=ref.url)
        self.event("backup", "ok", f"backup {ref.id} ({ref.rows} rows, {ref.stored_bytes} bytes stored"
                                   + (f", verification {ref.verified}" if ref.verified else "") + ")")

    def backup_failed(self, message: str) -> None:
        self.report.failed = Failure(step="backup", message=message)
        self.event("backup", "failed", message)

    # ------------------------------------------------------------ 4. migrate

    def migrate(self, m: Migration):
        if self.failed:
            return None
        if self.executor is None:
            self.executor = Executor(self.url, lock_timeout_s=self.lock_timeout_s, lock_retries=self.options.lock_retries,
                                     deadline=db.Deadline.start(self.timeout_s, self.statement_timeout_s),
                                     on_event=lambda status, msg: self.event("migrate", status, msg))
        run = run_record(m)
        self.report.runs.append(run)
        self._journal(step="migrate", detail=m.label)
        self.event("migrate", "start", f"{m.label} ({'one transaction' if m.transactional else 'statement by statement'})")
        before = self.executor.attempts
        t0 = time.perf_counter()
        try:
            run.statements = self.source.apply(self.executor, m, self.id)
            run.status = "applied"
        except GoliveError as exc:
            run.status, run.error = "failed", str(exc)
            run.left_nothing = bool(exc.context.get("left_nothing", False))
            run.statements = int(exc.context.get("statements_done", 0) or 0)
            self.report.failed = Failure(step="migrate", migration=m.label, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - an unexpected error: assume it left something
            run.status, run.error, run.left_nothing = "failed", mask(f"{type(exc).__name__}: {exc}"), False
            self.report.failed = Failure(step="migrate", migration=m.label, message=run.error)
        run.attempts = self.executor.attempts - before
        run.seconds = round(time.perf_counter() - t0, 3)
        if run.status == "applied":
            self._journal(applied=[r.version for r in self.report.runs if r.status == "applied"])
            self.event("migrate", "ok", f"{m.label}: {run.statements} statement(s) in {run.seconds:.2f} s"
                                        + (f" ({run.attempts} attempts)" if run.attempts > 1 else ""))
        else:
            self.event("migrate", "failed", run.error)
        return run

    # ------------------------------------------------------------ 5. validate

    def validate(self) -> dict:
        if self.failed:
            return self.report.validation
        from golive.release import validate as v

        self._journal(step="validate", detail=None)
        self.event("validate", "start", "the app's checks and the row counts")
        checks, problems = [], []
        if self.options.check_sql:
            c, p = v.run_check_sql(self.url, self.options.check_sql)
            checks += c
            problems += p
        try:
            out_dir = Path("golive-runs") / "release" / self.id / "gx"
            c, p = v.row_counts(self.url, self.before_counts, self.touch, out_dir)
        except GoliveError as exc:
            c, p = [], [f"row counts could not be checked: {exc}"]
        checks += c
        problems += p
        self.report.validation.update(checks=checks, problems=problems)
        if problems:
            self.report.failed = Failure(step="validate", message="; ".join(problems[:3]))
            self.event("validate", "failed", "; ".join(problems[:3]))
        else:
            self.event("validate", "ok", "; ".join(checks) or "nothing to check")
        return self.report.validation

    # ------------------------------------------------------------ 6. health

    def health(self, phase: str) -> bool:
        o = self.options
        if not o.health_urls and not o.health_cmd:
            return True
        if phase == "release" and self.failed:
            return False
        self._journal(step=f"health-{phase}")
        self.event(f"health-{phase}", "start", f"polling {len(o.health_urls) + (1 if o.health_cmd else 0)} check(s) "
                                               f"for up to {o.health_timeout}")
        results = wait_healthy(o.health_urls, o.health_cmd, self.health_timeout_s,
                               on_event=lambda status, msg: self.event(f"health-{phase}", status, msg))
        for r in results:
            r.detail = f"{phase}: {r.detail}"
        self.report.health += results
        bad = [r for r in results if not r.ok]
        if not bad:
            return True
        if phase == "release":
            self.report.failed = Failure(step="health", message="; ".join(f"{r.target} not healthy after "
                                                                          f"{r.attempts} attempts ({r.detail})"
                                                                          for r in bad))
        else:
            self.rollback_health_ok = False
        return False

    # ------------------------------------------------------------ 7. rollback

    def rollback_plan(self) -> Rollback:
        applied_versions = [r.version for r in self.report.runs if r.status == "applied"]
        applied = [m for m in self.pending if m.version in applied_versions]
        failed_run = next((r for r in self.report.runs if r.status == "failed"), None)
        rb = decide(self.options.rollback, applied, failed_run)
        self.report.rollback = rb
        self.event("rollback", "start", f"{rb.method}: {rb.why}")
        return rb

    def _failed_migration(self) -> Migration | None:
        failed_run = next((r for r in self.report.runs if r.status == "failed"), None)
        return next((m for m in self.pending if failed_run and m.version == failed_run.version), None)

    def rollback_undo(self) -> Rollback:
        """nothing-to-undo and down: done here (restore: ``rollback_restore`` or the flow's restore subflow)."""
        rb = self.report.rollback
        self._journal(step=f"rollback-{rb.method}")
        ex = Executor(self.url, lock_timeout_s=self.lock_timeout_s, lock_retries=self.options.lock_retries,
                      deadline=db.Deadline.start(self.timeout_s, self.statement_timeout_s),
                      on_event=lambda status, msg: self.event("rollback", status, msg))
        try:
            if rb.method == "down":
                applied_versions = [r.version for r in self.report.runs if r.status == "applied"]
                for m in reversed([m for m in self.pending if m.version in applied_versions]):
                    self.source.down(ex, m)
                    run = next(r for r in self.report.runs if r.version == m.version)
                    run.status = "rolled-back"
                    rb.checks.append(f"down-migration of {m.label} ran")
                    self.event("rollback", "ok", f"down-migration of {m.label} ran")
            failed = self._failed_migration()
            if failed is not None:
                self._reconnect()
                self.source.forget_failed(self.conn, failed)
        except GoliveError as exc:
            rb.ok, rb.message = False, str(exc)
            rb.problems.append(str(exc))
            self.event("rollback", "failed", str(exc))
            return rb
        self._compare_after_rollback(rb)
        return rb

    def _compare_after_rollback(self, rb: Rollback) -> None:
        from golive.release.validate import schema_diff, schema_rows

        if self.before_schema is not None:
            diff = schema_diff(self.before_schema, schema_rows(self.url))
            if diff:
                rb.problems.append(f"the schema differs from before the release in: {', '.join(diff)}")
            else:
                rb.checks.append("the schema is as before the release")
        if self.before_counts:
            self._reconnect()
            now = db.count_rows(self.conn, self.dialect, list(self.before_counts))
            bad = [f"{k[1]}: {now.get(k)} rows, {n} before" for k, n in self.before_counts.items() if now.get(k) != n]
            if bad:
                rb.problems.append("row counts differ from before the release: " + "; ".join(bad))
            else:
                rb.checks.append(f"row counts of {len(self.before_counts)} table(s) as before")
        rb.ok = not rb.problems
        rb.message = "; ".join(rb.problems) if rb.problems else "; ".join(rb.checks)
        self.event("rollback", "ok" if rb.ok else "failed", rb.message)

    def rollback_restore(self) -> Rollback:
        """Restore the release's backup onto the database, in this process."""
        from golive import backup as bk

        self.before_restore()
        try:
            result = bk.restore_backup(self.report.backup.url, self.url.raw, bk.RestoreOptions(
                force=True, storage=self.options.storage, encryption_key=self.options.encryption_key))
        except GoliveError as exc:
            return self.restored(False, [], [], str(exc))
        return self.restored(result.ok, result.checks, result.problems)

    def before_restore(self) -> None:
        self._journal(step="rollback-restore")
        self.event("rollback", "start", f"restoring {self.report.backup.url} onto {self.url.masked}")
        if self.conn is not None:  # nothing of ours may hold a lock the restore's DROP waits for
            self.conn.close()
            self.conn = None

    def restored(self, ok: bool, checks: list[str], problems: list[str], error: str | None = None) -> Rollback:
        rb = self.report.rollback
        rb.checks = list(checks)
        rb.problems = list(problems) + ([error] if error else [])
        rb.ok = ok and not error and not problems
        rb.message = error or ("; ".join(problems) if problems else f"backup {self.report.backup.id} restored")
        self._reconnect()
        self.event("rollback", "ok" if rb.ok else "failed", rb.message + (f" ({'; '.join(checks)})" if checks else ""))
        return rb

    # ------------------------------------------------------------ 8./9. conclude, notify, finish

    def conclude(self) -> None:
        self.concluded = True
        at = None
        if self.conn is None:
            self._reconnect()
        if self.conn is not None and self.status is not None:
            try:
                at = self.source.status(self.conn).current
            except Exception:  # noqa: BLE001
                at = "(unreadable)"
        self.report.seconds = round(time.monotonic() - self.t0, 2)
        conclude(self.report, dry_run=self.options.dry_run, lint_only=self.options.lint_only, refused=self.refused,
                 nothing=self.status is not None and not self.pending and not self.refused,
                 rollback_health_ok=self.rollback_health_ok, at_now=at)
        self.event("release", {0: "ok", 1: "warn"}.get(self.report.exit_code, "failed"), self.report.statement)

    def notify(self, targets: list[str] | None = None) -> list:
        """Send the summary; ``targets`` are the notify values with Prefect blocks resolved (default: the options')."""
        from golive.release.notify import notify_all

        values = targets if targets is not None else [secret(n) for n in self.options.notify]
        if not values or self.preview:
            return []
        results = notify_all(values, self.report)
        self.report.notifications = results
        for r in results:
            self.event("notify", "ok" if r.ok else "warn", f"{r.target}: {'sent' if r.ok else 'failed: ' + r.detail}")
            if not r.ok:
                self.report.warnings.append(f"notification to {r.target} failed: {r.detail}")
        return results

    def finish(self) -> ReleaseReport:
        if self.finished:
            return self.report
        self.finished = True
        if not getattr(self, "concluded", False):  # the sequence was cut short (an interrupt, a crash)
            try:
                self.conclude()
            except Exception as exc:  # noqa: BLE001
                self.report.warnings.append(f"could not conclude: {mask(str(exc))}")
        self.report.seconds = round(time.monotonic() - self.t0, 2)
        if self.journaled:
            state = {"released": "released", "rolled-back": "rolled-back", "refused": "refused",
                     "rollback-failed": "rollback-failed"}.get(self.report.state, self.report.state)
            self._journal(state=state, step="done", detail=None, finished_at=dt.datetime.now(dt.timezone.utc),
                          statement=self.report.statement, report=self.report.as_dict())
        if self.options.report_path:
            from golive.report import write_json

            write_json(self.options.report_path, self.report.as_dict())
        self.close()
        return self.report

    def close(self) -> None:
        for closer in (lambda: self.lock and self.lock.release(), lambda: self.conn and self.conn.close(),
                       self.source.close):
            try:
                closer()
            except Exception:  # noqa: BLE001
                pass
        self.conn = None


def run_release(db_url, options: ReleaseOptions) -> ReleaseReport:
    """A whole release in this process, without Prefect (the ``release`` flow runs the same steps as tasks)."""
    rel = Release(db_url, options)
    try:
        # 1. Pre-check (the release lock is taken here and held to the end)
        rel.precheck()
        # 2. Lint the pending SQL
        rel.lint()
        if rel.go:
            # 3. Begin (journal, state before) and back up
            rel.begin()
            rel.backup()
            # 4. Migrate, one migration at a time
            for m in rel.pending:
                if rel.failed:
                    break
                rel.migrate(m)
            # 5. Validate, 6. Health
            rel.validate()
            rel.health("release")
            # 7. Rollback on any failure after the backup, then health again
            if rel.needs_rollback:
                rb = rel.rollback_plan()
                rb = rel.rollback_restore() if rb.method == "restore" else rel.rollback_undo()
                if rb.ok:
                    rel.health("rollback")
        # 8. Conclude and notify
        rel.conclude()
        rel.notify()
    finally:
        report = rel.finish()
    return report

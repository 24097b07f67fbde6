"""One release's state: ``ReleaseState`` (a pydantic model every step takes and returns, so the flow passes it from
task to task) and its ``Runtime`` (what cannot be serialised: the control session, the release lock's session, the
migration tool's helper process), kept in this process under the release's id.

Every step records what happened in the state (the report, the timeline, the journal row) and never raises for
what can go wrong in a release; the later steps read it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from golive.dialects import dialect_of, resolve
from golive.dialects.base import Dialect
from golive.errors import ConfigError, GoliveError
from golive.maintenance.safety import AdvisoryLock
from golive.model.release import ServerInfo, TableInfo, TableKey
from golive.release import db, journal
from golive.release.journal import JournalRow
from golive.release.migrations import MigrationSource, open_source
from golive.release.model import Event, Migration, ReleaseOptions, ReleaseReport, SourceStatus, Touch
from golive.units import parse_duration, parse_size
from golive.urls import DatabaseURL, as_url, mask, secret

log = logging.getLogger(__name__)


class ReleaseBusy(GoliveError):
    """Another release holds this database's release lock."""

    exit_code = 2


class ReleaseLock(AdvisoryLock):
    """The release lock: an advisory lock of the database (``Session.try_lock``) on its own session, held from
    the pre-check to the end of the release (a killed release's lock ends with its session)."""

    name = "golive-release"

    def connect(self):
        return db.connect(self.url, application="golive-release-lock")

    def busy(self, holder: str) -> GoliveError:
        return ReleaseBusy(f"another golive release is running on {self.url.masked}"
                           + (f" ({holder})" if holder else "") + ": releases never overlap; try again when it is done",
                           holder=holder)


class ReleaseState(BaseModel):
    """Everything the steps of one release read and record. Serialisable (secrets stay ``SecretStr``); the live
    sessions are its ``Runtime``."""

    id: str
    db: SecretStr = Field(description="The database's URL (a running server: embedded:// resolved)")
    options: ReleaseOptions
    report: ReleaseReport
    clock: float = Field(description="time.monotonic() at the start: the timeline's zero")
    info: ServerInfo | None = None
    status: SourceStatus | None = Field(None, description="Where the database stands with the migrations")
    touch: Touch | None = None
    existing: list[TableInfo] = Field(default_factory=list, description="The tables the SQL changes that exist")
    before_counts: list[tuple[str | None, str, int]] = Field(default_factory=list, description=(
        "Rows of the counted tables before the migrations: (schema, table, rows)"))
    before_schema: list[tuple] | None = None
    interrupted: JournalRow | None = Field(None, description="An earlier release that never finished")
    resolve_interrupted: bool = False
    found_backup: str | None = None
    went_ahead: bool = Field(False, description="Passed its pre-check and lint: it backs up and migrates")
    journaled: bool = False
    deadline_at: float | None = Field(None, description="time.time() when the migrations must be done")
    rollback_health_ok: bool = True
    concluded: bool = False
    finished: bool = False
    _url: DatabaseURL | None = PrivateAttr(None)

    # ------------------------------------------------------------ derived

    @property
    def url(self) -> DatabaseURL:
        if self._url is None:
            self._url = as_url(self.db)
        return self._url

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.url)

    @property
    def lock_timeout_s(self) -> float:
        return parse_duration(self.options.lock_timeout, name="--lock-timeout")

    @property
    def statement_timeout_s(self) -> float | None:
        o = self.options
        return parse_duration(o.statement_timeout, name="--statement-timeout") if o.statement_timeout else None

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.options.timeout, name="--timeout")

    @property
    def health_timeout_s(self) -> float:
        return parse_duration(self.options.health_timeout, name="--health-timeout")

    @property
    def long_tx_s(self) -> float:
        return parse_duration(self.options.long_transaction, name="--long-transaction")

    @property
    def large_bytes(self) -> int:
        return parse_size(self.options.large_table, name="--large-table")

    @property
    def preview(self) -> bool:
        return self.options.dry_run or self.options.lint_only

    @property
    def pending(self) -> list[Migration]:
        return list(self.status.pending) if self.status else []

    @property
    def existing_by_key(self) -> dict[TableKey, TableInfo]:
        return {t.key: t for t in self.existing}

    @property
    def refused(self) -> bool:
        r = self.report
        return (any(c.status == "fail" for c in r.prechecks) or any(f.blocks for f in r.findings)
                or (r.failed is not None and r.failed.step == "backup"))

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

    # ------------------------------------------------------------ bookkeeping

    def event(self, step: str, status: str, message: str) -> None:
        """A line of the timeline (and of the log)."""
        now = dt.datetime.now(dt.timezone.utc)
        self.report.timeline.append(Event(at=now, t=round(time.monotonic() - self.clock, 2), step=step, status=status,
                                          message=mask(message)))
        (log.warning if status in ("failed", "warn", "retry") else log.info)("%s: %s", step, mask(message))

    def seconds(self) -> float:
        return round(time.monotonic() - self.clock, 2)


@dataclass
class Runtime:
    """The live side of a release, in the process that runs it: never serialised."""

    source: MigrationSource
    conn: object | None = None
    lock: ReleaseLock | None = None


_RUNTIMES: dict[str, Runtime] = {}


def runtime(state: ReleaseState) -> Runtime:
    """The sessions of ``state``'s release (they live in the process that started it)."""
    try:
        return _RUNTIMES[state.id]
    except KeyError:
        raise GoliveError(f"release {state.id}: its sessions are not in this process (a release's steps run in the "
                          "process that started it)") from None


def new_release_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def database_url(db_url) -> DatabaseURL:
    """The release's database, parsed once (``embedded://DIR`` starts the embedded PostgreSQL); an engine golive
    cannot release to is refused in one line."""
    url = resolve(as_url(db_url))
    dialect = dialect_of(url)
    if not dialect.supports("release"):
        raise ConfigError(f"{url.masked}: golive does not release to {dialect.title} databases")
    return url


def start(db_url, options: ReleaseOptions, *, release_id: str | None = None) -> ReleaseState:
    """Check the options (bad input: one ``ConfigError`` before anything runs), open the migration folder, and
    return the new release's state."""
    url = database_url(db_url)
    source = open_source(options.migrations, url)
    from golive.release.lint import check_allowed

    check_allowed(options.allow)
    parse_duration(options.lock_timeout, name="--lock-timeout")
    if options.statement_timeout:
        parse_duration(options.statement_timeout, name="--statement-timeout")
    for value, name in ((options.timeout, "--timeout"), (options.health_timeout, "--health-timeout"),
                        (options.long_transaction, "--long-transaction")):
        parse_duration(value, name=name)
    parse_size(options.large_table, name="--large-table")
    if options.check_sql and not Path(options.check_sql).is_file():
        raise ConfigError(f"--check-sql {options.check_sql}: no such file")
    if not (options.dry_run or options.lint_only) and not options.backup_to:
        raise ConfigError("--backup-to is required (s3://bucket/prefix or file:///dir): a release starts "
                          "with a backup it can roll back to (--dry-run and --lint-only need none)")
    if options.backup_to:
        from golive.backup.naming import parse_location

        parse_location(options.backup_to, want_backup=False)
    from golive.release.notify import split_kind

    for n in options.notify:
        split_kind(secret(n).strip())
    now = dt.datetime.now(dt.timezone.utc)
    release_id = release_id or new_release_id(now)
    state = ReleaseState(id=release_id, db=SecretStr(url.raw), options=options, clock=time.monotonic(),
                         report=ReleaseReport(release_id=release_id, database=url.masked,
                                              migrations=options.migrations, kind=source.kind, started_at=now))
    state._url = url
    _RUNTIMES[release_id] = Runtime(source=source)
    return state


def close(state: ReleaseState) -> None:
    """Release the lock, close the sessions and the migration tool's helper; forget the runtime."""
    rt = _RUNTIMES.pop(state.id, None)
    if rt is None:
        return
    for closer in (lambda: rt.lock and rt.lock.release(), lambda: rt.conn and rt.conn.close(), rt.source.close):
        try:
            closer()
        except Exception:  # noqa: BLE001
            pass
    rt.conn = None


def reconnect(state: ReleaseState) -> None:
    """A fresh control session (the old one closed; None when the database cannot be reached)."""
    rt = runtime(state)
    try:
        if rt.conn is not None:
            rt.conn.close()
    except Exception:  # noqa: BLE001
        pass
    try:
        rt.conn = db.connect(state.url, lock_timeout_s=state.lock_timeout_s or 5)
    except GoliveError:
        rt.conn = None


def write_journal(state: ReleaseState, /, **fields) -> None:
    """Update the release's journal row; a journal write never fails the release (it becomes a warning)."""
    rt = runtime(state)
    if not state.journaled or rt.conn is None:
        return
    try:
        journal.update(rt.conn, state.dialect, state.id, **fields)
    except Exception as exc:  # noqa: BLE001 - a journal write must never fail the release
        reconnect(state)
        try:
            journal.update(rt.conn, state.dialect, state.id, **fields)
        except Exception:  # noqa: BLE001
            state.report.warnings.append(f"journal not updated ({fields.get('step') or fields.get('state')}): "
                                         f"{mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}")


def executor(state: ReleaseState, step: str, *, until: float | None = None):
    """An executor of statements under the release's timeouts, until ``until`` (``time.time()``; None: the
    migrations' overall deadline, set when the first migration starts)."""
    from golive.release.migrations.base import Executor

    if until is None:
        if state.deadline_at is None:
            state.deadline_at = time.time() + state.timeout_s
        until = state.deadline_at
    deadline = db.Deadline(until, state.statement_timeout_s, state.timeout_s)
    return Executor(state.url, lock_timeout_s=state.lock_timeout_s, lock_retries=state.options.lock_retries,
                    deadline=deadline, on_event=lambda status, msg: state.event(step, status, msg))

"""What a release is made of: its settings, the migrations, each step's outcome, and the final report.

Every model is pydantic, so the Prefect flow can take the settings as its parameters (secrets as
``SecretStr``, stored masked) and the report travels as JSON (the ``--report`` file, the flow's result, the
journal row, the notification).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from golive.backup import StorageOptions
from golive.errors import GoliveError
from golive.model.release import Check, TableKey

#: the exit code of each final state (the issue's contract)
EXIT_CODES = {"released": 0, "nothing-to-release": 0, "dry-run": 0, "lint-only": 0, "rolled-back": 1,
              "refused": 2, "rollback-failed": 3}

State = Literal["released", "nothing-to-release", "dry-run", "lint-only", "rolled-back", "refused", "rollback-failed"]


class ReleaseRefused(GoliveError):
    """The release did not start: a pre-check or a lint rule said no; nothing was changed."""

    exit_code = 2


class LockTimeout(GoliveError):
    """A statement could not get its lock within lock_timeout (it gave up; nothing of it was applied)."""

    exit_code = 1


class MigrationFailed(GoliveError):
    """A migration failed. ``left_nothing``: nothing of it stayed in the database (its transaction rolled back,
    or it failed on its first statement)."""

    exit_code = 1


class ReleaseSettings(BaseModel):
    """The settings of a release, as the CLI options and the flow's parameters give them (no secrets resolved)."""

    migrations: str = Field(title="Migrations", description=(
        "KIND:PATH: sql:DIR (NNN_name.sql, optional NNN_name.down.sql), alembic:DIR (the folder of the app's "
        "alembic.ini, or the ini file), prisma:DIR (the prisma folder or its migrations folder)"))
    backup_to: str | None = Field(None, title="Backup to", description=(
        "s3://bucket/prefix or file:///dir: where the release's backup goes (required unless dry run / lint only)"))
    verify_backup: bool = Field(False, title="Verify the backup", description=(
        "Restore the backup into a scratch database and check it before migrating (slower, proven)"))
    rollback: Literal["restore", "down"] = Field("restore", title="Rollback", description=(
        "restore: restore the backup; down: run the down-migrations when every applied migration has one "
        "(else the backup is restored)"))
    health_urls: list[str] = Field(default_factory=list, title="Health URLs", description=(
        "Polled after the migrations (and after a rollback) until they answer 2xx"))
    health_cmd: str | None = Field(None, title="Health command", description="A shell command that must exit 0")
    health_timeout: str = Field("60s", title="Health timeout", description="How long the health checks may take")
    check_sql: str | None = Field(None, title="Check SQL file", description=(
        "A file of queries that must return no rows after the migrations (the app's own checks)"))
    rows_may_change: list[str] = Field(default_factory=list, title="Tables whose row counts may change", description=(
        "Tables whose row counts the release may change (besides those its SQL inserts into or deletes from)"))
    notify: list[SecretStr] = Field(default_factory=list, title="Notify", description=(
        "Webhooks: https://… (generic JSON), slack+https://…, feishu+https://…, lark+https://…, "
        "dingtalk+https://…, wecom+https://…; the URL part may be block:NAME or env:VAR"))
    allow: list[str] = Field(default_factory=list, title="Allowed lint rules", description=(
        "Lint rule IDs whose findings do not block the release"))
    large_table: str = Field("10MB", title="Large table", description=(
        "Tables this large make locking findings block the release (smaller ones only warn)"))
    lint_only: bool = Field(False, title="Lint only", description="Pre-check and lint; run nothing")
    dry_run: bool = Field(False, title="Dry run", description="Pre-check, lint and the plan of what would run")
    lock_timeout: str = Field("5s", title="Lock timeout", description="lock_timeout of every migration statement")
    lock_retries: int = Field(5, ge=0, le=50, title="Lock retries", description=(
        "Retries, with backoff, of a migration (statement) that only timed out waiting for its lock"))
    statement_timeout: str | None = Field(None, title="Statement timeout", description=(
        "statement_timeout of every migration statement (empty: only the overall timeout)"))
    timeout: str = Field("30m", title="Timeout", description="Overall time limit of the migrations")
    long_transaction: str = Field("60s", title="Long transaction", description=(
        "Pre-check: transactions open longer than this are listed (fail when they hold a lock on a table the "
        "migrations change)"))
    resolve_interrupted: bool = Field(False, title="Resolve an interrupted release", description=(
        "Accept the state an interrupted earlier release left (after reading what the pre-check says) and go on"))
    report_path: str | None = Field(None, title="Report file", description="Write the JSON report here")


class ReleaseOptions(ReleaseSettings):
    """The engine's options: the settings plus how to reach the backup storage."""

    storage: StorageOptions = Field(default_factory=StorageOptions)
    encryption_key: SecretStr | None = Field(None, description="Encrypt the backup with this key")


# ---------------------------------------------------------------- migrations

class Migration(BaseModel):
    """One migration as its tool lays it out."""

    kind: str
    version: str = Field(description="NNN (sql), the revision (alembic), the folder name (prisma)")
    name: str
    path: str
    checksum: str = Field(description="SHA-256 of the file (prisma: of migration.sql, as Prisma computes it)")
    sql: str | None = Field(None, description="The SQL it runs (alembic: from its offline --sql mode)")
    down_path: str | None = None
    has_down: bool = False
    transactional: bool = True
    notes: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}" if self.kind == "sql" else (
            self.version if self.kind == "prisma" else f"{self.version} ({self.name})")


class Applied(BaseModel):
    """A migration the tool's history table records."""

    version: str
    name: str = ""
    checksum: str | None = None
    applied_at: dt.datetime | None = None
    finished: bool = True
    logs: str | None = None


class SourceStatus(BaseModel):
    """Where the database stands with respect to the migration folder."""

    migrations: list[Migration] = Field(default_factory=list, description="Every migration on disk, in order")
    applied: list[Applied] = Field(default_factory=list)
    pending: list[Migration] = Field(default_factory=list)
    drift: list[str] = Field(default_factory=list, description="Applied migrations whose file changed since")
    failed: list[str] = Field(default_factory=list, description="Recorded as started but not finished")
    missing: list[str] = Field(default_factory=list, description="Applied but not on disk")
    current: str | None = Field(None, description="The latest applied migration")
    problems: list[str] = Field(default_factory=list, description="Reasons the tool itself would refuse")
    notes: list[str] = Field(default_factory=list)


class Touch(BaseModel):
    """How the pending SQL touches the tables: the ones it changes, creates, drops, renames, and whose row
    counts it changes on purpose (INSERT/DELETE/TRUNCATE)."""

    changed: list[TableKey] = Field(default_factory=list, description="In the order the migrations first touch them")
    created: set[TableKey] = Field(default_factory=set)
    dropped: set[TableKey] = Field(default_factory=set)
    renamed: list[tuple[TableKey, TableKey]] = Field(default_factory=list, description="(old, new)")
    rows_change: set[TableKey] = Field(default_factory=set)
    extensions: list[str] = Field(default_factory=list)

    def change(self, key: TableKey) -> None:
        if key not in self.changed:
            self.changed.append(key)

    def rename(self, old: TableKey, new: TableKey) -> None:
        self.renamed = [(o, n) for o, n in self.renamed if o != old] + [(old, new)]

    def now_named(self, key: TableKey) -> TableKey:
        """The table's name after the migrations (a renamed table's new name)."""
        return dict(self.renamed).get(key, key)


# ---------------------------------------------------------------- steps

class Finding(BaseModel):
    """One lint finding."""

    rule: str
    severity: Literal["error", "warning"]
    migration: str
    statement: int
    line: int
    sql: str
    message: str
    fix: str = ""
    table: str | None = None
    table_bytes: int | None = None
    table_rows: int | None = None
    allowed: bool = False

    @property
    def blocks(self) -> bool:
        return self.severity == "error" and not self.allowed


class Event(BaseModel):
    """One line of the timeline."""

    at: dt.datetime
    t: float = Field(description="Seconds since the release started")
    step: str
    status: Literal["start", "ok", "failed", "warn", "retry", "info"]
    message: str


class MigrationRun(BaseModel):
    """How one migration went."""

    version: str
    label: str
    status: Literal["applied", "failed", "rolled-back", "not-run"] = "not-run"
    transactional: bool = True
    statements: int = 0
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None
    left_nothing: bool | None = Field(None, description="After a failure: nothing of it stayed in the database")


class HealthResult(BaseModel):
    target: str
    ok: bool
    attempts: int
    seconds: float
    detail: str = ""


class NotifyResult(BaseModel):
    target: str
    kind: str
    ok: bool
    detail: str = ""


class BackupRef(BaseModel):
    id: str
    url: str
    verified: str | None = None
    rows: int = 0
    stored_bytes: int = 0
    seconds: float = 0.0


class Failure(BaseModel):
    step: str
    message: str
    migration: str | None = None


class Rollback(BaseModel):
    method: Literal["restore", "down", "nothing-to-undo"]
    why: str
    ok: bool = False
    message: str = ""
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class ReleaseReport(BaseModel):
    """Everything about one release; ``statement`` says in words what state the database is in."""

    release_id: str
    database: str = Field(description="Masked URL")
    dbname: str = ""
    engine: str = ""
    server_version: str = ""
    migrations: str
    kind: str
    state: State = "refused"
    exit_code: int = 2
    statement: str = ""
    failed: Failure | None = None
    rollback: Rollback | None = None
    prechecks: list[Check] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    plan: list[dict] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list, description="What the release runs, in words (the dry run's plan)")
    runs: list[MigrationRun] = Field(default_factory=list)
    backup: BackupRef | None = None
    validation: dict = Field(default_factory=dict)
    health: list[HealthResult] = Field(default_factory=list)
    notifications: list[NotifyResult] = Field(default_factory=list)
    found: str | None = Field(None, description="What an interrupted earlier release left, as the pre-check read it")
    timeline: list[Event] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    started_at: dt.datetime | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def applied(self) -> list[MigrationRun]:
        return [r for r in self.runs if r.status == "applied"]

    def summary(self) -> str:
        """One line: the state and the statement (the Failed state's message, the notification's title)."""
        return self.statement or self.state

    def as_dict(self) -> dict:
        return self.model_dump(mode="json")

"""Options and results of the backup operations (the public API's types; pydantic, secrets as ``SecretStr``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from golive.backup.manifest import Manifest, Verification
from golive.backup.store import StorageOptions


class BackupOptions(BaseModel):
    name: str | None = Field(None, description="Name in the backup's ID (default: the database's name)")
    compress: str = Field("zstd:1", description="zstd, zstd:LEVEL (1-19) or none")
    encryption_key: SecretStr | None = Field(None, description="32-byte key (raw, hex or base64): encrypt with AES-256-GCM")
    storage: StorageOptions = Field(default_factory=StorageOptions)
    scratch_dir: str | None = Field(None, description="Where SQLite's snapshot copy is made (default: the temp dir)")
    part_size_mb: int = Field(8, ge=5, le=512, description="Multipart part size in MiB")
    create_bucket: bool = Field(False, description="Create the bucket if it does not exist")


class RestoreOptions(BaseModel):
    force: bool = Field(False, description="Replace everything in a non-empty target (else it is refused)")
    jobs: int = Field(2, ge=1, le=32, description="Parallel restore workers (pg_restore -j, MySQL tables at a time)")
    no_owner: bool = Field(False, description="PostgreSQL: do not restore owners and privileges (other roles)")
    scratch_dir: str | None = Field(None, description="Where the downloaded objects go (default: the temp dir)")
    encryption_key: SecretStr | None = Field(None, description="The key the backup was encrypted with")
    storage: StorageOptions = Field(default_factory=StorageOptions)
    checks: bool = Field(True, description="Compare row counts (Great Expectations) and the schema fingerprint")
    out_dir: str | None = Field(None, description="Great Expectations results (default: inside the scratch dir)")
    state_dir: str | None = Field("golive-runs", description=(
        "Where a restore in progress is noted (restores/), so the same command run again after a kill replaces "
        "what it had half-written; None: nowhere"))


class VerifyOptions(BaseModel):
    scratch: SecretStr | None = Field(None, description=(
        "Server to restore into (a temporary database is created and dropped): PostgreSQL default: an "
        "embedded PostgreSQL (pgserver); MySQL default: the backup's own server; SQLite: a temp file"))
    own_server: SecretStr | None = Field(None, description=(
        "The backup's own database URL with the credentials the backup used (a verification right after the "
        "backup): where the engine's default scratch is that server, it connects with these; else with the "
        "manifest's record of it, which has no password"))
    scratch_dir: str | None = Field(None, description="Local scratch directory (default: the temp dir)")
    scratch_prefix: str = Field("golive_verify_", description="Name prefix of the temporary database")
    jobs: int = Field(2, ge=1, le=32)
    encryption_key: SecretStr | None = None
    storage: StorageOptions = Field(default_factory=StorageOptions)
    record: bool = Field(True, description="Write the result into the manifest")
    out_dir: str | None = Field(None, description="Keep Great Expectations results here")


class BackupResult(BaseModel):
    id: str
    url: str
    manifest: Manifest
    timings: dict[str, float] = Field(default_factory=dict)


class RestoreResult(BaseModel):
    ok: bool
    id: str
    url: str
    target: str = Field(description="Masked target URL")
    manifest: Manifest
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    details: dict = Field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class VerifyResult(BaseModel):
    ok: bool
    id: str
    url: str
    verification: Verification
    manifest: Manifest
    timings: dict[str, float] = Field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class BackupInfo(BaseModel):
    id: str
    url: str
    engine: str
    database: str
    started_at: str
    stored_bytes: int
    raw_bytes: int
    duration_seconds: float
    rows: int
    verified: str | None = Field(None, description="passed, failed or None (never verified)")
    verified_at: str | None = None
    age_seconds: float


class ListResult(BaseModel):
    at: str
    backups: list[BackupInfo]
    incomplete: list[str] = Field(default_factory=list, description="IDs with objects but no manifest")


class RetentionPolicy(BaseModel):
    keep_last: int = Field(0, ge=0, description="Keep the N newest backups")
    keep_daily: int = Field(7, ge=0, description="For the last N days with backups, the newest of each day")
    keep_weekly: int = Field(4, ge=0, description="For the last N ISO weeks with backups, the newest of each")
    keep_monthly: int = Field(12, ge=0, description="For the last N months with backups, the newest of each")
    keep_yearly: int = Field(0, ge=0, description="For the last N years with backups, the newest of each")


class PruneResult(BaseModel):
    at: str
    dry_run: bool
    kept: dict[str, list[str]] = Field(description="ID -> why it is kept")
    removed: list[str]
    objects_deleted: int = 0

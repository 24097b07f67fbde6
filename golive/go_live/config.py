"""``golive.toml``: the whole go-live in one file, validated by pydantic (``golive go-live init`` writes one).

The shape (more keys and sections are optional)::

    [source]
    database = "sqlite:///srv/app/app.db"        # or mysql://…, postgresql://…, block:NAME
    uploads = "/srv/app/uploads"
    [target]
    database = "postgresql://app@db.internal/app"
    bucket = "s3://app-media/uploads"
    endpoint_url = "https://oss-cn-hangzhou.aliyuncs.com"   # optional
    [[rewrite]]
    table = "images"
    column = "path"
    strip_prefix = "uploads/"
    template = "https://cdn.example.com/{path}"  # placeholders as in rewrite-paths
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model, field_validator, model_validator

from golive.config import MigrateOptions
from golive.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceSection(_Section):
    database: SecretStr = Field(title="Source database", description=(
        "sqlite:///path/app.db, mysql://…, postgresql://…, or block:NAME (a Prefect Secret block holding the URL)"))
    uploads: str | None = Field(None, title="Uploads folder", description="The app's local uploads folder (read only)")


class TargetSection(_Section):
    database: SecretStr = Field(title="Target database", description=(
        "postgresql://…, mysql://…, embedded://DIR, or block:NAME"))
    schema_: str = Field("public", alias="schema", title="Target schema", description="PostgreSQL targets")
    bucket: str | None = Field(None, title="Bucket", description="s3://bucket/prefix or file:///dir for the uploads")
    bucket_block: str | None = Field(None, title="Bucket block", description=(
        "A prefect-aws S3Bucket block (bucket, folder, credentials), instead of bucket"))
    endpoint_url: str | None = Field(None, title="S3 endpoint", description="MinIO, Aliyun OSS, Volcengine TOS, …")
    region: str | None = Field(None, title="Region")
    addressing_style: Literal["auto", "path", "virtual"] = Field("auto", title="Addressing style")
    credentials_block: str | None = Field(None, title="S3 credentials block", description=(
        "A prefect-aws AwsCredentials/MinIOCredentials block, or a Secret block {aws_access_key_id, "
        "aws_secret_access_key} (default: the bucket block's, or the AWS chain)"))

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value):
        return _storage_url(value)


def _storage_url(value: str | None) -> str | None:
    """A bucket or backup destination checked as the step that uses it will check it (``parse_dest``)."""
    if value is not None:
        from golive.storage.base import parse_dest

        try:
            parse_dest(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


class RewriteSection(_Section):
    table: str = Field(title="Table")
    column: str = Field(title="Column holding the file paths")
    strip_prefix: str = Field("", title="Prefix to strip", description="Part of the stored value before the path "
                                                                      "under the uploads folder, e.g. uploads/")
    template: str = Field(title="New value", description="s3://bucket/{key} or https://cdn.example.com/{path} "
                                                        "(placeholders {key}, {path}, {bucket})")
    batch_size: int = Field(1000, ge=1, le=100_000, title="Rows per transaction")
    allow_missing: bool = Field(False, title="Allow rows whose file is missing", description=(
        "Rows naming a file that was not uploaded keep their value and are reported; the step fails unless set"))


#: MigrateOptions fields the go-live sets itself (the target schema is [target] schema; the cut-over's are [cutover])
_CUTOVER_FIELDS = {"mode": "cutover", "max_lag": "max_lag", "command": "cutover_command", "check": "cutover_check"}
_MIGRATE_OWN = {"dry_run", "report", "rejects", "validate_after", "target_schema", *_CUTOVER_FIELDS.values()}

#: ``[migrate]``: every option of ``golive migrate db`` (the same fields, titles and defaults as MigrateOptions)
MigrateSection = create_model(
    "MigrateSection", __base__=_Section, __doc__="Options of the database migration (as golive migrate db).",
    **{name: (f.annotation, f) for name, f in MigrateOptions.model_fields.items() if name not in _MIGRATE_OWN})


class CutoverSection(_Section):
    """How an online go-live ([migrate] online = true) switches the app over."""

    mode: Literal["auto", "manual"] = Field("auto", title="When", description=(
        "auto: as soon as the database is within max_lag; manual: when asked (golive migrate cutover, or the "
        "migrate-cutover deployment in the Prefect UI)"))
    max_lag: str = Field("2s", title="Largest lag to cut over at (auto)")
    command: str | None = Field(None, title="Cut-over command", description=(
        "Run once the source is fenced, the database caught up and checked, the last uploads done and the paths "
        "rewritten: switch the app to the target (e.g. a deploy script); the write freeze lasts until it is done"))
    check: Literal["changed", "full"] = Field("changed", title="Check before the switch", description=(
        "changed: the rows changed since the copy began, value by value; full: every row (a longer freeze)"))


class BackupSection(_Section):
    enabled: bool = Field(True, title="Back up the source first")
    to: str | None = Field(None, title="Backups go to", description=(
        "s3://bucket/prefix or file:///dir (default: file://<state dir>/backups)"))
    compress: str = Field("zstd:1", title="Compression")
    verify: bool = Field(False, title="Verify the backup by restoring it")
    endpoint_url: str | None = Field(None, title="S3 endpoint", description="Default: [target] endpoint_url")
    credentials_block: str | None = Field(None, title="Credentials block",
                                          description="A Secret block with the keys; default: [target] credentials_block")
    encrypt_key_block: str | None = Field(None, title="Encryption key block", description=(
        "A Secret block holding the 32-byte key (hex or base64); empty: not encrypted"))

    @field_validator("to")
    @classmethod
    def _to(cls, value):
        return _storage_url(value)


class FilesSection(_Section):
    workers: int = Field(8, ge=1, le=256, title="Files uploaded at the same time")
    create_bucket: bool = Field(False, title="Create the bucket if missing")
    follow_symlinks: bool = Field(False, title="Upload what symlinks point to")


class GoLiveConfig(_Section):
    """The whole go-live: where the app is, where it goes, what to rewrite, and each step's options."""

    source: SourceSection
    target: TargetSection
    rewrite: list[RewriteSection] = Field(default_factory=list, title="File-path columns to rewrite")
    migrate: MigrateSection = Field(default_factory=MigrateSection, title="Database migration")
    cutover: CutoverSection = Field(default_factory=CutoverSection, title="Cut-over (online)")
    backup: BackupSection = Field(default_factory=BackupSection, title="Source backup")
    files: FilesSection = Field(default_factory=FilesSection, title="Uploads")
    state_dir: str = Field("golive-runs", title="State folder", description="Manifests, reports, the go-live's own state")

    @field_validator("rewrite", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _consistent(self):
        if self.target.bucket and self.target.bucket_block:
            raise ValueError("target: give bucket or bucket_block, not both")
        if self.rewrite and not (self.source.uploads and (self.target.bucket or self.target.bucket_block)):
            raise ValueError("rewrite needs [source] uploads and [target] bucket: paths are rewritten to the "
                             "uploaded objects")
        if (self.target.bucket or self.target.bucket_block) and not self.source.uploads:
            raise ValueError("target.bucket is set but source.uploads is not: which folder goes to the bucket?")
        seen = set()
        for r in self.rewrite:
            if (r.table, r.column) in seen:
                raise ValueError(f"rewrite: {r.table}.{r.column} is listed twice")
            seen.add((r.table, r.column))
        return self

    def migrate_options(self, **own) -> MigrateOptions:
        """The migration's options: ``[migrate]``, the target schema, and what the go-live sets (``own``)."""
        cut = {opt: getattr(self.cutover, key) for key, opt in _CUTOVER_FIELDS.items()}
        return MigrateOptions(**self.migrate.model_dump(), **cut, target_schema=self.target.schema_, **own)

    def has_files(self) -> bool:
        return bool(self.source.uploads and (self.target.bucket or self.target.bucket_block))

    def key(self) -> str:
        """Names this go-live (source, target, bucket): its state and artifacts are kept under it."""
        from golive.urls import secret

        raw = "|".join([secret(self.source.database), secret(self.target.database),
                        self.target.bucket or self.target.bucket_block or "", self.source.uploads or ""])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def steps(self) -> list[str]:
        """The steps this configuration asks for, in order."""
        out = ["precheck"]
        if self.backup.enabled:
            out.append("backup")
        if self.migrate.online:  # the app keeps writing: files first; the database's cut-over uploads the files
            # added since and rewrites the paths inside the freeze, after checking the changed rows
            return out + (["migrate-files", "migrate-db", "verify-files"] if self.has_files() else ["migrate-db"]) \
                + ["report"]
        out += ["migrate-db", "validate"]
        if self.has_files():
            out += ["migrate-files", "verify-files"]
        if self.rewrite:
            out.append("rewrite-paths")
        return out + ["report"]


def load_config(path: str | Path) -> GoLiveConfig:
    """Read and validate ``golive.toml``; a bad file is one line naming the place and the fix."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8-sig"))  # a byte-order mark (Windows editors) is no key
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file (golive go-live init writes an example)") from None
    except OSError as exc:  # a directory, no permission
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}); TOML files "
                          "are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return GoLiveConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{p}: {where + ': ' if where else ''}{msg}" + (f" ({len(exc.errors()) - 1} more problems)"
                                                          if len(exc.errors()) > 1 else "")) from None


EXAMPLE = '''# golive.toml: the whole go-live (golive go-live --config golive.toml [--dry-run]).
# URLs may name a Prefect Secret block instead (block:NAME), so no password sits in this file.

# state_dir = "golive-runs"                  # journal, reports, manifests (top-level keys come before [source])

[source]
database = "sqlite:///srv/app/app.db"        # or mysql://user@localhost/app, postgresql://…
uploads = "/srv/app/uploads"                 # the app's uploads folder (only read)

[target]
database = "postgresql://app@db.internal/app"   # or mysql://…, embedded://./pgdata, block:prod-db
# schema = "public"
bucket = "s3://app-media/uploads"            # or file:///srv/media
# endpoint_url = "https://oss-cn-hangzhou.aliyuncs.com"   # MinIO, OSS, TOS, …
# region = "cn-hangzhou"
# addressing_style = "virtual"
# credentials_block = "media-keys"          # a Prefect Secret block; default: the AWS chain

[[rewrite]]                                  # one section per file-path column
table = "images"
column = "path"
strip_prefix = "uploads/"
template = "https://cdn.example.com/{path}"  # {key} (object key), {path} (under the uploads), {bucket}

[migrate]
# tables = ["users", "images"]
# identifiers = "preserve"                   # or "snake"
# workers = 4
# max_rejects = 0

# online = true                              # the app keeps writing: capture, copy, catch up, cut over

# [cutover]                                  # online only
# mode = "auto"                              # or "manual": golive migrate cutover -s … -t … says when
# max_lag = "2s"
# command = "./switch-app-to-production.sh"  # the write freeze lasts until it is done
# check = "changed"                          # or "full": every row compared inside the freeze

[backup]
enabled = true                               # the source is backed up before anything else
# to = "s3://app-backups/golive"             # default: file://<state_dir>/backups
# verify = false

[files]
# workers = 8
# create_bucket = false
'''

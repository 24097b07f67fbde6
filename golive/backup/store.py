"""Where backups live: one storage (``golive.storage``) per base URL, backups as ``<ID>/`` under it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from golive.backup.manifest import Manifest
from golive.backup.naming import LATEST, MANIFEST, Location, id_time, is_id
from golive.errors import ConfigError, TerminalError
from golive.storage import StorageConfig, open_storage

log = logging.getLogger(__name__)


class StorageOptions(BaseModel):
    """How to reach the bucket (as for ``golive migrate files``); credentials default to the AWS chain."""

    model_config = ConfigDict(frozen=True)

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, OSS, TOS, moto); empty for AWS")
    region: str | None = Field(None, description="Region; the AWS chain's default when empty")
    addressing_style: str = Field("auto", description="auto, path or virtual")
    access_key_id: SecretStr | None = Field(None, description="Overrides the AWS chain when set")
    secret_access_key: SecretStr | None = Field(None, description="Overrides the AWS chain when set")
    session_token: SecretStr | None = Field(None, description="For temporary credentials")
    max_attempts: int = Field(4, ge=1, le=20, description="botocore attempts per request")

    def config(self, dest: str) -> StorageConfig:
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise ConfigError(f"addressing style must be auto, path or virtual, not {self.addressing_style!r}")
        return StorageConfig(dest=dest, endpoint_url=self.endpoint_url, region=self.region,
                             addressing_style=self.addressing_style, access_key_id=self.access_key_id,
                             secret_access_key=self.secret_access_key, session_token=self.session_token,
                             max_attempts=self.max_attempts)


@dataclass
class Listing:
    manifests: list[Manifest]  # oldest first
    incomplete: list[str]  # IDs with objects but no manifest (failed or running backups)


class BackupStore:
    def __init__(self, base: str, storage: StorageOptions | None = None):
        self.base = base.rstrip("/")
        self.storage = open_storage((storage or StorageOptions()).config(self.base))

    def describe(self) -> str:
        return self.storage.describe()

    def check(self, create: bool = False, *, creatable: bool = True) -> None:
        """The destination answers (``create``: a missing bucket is made). ``creatable=False`` for a command without
        ``--create-bucket`` (release): its message for a missing bucket does not suggest one."""
        self.storage.check(create=create, creatable=creatable)

    def key(self, backup_id: str, name: str) -> str:
        return self.storage.dest.key(f"{backup_id}/{name}")

    def url(self, backup_id: str) -> str:
        return f"{self.base}/{backup_id}"

    def read_manifest(self, backup_id: str) -> Manifest | None:
        data = self.storage.get_bytes(self.key(backup_id, MANIFEST))
        return None if data is None else Manifest.from_bytes(data, f"{self.base}/{backup_id}")

    def write_manifest(self, manifest: Manifest) -> None:
        self.storage.put_bytes(self.key(manifest.id, MANIFEST), manifest.to_bytes())

    def listing(self) -> Listing:
        prefix = self.storage.dest.prefix
        ids, with_manifest = set(), set()
        for info in self.storage.list_under(""):
            rel = info.key[len(prefix):] if info.key.startswith(prefix) else info.key
            head, _, rest = rel.partition("/")
            if not rest or not is_id(head):
                continue
            ids.add(head)
            if rest == MANIFEST:
                with_manifest.add(head)
        manifests = []
        for backup_id in sorted(with_manifest):
            m = self.read_manifest(backup_id)
            if m is not None:
                manifests.append(m)
        return Listing(manifests, sorted(ids - with_manifest))

    def resolve(self, loc: Location) -> Manifest:
        """The manifest of ``loc`` (an ID or ``latest``); a clear error when there is none."""
        if loc.backup_id == LATEST:
            found = self.listing().manifests
            if not found:
                raise TerminalError(f"no backups under {self.describe()} (nothing has a manifest there)")
            return found[-1]
        if not loc.backup_id:
            raise ConfigError(f"{loc.base} names no backup (add /<ID> or /latest)")
        id_time(loc.backup_id)
        m = self.read_manifest(loc.backup_id)
        if m is None:
            raise TerminalError(f"{loc.url}: no such backup (no manifest: it does not exist, or it never finished)")
        return m

    def object_keys(self, backup_id: str) -> list[str]:
        return [i.key for i in self.storage.list_under(f"{backup_id}/")]

    def delete(self, backup_id: str) -> int:
        """Delete a backup: its manifest first (from then on it is no longer listed), then its objects."""
        self.storage.delete_keys([self.key(backup_id, MANIFEST)])
        keys = self.object_keys(backup_id)
        self.storage.delete_keys(keys)
        return len(keys) + 1

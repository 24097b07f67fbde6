"""Where backups live: one storage (``golive.storage``) per base URL, backups as ``<ID>/`` under it.

A backup in progress holds ``<ID>/running.json`` (host, process) until its manifest is written. A backup killed
(``kill -9``, a power cut) or failing while the storage was failing too leaves objects without a manifest and
multipart uploads open; the next backup to the same place removes them (``BackupStore.sweep``) once their process
is known to be gone: on this host, its process no longer runs; from another host, after a day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from golive.backup.manifest import Manifest
from golive.backup.naming import LATEST, MANIFEST, Location, id_time, is_id
from golive.errors import ConfigError, GoliveError, TerminalError
from golive.storage import StorageConfig, open_storage

log = logging.getLogger(__name__)

RUNNING = "running.json"
#: a backup in progress on another host is taken for dead after this long without its manifest
FOREIGN_STALE = dt.timedelta(days=1)
#: the IDs this process is writing now (a failed one's leftovers are swept even though this process runs)
_IN_PROGRESS: set[str] = set()
_IN_PROGRESS_LOCK = threading.Lock()


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

    # -- backups in progress, and what killed ones left
    def mark_running(self, backup_id: str) -> None:
        """Write ``<ID>/running.json``: whose backup this is, so a later sweep can tell a dead one from a live one."""
        with _IN_PROGRESS_LOCK:
            _IN_PROGRESS.add(backup_id)
        body = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": dt.datetime.now(dt.timezone.utc)
                .isoformat(timespec="seconds")}
        self.storage.put_bytes(self.key(backup_id, RUNNING), json.dumps(body).encode())

    def unmark_running(self, backup_id: str, *, finished: bool) -> None:
        """The backup is done (``finished``: its manifest is written) or given up; its marker goes (best effort:
        a marker left behind is removed by the next sweep)."""
        with _IN_PROGRESS_LOCK:
            _IN_PROGRESS.discard(backup_id)
        if finished:
            try:
                self.storage.delete_keys([self.key(backup_id, RUNNING)])
            except GoliveError as exc:
                log.info("could not remove %s's marker: %s", backup_id, exc)

    def _dead(self, backup_id: str, now: dt.datetime) -> bool:
        """True when no process is writing ``backup_id`` any more."""
        with _IN_PROGRESS_LOCK:
            if backup_id in _IN_PROGRESS:
                return False
        try:
            data = self.storage.get_bytes(self.key(backup_id, RUNNING))
        except GoliveError:
            return False
        try:
            started = id_time(backup_id)
        except ConfigError:
            return False
        if data is None:  # no marker (it was never written, or an older golive): only by its age
            return now - started > FOREIGN_STALE
        try:
            marker = json.loads(data)
            host, pid = marker["host"], int(marker["pid"])
        except (ValueError, KeyError, TypeError):
            return now - started > FOREIGN_STALE
        if host != socket.gethostname():
            return now - started > FOREIGN_STALE
        if pid == os.getpid():
            return True  # this process, and not in progress here: a backup of ours that failed
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process runs under that number
            return False
        return False

    def sweep(self) -> list[str]:
        """Remove what failed or killed backups left here (objects without a manifest, open multipart uploads,
        stray markers of finished backups), for the backups whose process is gone. Best effort: a storage error
        leaves the rest for the next sweep. Returns the IDs cleaned."""
        now = dt.datetime.now(dt.timezone.utc)
        prefix = self.storage.dest.prefix
        try:
            ids, with_manifest, markers = set(), set(), set()
            for info in self.storage.list_under(""):
                rel = info.key[len(prefix):] if info.key.startswith(prefix) else info.key
                head, _, rest = rel.partition("/")
                if rest and is_id(head):
                    ids.add(head)
                    with_manifest.update([head] if rest == MANIFEST else [])
                    markers.update([head] if rest == RUNNING else [])
            uploads: dict[str, list[tuple[str, str]]] = {}
            for key, upload_id in self.storage.open_uploads(prefix):
                head = key[len(prefix):].partition("/")[0]
                if is_id(head):
                    uploads.setdefault(head, []).append((key, upload_id))
        except GoliveError as exc:
            log.info("could not look for the leftovers of failed backups under %s: %s", self.describe(), exc)
            return []
        cleaned = []
        for backup_id in sorted((ids - with_manifest) | (set(uploads) - with_manifest)):
            if not self._dead(backup_id, now):
                continue
            try:
                for key, upload_id in uploads.get(backup_id, []):
                    self.storage.abort_multipart(key, upload_id)
                keys = self.object_keys(backup_id)
                rest = [k for k in keys if not k.endswith("/" + RUNNING)]
                self.storage.delete_keys(rest)  # the marker last: a sweep stopped half-way finds the rest again
                self.storage.delete_keys([k for k in keys if k not in rest])
            except GoliveError as exc:
                log.info("could not remove the leftovers of %s: %s", backup_id, exc)
                continue
            log.info("removed the leftovers of the failed backup %s", backup_id)
            cleaned.append(backup_id)
        for backup_id in sorted(markers & with_manifest):
            if self._dead(backup_id, now):
                try:
                    self.storage.delete_keys([self.key(backup_id, RUNNING)])
                except GoliveError:
                    pass
        return cleaned

    def object_keys(self, backup_id: str) -> list[str]:
        return [i.key for i in self.storage.list_under(f"{backup_id}/")]

    def delete(self, backup_id: str) -> int:
        """Delete a backup: its manifest first (from then on it is no longer listed), then its objects."""
        self.storage.delete_keys([self.key(backup_id, MANIFEST)])
        keys = self.object_keys(backup_id)
        self.storage.delete_keys(keys)
        return len(keys) + 1

"""Backup names and URLs.

A backup is named by its URL: ``s3://bucket/prefix/<ID>`` or ``file:///dir/<ID>``, where ID is the UTC time
it was started (sortable as text) and a name: ``20261202T031500.123Z-app``. ``<base>/latest`` means the
newest backup under ``<base>`` that has a manifest (a backup without one is not a backup).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from golive.errors import ConfigError

ID_RE = re.compile(r"^(?P<time>\d{8}T\d{6}\.\d{3}Z)-(?P<name>[a-z0-9][a-z0-9._-]{0,62})$")
LATEST = "latest"
MANIFEST = "manifest.json"


def clean_name(name: str) -> str:
    """A name usable in an ID: lowercase letters, digits, ``.``, ``_`` and ``-``."""
    out = re.sub(r"[^a-z0-9._-]+", "-", (name or "").lower()).strip("-._")
    return (out or "db")[:63]


def new_id(name: str, now: dt.datetime | None = None) -> str:
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z-{clean_name(name)}"


def id_time(backup_id: str) -> dt.datetime:
    m = ID_RE.match(backup_id)
    if not m:
        raise ConfigError(f"{backup_id!r} is not a backup ID (like 20261202T031500.123Z-app)")
    return dt.datetime.strptime(m.group("time"), "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.timezone.utc)


def is_id(text: str) -> bool:
    return bool(ID_RE.match(text))


@dataclass(frozen=True)
class Location:
    """``base`` is the storage URL holding the backups; ``backup_id`` is an ID, ``latest`` or None."""

    base: str
    backup_id: str | None = None

    @property
    def url(self) -> str:
        return self.base.rstrip("/") + (f"/{self.backup_id}" if self.backup_id else "")

    def key(self, backup_id: str, name: str = "") -> str:
        """The key of ``name`` in backup ``backup_id`` relative to ``base``."""
        return f"{backup_id}/{name}"


def parse_location(url: str, *, want_backup: bool | None = None) -> Location:
    """Split ``s3://b/prefix/<ID>`` (or ``.../latest``) into base and ID.

    Args:
        want_backup: True: the URL must name a backup (an ID or ``latest``); False: it must not (a place
            where backups go); None: either.
    """
    if not url or "://" not in url:
        raise ConfigError(f"{url!r} is not a backup URL (expected s3://bucket/prefix[/ID|latest] or file:///dir)")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("s3", "s3a", "file"):
        raise ConfigError(f"{url!r}: unknown scheme {scheme!r} (expected s3:// or file://)")
    stripped = url.rstrip("/")
    head, _, last = stripped.rpartition("/")
    if (last == LATEST or is_id(last)) and head and not head.endswith(":/"):
        if want_backup is False:
            raise ConfigError(f"{url!r} names one backup; give the place where backups are kept "
                              f"({head})")
        return Location(head, last)
    if want_backup:
        raise ConfigError(f"{url!r} names no backup: add /<ID> or /latest (golive backups list --at {url})")
    return Location(stripped)

"""Options and results of the archive's commands (plain pydantic: the flows' parameters wrap them)."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, Field, SecretStr

from golive.backup.store import StorageOptions
from golive.errors import ConfigError

#: the RPO the archive promises: what is in the bucket is at most this far behind the server
MAX_FLUSH_SECONDS = 60


class ArchiveOptions(BaseModel):
    name: str | None = Field(None, description="The archive's name (default: the database's)")
    flush_seconds: float = Field(30, gt=0, le=MAX_FLUSH_SECONDS,
                                 description="Store the segment being written at least this often (the RPO)")
    marker_seconds: float = Field(60, ge=0, description="Write a marker row this often (0: never); drills check "
                                                        "them, and they give recovery a commit after any moment")
    base_every_hours: float = Field(24, ge=0, description="Take a new base backup this often (0: only the first)")
    compress: str = "zstd:1"
    encryption_key: SecretStr | None = None
    storage: StorageOptions = Field(default_factory=StorageOptions)
    spool_dir: str | None = Field(None, description="Local spool of the log being received (kept across restarts; "
                                                    "default ~/.golive/archive/<name>)")
    create_bucket: bool = False
    seconds: float | None = Field(None, description="Stop after this long (default: run until stopped)")
    max_down_seconds: float = Field(600, gt=0, description="How long the server or the storage may stay unreachable "
                                                           "(no flush succeeds) before the archiver gives up")


class ArchiveRunResult(BaseModel):
    url: str
    name: str
    engine: str
    seconds: float
    segments_stored: int
    flushes: int
    restarts: int
    bases: list[str]
    window: dict
    max_flush_lag_seconds: float | None = None
    cpu_seconds: float | None = None


class PointRestoreResult(BaseModel):
    url: str
    target: str
    base: str
    segments: int
    where: str
    seconds: float
    reached: str = ""
    details: dict = Field(default_factory=dict)


class Window(BaseModel):
    name: str
    engine: str
    url: str
    source: str
    earliest: dt.datetime | None
    latest: dt.datetime | None
    lag_seconds: float | None = Field(None, description="Now minus the latest restorable moment")
    bases: int
    segments: int
    stored_bytes: int
    gaps: list[str] = Field(default_factory=list)
    stale: bool = False
    last_drill: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.stale and self.latest is not None


def parse_duration(text: str) -> dt.timedelta:
    """``14d``, ``36h``, ``90m``, ``45s`` (or a number of days)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", str(text or ""))
    if not m:
        raise ConfigError(f"{text!r} is not a duration (like 14d, 36h, 90m)")
    n, unit = float(m.group(1)), m.group(2) or "d"
    return dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: n})


def parse_moment(text: str) -> dt.datetime | None:
    """``latest`` (None) or a moment with its time zone (``2026-12-06 16:04:00+08``, ``…Z``). A moment without a
    zone is refused: read in the wrong zone it would restore to the wrong hour."""
    t = (text or "").strip()
    if t.lower() in ("latest", "now"):
        return None
    try:
        when = dt.datetime.fromisoformat(t.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        raise ConfigError(f"--to-time {text!r} is not a moment: give it as '2026-12-06 16:04:00+08' (with its time "
                          "zone) or 'latest'") from None
    if when.tzinfo is None:
        raise ConfigError(f"--to-time {text!r} has no time zone: add it ('{t}+00' for UTC, or your offset, e.g. "
                          f"'{t}+08')")
    return when.astimezone(dt.timezone.utc)

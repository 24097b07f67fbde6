"""What a continuous archive is, shared by ``golive.archive`` (the capability) and each engine's ``archive.py``.

Neutral: no engine here. Layout under the archive's URL (``s3://bucket/prefix/archive/<name>``)::

    archive.json                  the manifest below, rewritten after every stored segment and flush
    segments/<segment>.zst[.aes]  complete segments, as the engine names its log files
    partial/<segment>.<offset>.zst[.aes]  the segment being written, in pieces: each flush stores only the bytes
                                  received since the one before (removed once the segment is stored whole)
    bases/<ID>/...                base backups (objects + base.json, written last)
    drills/<time>.json            one per drill: the moment, what it proved, RTO and RPO
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from golive.model.backup import Encryption, ObjectEntry, TableEntry, Tool

FORMAT = 1


@dataclass
class Spooled:
    """What a spool directory holds: complete segments, oldest first, and the one being written."""

    complete: list[Path] = field(default_factory=list)
    partial: Path | None = None


class SegmentEntry(BaseModel):
    name: str = Field(description="The engine's file name of the segment")
    stored_as: str
    size: int
    raw_size: int
    sha256: str = Field(description="SHA-256 of the stored bytes")
    closed_at: dt.datetime = Field(description="Server clock when it was seen complete: its last commit is older")
    covers: dt.datetime | None = Field(None, description="Server clock of the last flush while it was the newest "
                                                         "segment: every commit before it is in this segment or an "
                                                         "earlier one (a restore to a moment before it stops here)")


class PartialPiece(BaseModel):
    name: str = Field(description="<segment>@<offset>: how errors name it")
    offset: int = Field(description="Where its bytes start in the segment")
    stored_as: str
    size: int
    raw_size: int
    sha256: str


class PartialEntry(BaseModel):
    """The segment being written, as far as the last flush: stored in pieces, each flush adding only the bytes
    received since the one before (a 1 GB binlog file is never uploaded again and again)."""

    name: str
    end: str = Field(description="The position the stored bytes end at")
    pieces: list[PartialPiece] = Field(default_factory=list)

    @property
    def raw_length(self) -> int:
        return sum(p.raw_size for p in self.pieces)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)

    @property
    def segment(self) -> str:
        return self.name.removesuffix(".partial")


class BaseEntry(BaseModel):
    id: str
    started_at: dt.datetime
    end_time: dt.datetime = Field(description="Server clock at the base's end: the earliest moment it restores to")
    start: str
    end: str
    first_segment: str
    server_version: str
    tool: Tool | None = None
    objects: list[ObjectEntry] = Field(default_factory=list)
    tables: list[TableEntry] = Field(default_factory=list)
    details: dict = Field(default_factory=dict)
    stored_bytes: int = 0
    seconds: float = 0.0


class Flush(BaseModel):
    at: dt.datetime = Field(description="Server clock: every commit before it is in the bucket")
    position: str
    wall: dt.datetime = Field(description="The archiver's clock when the flush was stored")


class ArchiveManifest(BaseModel):
    format: int = FORMAT
    name: str
    engine: str
    source: str = Field(description="The database archived (masked)")
    system: dict = Field(default_factory=dict, description="The server's identity (engine's Archive.identity)")
    compression: str = "zstd:1"
    encryption: Encryption | None = None
    created_at: dt.datetime
    segments: list[SegmentEntry] = Field(default_factory=list)
    partial: PartialEntry | None = None
    bases: list[BaseEntry] = Field(default_factory=list)
    flushed: Flush | None = None
    markers: list[dt.datetime] = Field(default_factory=list, description="When the archiver wrote its marker rows "
                                       "(server clock, the last 1000): drills check a restore against them")
    archiver: dict = Field(default_factory=dict, description="host, pid, started_at, restarts of the receiver")
    golive_version: str = ""


class Drill(BaseModel):
    at: dt.datetime
    target: dt.datetime
    base: str
    status: str = Field(description="passed or failed")
    rto_seconds: float = Field(description="Measured time from the start of the restore to a usable database")
    rpo_seconds: float | None = Field(None, description="How far the archive's latest restorable moment was behind "
                                                        "the server when the drill began")
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

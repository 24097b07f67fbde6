"""The manifest: what a backup holds and how to check it, as JSON next to its objects (``<ID>/manifest.json``).

It is written **last**, after every object is stored and hashed, so a backup that failed half-way has no
manifest and is never listed, restored or counted by retention. Verification rewrites it with its result.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal

from pydantic import BaseModel, Field

FORMAT = 1


class ObjectEntry(BaseModel):
    """One stored object of the backup."""

    name: str = Field(description="What it is, e.g. db.dump or tables/0001.tsv")
    stored_as: str = Field(description="Its key relative to the backup: the name plus .zst (compressed) and "
                                       ".aes (encrypted)")
    kind: str = Field(description="pg_dump, sqlite, schema, data, post-schema")
    size: int = Field(description="Bytes stored (compressed, encrypted)")
    raw_size: int = Field(description="Bytes before compression")
    sha256: str = Field(description="SHA-256 of the stored bytes")
    table: str | None = Field(None, description="The table whose rows it holds (MySQL data objects)")


class TableEntry(BaseModel):
    """A table's row count, counted in the backup's own snapshot."""

    name: str = Field(description="Qualified for PostgreSQL (schema.table), plain otherwise")
    schema_name: str | None = Field(None, description="PostgreSQL schema")
    table: str
    rows: int
    raw_bytes: int | None = Field(None, description="Bytes of its data in the dump, where known")


class Encryption(BaseModel):
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_id: str = Field(description="Fingerprint of the key (not the key): a wrong key is refused by name")
    frame_bytes: int


class Tool(BaseModel):
    name: str
    version: str
    path: str | None = None


class Verification(BaseModel):
    status: Literal["passed", "failed"]
    at: dt.datetime
    seconds: float
    scratch: str = Field(description="Where it was restored (masked)")
    checks: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    golive_version: str


class Manifest(BaseModel):
    format: int = FORMAT
    id: str
    name: str
    engine: Literal["postgresql", "mysql", "sqlite"]
    server_version: str
    database: str = Field(description="Database name (or SQLite file name)")
    source: str = Field(description="The source URL, masked")
    tool: Tool
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_seconds: float
    raw_bytes: int
    stored_bytes: int
    compression: str = Field(description="zstd:LEVEL or none")
    encryption: Encryption | None = None
    objects: list[ObjectEntry]
    tables: list[TableEntry]
    schema_fingerprint: str
    golive_version: str
    details: dict = Field(default_factory=dict, description="Engine specifics (charset, snapshot, ...)")
    warnings: list[str] = Field(default_factory=list)
    verification: Verification | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> "Manifest":
        from golive.errors import TerminalError

        try:
            return cls.model_validate_json(data)
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
            raise TerminalError(f"{where}: the manifest is not readable ({first})") from None

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def table_counts(self) -> dict[str, int]:
        return {t.name: t.rows for t in self.tables}

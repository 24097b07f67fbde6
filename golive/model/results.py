"""What a copy step returns and raises, shared by the migration and the engines that carry it out.

A source's ``ChunkReader`` and a target's ``ChunkWriter`` meet in ``golive.migrate.copy``; the target's steps
(prepare, keys, foreign keys, views) return ``PrepareResult`` / ``StepResult``. Neutral: no engine here.
"""

from __future__ import annotations

from typing import Iterator, Protocol

from pydantic import BaseModel, Field

from golive.model.plan import ChunkPlan


class ChunkResult(BaseModel):
    table: str
    chunk: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rejects: list[dict] = Field(default_factory=list)
    converted: dict[str, int] = Field(default_factory=dict, description=(
        "Values changed on purpose and counted, per 'column: what' (e.g. zero dates written as NULL)."))
    seconds: float = 0.0
    resumed: bool = Field(False, description="Committed by an earlier, interrupted run.")
    careful: bool = Field(False, description="The reject path was used.")


class GroupResult(BaseModel):
    """What copying a group of small tables returns (``golive.migrate.copy.copy_tables``): the chunk results,
    then one key build's result per table, in the group's order."""

    chunks: list[ChunkResult] = Field(default_factory=list)
    steps: list["StepResult"] = Field(default_factory=list)


class Refused(Exception):
    """The target refused rows of a load: the physical line (PostgreSQL) or the record (MySQL), 1-based,
    within this load, when it said which."""

    def __init__(self, reason: str, *, line: int | None = None, column: str | None = None, row: int | None = None):
        super().__init__(reason)
        self.reason, self.line, self.column, self.row = reason, line, column, row


class CountMismatch(Refused):
    def __init__(self, read: int, written: int):
        super().__init__(f"read {read} rows but the target counted {written}")
        self.read, self.written = read, written


class ChunkReader(Protocol):
    """A source's view of one table during the copy (one connection, in the run's snapshot)."""

    #: ``batches`` counts the rows it yields; False for a complete stream the target counts (PostgreSQL's binary
    #: COPY, which loads all of it or nothing)
    counts_rows: bool = True

    def batches(self, chunk: ChunkPlan) -> Iterator[tuple[bytes, int]]:
        """``(wire bytes, rows)`` of the chunk, a few MB each, in key order."""

    def rows(self, chunk: ChunkPlan) -> Iterator[list[tuple[object, bytes]]]:
        """Lists of ``(rowkey, careful line)`` for the reject path."""

    def row(self, rowkey) -> dict:
        """The source row's values by source column (to describe a reject)."""

    def key(self, rowkey, row: dict) -> dict:
        """The reject's ``key`` field."""

    def converted(self) -> dict[str, int]:
        """What the careful rendering changed on purpose, counted (e.g. text decoded from a legacy encoding)."""

    def close(self) -> None: ...


class ChunkWriter(Protocol):
    """A target's session for one chunk: bookkeeping and bulk loads in one transaction."""

    def done(self) -> dict | None:
        """The recorded result when an earlier run committed this chunk."""

    def transaction(self):
        """The chunk's transaction (a context manager); nested use makes a savepoint."""

    def load(self, batches: Iterator[bytes]) -> int:
        """Bulk-load the lines; return the rows the target counted. Raises ``Refused``."""

    def record(self, result: ChunkResult, digest: str) -> None:
        """Record the chunk, inside its transaction."""

    def close(self) -> None: ...


class PrepareResult(BaseModel):
    resumed: bool = False
    created_tables: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    done_chunks: int = 0
    warnings: list[str] = Field(default_factory=list)


class StepResult(BaseModel):
    """Outcome of a post-load step on one table (or one group of foreign keys)."""

    table: str
    seconds: float = 0.0
    created: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Failures that make the run fail (exit 1).")
    warnings: list[str] = Field(default_factory=list)
    skipped: list[dict] = Field(default_factory=list)


def key_value(v):
    """A source key value as rejects record it (JSON): text as is, bytes as UTF-8 text or ``x'hex'``."""
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return "x'" + v.hex() + "'"
    if v is None or isinstance(v, (int, float, str, bool)):
        return v
    return str(v)


GroupResult.model_rebuild()

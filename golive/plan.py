"""The frozen migration plan: what will be created and copied, decided once, stored with the run.

A plan is computed from the source (schema + value profile), printed by ``--dry-run``, stored in the
target's ``_golive.runs`` table when the copy starts, and reused as-is when an interrupted run resumes,
so a resumed copy never changes its mind about a type.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from golive.types import TargetType


class ColumnPlan(BaseModel):
    source: str
    target: str
    declared: str = ""
    type: TargetType
    sql_type: str = Field(description="Rendered target type, e.g. 'timestamptz'.")
    nullable: bool = True
    default_sql: str | None = None
    identity: bool = False
    reason: str = ""
    notes: list[str] = Field(default_factory=list)
    predicted_rejects: int = 0
    values: int = 0


class IndexPlan(BaseModel):
    name: str
    kind: Literal["primary", "unique", "index"]
    columns: list[str] = Field(default_factory=list, description="Target column names.")
    descending: list[bool] = Field(default_factory=list)
    where: str | None = None
    expression_sql: str | None = Field(None, description="Raw key expression list for expression indexes.")
    constraint: bool = Field(True, description="UNIQUE as a table constraint (True) or a unique index (False).")
    source_name: str | None = None


class ForeignKeyPlan(BaseModel):
    name: str
    table: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: bool = False
    source_table: str
    source_ref_table: str


class ChunkPlan(BaseModel):
    no: int
    lo: int
    hi: int
    rows: int = Field(description="Estimated rows in this rowid range.")


class TablePlan(BaseModel):
    source: str
    target: str
    rows: int
    columns: list[ColumnPlan]
    key: list[str] = Field(description="Source columns identifying a row in reject reports (PK, else rowid).")
    has_rowid: bool = True
    rowid_name: str = "rowid"
    indexes: list[IndexPlan] = Field(default_factory=list)
    foreign_keys: list[ForeignKeyPlan] = Field(default_factory=list)
    identity: str | None = Field(None, description="Target identity column (from INTEGER PRIMARY KEY).")
    sequence_floor: int | None = Field(None, description="AUTOINCREMENT high-water mark to stay above.")
    chunks: list[ChunkPlan] = Field(default_factory=list)
    line_sql: str = Field("", description="SQLite expression rendering one row as a CSV line (fast path).")
    careful_sql: str = Field("", description="The same, NUL-safe and with every conversion guarded (reject path).")

    def column(self, source: str) -> ColumnPlan:
        for c in self.columns:
            if c.source == source:
                return c
        raise KeyError(source)


class ViewPlan(BaseModel):
    source: str
    target: str
    select: str


class Skipped(BaseModel):
    kind: str
    name: str
    reason: str


class Renamed(BaseModel):
    kind: str
    source: str
    target: str
    reason: str


class MigrationPlan(BaseModel):
    version: int = 1
    run_key: str
    source: str = Field(description="Source URL, password masked.")
    target: str = Field(description="Target URL, password masked.")
    target_schema: str = "public"
    identifiers: str = "preserve"
    source_fingerprint: str = ""
    tables: list[TablePlan] = Field(default_factory=list, description="In foreign-key dependency order.")
    views: list[ViewPlan] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    renamed: list[Renamed] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    resumed: bool = False
    planned_seconds: float = 0.0

    def table(self, source: str) -> TablePlan:
        for t in self.tables:
            if t.source == source:
                return t
        raise KeyError(source)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def chunk_count(self) -> int:
        return sum(len(t.chunks) for t in self.tables)

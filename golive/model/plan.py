"""The frozen migration plan: what will be created and copied, decided once, stored with the run.

A plan is computed from the source (schema + value profile), printed by ``--dry-run``, stored in the
target's bookkeeping when the copy starts, and reused as-is when an interrupted run resumes, so a
resumed copy never changes its mind about a type. Everything here is neutral: a source dialect fills it,
a target dialect executes it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from golive.model.types import TargetType


class ColumnPlan(BaseModel):
    source: str
    target: str
    declared: str = ""
    type: TargetType
    sql_type: str = Field(description="Rendered target type, e.g. 'timestamptz'.")
    nullable: bool = True
    default_sql: str | None = None
    default_source: str | None = Field(None, description="The source's default as its catalog shows it.")
    default_reason: str = Field("", description="What became of the source's default, and why.")
    identity: bool = False
    generated_sql: str | None = Field(None, description="Target expression of a generated (computed) column.")
    on_update: str | None = Field(None, description="'now': set to the current moment by every UPDATE (MySQL "
                                                    "ON UPDATE CURRENT_TIMESTAMP); the target renders it.")
    source_expr: str | None = Field(None, description=(
        "Source-side SQL read instead of the bare column (e.g. a NULL key filled from the SQLite rowid)."))
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
    prefix_lengths: list[int | None] = Field(default_factory=list, description="MySQL key prefix lengths per column.")
    method: str | None = Field(None, description="fulltext or spatial (kept between MySQL databases).")
    definition_sql: str | None = Field(None, description="The complete statement, when the source's own "
                                                         "definition is kept as is (PostgreSQL to PostgreSQL).")


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
    ref_schema: str | None = Field(None, description="Schema of the parent when it differs from the child's.")
    definition_sql: str | None = Field(None, description="The constraint definition as the source has it "
                                                         "(PostgreSQL to PostgreSQL), after FOREIGN KEY.")


class CheckPlan(BaseModel):
    name: str
    sql: str = Field(description="The CHECK expression in the target's SQL.")
    source_sql: str = ""


class ChunkPlan(BaseModel):
    no: int
    lo: Any = Field(None, description="Lower bound: an integer key value/rowid (inclusive), or the key tuple "
                                      "after which the chunk starts (keyset); None from the start.")
    hi: Any = Field(None, description="Upper bound, inclusive; None to the end.")
    rows: int = Field(description="Estimated rows in this range.")


class TablePlan(BaseModel):
    source: str
    target: str
    source_schema: str | None = Field(None, description="Schema (PostgreSQL) or database (MySQL) of the source table.")
    source_name: str | None = Field(None, description="The source table's name within its schema, when ``source`` "
                                                      "is qualified (several PostgreSQL schemas).")
    target_schema: str | None = Field(None, description="Target schema when it is not the plan's.")
    rows: int
    columns: list[ColumnPlan]
    key: list[str] = Field(description="Source columns identifying a row in reject reports (PK, else rowid).")
    has_rowid: bool = True
    rowid_name: str = "rowid"
    chunking: Literal["rowid", "int", "keyset", "single"] = Field(
        "rowid", description="How chunks split the table: SQLite rowid ranges, integer key ranges, key tuples "
                             "(keyset pagination), or the whole table in one chunk.")
    chunk_key: list[str] = Field(default_factory=list, description="Source columns the chunks are ranges of.")
    indexes: list[IndexPlan] = Field(default_factory=list)
    foreign_keys: list[ForeignKeyPlan] = Field(default_factory=list)
    checks: list[CheckPlan] = Field(default_factory=list)
    identity: str | None = Field(None, description="Target identity column.")
    sequence_floor: int | None = Field(None, description="Highest value already handed out: the identity restarts above.")
    native: bool = Field(False, description="Created from the source's own DDL (PostgreSQL to PostgreSQL).")
    chunks: list[ChunkPlan] = Field(default_factory=list)
    line_sql: str = Field("", description="Source expression rendering one row in the target's wire format (fast path).")
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
    materialized: bool = False
    native: bool = False


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
    version: int = 2
    run_key: str
    source: str = Field(description="Source URL, password masked.")
    target: str = Field(description="Target URL, password masked.")
    source_dialect: str = "sqlite"
    target_dialect: str = "postgresql"
    target_schema: str = "public"
    identifiers: str = "preserve"
    source_fingerprint: str = ""
    consistency: str = Field("", description="How every reader sees the same moment of the source (or why not).")
    tables: list[TablePlan] = Field(default_factory=list, description="In foreign-key dependency order.")
    views: list[ViewPlan] = Field(default_factory=list)
    pre_data_sql: str | None = Field(None, description="The source's own schema script (PostgreSQL to PostgreSQL).")
    post_data_sql: list[str] = Field(default_factory=list, description="Statements after keys and foreign keys "
                                                                       "(triggers, sequence values, views' data).")
    options: dict = Field(default_factory=dict, description="Options the copy itself needs (zero dates, text fallback…).")
    skipped: list[Skipped] = Field(default_factory=list)
    renamed: list[Renamed] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    resumed: bool = False
    planned_seconds: float = 0.0

    #: position of each table by source name, for ``table`` (planning looks tables up by name for each table:
    #: a scan each time was tables x tables with 10,000 of them); rebuilt when it no longer matches ``tables``
    _positions: dict[str, int] = PrivateAttr(default_factory=dict)

    def table(self, source: str) -> TablePlan:
        i = self._positions.get(source)
        if i is None or i >= len(self.tables) or self.tables[i].source != source:
            self._positions = {t.source: n for n, t in reversed(list(enumerate(self.tables)))}  # the first wins
            i = self._positions.get(source)
            if i is None:
                raise KeyError(source)
        return self.tables[i]

    def schema_of(self, tp: TablePlan) -> str:
        return tp.target_schema or self.target_schema

    def context(self) -> "MigrationPlan":
        """This plan without its tables, views and scripts: what each chunk copy needs (small to ship)."""
        return self.model_copy(update={"tables": [], "views": [], "pre_data_sql": None, "post_data_sql": [],
                                       "skipped": [], "renamed": [], "warnings": []})

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def chunk_count(self) -> int:
        return sum(len(t.chunks) for t in self.tables)

"""What validation works on and what it returns. Small, serialisable models (Prefect passes them between tasks)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from golive.model.types import TargetType


class KeyColumn(BaseModel):
    source: str = Field(description="Source column ('rowid' for tables without a key).")
    target: str = Field(description="Target column ('' when the target has no such column).")
    type: TargetType


class CheckColumn(BaseModel):
    source: str
    target: str
    type: TargetType
    sql_type: str
    nullable: bool = True
    source_expr: str | None = Field(None, description="Source SQL read instead of the bare column (as the copy did).")


class TableSpec(BaseModel):
    """How one table's content is compared: which key orders and splits it, which columns, which rows to skip."""

    source: str
    target: str
    schema_name: str = Field(description="Target schema.")
    kind: Literal["rowid", "intkey", "sorted", "bag"] = Field(description=(
        "rowid: the key is SQLite's rowid (INTEGER PRIMARY KEY), split by the copy's rowid ranges; "
        "intkey: a key whose first column is an integer, split by value ranges; sorted: another key, one range "
        "in key order; bag: no key, the rows are compared as a multiset."))
    key: list[KeyColumn]
    columns: list[CheckColumn]
    ranges: list[tuple[int, int, int]] = Field(default_factory=list, description=(
        "Inclusive key ranges (rowid, intkey) as (lo, hi, estimated rows); the first and last are open-ended "
        "when queried, so rows outside the planned bounds are compared too."))
    rows_hint: int = Field(0, description="Source rows when planned.")
    rejected: list[dict] = Field(default_factory=list, description="Keys of rows the copy rejected (expected missing).")
    source_dialect: str = "sqlite"
    source_schema: str | None = None
    source_name: str | None = None
    natives: dict[str, str] = Field(default_factory=dict, description="Source column -> its type in the source (MySQL).")
    options: dict = Field(default_factory=dict, description="The plan's copy options (e.g. the text encoding fallback).")
    native_target: bool = Field(False, description="The target holds the source's own types (same engine).")

    @property
    def has_json(self) -> bool:
        return any(c.type.ct.value == "json" for c in self.columns)


class Difference(BaseModel):
    """One row that differs between the source and the target."""

    table: str
    kind: Literal["missing", "extra", "value", "uncomparable"]
    key: dict = Field(default_factory=dict)
    column: str | None = None
    source: str | None = None
    target: str | None = None
    detail: str = ""

    def message(self) -> str:
        key = ", ".join(f"{k}={v!r}" for k, v in self.key.items()) or "?"
        if self.kind == "missing":
            return f"{self.table}: content: row {key} is in the source but missing from the target"
        if self.kind == "extra":
            return f"{self.table}: content: row {key} is in the target but not in the source"
        if self.kind == "uncomparable":
            return f"{self.table}: content: {self.detail}"
        return (f"{self.table}: content: row {key}, column {self.column}: target has {self.target!r}, "
                f"source has {self.source!r}" + (f" ({self.detail})" if self.detail else ""))


class RangeCheck(BaseModel):
    """The outcome of comparing one key range (a chunk) of one table."""

    table: str
    range_no: int
    lo: int | None = None
    hi: int | None = None
    source_rows: int = 0
    target_rows: int = 0
    match: bool = True
    narrowed: int = Field(0, description="Sub-ranges compared while narrowing a difference down.")
    differences: list[Difference] = Field(default_factory=list)
    seconds: float = 0.0


class ExpectationOutcome(BaseModel):
    """One Great Expectations expectation's result, boiled down to what a person needs."""

    table: str
    check: str
    expectation: str
    success: bool
    detail: str = ""


class TableResult(BaseModel):
    table: str
    target: str
    source_rows: int = 0
    rejected_rows: int = 0
    target_rows: int | None = None
    content: Literal["match", "differs", "skipped"] = "match"
    ranges: int = 0
    expectations_passed: int = 0
    expectations_failed: int = 0
    failures: list[str] = Field(default_factory=list)


class ValidationResult(BaseModel):
    """The whole validation: ``ok``, a one-line ``summary`` and ``failures`` (one line each) as the run report expects."""

    ok: bool
    summary: str
    failures: list[str] = Field(default_factory=list)
    tables: list[TableResult] = Field(default_factory=list)
    source: str = ""
    target: str = ""
    schema_name: str = "public"
    run_key: str | None = None
    output_dir: str | None = None
    data_docs: str | None = Field(None, description="index.html of the Great Expectations Data Docs site.")
    results_dir: str | None = Field(None, description="Great Expectations validation results (JSON), one per table.")
    expectations_dir: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)

    def report(self) -> dict:
        """The dict stored under ``validation`` in the migration report."""
        return self.model_dump(mode="json")

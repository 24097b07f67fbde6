"""Typed options for golive's operations (pydantic, so Prefect renders them as forms in its UI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class MigrateOptions(BaseModel):
    """How to migrate a database. URLs are passed separately (as secrets)."""

    tables: list[str] | None = Field(None, description="Only these source tables (default: all).")
    exclude: list[str] = Field(default_factory=list, description="Source tables to leave out.")
    target_schema: str = Field("public", description="Target schema (created when missing).")
    dry_run: bool = Field(False, description="Plan and profile only: write nothing to the target.")
    drop_existing: bool = Field(False, description="Drop target tables of the same names first.")
    max_rejects: int = Field(0, ge=0, description="Rejected rows tolerated before the run counts as failed.")
    workers: int = Field(4, ge=1, le=64, description="Concurrent chunk copies.")
    identifiers: Literal["preserve", "snake"] = Field(
        "preserve", description="Keep names as the ORM made them, or convert to snake_case.")
    chunk_rows: int = Field(250_000, ge=1, description="Rows per chunk (one retryable unit).")
    report: str | None = Field(None, description="Write the JSON report to this file.")
    rejects: str | None = Field(None, description="Write rejected rows (JSON lines) here; default next to the report.")
    validate_after: bool = Field(True, description="Validate the copy at the end (golive validate).")

    @field_validator("tables", "exclude", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            v = [v]
        if v is None:
            return v
        out = []
        for item in v:
            out += [s.strip() for s in str(item).split(",") if s.strip()]
        return out

"""Typed options for golive's operations (pydantic, so Prefect renders them as forms in its UI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class MigrateOptions(BaseModel):
    """How to migrate a database. URLs are passed separately (as secrets)."""

    tables: list[str] | None = Field(None, title="Tables", description="Only these source tables (default: all).")
    exclude: list[str] = Field(default_factory=list, title="Exclude tables",
                               description="Source tables to leave out.")
    target_schema: str = Field("public", title="Target schema", description="Target schema (created when missing).")
    dry_run: bool = Field(False, title="Dry run", description="Plan and profile only: write nothing to the target.")
    drop_existing: bool = Field(False, title="Drop existing tables",
                                description="Drop target tables of the same names first.")
    max_rejects: int = Field(0, title="Rejected rows tolerated", ge=0,
                             description="Rejected rows tolerated before the run counts as failed.")
    workers: int = Field(4, title="Workers", ge=1, le=64, description="Concurrent chunk copies.")
    identifiers: Literal["preserve", "snake"] = Field(
        "preserve", title="Identifiers", description="Keep names as the ORM made them, or convert to snake_case.")
    chunk_rows: int = Field(250_000, title="Rows per chunk", ge=1, description="Rows per chunk (one retryable unit).")
    report: str | None = Field(None, title="Report file", description="Write the JSON report to this file.")
    rejects: str | None = Field(None, title="Rejects file",
                                description="Write rejected rows (JSON lines) here; default next to the report.")
    validate_after: bool = Field(True, title="Validate after copying",
                                 description="Validate the copy at the end (golive validate).")

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

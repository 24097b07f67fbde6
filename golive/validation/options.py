"""Typed options for validation (pydantic, so Prefect renders them as a form)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class ValidateOptions(BaseModel):
    """What to validate and where the results go. URLs are passed separately (as secrets)."""

    tables: list[str] | None = Field(None, title="Tables",
                                     description="Only these source tables (default: every migrated table).")
    target_schema: str = Field("public", title="Target schema",
                               description="Target schema the tables were migrated into.")
    identifiers: Literal["preserve", "snake"] = Field(
        "preserve", title="Identifiers",
        description="Naming used by the migration (only needed when the target has no golive run record).")
    expectations_dir: str | None = Field(None, title="Expectations folder", description=(
        "Where the Great Expectations suites (JSON) live, one folder per source database "
        "(default golive-runs/expectations)."))
    output_dir: str | None = Field(None, title="Output folder", description=(
        "Where results and Data Docs go (default golive-runs/validation/<database>-<schema>-<UTC time>)."))
    report: str | None = Field(None, title="Report file", description="Write the validation report (JSON) here.")
    workers: int = Field(4, title="Workers", ge=1, le=64, description="Key ranges compared at the same time.")
    chunk_rows: int = Field(250_000, title="Rows per key range", ge=1,
                            description="Rows per key range of tables split by key value.")
    max_differences: int = Field(10, title="Differences reported per range", ge=1,
                                 description="Differing keys reported per key range.")
    data_docs: bool = Field(True, title="Build Data Docs", description="Build the Great Expectations Data Docs site.")
    regenerate_suites: bool = Field(False, title="Regenerate suites",
                                    description="Regenerate the suites (keeping hand-written expectations).")

    @field_validator("tables", mode="before")
    @classmethod
    def _split(cls, v):
        if v is None:
            return v
        if isinstance(v, str):
            v = [v]
        out = []
        for item in v:
            out += [s.strip() for s in str(item).split(",") if s.strip()]
        return out or None

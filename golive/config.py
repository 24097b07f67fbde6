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
    # --- source-specific choices (each documented in the README's type tables)
    text_encoding_fallback: str | None = Field(None, title="Text encoding fallback (SQLite)", description=(
        "SQLite: decode text that is not valid UTF-8 from this legacy encoding (e.g. cp1252) instead of "
        "rejecting the row; every decoded value is counted in the report."))
    invalid_text: str = Field("reject", title="Text that is not UTF-8 (SQLite)", description=(
        "SQLite: text that is not valid UTF-8 is rejected (reject, the default), decoded from a legacy encoding "
        "(cp1252, latin-1, gbk, ...: every decoded value counted), or kept byte for byte (bytes: such a column "
        "becomes binary)."))
    type_mismatch: Literal["reject", "widen"] = Field("reject", title="Text in numeric columns (SQLite)", description=(
        "SQLite: text in an INTEGER or NUMERIC column is rejected (reject, the default), or the column becomes text "
        "so every value arrives as it is (widen)."))
    null_keys: Literal["reject", "rowid"] = Field("reject", title="NULLs in primary keys (SQLite)", description=(
        "SQLite: NULLs in a primary key that is not the rowid are rejected, or filled from the rowid."))
    zero_dates: Literal["null", "reject", "epoch"] = Field("null", title="Zero dates (MySQL)", description=(
        "MySQL: zero dates (0000-00-00) become NULL in nullable columns; in NOT NULL columns they are "
        "rejected, written as NULL (the column becomes nullable), or written as 1970-01-01 (epoch)."))
    datetime_as: Literal["timestamp", "timestamptz"] = Field("timestamp", title="DATETIME as (MySQL)", description=(
        "MySQL DATETIME: a wall-clock timestamp (default), or timestamptz read in --source-time-zone."))
    source_time_zone: str = Field("UTC", title="Source time zone (MySQL)", description=(
        "MySQL: the zone DATETIME values are in (with --datetime-as timestamptz)."))
    snapshot: Literal["auto", "lock", "none"] = Field("auto", title="Source snapshot", description=(
        "MySQL/PostgreSQL sources: every reader sees one moment. auto: take it when the user may "
        "(MySQL: a short FLUSH TABLES WITH READ LOCK), else say the source must be quiet; lock: require it; none: don't."))
    source_schemas: list[str] | None = Field(None, title="Source schemas (PostgreSQL)", description=(
        "PostgreSQL sources: the schemas to copy (default: public); each keeps its name in the target."))
    online: bool = Field(False, title="Online (the app keeps writing)", description=(
        "Capture the source's changes from before the copy, catch up, then cut over in seconds (see "
        "docs/migrate.md: what each engine needs)."))
    cutover: Literal["auto", "manual"] = Field("auto", title="Cut-over", description=(
        "Online: cut over as soon as the lag is within max_lag (auto), or when asked: `golive migrate cutover` "
        "from another terminal, or Resume on the paused flow run in the Prefect UI (manual)."))
    max_lag: str = Field("2s", title="Largest lag to cut over at", description=(
        "Online, auto: the cut-over starts once the target is at most this far behind (e.g. 2s, 500ms)."))
    cutover_command: str | None = Field(None, title="Cut-over command", description=(
        "Online: run after the source is fenced and the target caught up (e.g. switch the app's DATABASE_URL and "
        "restart it); the write freeze lasts until it is done."))
    cutover_check: Literal["changed", "full"] = Field("changed", title="Check at the cut-over", description=(
        "Online: after the drain and before the cut-over command, compare the rows changed since the copy began "
        "value by value (changed: seconds), or every row (full: the freeze grows with the database)."))
    keyless: bool = Field(False, title="Accept tables without a key (online)", description=(
        "Online: tables without a primary key are captured with their whole row as identity (PostgreSQL: "
        "REPLICA IDENTITY FULL); else they are refused by name."))
    uuid_binary: bool = Field(False, title="BINARY(16) as uuid (MySQL)",
                              description="MySQL: BINARY(16) columns become uuid instead of bytea.")

    @field_validator("invalid_text")
    @classmethod
    def _invalid_text(cls, v: str) -> str:
        if v in ("reject", "bytes"):
            return v
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"--invalid-text must be reject, bytes or an encoding (cp1252, latin-1, gbk, ...), "
                             f"not {v!r}") from None
        return v

    def text_fallback(self) -> str | None:
        """The legacy encoding text that is not UTF-8 is decoded from, if any (``--invalid-text ENCODING``, or the
        older ``--text-encoding-fallback``)."""
        if self.text_encoding_fallback:
            return self.text_encoding_fallback
        return None if self.invalid_text in ("reject", "bytes") else self.invalid_text

    @field_validator("tables", "exclude", "source_schemas", mode="before")
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

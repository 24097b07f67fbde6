"""What validation works on and what it returns: small, serialisable models (Prefect passes them between tasks),
and the neutral pieces both sides of a content comparison share (``golive.dialects.base.Checksums``): a range's
checksum, the digest of value streams, JSON normal forms, the text judge of a value.

Neutral: no engine here. The engines' checksum SQL is in ``golive/dialects/<engine>/checksums.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from golive.model.types import CT, TargetType

#: separates the fields of a row's or a key's canonical text (no canonical text holds it)
FIELD_SEP = "\x1f"
#: the canonical text of NULL in the value streams
NULL = "\\N"


class KeyColumn(BaseModel):
    source: str = Field(description="Source column ('rowid' for tables without a key).")
    target: str = Field(description="Target column ('' when the target has no such column).")
    type: TargetType

    def on(self, role: str) -> str:
        """The column's name on the "source" or the "target" side."""
        return self.source if role == "source" else (self.target or self.source)


class CheckColumn(BaseModel):
    source: str
    target: str
    type: TargetType
    sql_type: str
    nullable: bool = True
    source_expr: str | None = Field(None, description="Source SQL read instead of the bare column (as the copy did).")

    def on(self, role: str) -> str:
        """The column's name on the "source" or the "target" side."""
        return self.source if role == "source" else self.target


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

    def native(self, c: CheckColumn, role: str) -> str:
        """A column's declared type on the "source" or the "target" side ('' when unknown)."""
        return self.natives.get(c.source, "") if role == "source" else c.sql_type

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


# ---------------------------------------------------------------------- one range, on one side


class TooBig(Exception):
    """A range too big for one query (string or packet length limits): the comparer splits it."""


class Checksum(NamedTuple):
    """One key range as one side sees it (``Checksums.Side.checksum``)."""

    rows: int
    #: the lowest and highest range key present (None: no rows, or no range key)
    lo: int | None
    hi: int | None
    #: the JSON values' digest (a side with ``json_in_sql``), else their lines as stored (bytes), None: no JSON
    json: str | bytes | None
    #: SHA-256 (hex) of each value stream, None for an empty stream
    digests: list[str | None]


def as_bytes(v) -> bytes:
    """A driver's value as bytes (text as UTF-8, undecodable bytes kept)."""
    return v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape")


def as_text(v) -> str:
    """A driver's value as text ('' for NULL, bytes decoded with undecodable bytes kept)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return "" if v is None else str(v)


def plain(v):
    """A driver's value with bytes decoded (undecodable bytes kept as surrogates)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


#: the 8 bytes standing for NULL in a ``float8`` stream: a NaN payload SQLite cannot produce
FLOAT8_NULL = bytes.fromhex("7ff8000000000001")


def float8_bytes(blob: bytes) -> bytes:
    """The big-endian IEEE 754 bytes of the comma-separated numbers of a ``float8`` stream ('' = NULL).

    A field Python cannot read as a number becomes 8 bytes that match nothing, so the range is compared
    row by row (where the target judges the value itself).
    """
    import struct

    fields = blob.split(b",")
    if b"" not in fields:  # no NULL: one C-level pass
        try:
            return struct.pack(f">{len(fields)}d", *map(float, fields))
        except ValueError:
            pass
    out = bytearray()
    pack = struct.Struct(">d").pack
    for field in fields:
        if not field:
            out += FLOAT8_NULL
            continue
        try:
            out += pack(float(field))
        except ValueError:
            out += b"\xff" * 8
    return bytes(out)


def stream_digests(blobs, encodings: list[str]) -> list[str | None]:
    """SHA-256 (hex) of value streams a side sent back whole (``encodings``: ``text``, or ``float8`` for doubles
    sent as text, hashed as the IEEE 754 bytes PostgreSQL's ``float8send`` gives)."""
    out = []
    for enc, b in zip(encodings, blobs):
        if b is None:
            out.append(None)
        elif enc == "float8":
            out.append(hashlib.sha256(float8_bytes(as_bytes(b))).hexdigest())
        else:
            out.append(hashlib.sha256(as_bytes(b)).hexdigest())
    return out


def normalise_json_lines(blob) -> str:
    """SHA-256 of JSON values (one per line, '' for NULL) re-serialised the same way on both sides: for targets
    that keep JSON text as it was sent (MariaDB), compared with a source's text."""
    out = []
    for line in as_bytes(blob).decode("utf-8", "surrogateescape").split("\n"):
        if line == "":
            out.append("")
            continue
        try:
            out.append(json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        except ValueError:
            out.append("\x00" + line)
    return hashlib.sha256("\n".join(out).encode("utf-8", "surrogateescape")).hexdigest()


def normalise_json(v):
    """One JSON value re-serialised with sorted keys and no spaces (the text as it was when it is no JSON)."""
    if v is None:
        return None
    try:
        return json.dumps(json.loads(plain(v)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return plain(v)


def same_text_value(ct, a: str, b: str) -> bool:
    """Do two texts of a value of type ``ct`` mean the same (judged in Python, for a target that cannot parse
    the text the copy sent and print it canonically)?"""
    from decimal import Decimal, InvalidOperation

    if ct in (CT.SMALLINT, CT.INTEGER, CT.BIGINT, CT.DECIMAL):
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    if ct in (CT.DOUBLE, CT.REAL):
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    if ct == CT.BOOLEAN:
        words = {"1": "true", "t": "true", "true": "true", "0": "false", "f": "false", "false": "false"}
        return words.get(a.strip().lower()) == words.get(b.strip().lower()) is not None

    def moment(x: str) -> str:
        x = x.replace("T", " ").removesuffix("+00").removesuffix("Z")
        if "." in x:
            x = x.rstrip("0").rstrip(".")
        return x

    if ct in (CT.TIMESTAMP, CT.TIMESTAMP_TZ, CT.TIME, CT.DATE, CT.INTERVAL):
        return moment(a) == moment(b)
    return a == b

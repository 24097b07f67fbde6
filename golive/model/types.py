"""The neutral type hub every dialect maps to and from (sqlglot's ``exp.DType`` idea).

A source dialect decides a ``TargetType`` for each column (declared type + profile of stored values);
a target dialect renders it (``WRITE_TYPES``). N dialects need 2N tables, not N².

``CT.NATIVE`` carries a type the target spells exactly as the source does (PostgreSQL → PostgreSQL keeps
enums, domains, ranges and extension types as they are); ``TargetType.native`` is that spelling.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field


class CT(str, Enum):
    """Canonical column types."""

    BOOLEAN = "boolean"
    SMALLINT = "smallint"
    INTEGER = "integer"
    BIGINT = "bigint"
    DECIMAL = "decimal"  # precision/scale optional
    REAL = "real"  # 4-byte float
    DOUBLE = "double"
    TEXT = "text"
    VARCHAR = "varchar"  # length required
    BINARY = "binary"
    DATE = "date"
    TIME = "time"
    TIMESTAMP = "timestamp"  # wall clock, no time zone
    TIMESTAMP_TZ = "timestamptz"  # a moment (UTC)
    INTERVAL = "interval"
    JSON = "json"
    UUID = "uuid"
    ENUM = "enum"  # values: the labels
    TEXT_ARRAY = "text[]"  # MySQL SET
    ARRAY = "array"  # element: the element's canonical type
    BITS = "bits"  # bit string of length `length`
    GEOMETRY = "geometry"
    NATIVE = "native"  # same engine: the source's own type, spelled in `native`


INTEGER_RANGES = {
    CT.SMALLINT: (-(2**15), 2**15 - 1),
    CT.INTEGER: (-(2**31), 2**31 - 1),
    CT.BIGINT: (-(2**63), 2**63 - 1),
}

INT_TYPES = (CT.SMALLINT, CT.INTEGER, CT.BIGINT)
TEXT_TYPES = (CT.TEXT, CT.VARCHAR)


class TargetType(BaseModel):
    """A canonical type with its parameters."""

    ct: CT
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    values: list[str] | None = Field(None, description="ENUM/SET labels, in order.")
    element: CT | None = Field(None, description="ARRAY element type.")
    native: str | None = Field(None, description="NATIVE: the type as the source (and target) spell it.")
    srid: int | None = None

    def __str__(self) -> str:
        if self.ct == CT.VARCHAR:
            return f"varchar({self.length})"
        if self.ct == CT.DECIMAL and self.precision is not None:
            return f"decimal({self.precision},{self.scale or 0})"
        if self.ct == CT.NATIVE:
            return self.native or "native"
        if self.ct == CT.ARRAY:
            return f"{self.element.value if self.element else '?'}[]"
        return self.ct.value


def smallest_integer(lo: int | None, hi: int | None, at_least: CT = CT.SMALLINT) -> CT:
    """The smallest integer type, not below ``at_least``, holding every value in [lo, hi]."""
    order = [CT.SMALLINT, CT.INTEGER, CT.BIGINT]
    for ct in order[order.index(at_least):]:
        low, high = INTEGER_RANGES[ct]
        if (lo is None or lo >= low) and (hi is None or hi <= high):
            return ct
    return CT.BIGINT


def int_rank(ct: CT) -> int:
    return {CT.SMALLINT: 0, CT.INTEGER: 1, CT.BIGINT: 2}[ct]

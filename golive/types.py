"""The neutral type hub every dialect maps to and from (sqlglot's ``exp.DType`` idea).

A source dialect decides a ``TargetType`` for each column (declared type + profile of stored values);
a target dialect renders it (``WRITE_TYPES``). N dialects need 2N tables, not N².
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel


class CT(str, Enum):
    """Canonical column types."""

    BOOLEAN = "boolean"
    SMALLINT = "smallint"
    INTEGER = "integer"
    BIGINT = "bigint"
    DECIMAL = "decimal"  # precision/scale optional
    DOUBLE = "double"
    TEXT = "text"
    VARCHAR = "varchar"  # length required
    BINARY = "binary"
    DATE = "date"
    TIME = "time"
    TIMESTAMP_TZ = "timestamptz"
    JSON = "json"
    UUID = "uuid"


INTEGER_RANGES = {
    CT.SMALLINT: (-(2**15), 2**15 - 1),
    CT.INTEGER: (-(2**31), 2**31 - 1),
    CT.BIGINT: (-(2**63), 2**63 - 1),
}


class TargetType(BaseModel):
    """A canonical type with its parameters."""

    ct: CT
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.ct == CT.VARCHAR:
            return f"varchar({self.length})"
        if self.ct == CT.DECIMAL and self.precision is not None:
            return f"decimal({self.precision},{self.scale or 0})"
        return self.ct.value


def smallest_integer(lo: int | None, hi: int | None, at_least: CT = CT.SMALLINT) -> CT:
    """The smallest integer type, not below ``at_least``, holding every value in [lo, hi]."""
    order = [CT.SMALLINT, CT.INTEGER, CT.BIGINT]
    for ct in order[order.index(at_least):]:
        low, high = INTEGER_RANGES[ct]
        if (lo is None or lo >= low) and (hi is None or hi <= high):
            return ct
    return CT.BIGINT

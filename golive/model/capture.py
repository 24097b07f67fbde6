"""Online migration's neutral models: what a source's change capture hands over, and where a run stands.

A capture says *which rows changed*, in the source's commit order: ``(table, key)`` and whether the row was
deleted. It does not carry the values: the catch-up re-reads each changed row from the source when it applies it
(with the copy's own rendering), so every engine's values arrive exactly as the bulk copy writes them, and
applying a change twice gives the same result (the latest state wins). Positions are the engine's own, as text
(PostgreSQL an LSN, MySQL ``file:offset``, SQLite the change table's id) and compare within one engine.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from golive.errors import TerminalError


class Change(NamedTuple):
    """One row of one source table changed (inserted, updated or deleted). A plain tuple, not a validated model:
    a catch-up handles tens of thousands a second, each made by golive's own capture code."""

    #: the source table as the plan names it
    table: str
    #: the row's key values, in the plan's key columns' order (source values)
    key: tuple
    deleted: bool = False


class ChangeBatch(BaseModel):
    """Changes after a position, in commit order, and the position after the last of them."""

    changes: list[Any] = Field(default_factory=list, description="``Change`` tuples, in commit order.")
    position: str = Field(description="Apply these and the stream is at this position.")
    pending: int = Field(0, description="Changes known to be waiting after this batch (0: caught up).")
    oldest_at: float | None = Field(None, description="Commit time (epoch s) of the oldest change not yet applied.")


class Lag(BaseModel):
    """How far the target is behind the source."""

    pending: int = 0
    seconds: float = 0.0
    position: str = ""


class CaptureState(BaseModel):
    """What a source's capture set up, so a resumed run (or ``--abort``) finds it again: kept in the target's
    bookkeeping with the applied position."""

    run_key: str
    engine: str
    source: str = Field("", description="The source, as printed (no password): which run this is.")
    tables: int = 0
    started_at: str = Field("", description="Position the copy's snapshot is consistent with.")
    applied: str = Field("", description="Position applied to the target.")
    status: str = Field("capturing", description="capturing, copied, fenced, cut-over, aborted")
    objects: list[str] = Field(default_factory=list, description="What golive added to the source (slot, triggers, "
                                                                 "change table), named, so it can be removed.")
    fenced_at: str = ""
    freeze_seconds: float | None = None
    meta: dict = Field(default_factory=dict, description="The engine's own (slot name, schema fingerprints, …).")


class SchemaChanged(TerminalError):
    """The source's schema changed during capture (DDL): the run stops instead of applying it wrongly."""


class CaptureNotReady(TerminalError):
    """The source lacks what change capture needs (settings, privileges, keys); the message names each fix."""

"""Everything done to the target around the copy: prepare (or resume), keys and indexes, foreign keys, views.

These are the steps of the migration flow; each dispatches to the target dialect's implementation
(``golive/dialects/<target>_target.py``) and is idempotent there (it checks what already exists), so a
run interrupted anywhere can be re-run.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from golive.errors import TargetNotEmpty
from golive.urls import DatabaseURL


class PrepareResult(BaseModel):
    resumed: bool = False
    created_tables: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    done_chunks: int = 0
    warnings: list[str] = Field(default_factory=list)


class StepResult(BaseModel):
    """Outcome of a post-load step on one table (or one group of foreign keys)."""

    table: str
    seconds: float = 0.0
    created: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Failures that make the run fail (exit 1).")
    warnings: list[str] = Field(default_factory=list)
    skipped: list[dict] = Field(default_factory=list)


def steps(target: DatabaseURL):
    """The target dialect's step module (``postgresql_target``, ``mysql_target``)."""
    from golive.dialects import get_dialect

    return get_dialect(target.dialect).target_steps()


def target_not_empty(plan, existing: list[str], run: dict | None) -> TargetNotEmpty:
    """The refusal for planned tables that already exist, saying what to do."""
    if run and run["status"] == "complete":
        return TargetNotEmpty(
            f"the target already holds this migration (completed {run['finished_at']:%Y-%m-%d %H:%M} UTC); "
            f"add --drop-existing to copy it again")
    shown = ", ".join(existing[:8]) + (f" and {len(existing) - 8} more" if len(existing) > 8 else "")
    where = f"target schema {plan.target_schema!r}" if plan.target_dialect == "postgresql" else "the target database"
    return TargetNotEmpty(
        f"{where} already has {shown}; add --drop-existing to replace "
        f"{'them' if len(existing) > 1 else 'it'}, or migrate into another "
        + ("--schema" if plan.target_dialect == "postgresql" else "database"))


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    return steps(target).find_resumable(target, run_key)


def check_target(target: DatabaseURL, plan, options) -> list[str]:
    return steps(target).check_target(target, plan, options)


def refusal(target: DatabaseURL, plan, existing: list[str]) -> TargetNotEmpty:
    return target_not_empty(plan, existing, steps(target).run_of(target, plan.run_key))


def prepare(target: DatabaseURL, plan, options) -> PrepareResult:
    return steps(target).prepare(target, plan, options)


def finish_table(target: DatabaseURL, schema: str, tp) -> StepResult:
    return steps(target).finish_table(target, schema, tp)


def link_table(target: DatabaseURL, schema: str, table: str, fks) -> StepResult:
    return steps(target).link_table(target, schema, table, fks)


def create_views(target: DatabaseURL, plan, finals: list[str] | None = None) -> StepResult:
    return steps(target).create_views(target, plan, finals)


def final_statements(source: DatabaseURL, plan) -> list[str]:
    """What the source says must run on the target last (PostgreSQL: sequence values, triggers, views' data)."""
    from golive.dialects import get_dialect

    d = get_dialect(plan.source_dialect)
    return d.final_statements(source, plan) if hasattr(d, "final_statements") else []


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    steps(target).complete(target, run_key, ok)

"""Everything done to the target around the copy: prepare (or resume), keys and indexes, foreign keys, views.

These are the steps of the migration flow; each asks the target dialect's ``Target``
(``golive/dialects/<engine>/target.py``), which is idempotent (it checks what already exists), so a run interrupted
anywhere can be re-run.
"""

from __future__ import annotations

from golive.dialects import dialect_of, get_dialect, not_started
from golive.errors import TargetNotEmpty
from golive.model.results import PrepareResult, StepResult
from golive.urls import DatabaseURL


def find_resumable(target: DatabaseURL, run_key: str) -> dict | None:
    return dialect_of(target).target.find_resumable(target, run_key)


def check_target(target: DatabaseURL, plan, options) -> list[str]:
    if not_started(target):  # a dry run's embedded target that is not running: planned as empty
        return []
    return dialect_of(target).target.check_target(target, plan, options)


def run_of(target: DatabaseURL, run_key: str) -> dict | None:
    return dialect_of(target).target.run_of(target, run_key)


def rows_against_record(target: DatabaseURL, run_key: str) -> dict[str, tuple[int, int]]:
    """Per table of a recorded run: ``(rows its chunks wrote, rows the target holds now)``."""
    return dialect_of(target).target.rows_against_record(target, run_key)


def refusal(target: DatabaseURL, plan, existing: list[str]) -> TargetNotEmpty:
    dst = dialect_of(target).target
    return dst.not_empty(plan, existing, dst.run_of(target, plan.run_key))


def prepare(target: DatabaseURL, plan, options) -> PrepareResult:
    return dialect_of(target).target.prepare(target, plan, options)


def finish_table(target: DatabaseURL, schema: str, tp) -> StepResult:
    return dialect_of(target).target.finish_table(target, schema, tp)


def link_table(target: DatabaseURL, schema: str, table: str, fks) -> StepResult:
    return dialect_of(target).target.link_table(target, schema, table, fks)


def create_views(target: DatabaseURL, plan, finals: list[str] | None = None) -> StepResult:
    return dialect_of(target).target.create_views(target, plan, finals)


def final_statements(source: DatabaseURL, plan) -> list[str]:
    """What the source says must run on the target last (PostgreSQL: sequence values, triggers, views' data)."""
    return get_dialect(plan.source_dialect).source.final_statements(source, plan)


def complete(target: DatabaseURL, run_key: str, ok: bool) -> None:
    dialect_of(target).target.complete(target, run_key, ok)

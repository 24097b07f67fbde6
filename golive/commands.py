"""golive's public operations as plain functions (alembic's ``command.py``): the CLI, the Prefect tasks
and other Python code all call these. No printing, no Prefect.
"""

from __future__ import annotations

import logging

from golive import progress
from golive.config import MigrateOptions
from golive.dialects import all_dialects, dialect_of
from golive.dialects import resolve
from golive.errors import ConfigError
from golive.migrate import planning, target as tgt
from golive.model.plan import MigrationPlan
from golive.urls import DatabaseURL, as_url, secret

log = logging.getLogger(__name__)


def parse_source(source) -> DatabaseURL:
    """Parse a source URL; ``embedded://DIR`` names the embedded PostgreSQL kept in DIR."""
    return resolve(as_url(source, role="source"))


def parse_target(target) -> DatabaseURL:
    """Parse a target URL; ``embedded://DIR`` starts (or reuses) the embedded PostgreSQL."""
    return resolve(as_url(target, role="target"))


def database_urls(source, target) -> tuple[DatabaseURL, DatabaseURL]:
    """Parse and check the pair of URLs (cheap checks only: supported engines, a SQLite file exists and is SQLite)."""
    src, dst = parse_source(source), parse_target(target)
    if not dialect_of(src).can_read:
        readers = ", ".join(d.title for d in all_dialects() if d.can_read)
        raise ConfigError(f"source {src.masked}: golive reads {readers} databases, not {src.dialect}")
    if not dialect_of(dst).can_write:
        writers = " and ".join(d.title for d in all_dialects() if d.can_write)
        raise ConfigError(f"target {dst.masked}: golive writes {writers} databases, not {dst.dialect}")
    dialect_of(src).check(src)
    return src, dst


def check_target_connects(dst: DatabaseURL) -> None:
    """Open and close a connection, so a wrong password or host fails before any work starts."""
    dialect_of(dst).connect(dst, autocommit=True, role="target").close()


#: plans computed ahead of a flow run in this process (see ``prefetch_plan``)
_prefetched: dict[str, MigrationPlan] = {}


def _plan_key(source, target, options: MigrateOptions) -> str:
    import hashlib

    raw = "\x00".join([secret(source), secret(target), options.model_dump_json()])
    return hashlib.sha256(raw.encode()).hexdigest()


def prefetch_plan(source, target, options: MigrateOptions) -> MigrationPlan:
    """Plan now and keep the plan for the flow's plan task in this process.

    The CLI plans while Prefect starts up (they overlap), and refuses bad input (existing tables,
    unknown table names) before any flow run exists. The flow's ``plan`` task then takes this plan
    instead of reading the source a second time.
    """
    plan = plan_migration(source, target, options)
    dst = parse_target(target)
    existing = tgt.check_target(dst, plan, options)
    if existing and not plan.resumed and not options.drop_existing:
        raise tgt.refusal(dst, plan, existing)
    _prefetched[_plan_key(source, target, options)] = plan
    return plan


def plan_migration(source, target, options: MigrateOptions, *, deep: bool | None = None) -> MigrationPlan:
    """Plan the migration, or load the plan of an interrupted run of the same migration to resume it."""
    cached = _prefetched.pop(_plan_key(source, target, options), None)
    if cached is not None:
        progress.emit("planned", plan=cached)
        return cached
    src, dst = database_urls(source, target)
    check_target_connects(dst)
    resume = None if (options.drop_existing or options.dry_run) else (lambda key: tgt.find_resumable(dst, key))
    plan = planning.build_plan(src, dst, options, deep=options.dry_run if deep is None else deep, resume=resume)
    progress.emit("planned", plan=plan)
    return plan


def count_source_rows(source, tables: list[str], fingerprint: str | None = None, plan: MigrationPlan | None = None
                      ) -> dict[str, int]:
    """Rows per source table now, compared with rows read to catch a source that changed during the copy.

    When the source still has the fingerprint taken when the copy was planned (a SQLite file's size and
    modification time), nothing can have changed and counting (a scan of each table) is skipped: returns
    ``{}``. A source read in one snapshot (MySQL, PostgreSQL) is counted in a new one: the difference is
    what the app wrote meanwhile, which the report names.
    """
    src = parse_source(source)
    reader = dialect_of(src).source
    if fingerprint and reader.fingerprint(src) == fingerprint:
        return {}
    if plan is not None and plan.consistency.startswith("snapshot"):
        return {}  # every chunk read the same moment: counting now would compare two moments
    return reader.count_tables(src, plan, tables)

"""golive's public operations as plain functions (alembic's ``command.py``): the CLI, the Prefect tasks
and other Python code all call these. No printing, no Prefect.
"""

from __future__ import annotations

import logging

from golive import progress
from golive.config import MigrateOptions
from golive.dialects import get_dialect
from golive.embedded import resolve
from golive.errors import ConfigError
from golive.migrate import planning, target as tgt
from golive.migrate.plan import MigrationPlan
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)

#: what golive can read and write (the README's tables say what it does with each type)
SOURCES = ("sqlite", "mysql", "postgresql")
TARGETS = ("postgresql", "mysql")


def secret(value) -> str:
    """The plain string of a URL given as ``str`` or pydantic ``SecretStr``."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def parse_source(source) -> DatabaseURL:
    """Parse a source URL; ``embedded://DIR`` names the embedded PostgreSQL kept in DIR."""
    return resolve(parse_url(secret(source), role="source"))


def parse_target(target) -> DatabaseURL:
    """Parse a target URL; ``embedded://DIR`` starts (or reuses) the embedded PostgreSQL."""
    return resolve(parse_url(secret(target), role="target"))


def database_urls(source, target) -> tuple[DatabaseURL, DatabaseURL]:
    """Parse and check the pair of URLs (cheap checks only: supported engines, a SQLite file exists and is SQLite)."""
    src, dst = parse_source(source), parse_target(target)
    if src.dialect not in SOURCES:
        raise ConfigError(f"source {src.masked}: golive reads {', '.join(SOURCES)} databases, not {src.dialect}")
    if dst.dialect not in TARGETS:
        raise ConfigError(f"target {dst.masked}: golive writes PostgreSQL and MySQL/MariaDB databases, not {dst.dialect}")
    get_dialect(src.dialect).check(src)
    return src, dst


def check_target_connects(dst: DatabaseURL) -> None:
    """Open and close a connection, so a wrong password or host fails before any work starts."""
    get_dialect(dst.dialect).connect(dst, autocommit=True, role="target").close()


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
    d = get_dialect(src.dialect)
    if fingerprint and d.fingerprint(src) == fingerprint:
        return {}
    if plan is not None and plan.consistency.startswith("snapshot"):
        return {}  # every chunk read the same moment: counting now would compare two moments
    return d.count_tables(src, plan, tables) if hasattr(d, "count_tables") else _count_sqlite(d, src, tables)


def _count_sqlite(d, src: DatabaseURL, tables: list[str]) -> dict[str, int]:
    conn = d.connect(src)
    try:
        return {t: d.count_rows(conn, t) for t in tables}
    finally:
        conn.close()

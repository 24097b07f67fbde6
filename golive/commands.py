"""golive's public operations as plain functions (alembic's ``command.py``): the CLI, the Prefect tasks
and other Python code all call these. No printing, no Prefect.
"""

from __future__ import annotations

import logging

from golive import planning, progress, target as tgt
from golive.config import MigrateOptions
from golive.dialects.postgresql import PostgresDialect
from golive.dialects.sqlite import SQLiteDialect
from golive.embedded import resolve
from golive.errors import ConfigError
from golive.plan import MigrationPlan
from golive.urls import DatabaseURL, parse_url

log = logging.getLogger(__name__)


def secret(value) -> str:
    """The plain string of a URL given as ``str`` or pydantic ``SecretStr``."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def parse_source(source) -> DatabaseURL:
    return parse_url(secret(source), role="source")


def parse_target(target) -> DatabaseURL:
    """Parse a target URL; ``embedded://DIR`` starts (or reuses) the embedded PostgreSQL."""
    return resolve(parse_url(secret(target), role="target"))


def database_urls(source, target) -> tuple[DatabaseURL, DatabaseURL]:
    """Parse and check the pair of URLs (cheap checks only: file exists and is SQLite, supported target)."""
    src, dst = parse_source(source), parse_target(target)
    if src.dialect != "sqlite":
        raise ConfigError(f"source {src.masked}: only SQLite sources are supported so far "
                          "(MySQL and PostgreSQL sources are planned)")
    if dst.dialect != "postgresql":
        raise ConfigError(f"target {dst.masked}: only PostgreSQL targets are supported so far")
    SQLiteDialect().check(src)
    return src, dst


def check_target_connects(dst: DatabaseURL) -> None:
    """Open and close a connection, so a wrong password or host fails before any work starts."""
    PostgresDialect().connect(dst, autocommit=True).close()


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
    existing = tgt.check_target(parse_target(target), plan, options)
    if existing and not plan.resumed and not options.drop_existing:
        raise tgt.target_not_empty(parse_target(target), plan, existing)
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


def count_source_rows(source, tables: list[str], fingerprint: str | None = None) -> dict[str, int]:
    """Rows per source table now, compared with rows read to catch a source that changed during the copy.

    When the SQLite file (and its WAL) still has the fingerprint taken when the copy was planned, nothing
    can have changed and counting (a scan of each table) is skipped: returns ``{}``.
    """
    src = parse_source(source)
    if fingerprint and planning.source_fingerprint(src) == fingerprint:
        return {}
    sd = SQLiteDialect()
    conn = sd.connect(src)
    try:
        return {t: sd.count_rows(conn, t) for t in tables}
    finally:
        conn.close()

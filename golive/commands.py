"""golive's public operations as plain functions (alembic's ``command.py``): the CLI, the Prefect tasks
and other Python code all call these. No printing, no Prefect.
"""

from __future__ import annotations

import logging

from golive import progress
from golive.config import MigrateOptions
from golive.dialects import all_dialects, dialect_of, not_started, resolve
from golive.errors import ConfigError, GoliveError
from golive.migrate import planning, target as tgt
from golive.model.plan import MigrationPlan
from golive.urls import DatabaseURL, as_url, secret

log = logging.getLogger(__name__)


def parse_source(source) -> DatabaseURL:
    """Parse a source URL; ``embedded://DIR`` names the embedded PostgreSQL kept in DIR."""
    return resolve(as_url(source, role="source"))


def parse_target(target, *, start: bool = True) -> DatabaseURL:
    """Parse a target URL; ``embedded://DIR`` starts (or reuses) the embedded PostgreSQL. ``start=False`` (dry
    runs): only a server already running is used; otherwise the URL stays unresolved (``not_started``)."""
    return resolve(as_url(target, role="target"), start=start)


def database_urls(source, target, *, start: bool = True) -> tuple[DatabaseURL, DatabaseURL]:
    """Parse and check the pair of URLs (cheap checks only: supported engines, a SQLite file exists and is SQLite).
    ``start=False``: an embedded target is not started (see ``parse_target``)."""
    src, dst = parse_source(source), parse_target(target, start=start)
    if not dialect_of(src).can_read:
        readers = ", ".join(d.title for d in all_dialects() if d.can_read)
        raise ConfigError(f"source {src.masked}: golive reads {readers} databases, not {src.dialect}")
    if not dialect_of(dst).can_write:
        writers = " and ".join(d.title for d in all_dialects() if d.can_write)
        raise ConfigError(f"target {dst.masked}: golive writes {writers} databases, not {dst.dialect}")
    dialect_of(src).check(src)
    return src, dst


def check_target_connects(dst: DatabaseURL) -> None:
    """Open and close a connection, so a wrong password or host fails before any work starts (a target a dry run
    did not start has nothing to connect to)."""
    if not not_started(dst):
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
        done = completed_run(target, plan, options)
        if done is not None:
            raise AlreadyMigrated(f"nothing to do: the target already holds this migration, completed "
                                  f"{done['finished_at']:%Y-%m-%d %H:%M:%S} UTC, and the source has not changed since "
                                  "(--drop-existing copies it again)")
        raise tgt.refusal(dst, plan, existing)
    _prefetched[_plan_key(source, target, options)] = plan
    return plan


def plan_migration(source, target, options: MigrateOptions, *, deep: bool | None = None) -> MigrationPlan:
    """Plan the migration, or load the plan of an interrupted run of the same migration to resume it."""
    cached = _prefetched.pop(_plan_key(source, target, options), None)
    if cached is not None:
        progress.emit("planned", plan=cached)
        return cached
    src, dst = database_urls(source, target, start=not options.dry_run)
    check_target_connects(dst)
    resume = None if (options.drop_existing or options.dry_run) else (lambda key: tgt.find_resumable(dst, key))
    plan = planning.build_plan(src, dst, options, deep=options.dry_run if deep is None else deep, resume=resume)
    progress.emit("planned", plan=plan)
    return plan


class AlreadyMigrated(GoliveError):
    """The same migration, complete, the source unchanged: nothing to do (exit 0)."""

    exit_code = 0


def completed_run(target, plan: MigrationPlan, options: MigrateOptions) -> dict | None:
    """The stored run of this same migration when it completed and the source has not changed since (its cheap
    fingerprint: SQLite's size and modification time) and every planned table is still there: the same command
    run again after it was killed past the end (``kill -9`` while it reported) has nothing to do. None otherwise
    (then the run goes on, and a target holding the tables is refused as before)."""
    if plan.resumed or options.drop_existing or options.online or options.dry_run or not plan.source_fingerprint:
        return None
    dst = parse_target(target)
    run = tgt.run_of(dst, plan.run_key)
    if not run or run["status"] != "complete" or run["source_fingerprint"] != plan.source_fingerprint:
        return None
    if len(tgt.check_target(dst, plan, options)) < len(plan.tables):
        return None
    return run


def dry_run_outcome(target, plan: MigrationPlan, options: MigrateOptions) -> dict:
    """What the real run would make of this plan, for a dry run to exit as the run would.

    Returns ``existing`` (planned tables the target already has), ``resumable`` (they are an interrupted run of
    this migration, which the real run resumes), ``exit_code`` (2: the run would be refused, tables exist; 1: it
    would fail, more values predicted to be rejected than ``max_rejects`` allows; 0) and ``problem`` (why, one
    line; None when 0). A target a dry run did not start (``embedded://DIR``) is empty.
    """
    dst = parse_target(target, start=False)
    existing = tgt.check_target(dst, plan, options)
    resumable = bool(existing) and not options.drop_existing and tgt.find_resumable(dst, plan.run_key) is not None
    predicted = sum(c.predicted_rejects for tp in plan.tables for c in tp.columns)
    code, problem = 0, None
    if existing and not (options.drop_existing or resumable):
        code, problem = 2, str(tgt.refusal(dst, plan, existing))
    elif predicted > options.max_rejects:
        code, problem = 1, (f"about {predicted} values would be rejected and --max-rejects is {options.max_rejects}: "
                            "the run would fail (fix them in the source, or raise --max-rejects; each is listed "
                            "above)")
    return {"existing": existing, "resumable": resumable, "exit_code": code, "problem": problem}


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

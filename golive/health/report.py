"""Build a database's health report: connect read-only, collect sizes, run the checks, keep the history.

The session is read-only (``default_transaction_read_only`` on PostgreSQL), with a short
``lock_timeout`` and ``statement_timeout``, so a report never waits behind a lock or runs away on a
busy production server; only the history rows are written, in their own short transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from pydantic import SecretStr

from golive.dialects import all_dialects, dialect_of, get_dialect, resolve
from golive.errors import ConfigError, GoliveError
from golive.health import history
from golive.health.checks import run_checks
from golive.health.model import DbReport, History, ReportOptions
from golive.model.health import Context
from golive.urls import DatabaseURL, as_url, mask

log = logging.getLogger(__name__)

#: per statement of the report's own session
STATEMENT_TIMEOUT_S = 30
LOCK_TIMEOUT_S = 2


def parse_db(db: DatabaseURL | str | SecretStr) -> DatabaseURL:
    """The URL of a database golive reports on and maintains (``embedded://DIR`` starts the embedded PostgreSQL);
    else ConfigError naming the engines that are."""
    url = resolve(as_url(db, role="database"))
    if not dialect_of(url).supports("health"):
        engines = " and ".join(d.title for d in all_dialects() if d.supports("health"))
        raise ConfigError(f"{url.masked}: golive reports on and maintains {engines} databases (not {url.dialect})")
    return url


def connect(url: DatabaseURL, *, read_only: bool = True):
    """A session for the report: autocommit, read-only unless asked, bounded lock waits and statements."""
    return dialect_of(url).session.open(url, application="golive-report", autocommit=read_only, read_only=read_only,
                                        lock_timeout_s=LOCK_TIMEOUT_S, statement_timeout_s=STATEMENT_TIMEOUT_S)


def collect(db, options: ReportOptions | None = None) -> DbReport:
    """Sizes (with growth since the previous recorded report) and every check of the database's engine."""
    options = options or ReportOptions()
    url = parse_db(db)
    t0 = time.perf_counter()
    taken_at = dt.datetime.now(dt.timezone.utc)
    dialect = dialect_of(url)
    health = dialect.health
    conn = connect(url)
    try:
        dbname, version, num = health.facts(conn)
        total, sizes = health.collect_sizes(conn)
        notes = []
        try:
            previous_at, before = history.previous(conn, health)
        except Exception as exc:  # unreadable history: report without growth
            previous_at, before = None, {}
            notes.append(f"history not readable ({_line(exc)}): no growth figures")
        for s in sizes:
            if (s.kind, s.name) in before:
                s.previous_bytes, s.previous_at = before[(s.kind, s.name)], previous_at
        ctx = Context(conn=conn, engine=dialect.name, thresholds=options.thresholds, version_num=num, dbname=dbname,
                      sizes=sizes, previous_at=previous_at, facts={"top": options.top}, title=dialect.title)
        results = run_checks(health.checks(), ctx, health)
        notes += [f"{r.title}: not run, this role lacks a privilege ({r.needs} enables it)" for r in results if r.needs]
    finally:
        conn.close()
    report = DbReport(database=url.masked, dbname=dbname, engine=dialect.name, server_version=version,
                      taken_at=taken_at.isoformat(timespec="seconds"), checks=results, database_bytes=total,
                      sizes=sizes, notes=notes, fail_on=options.fail_on)
    if previous_at:
        report.notes.append(f"growth is measured since the previous report, {previous_at}")
    report.seconds = round(time.perf_counter() - t0, 3)
    log.info("%s: %s (%d checks in %.1f s)", url.masked, report.summary(), len(results), report.seconds)
    return report


def keep_history(db, report: DbReport, options: ReportOptions | None = None) -> DbReport:
    """Record ``report``'s sizes in the history table (unless ``options.history`` is off) and attach the
    series of sizes over time that the HTML page charts. A database that refuses the write (a replica, a
    read-only role) gets a note, not a failure."""
    options = options or ReportOptions()
    url = parse_db(db)
    health = get_dialect(report.engine).health
    conn = connect(url, read_only=False)
    try:
        kept, note = False, ""
        if options.history:
            try:
                n = history.record(conn, health, dt.datetime.fromisoformat(report.taken_at),
                                   report.database_bytes, report.dbname, report.sizes, options.history_days)
                kept, note = True, f"{n} sizes recorded in {health.history_table}"
            except Exception as exc:  # read-only: the report itself stands
                _rollback(conn)
                note = f"sizes not recorded in {health.history_table}: {_line(exc)}"
                report.notes.append(note)
        else:
            note = "history off: sizes not recorded"
        tables = [s.name for s in sorted((s for s in report.sizes if s.kind != "index"), key=lambda s: -s.bytes)][: options.top]
        indexes = [s.name for s in sorted((s for s in report.sizes if s.kind == "index"), key=lambda s: -s.bytes)][: options.top]
        try:
            h = history.series(conn, health, report.dbname, tables, indexes, options.history_days)
        except Exception as exc:
            _rollback(conn)
            h = History(note=f"history not readable: {_line(exc)}")
        h.kept, h.note = kept, note
        report.history = h
    finally:
        conn.close()
    return report


def build_report(db, options: ReportOptions | None = None) -> DbReport:
    """``collect`` then ``keep_history``: the whole report, without Prefect."""
    report = collect(db, options)
    return keep_history(db, report, options)


def _rollback(conn) -> None:
    try:
        conn.rollback()
    except Exception:
        pass


def _line(exc: BaseException) -> str:
    if isinstance(exc, GoliveError):
        return str(exc)
    text = str(exc).strip()
    return mask(text.splitlines()[0] if text else type(exc).__name__)

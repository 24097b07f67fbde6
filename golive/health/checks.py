"""Checks as data: each one is an id, an engine, the SQL that gathers its evidence, how to read a
severity from the rows, and the SQL that fixes what it finds.

``run_checks`` runs every check of an engine on one connection; a check that fails (a missing privilege,
a lock it could not get within the session's lock_timeout, a view an old server lacks) becomes a result
with severity ``error`` saying why, and the others still run.

Adding a check: write its SQL (``%(name)s`` placeholders take the thresholds; a literal ``%`` is written
``%%``), a ``read(rows, ctx)`` function returning ``ctx.finding(...)`` objects, and a ``fix`` template whose
``{placeholders}`` come from each finding's evidence; append it to ``CHECKS`` in ``postgresql.py`` or
``mysql.py``, and give it a test in ``tests/maintenance/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from golive.health.model import CheckResult, Finding, Thresholds, TableSize, worst
from golive.urls import mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One check: what it asks the database, and how to read the answer."""

    id: str
    engine: str  # postgresql | mysql
    title: str
    sql: str | None  # None: the check reads what the report already collected (sizes), or asks ``ctx.query``
    read: Callable[[list[dict], "Context"], list[Finding]]
    fix: str | None = None  # template; {placeholders} from the finding's evidence
    doc: str = ""
    ok: str = "nothing found"  # the summary when there is no finding
    min_version: int = 0  # PostgreSQL server_version_num the SQL needs


@dataclass
class Context:
    """What a check's ``read`` may use: the connection, the thresholds, the server, the collected sizes."""

    conn: Any
    engine: str
    thresholds: Thresholds
    version_num: int
    dbname: str
    sizes: list[TableSize] = field(default_factory=list)
    previous_at: str | None = None
    check: Check | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> dict:
        return self.thresholds.model_dump()

    def query(self, sql: str, params: dict | None = None) -> list[dict]:
        """Rows of ``sql`` as dicts (``%(threshold)s`` placeholders are filled from the thresholds)."""
        return query(self.conn, sql, {**self.params, **(params or {})})

    def finding(self, severity: str, obj: str, message: str, evidence: dict | None = None, *,
                fix: str | None = None, **fix_args) -> Finding:
        """A finding of the current check; its fix is ``fix``, or the check's template rendered from
        ``evidence`` and ``fix_args``."""
        check = self.check
        evidence = dict(evidence or {})
        if severity == "ok":
            fix = ""  # nothing to fix
        elif fix is None and check is not None and check.fix:
            try:
                fix = check.fix.format(**{**evidence, **fix_args})
            except (KeyError, IndexError, ValueError) as exc:  # a template bug must not hide the finding
                log.warning("fix template of %s: %s", check.id, exc)
        return Finding(check=check.id if check else "", severity=severity, object=obj, message=message,
                       evidence=_jsonable(evidence), fix=fix or None)


def query(conn, sql: str, params: dict | None = None) -> list[dict]:
    """Rows as dicts, on psycopg or PyMySQL connections alike."""
    with conn.cursor() as cur:
        cur.execute(sql, params or {})
        if cur.description is None:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def run_checks(checks: list[Check], ctx: Context) -> list[CheckResult]:
    """Run ``checks`` one after the other; each failure is confined to its own result."""
    results = []
    for check in checks:
        if check.engine != ctx.engine:
            continue
        ctx.check = check
        t0 = time.perf_counter()
        try:
            if check.min_version and ctx.version_num < check.min_version:
                findings = []
                summary = f"needs PostgreSQL {check.min_version // 10000} or later"
                result = CheckResult(id=check.id, title=check.title, engine=check.engine, severity="ok",
                                     summary=summary, doc=check.doc)
            else:
                rows = ctx.query(check.sql) if check.sql else []
                findings = check.read(rows, ctx)
                result = CheckResult(id=check.id, title=check.title, engine=check.engine,
                                     severity=worst(f.severity for f in findings), findings=findings,
                                     summary=_summary(findings, check), doc=check.doc)
        except Exception as exc:  # one check's failure is reported, the others run
            _rollback(ctx.conn)
            message = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            log.warning("check %s could not run: %s", check.id, message)
            result = CheckResult(id=check.id, title=check.title, engine=check.engine, severity="error",
                                 summary=f"could not run: {message}", error=message, doc=check.doc)
        result.seconds = round(time.perf_counter() - t0, 3)
        results.append(result)
    ctx.check = None
    return results


def _summary(findings: list[Finding], check: Check) -> str:
    problems = [f for f in findings if f.severity not in ("ok",)]
    if not problems:
        oks = [f.message for f in findings if f.severity == "ok"]
        return oks[0] if len(oks) == 1 else check.ok
    by = {}
    for f in problems:
        by[f.severity] = by.get(f.severity, 0) + 1
    return ", ".join(f"{n} {sev}" for sev, n in sorted(by.items(), key=lambda kv: _order(kv[0])))


def _order(sev: str) -> int:
    from golive.health.model import SEVERITY_ORDER

    return SEVERITY_ORDER[sev]


def _rollback(conn) -> None:
    try:
        if not getattr(conn, "autocommit", True):
            conn.rollback()
    except Exception:  # the connection may be gone; the next check reports that
        pass


def _jsonable(value):
    import datetime
    import decimal

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def esc(name: str) -> str:
    """A quoted SQL name ready to sit in a statement that also has ``%s`` parameters (a ``%`` in it doubled)."""
    return name.replace("%", "%%")


def pct(x: float) -> str:
    """``12.3 %``."""
    return f"{x * 100:.1f} %"

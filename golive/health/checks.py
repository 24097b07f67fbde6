"""Run an engine's checks (``Health.checks()``, as data: ``golive.model.health.Check``) on one connection.

A check that fails (a lock it could not get within the session's lock_timeout, a view an old server lacks) becomes
a result with severity ``error`` saying why, and the others still run. One the session lacks a privilege for is not
an error: it is noted as not run, with the grant that enables it (``Health.missing_privilege``), as a fix.
"""

from __future__ import annotations

import logging
import time

from golive.health.model import CheckResult
from golive.model.health import SEVERITY_ORDER, Check, Context, Finding, worst
from golive.urls import mask

log = logging.getLogger(__name__)


def run_checks(checks: list[Check], ctx: Context, health=None) -> list[CheckResult]:
    """Run ``checks`` one after the other; each failure is confined to its own result.

    Args:
        health: the engine's ``Health`` (``missing_privilege`` tells a missing privilege from an error).
    """
    results = []
    for check in checks:
        if check.engine != ctx.engine:
            continue
        ctx.check = check
        t0 = time.perf_counter()
        try:
            if check.min_version and ctx.version_num < check.min_version:
                findings = []
                summary = f"needs {ctx.title} {check.min_version // 10000} or later"
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
            grant = health.missing_privilege(exc, ctx.conn) if health is not None else None
            if grant:
                log.info("check %s not run: %s (%s enables it)", check.id, message, grant)
                why = f"not run: this role lacks a privilege ({message}); {grant} enables it"
                result = CheckResult(id=check.id, title=check.title, engine=check.engine, severity="info",
                                     summary=why, needs=grant, doc=check.doc, findings=[Finding(
                                         check=check.id, severity="info", object="privilege", message=why,
                                         fix=grant + ";")])
            else:
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
    return ", ".join(f"{n} {sev}" for sev, n in sorted(by.items(), key=lambda kv: SEVERITY_ORDER[kv[0]]))


def _rollback(conn) -> None:
    try:
        if not getattr(conn, "autocommit", True):
            conn.rollback()
    except Exception:  # the connection may be gone; the next check reports that
        pass



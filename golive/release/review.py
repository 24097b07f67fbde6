"""The lint step of a release (the pending SQL against the rules, sized by the live tables) and the plan of what a
release would run, in words (``--dry-run``)."""

from __future__ import annotations

from golive.release.lint import LintContext, all_rules, check_allowed, detect, lint, statements
from golive.release.state import runtime
from golive.release.validate import counted
from golive.urls import mask, secret


def context(state) -> LintContext:
    """The lint's view of the live database (the release's control session) and of the options."""
    info = state.info
    return LintContext(dialect=state.dialect, conn=runtime(state).conn, default_schema=info.schema_name if info else None,
                       version_num=info.version_num if info else 0, large_bytes=state.large_bytes,
                       lock_timeout_s=state.lock_timeout_s, allow=check_allowed(state.options.allow))


def largest_rewrite(state) -> int:
    """Bytes of the largest existing table a pending statement rewrites (it needs a second copy on disk)."""
    ctx = context(state)
    existing = state.existing_by_key
    rules = all_rules()
    biggest = 0
    for m in state.pending:
        for st in statements(m, state.dialect):
            for hit in detect(st, ctx):
                if rules[hit.rule].rewrites and hit.table in existing:
                    biggest = max(biggest, existing[hit.table].bytes)
    return biggest


def lint_step(state):
    """The pending SQL against the rules, sized by the live tables; then the plan of what would run."""
    if state.status is None:
        return state
    state.event("lint", "start", f"linting {len(state.pending)} pending migration(s)")
    findings = lint(state.pending, context(state))
    state.report.findings = findings
    blocking = [f for f in findings if f.blocks]
    allowed = [f for f in findings if f.allowed and f.severity == "error"]
    msg = (f"{len(findings)} finding(s): {len(blocking)} blocking, {len(allowed)} allowed, "
           f"{len([f for f in findings if f.severity == 'warning'])} warning(s)")
    state.event("lint", "failed" if blocking else "ok", msg + (f"; e.g. {blocking[0].rule} in {blocking[0].migration}: "
                                                               f"{blocking[0].message}" if blocking else ""))
    state.report.plan = [{"migration": m.label, "statements": len(statements(m, state.dialect)),
                          "transactional": m.transactional, "has_down": m.has_down, "path": m.path, "notes": m.notes}
                         for m in state.pending]
    state.report.steps = plan_lines(state)
    return state


def plan_lines(state) -> list[str]:
    """What would run, in words (``--dry-run``)."""
    o = state.options
    lines = [f"back up to {o.backup_to or '(no --backup-to given)'}" + (" and verify it" if o.verify_backup else "")]
    for p in state.report.plan:
        lines.append(f"apply {p['migration']}: {p['statements']} statement(s), "
                     f"{'in one transaction' if p['transactional'] else 'statement by statement (not transactional)'}"
                     f"{', has a down-migration' if p['has_down'] else ''}")
    lines.append(f"with lock_timeout {o.lock_timeout} (retried {o.lock_retries}x with backoff), "
                 f"statement timeout {o.statement_timeout or 'none'}, overall {o.timeout}")
    tables = counted(state)[0] if state.touch else []
    lines.append("validate: " + ", ".join(filter(None, [f"--check-sql {o.check_sql}" if o.check_sql else "",
                                                          f"row counts of {len(tables)} table(s)"])))
    if o.health_urls or o.health_cmd:
        lines.append(f"health: {', '.join(mask(u) for u in o.health_urls)}{' + command' if o.health_cmd else ''} "
                     f"within {o.health_timeout}")
    lines.append(f"on failure: {'down-migrations when every migration has one, else ' if o.rollback == 'down' else ''}"
                 "restore the backup")
    if o.notify:
        from golive.release.notify import describe_raw, split_kind

        lines.append("notify: " + ", ".join(f"{split_kind(secret(n))[0]} {describe_raw(split_kind(secret(n))[1])}"
                                            for n in o.notify))
    return lines

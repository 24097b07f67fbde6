"""The final word on a release: which state, which exit code, and what state the database is in, in words;
plus the tables the CLI prints and the flow publishes as artifacts."""

from __future__ import annotations

from golive.release.model import ReleaseReport
from golive.units import human_bytes


def conclude(rep: ReleaseReport, *, dry_run: bool, lint_only: bool, refused: bool, nothing: bool,
             rollback_health_ok: bool, at_now: str | None) -> None:
    """Set ``state``, ``exit_code`` and ``statement``. ``at_now``: the migration the database is at as read
    after everything (for the statement)."""
    failed_checks = [c for c in rep.prechecks if c.status == "fail"]
    blocking = [f for f in rep.findings if f.blocks]
    reasons = [f"{c.id}: {c.message}" for c in failed_checks]
    if blocking:
        rules = sorted({f.rule for f in blocking})
        reasons.append(f"{len(blocking)} blocking lint finding(s) ({', '.join(rules)}; --allow RULE to accept)")
    if rep.failed and rep.failed.step == "backup":
        reasons.append(f"the backup failed: {rep.failed.message}")
    at = at_now or "no migration applied"
    if dry_run or lint_only:
        rep.state = "dry-run" if dry_run else "lint-only"
        rep.exit_code = 2 if reasons else 0
        what = "dry run" if dry_run else "lint"
        n = len([p for p in rep.plan])
        rep.statement = (f"{what}: the release would be refused: " + "; ".join(reasons) if reasons else
                         f"{what}: the release would apply {n} migration(s); nothing was changed") + \
                        f" (the database: {at})"
        return
    if refused or reasons:
        rep.state, rep.exit_code = "refused", 2
        rep.statement = ("refused before changing anything: " + "; ".join(reasons or ["see the pre-check"])
                         + f". The database is unchanged ({_at(at)}).")
        return
    if nothing:
        rep.state, rep.exit_code = "nothing-to-release", 0
        rep.statement = f"nothing to release: no pending migration; the database is {_at(at)}."
        return
    applied = [r.label for r in rep.runs if r.status == "applied"]
    backup = f"backup {rep.backup.id}" if rep.backup else "no backup"
    if rep.failed is None:
        rep.state, rep.exit_code = "released", 0
        rep.statement = (f"released: {len(applied)} migration(s) applied ({', '.join(applied)}); the database is at "
                         f"{at}; {backup} holds it as it was before.")
        return
    rb = rep.rollback
    f = rep.failed
    named = not f.migration or f.migration.split(" ")[0] in f.message
    what_failed = f"{f.step} failed: {f.message}" if named else f"{f.step} of {f.migration} failed: {f.message}"
    if rb is not None and rb.ok and rollback_health_ok:
        rep.state, rep.exit_code = "rolled-back", 1
        how = {"restore": f"restored from {backup} (" + "; ".join(rb.checks) + ")",
               "down": "rolled back by down-migrations (" + "; ".join(rb.checks) + ")",
               "nothing-to-undo": "nothing to undo (" + "; ".join(rb.checks) + ")"}[rb.method]
        rep.statement = (f"failed and rolled back: {what_failed}; {how}: the database is as it was before the release "
                         f"({_at(at)}).")
        return
    rep.state, rep.exit_code = "rollback-failed", 3
    if rb is None:
        undo = "no rollback ran"
    elif not rb.ok:
        undo = f"the rollback ({rb.method}) FAILED: " + "; ".join(rb.problems or [rb.message or "unknown error"])
    else:
        undo = (f"the rollback ({rb.method}) ran, but the health check still fails afterwards: the database is as "
                "before the release, the app is not healthy")
    tail = f" {backup} ({rep.backup.url}) holds the database as it was before the release." if rep.backup else ""
    rep.statement = f"FAILED: {what_failed}; {undo}. The database is now {_at(at)}.{tail}"


def _at(at: str) -> str:
    return at if at.startswith("no migration") else f"at {at}"


def precheck_rows(rep: ReleaseReport) -> list[dict]:
    return [{"check": c.id, "status": c.status, "message": c.message} for c in rep.prechecks]


def lint_rows(rep: ReleaseReport) -> list[dict]:
    return [{"rule": f.rule, "severity": ("allowed" if f.allowed and f.severity == "error" else f.severity),
             "migration": f.migration, "line": f.line, "table": f.table or "",
             "size": human_bytes(f.table_bytes) if f.table_bytes is not None else "", "finding": f.message,
             "fix": f.fix} for f in rep.findings]


def timeline_rows(rep: ReleaseReport) -> list[dict]:
    return [{"t (s)": f"{e.t:.1f}", "step": e.step, "status": e.status, "event": e.message} for e in rep.timeline]


def markdown(rep: ReleaseReport) -> str:
    """The release's summary artifact."""
    word = {0: "OK", 1: "ROLLED BACK", 2: "REFUSED", 3: "ROLLBACK FAILED"}.get(rep.exit_code, rep.state)
    lines = [f"# Release {rep.release_id}: {word}", "", rep.statement, "",
             "| | |", "|---|---|",
             f"| database | {rep.engine} `{rep.dbname}` ({rep.database}), server {rep.server_version} |",
             f"| migrations | `{rep.migrations}` |",
             f"| state / exit | {rep.state} / {rep.exit_code} |"]
    if rep.backup:
        lines.append(f"| backup | `{rep.backup.url}`{' (verified: ' + rep.backup.verified + ')' if rep.backup.verified else ''} |")
    if rep.rollback:
        lines.append(f"| rollback | {rep.rollback.method}: {'done' if rep.rollback.ok else 'FAILED'} ({rep.rollback.why}) |")
    lines.append(f"| seconds | {rep.seconds:.1f} |")
    if rep.runs:
        lines += ["", "## Migrations", "", "| migration | status | transactional | statements | attempts | s | error |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.label} | {r.status} | {'yes' if r.transactional else 'no'} | {r.statements} | {r.attempts} | "
                  f"{r.seconds:.2f} | {(r.error or '').replace('|', '/')} |" for r in rep.runs]
    if rep.found:
        lines += ["", "## Found an interrupted release", "", rep.found]
    if rep.validation.get("problems") or rep.validation.get("checks"):
        lines += ["", "## Validation", ""] + [f"- {c}" for c in rep.validation.get("checks", [])] + [
            f"- **{p}**" for p in rep.validation.get("problems", [])]
    if rep.health:
        lines += ["", "## Health", ""] + [f"- {'ok' if h.ok else '**not healthy**'}: {h.target} ({h.attempts} "
                                           f"attempts, {h.seconds:.1f} s): {h.detail}" for h in rep.health]
    if rep.notifications:
        lines += ["", "## Notifications", ""] + [f"- {n.target}: {'sent' if n.ok else '**failed**'} ({n.detail})"
                                                  for n in rep.notifications]
    if rep.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in rep.warnings]
    return "\n".join(lines)

"""The pre-check: each line pass, warn or fail; any fail refuses the release before anything changes.

Lines (IDs as in the report): ``connectivity``, ``server-version``, ``extensions``, ``release-lock`` (no
other release running: the advisory lock is taken here and held to the end), ``previous-release`` (what an
interrupted one left), ``migrations`` (pending listed), ``drift``, ``history`` (the tool's own refusals:
failed migrations, out of order, not baselined), ``privileges``, ``long-transactions``, ``disk-server``,
``disk-backup``, ``disk-scratch``, ``backup-destination``, ``rollback``, ``health-before``.

What a line reads of the server is the dialect's (``Release.server_info``, ``privileges``, ``long_transactions``,
``data_directory``, …); here the lines are judged, and ``precheck`` is the step that runs them.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from golive.dialects import dialect_of
from golive.dialects.base import Dialect
from golive.errors import GoliveError
from golive.model.release import Check, ServerInfo, TableKey, fail, label, ok, warn
from golive.release import db, journal
from golive.release.lint import touches
from golive.release.model import Migration, SourceStatus
from golive.release.state import ReleaseBusy, ReleaseLock, ReleaseState, runtime
from golive.units import human_bytes, human_duration
from golive.urls import DatabaseURL


# ---------------------------------------------------------------- the lines

def migrations(status: SourceStatus) -> list[Check]:
    out = []
    at = status.current or "no migration applied yet"
    if status.pending:
        out.append(ok("migrations", f"{len(status.pending)} pending: {', '.join(m.label for m in status.pending)} "
                                    f"(the database is at {at})", pending=[m.label for m in status.pending]))
    else:
        out.append(ok("migrations", f"nothing pending (the database is at {at})", pending=[]))
    if status.drift:
        out.append(fail("drift", "applied migration(s) changed since they were applied: " + "; ".join(status.drift)
                        + " (restore the files as they were, or make the change a new migration)"))
    if status.problems:
        out.append(fail("history", "; ".join(status.problems)))
    if status.missing:
        out.append(warn("history", f"applied but not in the folder: {', '.join(status.missing)} (an older checkout?)"))
    for n in status.notes:
        out.append(ok("history", n))
    return out


def long_transactions(conn, dialect: Dialect, tables: set[TableKey], threshold_s: float) -> Check:
    """Old transactions: listed (warn); one holding a lock on a table the migrations change fails (the DDL would
    wait for it, and the app behind the DDL)."""
    rows = dialect.release.long_transactions(conn, threshold_s)
    if not rows:
        return ok("long-transactions", f"no transaction open longer than {human_duration(threshold_s)}")
    wanted = {label(k) for k in tables}
    blocking = [r for r in rows if r.tables & wanted]
    listed = "; ".join(f"{r.name} ({r.who}, open {human_duration(r.seconds)}: {r.query.strip() or '-'})"
                       for r in (blocking or rows)[:3])
    if blocking:
        return fail("long-transactions", f"{len(blocking)} transaction(s) hold locks on tables the migrations change, "
                                         f"so the DDL would wait for them (and the app behind it): {listed}",
                    sessions=[r.session for r in blocking])
    return warn("long-transactions", f"{len(rows)} transaction(s) open longer than {human_duration(threshold_s)} "
                                     f"(not on the tables the migrations change): {listed}")


def _is_local(url: DatabaseURL) -> bool:
    host = url.host or url.query.get("host") or url.query.get("unix_socket")
    return host in (None, "", "localhost", "127.0.0.1", "::1") or (host or "").startswith("/")


def disk(conn, url: DatabaseURL, info: ServerInfo, rewrite_bytes: int, backup_to: str | None,
         expected_backup: int | None, expected_raw: int | None) -> list[Check]:
    """Free space: the server's data volume (when this machine can see it), the backup's folder (file://), and
    the scratch space a rollback by restore downloads into."""
    out = []
    size = info.bytes
    data_dir = dialect_of(url).release.data_directory(conn)
    if data_dir and _is_local(url) and os.path.isdir(data_dir):
        try:
            free = shutil.disk_usage(data_dir).free
        except OSError:
            free = None
    else:
        free = None
    if free is None:
        why = ("the server is not on this machine" if not _is_local(url) else
               "its data directory is not readable here" if data_dir else "the server does not say where its data is")
        out.append(warn("disk-server", f"cannot read the free space of the server's data volume ({why}); the database "
                                       f"is {human_bytes(size)}" + (f", the largest table a migration rewrites "
                                                                    f"{human_bytes(rewrite_bytes)}" if rewrite_bytes else "")))
    elif free < rewrite_bytes * 1.1:
        out.append(fail("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}), but a migration "
                                       f"rewrites a table of {human_bytes(rewrite_bytes)} (it needs a second copy)"))
    elif free < size:
        out.append(warn("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}), less than the "
                                       f"database ({human_bytes(size)})"))
    else:
        out.append(ok("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}); the database is "
                                     f"{human_bytes(size)}"))
    need = expected_backup if expected_backup is not None else size
    basis = "the previous backup's size" if expected_backup is not None else "the database's size (no previous backup)"
    if backup_to and backup_to.startswith("file://"):
        folder = Path(backup_to[len("file://"):])
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_b = shutil.disk_usage(probe).free
        check = fail if free_b < need else ok
        out.append(check("disk-backup", f"{human_bytes(free_b)} free for the backup in {folder}; it needs about "
                                        f"{human_bytes(need)} ({basis})"))
    raw = expected_raw if expected_raw is not None else size
    scratch = tempfile.gettempdir()
    free_s = shutil.disk_usage(scratch).free
    check = warn if free_s < raw else ok
    out.append(check("disk-scratch", f"{human_bytes(free_s)} free in {scratch}, where a rollback by restore downloads "
                                     f"the backup (about {human_bytes(raw)})"
                     + ("" if free_s >= raw else ": a rollback by restore would fail (set TMPDIR)")))
    return out


def rollback_plan(method: str, pending: list[Migration], dialect: Dialect, conn) -> Check:
    out_msg = []
    if method == "down":
        missing = [m.label for m in pending if not m.has_down]
        if missing:
            return warn("rollback", f"--rollback down, but {', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no "
                                    "down-migration: a failure will restore the backup instead")
        out_msg.append("down-migrations for every pending migration (a half-applied one is restored from the backup)")
    else:
        out_msg.append("restore the backup")
    refusal = dialect.release.restore_refusal(conn)
    if refusal:
        return fail("rollback", refusal)
    return ok("rollback", "on failure: " + "; ".join(out_msg))


def health_before(urls: list[str], cmd: str | None) -> Check | None:
    from golive.release.health import probe_cmd, probe_url
    from golive.urls import mask

    if not urls and not cmd:
        return None
    bad = []
    for u in urls:
        good, detail = probe_url(u)
        if not good:
            bad.append(f"{mask(u)}: {detail}")
    if cmd:
        good, detail = probe_cmd(cmd, 30)
        if not good:
            bad.append(f"command: {detail}")
    if bad:
        return warn("health-before", "not healthy before the release (a failing health check afterwards will roll "
                                     "back): " + "; ".join(bad))
    return ok("health-before", f"healthy before the release ({len(urls) + (1 if cmd else 0)} check(s))")


# ---------------------------------------------------------------- the step

def precheck(state: ReleaseState) -> ReleaseState:
    """Connectivity, version, the release lock (held to the end), the migrations and an interrupted earlier
    release, then (unless only linting) extensions, privileges, long transactions, the backup destination, disk,
    the rollback plan and the app's health before."""
    from golive.release.review import largest_rewrite

    rt = runtime(state)
    checks = state.report.prechecks
    state.event("precheck", "start", f"pre-check of {state.url.masked} ({state.options.migrations})")
    release = state.dialect.release
    try:
        rt.conn = db.connect(state.url, lock_timeout_s=state.lock_timeout_s or 5)
        state.info = info = release.server_info(rt.conn)
    except GoliveError as exc:
        checks.append(fail("connectivity", str(exc)))
        state.event("precheck", "failed", str(exc))
        return state
    state.report.dbname, state.report.engine = info.database, state.dialect.name
    state.report.server_version = info.version
    checks.append(ok("connectivity", f"connected to {info.database} as {info.user}"))
    checks.append(release.server_version(info))
    if not state.options.lint_only:
        _take_lock(state, checks)
    try:
        state.status = rt.source.status(rt.conn)
    except GoliveError as exc:
        checks.append(fail("migrations", str(exc)))
        state.event("precheck", "failed", str(exc))
        return state
    checks.extend(migrations(state.status))
    if rt.lock is not None and rt.lock.conn is not None:
        found = _previous_release(state)
        if found is not None:
            checks.append(found)
    state.touch = touches(state.pending, state.dialect, info.schema_name)
    state.existing = list(release.table_info(rt.conn, list(state.touch.changed)).values())
    if state.options.lint_only:
        return _done(state)
    ext = release.extensions(rt.conn, state.touch.extensions)
    if ext:
        checks.append(ext)
    keys = [t.key for t in state.existing]
    checks.extend(release.privileges(rt.conn, info, keys))
    checks.append(long_transactions(rt.conn, state.dialect, set(keys), state.long_tx_s))
    expected = _backup_destination(state, checks)
    checks.extend(disk(rt.conn, state.url, info, largest_rewrite(state), state.options.backup_to, *expected))
    checks.append(rollback_plan(state.options.rollback, state.pending, state.dialect, rt.conn))
    health = health_before(state.options.health_urls, state.options.health_cmd)
    if health:
        checks.append(health)
    return _done(state)


def _done(state: ReleaseState) -> ReleaseState:
    bad = [c for c in state.report.prechecks if c.status == "fail"]
    warns = [c for c in state.report.prechecks if c.status == "warn"]
    if bad:
        state.event("precheck", "failed", "; ".join(f"{c.id}: {c.message}" for c in bad))
    else:
        state.event("precheck", "ok", f"{len(state.report.prechecks)} checks, {len(warns)} warning(s); "
                                      f"{len(state.pending)} migration(s) pending")
    return state


def _take_lock(state: ReleaseState, checks: list[Check]) -> None:
    rt = runtime(state)
    lock = ReleaseLock(state.url)
    try:
        lock.__enter__()
    except ReleaseBusy as exc:
        checks.append(fail("release-lock", str(exc)))
        return
    except GoliveError as exc:
        checks.append(fail("release-lock", f"could not take the release lock: {exc}"))
        return
    rt.lock = lock
    msg = "no other release running (the release lock is held until the end)"
    if rt.source.kind == "prisma":
        if not rt.source.take_tool_lock(lock.conn):
            checks.append(fail("release-lock", "Prisma Migrate's advisory lock is held: prisma migrate deploy "
                                               "(or dev) is running against this database now"))
            return
        msg += "; Prisma Migrate's lock is held too"
    if state.options.dry_run:
        msg = "no other release running"
    checks.append(ok("release-lock", msg))


def _backup_destination(state: ReleaseState, checks: list[Check]) -> tuple[int | None, int | None]:
    """Check the backup destination; (stored, raw) bytes of its newest backup, when there is one."""
    o = state.options
    if not o.backup_to:
        return None, None
    from golive.backup import list_backups

    if o.backup_to.startswith("file://"):  # a folder the first backup creates: not made by a pre-check (dry run)
        folder = Path(o.backup_to[len("file://"):])
        if not folder.exists():
            parent = next((q for q in folder.parents if q.exists()), Path("/"))
            if os.access(parent, os.W_OK):
                checks.append(ok("backup-destination", f"{o.backup_to}: created by the backup (no backups there "
                                                        "yet)"))
            else:
                checks.append(fail("backup-destination", f"{o.backup_to}: cannot be created ({parent} is not "
                                                          "writable)"))
            return None, None
    try:
        from golive.backup.store import BackupStore

        store = BackupStore(o.backup_to, o.storage)
        store.check(create=False, creatable=False)
        listing = list_backups(o.backup_to, o.storage)
    except GoliveError as exc:
        checks.append(fail("backup-destination", f"{o.backup_to}: {exc}"))
        return None, None
    mine = [b for b in listing.backups if b.database == state.info.database] or listing.backups
    if mine:
        newest = mine[-1]
        checks.append(ok("backup-destination", f"{o.backup_to} is reachable; newest backup there: {newest.id}"))
        return newest.stored_bytes, newest.raw_bytes
    checks.append(ok("backup-destination", f"{o.backup_to} is reachable (no backups there yet)"))
    return None, None


def _previous_release(state: ReleaseState) -> Check | None:
    """What an interrupted release left (its journal row says running, yet nobody holds the lock)."""
    rt = runtime(state)
    try:
        rows = journal.unfinished(rt.conn, state.dialect)
    except Exception as exc:  # noqa: BLE001
        return warn("previous-release", f"could not read the release journal: {exc}")
    if not rows:
        return None
    row = rows[0]
    state.interrupted = row
    by_version = {m.version: m for m in state.status.migrations}
    applied, half, clean_in_progress = [], [], None
    for v in row.pending:
        m = by_version.get(v)
        if m is None:
            continue
        found = rt.source.probe(rt.conn, m)
        if found == "applied":
            applied.append(m.label)
        elif found == "failed":
            half.append(f"{m.label} is recorded as started but not finished (it stopped half-way)")
    step = row.step
    if step == "migrate" and row.detail:
        m = next((x for x in state.status.migrations if x.label == row.detail), None)
        if m is not None and m.label not in applied and not any(h.startswith(m.label) for h in half):
            if m.transactional:
                clean_in_progress = (f"{m.label} was being applied and left nothing (PostgreSQL rolled its "
                                     "transaction back when the session ended)")
            else:
                half.append(f"{m.label} was being applied and may be half-applied (its statements commit one by one)")
    when = row.started_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [f"release {row.id} (started {when} on {row.host or '?'}, pid {row.pid or '?'}) was interrupted during "
             f"{step}" + (f" ({row.detail})" if row.detail else "")]
    uncertain = False
    if step == "backup":
        text, uncertain = _interrupted_backup(state, row)
        parts.append(text)
    if step.startswith("rollback"):
        parts.append("it was rolling back; the database may be partly restored")
    parts.append(f"of its migrations, {'applied now: ' + ', '.join(applied) if applied else 'none is applied'}")
    if clean_in_progress:
        parts.append(clean_in_progress)
    parts += half
    if row.backup_url:
        parts.append(f"its backup {row.backup_url} holds the database as it was before it")
    text = "; ".join(parts)
    clean = not applied and not half and not uncertain and not step.startswith("rollback")
    state.report.found = text
    if clean:
        state.resolve_interrupted = True
        return warn("previous-release", text + ": the database is as it was before it, so this release goes on")
    backup_url = row.backup_url or state.found_backup
    restore = (f"golive restore --from {backup_url} --to <the database> --force" if backup_url else
               "restore your latest backup")
    if state.options.resolve_interrupted and not step.startswith("rollback"):
        state.resolve_interrupted = True
        return warn("previous-release", text + ": accepted with --resolve-interrupted; this release continues from "
                                               "the state above")
    return fail("previous-release", text + f". Choose: roll it back ({restore}), or accept this state and continue "
                                           "with --resolve-interrupted")


def _interrupted_backup(state: ReleaseState, row) -> tuple[str, bool]:
    """(what is known about its backup, whether the database may not be as before)."""
    if not row.backup_to:
        return "it had not started its backup", False
    try:
        from golive.backup import list_backups

        listing = list_backups(row.backup_to, state.options.storage)
    except GoliveError:
        return f"whether its backup finished is unknown ({row.backup_to} cannot be listed)", True
    done = [b for b in listing.backups if dt.datetime.fromisoformat(b.started_at.replace("Z", "+00:00")) >=
            row.started_at]
    if done:
        state.found_backup = done[0].url
        return (f"a backup finished after it started ({done[0].url}): it stopped right after its backup, or during "
                "a rollback that restored it (the journal row then is the backup's; the restore may be "
                "incomplete)"), True
    return "it stopped during its backup (no finished backup after its start); no migration had run", False

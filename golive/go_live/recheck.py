"""Is a go-live step an earlier run finished still done? What it made is looked for again before the step is
taken as done (and shown as a ``Cached`` task run): a cache hit whose object or rows are gone is not a hit.

The journal (``golive.go_live.state``) says which steps finished; ``gone`` says, per step, whether what the step
left is still there. A step the journal records as done is a hit only when ``gone`` finds nothing missing and no
step it depends on ran again in this run (``DEPENDS``); otherwise it runs again (and says why).
"""

from __future__ import annotations

from pathlib import Path

from golive.go_live.precheck import Resolved

#: a step is taken as done only when none of these ran again in the same run (its inputs changed)
DEPENDS: dict[str, tuple[str, ...]] = {
    "validate": ("migrate-db",),
    "verify-files": ("migrate-files",),
    "rewrite-paths": ("migrate-db", "migrate-files"),
}


def gone(r: Resolved, step: str, summary: dict) -> str | None:
    """Why what ``step`` left is no longer there (one line, no secret), or None when it still is.

    - ``backup``: the backup's manifest is still at its URL;
    - ``migrate-db``: the target still records the migration as complete and every table holds at least the
      rows the copy wrote (the app may have added rows since; an online go-live's catch-up changes counts, so
      only the run's record is checked there);
    - ``migrate-files``: the upload manifest is still there and the destination still holds every object it
      records (one listing);
    - ``precheck``, ``validate``, ``verify-files``, ``rewrite-paths``: nothing of their own to look for (what they
      checked or changed is what the steps in ``DEPENDS`` left).
    """
    check = _CHECKS.get(step)
    return check(r, summary) if check else None


def _backup(r: Resolved, summary: dict) -> str | None:
    from golive.backup.naming import parse_location
    from golive.backup.store import BackupStore

    url = summary.get("url")
    if not url:
        return "the journal names no backup"
    loc = parse_location(url, want_backup=True)
    if BackupStore(loc.base, r.backup_storage).read_manifest(loc.backup_id) is None:
        return f"the backup {url} is gone (no manifest.json there)"
    return None


def _migrate(r: Resolved, summary: dict) -> str | None:
    from golive import commands
    from golive.migrate import target as tgt

    run_key = summary.get("run_key")
    if not run_key:
        return "the journal names no migration run"
    dst = commands.parse_target(r.target.get_secret_value())
    run = tgt.run_of(dst, run_key)
    if not run or run.get("status") != "complete":
        return f"the target no longer records migration run {run_key} as complete"
    if summary.get("online"):
        return None
    short = [f"{t} ({found} of {recorded} rows)" for t, (recorded, found) in
             sorted(tgt.rows_against_record(dst, run_key).items()) if found < recorded]
    if short:
        return "rows the copy wrote are gone from the target: " + ", ".join(short[:5]) + \
            (f" and {len(short) - 5} more table(s)" if len(short) > 5 else "")
    return None


def _files(r: Resolved, summary: dict) -> str | None:
    from golive.files.manifest import Manifest
    from golive.storage import open_storage

    path = summary.get("manifest")
    if not path or not Path(path).exists():
        return f"the upload manifest {path or ''} is gone".replace("  ", " ")
    if r.bucket_storage is None:
        return None
    manifest = Manifest(path, create=False)
    try:
        entries = manifest.load()
    finally:
        manifest.close()
    there = {o.key: o.size for o in open_storage(r.bucket_storage).list()}
    missing = sorted(e.key for e in entries.values() if there.get(e.key) != e.size)
    if missing:
        return (f"{len(missing)} uploaded object(s) are gone from the destination (or another size there), "
                f"e.g. {missing[0]}")
    return None


_CHECKS = {"backup": _backup, "migrate-db": _migrate, "migrate-files": _files}

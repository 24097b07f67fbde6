"""Rollback: decide how, then undo what the release did.

* **nothing-to-undo**: no migration of the release had been applied and the one that failed left nothing
  (its transaction rolled back, or it failed on its first statement): its failed record is removed and the
  schema compared with the one before the release.
* **down**: with ``--rollback down``, when every applied migration has a down-migration and the failed one
  left nothing; they run newest first, each recorded as not applied in the tool's history; then the schema
  is compared with the one before the release, and the row counts of the counted tables with theirs.
* **restore** (default, and whenever down cannot be trusted): the release's backup restored onto the same
  database with ``restore_backup(force=True)``: afterwards it equals the backup (checked by the restore's
  own row counts and schema fingerprint).
"""

from __future__ import annotations

from golive.release.model import Migration, MigrationRun, Rollback


def decide(method: str, applied: list[Migration], failed: MigrationRun | None) -> Rollback:
    """The rollback to run for a release that applied ``applied`` and then failed (``failed``: the migration that
    failed, None when a later step did)."""
    left_nothing = failed is None or bool(failed.left_nothing)
    if not applied and left_nothing:
        what = f"{failed.label} left nothing" if failed else "nothing was applied"
        return Rollback(method="nothing-to-undo", why=f"no migration had been applied and {what}")
    if method == "down":
        missing = [m.label for m in applied if not m.has_down]
        if missing:
            return Rollback(method="restore", why=f"--rollback down, but {', '.join(missing)} "
                                                  f"ha{'s' if len(missing) == 1 else 've'} no down-migration")
        if not left_nothing:
            return Rollback(method="restore", why=f"{failed.label} stopped half-way (its statements commit one by one), "
                                                  "so down-migrations cannot be trusted")
        return Rollback(method="down", why="every applied migration has a down-migration")
    return Rollback(method="restore", why="--rollback restore (the default)")

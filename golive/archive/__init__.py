"""Point-in-time recovery: a continuous archive of the server's change log in object storage, restores to any
moment inside its recovery window, and drills that prove it (PostgreSQL, MySQL/MariaDB).

The public API (plain Python, no Prefect; the ``archive-database`` and ``drill-archive`` flows and the ``golive
archive`` / ``golive restore --to-time`` commands call these)::

    run_archive(db_url, to, ArchiveOptions(...)) -> ArchiveRunResult     # until stopped: <to>/archive/<name>
    take_base(db_url, to, ArchiveOptions(...)) -> BaseEntry
    restore_to_time(at, "2026-12-06 16:04:00+08" | "latest", to_url=… | to_dir=…, port=…) -> PointRestoreResult
    archive_status(at) -> Window                                          # the recovery window, gaps, lag
    drill(at, scratch=…) -> Drill                                         # restore to a random moment, checked
    prune_archive(at, "14d") -> ArchivePruneResult                        # retention as a recovery window

No engine here: each engine's receiver, base backup, recovery and checks are its dialect's ``Archive`` concern
(``golive/dialects/<engine>/archive.py``, declared in ``golive.dialects.base.archive``). The bucket's layout and
the manifest are in ``golive.model.archive``; ``store`` keeps them, ``run`` is the archiver, ``window`` the recovery
window, ``restore``, ``drill`` and ``prune`` the rest.
"""

from golive.archive.drill import drill
from golive.archive.options import ArchiveOptions, ArchiveRunResult, PointRestoreResult, Window
from golive.archive.prune import ArchivePruneResult, prune_archive
from golive.archive.restore import restore_to_time
from golive.archive.run import Archiver, run_archive, take_base
from golive.archive.store import ArchiveStore, archive_url, split_archive_url
from golive.archive.window import window_of


def archive_status(at: str, storage=None) -> Window:
    """The recovery window of the archive at ``at`` (``…/archive/<name>``), its gaps, lag and last drill."""
    store = ArchiveStore(at, storage)
    manifest = store.require()
    w = window_of(manifest, store)
    drills = store.drills(last=1)
    if drills:
        w.last_drill = drills[-1].model_dump(mode="json")
    return w


def archives_under(base: str, storage=None) -> list[str]:
    """The archive URLs under a backup location (``<base>/archive/<name>/archive.json``)."""
    store = ArchiveStore(base.rstrip("/") + "/archive", storage)
    names = set()
    for info in store.storage.list_under(""):
        rel = info.key[len(store.storage.dest.prefix):] if info.key.startswith(store.storage.dest.prefix) else info.key
        head, _, rest = rel.partition("/")
        if rest == "archive.json":
            names.add(head)
    return [f"{store.url}/{n}" for n in sorted(names)]


__all__ = ["ArchiveOptions", "ArchiveRunResult", "PointRestoreResult", "Window", "ArchivePruneResult", "Archiver",
           "ArchiveStore", "run_archive", "take_base", "restore_to_time", "archive_status", "drill", "prune_archive",
           "archive_url", "split_archive_url", "window_of", "archives_under"]

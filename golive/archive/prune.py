"""Retention as a recovery window: ``--keep-window 14d`` keeps every moment of the last 14 days restorable.

It keeps the newest base that ended before the window's start (a restore to the window's first moment starts
there) and every newer base, and the segments from that base's first one on; older bases and segments go. It never
removes the only base, nor anything a restore inside the window needs: when the chain from the kept base has a
gap, nothing is removed and the gap is reported.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from golive.archive.options import parse_duration
from golive.archive.store import ArchiveStore
from golive.archive.window import chain
from golive.backup.store import StorageOptions
from golive.dialects import get_dialect
from golive.errors import TerminalError


class ArchivePruneResult(BaseModel):
    url: str
    dry_run: bool
    keep_from: str | None
    removed_bases: list[str]
    removed_segments: int
    removed_bytes: int
    kept_bases: list[str]


def prune_archive(at: str, keep_window: str, *, dry_run: bool = False,
                  storage: StorageOptions | None = None) -> ArchivePruneResult:
    window = parse_duration(keep_window)
    store = ArchiveStore(at, storage)
    manifest = store.require()
    bases = store.bases()
    if not bases:
        return ArchivePruneResult(url=store.url, dry_run=dry_run, keep_from=None, removed_bases=[],
                                  removed_segments=0, removed_bytes=0, kept_bases=[])
    cutoff = dt.datetime.now(dt.timezone.utc) - window
    older = [b for b in bases if b.end_time <= cutoff]
    keep_from = older[-1] if older else bases[0]
    kept = [b for b in bases if b.id >= keep_from.id]
    _, gaps = chain(manifest, keep_from)
    if gaps:
        raise TerminalError(f"not pruning {store.url}: {gaps[0]} (the window it would keep is broken already)")
    key = get_dialect(manifest.engine).archive.segment_key
    first = key(keep_from.first_segment)
    old_segments = [s for s in manifest.segments if key(s.name) < first]
    old_bases = [b for b in bases if b.id < keep_from.id]
    removed_bytes = sum(s.size for s in old_segments) + sum(b.stored_bytes for b in old_bases)
    if not dry_run:
        # the manifest first: a crash half-way leaves objects no manifest names (harmless), never the reverse
        manifest.segments = [s for s in manifest.segments if key(s.name) >= first]
        manifest.bases = [b for b in manifest.bases if b.id >= keep_from.id]
        store.save(manifest)
        for b in old_bases:
            store.delete([f"bases/{b.id}/base.json"] + [f"bases/{b.id}/{o.stored_as}" for o in b.objects])
        store.delete([s.stored_as for s in old_segments])
    return ArchivePruneResult(url=store.url, dry_run=dry_run, keep_from=keep_from.id,
                              removed_bases=[b.id for b in old_bases], removed_segments=len(old_segments),
                              removed_bytes=removed_bytes, kept_bases=[b.id for b in kept])

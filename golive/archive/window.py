"""The recovery window of an archive: from the end of its oldest usable base backup to its last flush, with the
gaps that would break a restore inside it and how stale it is."""

from __future__ import annotations

import datetime as dt

from golive.archive.options import Window
from golive.dialects import get_dialect
from golive.model.archive import ArchiveManifest, BaseEntry, SegmentEntry

#: an archive whose last flush is older than this is stale (its archiver stopped or cannot keep up)
STALE_AFTER = dt.timedelta(minutes=5)


def chain(manifest: ArchiveManifest, base: BaseEntry) -> tuple[list[SegmentEntry], list[str]]:
    """The stored segments a restore from ``base`` replays, in order, and the gaps among them (missing segment
    names, each a line)."""
    engine = get_dialect(manifest.engine).archive
    key = engine.segment_key
    first = key(base.first_segment)
    segs = [s for s in manifest.segments if key(s.name) >= first]
    gaps = []
    expect = base.first_segment
    for s in segs:
        if s.name != expect:
            gaps.append(f"segment {expect} is missing (the archive jumps from before it to {s.name})")
        expect = engine.next_segment(s.name)
    partial = manifest.partial
    if partial is not None:
        name = partial.name.removesuffix(".partial")
        if key(name) > key(expect):
            gaps.append(f"segment {expect} is missing (the archive jumps to the partial {name})")
    return segs, gaps


def window_of(manifest: ArchiveManifest, store=None, *, now: dt.datetime | None = None,
              stale_after: dt.timedelta = STALE_AFTER, bases: list[BaseEntry] | None = None) -> Window:
    now = now or dt.datetime.now(dt.timezone.utc)
    if bases is None:
        bases = store.bases() if store is not None else list(manifest.bases)
    earliest = None
    gaps: list[str] = []
    for b in bases:  # the oldest base whose chain to the last flush is whole starts the window
        _, g = chain(manifest, b)
        if not g:
            earliest = b.end_time
            break
        gaps = gaps or g  # an error even when a newer base still restores: the window is shorter than kept
    latest = manifest.flushed.at if manifest.flushed and (earliest is not None) else None
    if latest is not None and earliest is not None and latest < earliest:
        latest = None  # no flush since the base ended yet
    stale = manifest.flushed is None or now - manifest.flushed.wall > stale_after
    return Window(name=manifest.name, engine=manifest.engine, url=store.url if store is not None else "",
                  source=manifest.source, earliest=earliest, latest=latest,
                  lag_seconds=round((now - manifest.flushed.at).total_seconds(), 1) if manifest.flushed else None,
                  bases=len(bases), segments=len(manifest.segments),
                  stored_bytes=sum(s.size for s in manifest.segments) + sum(b.stored_bytes for b in bases)
                  + (manifest.partial.size if manifest.partial else 0),
                  gaps=gaps, stale=stale)

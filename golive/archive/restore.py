"""Restore to a moment: the newest base that ended before it, then the archived log replayed up to it.

The moment must be inside the recovery window (from the oldest usable base's end to the last flush): anything else
is refused naming the window, before anything is downloaded. Every object is checked against the manifest (size,
SHA-256) as it is downloaded: a damaged segment is refused by name, and nothing is restored from it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from pathlib import Path

from golive.archive.options import PointRestoreResult, parse_moment
from golive.archive.store import ArchiveStore
from golive.archive.window import chain, window_of
from golive.backup.restore import encryption_key, scratch_dir
from golive.backup.store import StorageOptions
from golive.dialects import get_dialect
from golive.errors import ConfigError, TerminalError
from golive.model.archive import ArchiveManifest, BaseEntry
from golive.urls import as_url, secret

log = logging.getLogger(__name__)


def _fmt(t: dt.datetime | None) -> str:
    return "-" if t is None else t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def archive_key(manifest: ArchiveManifest, key_text) -> bytes | None:
    return encryption_key(manifest, key_text, what=f"the archive {manifest.name}")


def pick_base(bases: list[BaseEntry], target: dt.datetime | None) -> BaseEntry:
    usable = [b for b in bases if target is None or b.end_time <= target]
    if not usable:
        raise TerminalError("no base backup ended before that moment")
    return usable[-1]


def fetch_for(store: ArchiveStore, manifest: ArchiveManifest, base: BaseEntry, target: dt.datetime | None,
              work: Path, key: bytes | None) -> tuple[dict[str, Path], list[Path]]:
    """Download the base's objects and the segments replaying it to ``target``: the list ends with the first segment
    that covers the moment (a flush after it found every commit before it in that segment or an earlier one); when
    none does, the partial too."""
    segs, gaps = chain(manifest, base)
    if gaps:
        raise TerminalError(f"cannot restore from base {base.id}: {gaps[0]}")
    files: dict[str, Path] = {}
    bdir = work / "base"
    bdir.mkdir()
    for o in base.objects:
        entry = o.model_copy(update={"stored_as": f"bases/{base.id}/{o.stored_as}"})
        files[o.name] = store.fetch(entry, bdir / o.name.replace("/", "__"), manifest, key)
    ldir = work / "log"
    ldir.mkdir()
    out: list[Path] = []
    need_partial = True
    for s in segs:
        out.append(store.fetch(s, ldir / s.name, manifest, key))
        if target is not None and s.covers is not None and s.covers >= target:
            need_partial = False
            break
    if need_partial and manifest.partial is not None and manifest.partial.pieces:
        p = manifest.partial
        dest = ldir / (p.segment + ".partial")
        with open(dest, "wb") as whole:  # its pieces, each checked, end to end
            for piece in sorted(p.pieces, key=lambda x: x.offset):
                if piece.offset != whole.tell():
                    raise TerminalError(f"the partial segment {p.segment} has no bytes from {whole.tell()} to "
                                        f"{piece.offset}: the archive is damaged")
                part = store.fetch(piece, ldir / "piece", manifest, key)
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, whole, 1 << 20)
                part.unlink()
        out.append(dest)
    return files, out


def restore_to_time(at: str, to_time: str, *, to_url=None, to_dir: str | None = None, port: int | None = None,
                    storage: StorageOptions | None = None, encryption_key=None,
                    scratch: str | None = None) -> PointRestoreResult:
    """Restore the archive at ``at`` (``…/archive/<name>``) as it was at ``to_time`` (``latest`` or a moment with
    its zone) into ``to_url`` (a database) or, PostgreSQL only, a data directory ``to_dir`` started on ``port``."""
    target = parse_moment(to_time)
    if (to_url is None) == (to_dir is None):
        raise ConfigError("give one of --to URL (a database) or --to-dir DIR (PostgreSQL: a recovered cluster)")
    t0 = time.perf_counter()
    store = ArchiveStore(at, storage)
    manifest = store.require()
    bases = store.bases()
    win = window_of(manifest, store, bases=bases)
    if win.earliest is None or win.latest is None:
        why = win.gaps[0] if win.gaps else ("it has no base backup yet" if not bases else "nothing was flushed since "
                                            "its first base ended")
        raise TerminalError(f"the archive {manifest.name} cannot be restored: {why}")
    if target is not None and not (win.earliest <= target <= win.latest):
        raise ConfigError(f"{_fmt(target)} is outside the recovery window of {manifest.name}: "
                          f"{_fmt(win.earliest)} to {_fmt(win.latest)}")
    engine = get_dialect(manifest.engine).archive
    base = pick_base([b for b in bases if not chain(manifest, b)[1]], target)
    dest_url = as_url(secret(to_url), role="target") if to_url is not None else None
    if to_dir is not None and Path(to_dir).exists() and any(Path(to_dir).iterdir()):
        raise ConfigError(f"--to-dir {to_dir} is not empty: give a new directory")
    work = scratch_dir(scratch, "golive-pitr-")
    try:
        key = archive_key(manifest, encryption_key)
        files, segments = fetch_for(store, manifest, base, target, work, key)
        details = engine.restore(base.model_dump(mode="python"), files, segments, target, to_url=dest_url,
                                 to_dir=Path(to_dir) if to_dir else None, port=port, workdir=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    where = details.get("where") or (dest_url.masked if dest_url else str(to_dir))
    return PointRestoreResult(url=store.url, target="latest" if target is None else _fmt(target), base=base.id,
                              segments=len(segments), where=where, seconds=round(time.perf_counter() - t0, 3),
                              reached=str(details.get("reached", "")), details=details)

"""Drills: an archive is only a recovery plan once a restore to a moment inside it has worked.

A drill picks a moment inside the recovery window (random, or given), restores to it into a scratch (PostgreSQL:
a recovered cluster in a scratch directory on a free port; MySQL: a temporary database on a scratch server, by
default the archived one), and checks it:

* recovery reached the moment (the engine's own report of where it stopped);
* the engine's integrity check (``pg_amcheck``; ``CHECK TABLE``) finds nothing;
* golive's marker rows: every marker the archiver wrote more than a second before the moment is there, none
  written after it is, and their checksum (count and times) equals the archive's record of them;
* the archive is whole (no gap) and fresh (its last flush is recent).

It records the measured restore time (RTO), the archive's lag when the drill began (the RPO achieved) and the
verdict under ``drills/`` and returns them (the flow publishes them as an artifact and notifies on failure).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import shutil
import socket
import time
import uuid

from golive.archive.options import parse_moment
from golive.archive.restore import _fmt, restore_to_time
from golive.archive.store import ArchiveStore
from golive.archive.window import window_of
from golive.backup.restore import scratch_dir
from golive.backup.store import StorageOptions
from golive.dialects import get_dialect
from golive.errors import ConfigError, GoliveError
from golive.model.archive import Drill
from golive.urls import as_url, secret

#: markers this close to the moment are not judged (a marker's time is its insert; its commit is a little later)
MARGIN = dt.timedelta(seconds=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digest(times: list[dt.datetime]) -> str:
    h = hashlib.sha256()
    for t in sorted(times):
        h.update(t.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").encode())
    return f"{len(times)} rows, {h.hexdigest()[:16]}"


def pick_moment(earliest: dt.datetime, latest: dt.datetime, rng: random.Random) -> dt.datetime:
    span = (latest - earliest).total_seconds()
    if span <= 2:
        return latest
    return earliest + dt.timedelta(seconds=rng.uniform(1.0, span - 1.0))


def drill(at: str, *, to_time: str | None = None, scratch: str | None = None, storage: StorageOptions | None = None,
          encryption_key=None, scratch_dir_parent: str | None = None, seed: int | None = None,
          stale_after: dt.timedelta | None = None, record: bool = True) -> Drill:
    """Restore the archive at ``at`` to a moment (``to_time``, else a random one inside the window) into a scratch
    and check it. Returns the ``Drill`` (``status`` passed/failed), recorded under ``drills/`` unless ``record`` is
    False. Problems of the machine (no scratch server, a refused password) raise instead: no verdict."""
    store = ArchiveStore(at, storage)
    manifest = store.require()
    bases = store.bases()
    win = window_of(manifest, store, bases=bases, **({"stale_after": stale_after} if stale_after is not None else {}))
    started = dt.datetime.now(dt.timezone.utc)
    rpo = (started - manifest.flushed.at).total_seconds() if manifest.flushed else None
    checks, problems = [], []
    if win.gaps:
        problems += win.gaps
    if win.stale:
        problems.append(f"the archive is stale: its last flush was at {_fmt(manifest.flushed.wall if manifest.flushed else None)}"
                        " (is the archiver running?)")
    if win.earliest is None or win.latest is None:
        d = Drill(at=started, target=started, base="", status="failed", rto_seconds=0.0, rpo_seconds=rpo,
                  checks=checks, problems=problems or ["the archive has no restorable moment yet"])
        if record:
            store.save_drill(d)
        return d
    target = parse_moment(to_time) if to_time else pick_moment(win.earliest, win.latest, random.Random(seed))
    target = target or win.latest
    checks.append(f"recovery window {_fmt(win.earliest)} to {_fmt(win.latest)}; moment {_fmt(target)}")
    engine = get_dialect(manifest.engine).archive
    work = scratch_dir(scratch_dir_parent, "golive-drill-")
    base = ""
    rto = 0.0
    try:
        if engine.restores_to_dir:
            data = work / "cluster"
            port = _free_port()
            t = time.perf_counter()
            try:
                res = restore_to_time(at, target.isoformat(), to_dir=str(data), port=port, storage=storage,
                                      encryption_key=encryption_key, scratch=str(work))
                rto = time.perf_counter() - t
                base = res.base
                checks.append(f"restored from base {res.base} and {res.segments} segments in {rto:.1f} s: "
                              f"{res.reached or 'recovered'}")
                _check(engine, as_url(res.details["url"], role="scratch"), manifest, target, checks, problems)
            finally:
                engine.stop_restored(data)
        else:
            server = as_url(secret(scratch), role="scratch") if scratch else None
            if server is None:
                raise ConfigError(f"a {manifest.engine} drill restores into a scratch database: give the server to "
                                  "use (--scratch URL; a temporary database is made there and dropped)")
            backup = get_dialect(manifest.engine).backup
            with backup.scratch_database(None, name=f"golive_drill_{uuid.uuid4().hex[:10]}", server=server,
                                         workdir=work, notes=checks) as url:
                t = time.perf_counter()
                res = restore_to_time(at, target.isoformat(), to_url=url, storage=storage,
                                      encryption_key=encryption_key, scratch=str(work))
                rto = time.perf_counter() - t
                base = res.base
                checks.append(f"restored from base {res.base} and {res.segments} segments in {rto:.1f} s: "
                              f"{res.reached or 'replayed'}")
                _check(engine, url, manifest, target, checks, problems)
    except (ConfigError,):
        raise
    except GoliveError as exc:  # the restore itself failed: that is the verdict
        problems.append(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    d = Drill(at=started, target=target, base=base, status="failed" if problems else "passed",
              rto_seconds=round(rto, 3), rpo_seconds=None if rpo is None else round(rpo, 1), checks=checks,
              problems=problems)
    if record:
        store.save_drill(d)
    return d


def _check(engine, url, manifest, target: dt.datetime, checks: list[str], problems: list[str]) -> None:
    bad = engine.integrity(url)
    if bad:
        problems += [f"integrity: {b}" for b in bad]
    else:
        checks.append("integrity check: no problem found")
    got = engine.markers(url)
    after = [m for m in got if m > target]
    if after:
        problems.append(f"{len(after)} marker rows written after the moment are in the restore (first "
                        f"{_fmt(min(after))}): recovery went too far")
    # the markers the archive recorded before the moment must all be there; the restore may hold a few more (an
    # archiver killed before its next manifest write had written them): those are not judged
    known = [m for m in manifest.markers if m <= target - MARGIN]
    have = {m for m in got if m <= target - MARGIN}
    missing = sorted(set(known) - have)
    if missing:
        problems.append(f"{len(missing)} of the {len(known)} marker rows recorded before the moment are missing from "
                        f"the restore (the first {_fmt(missing[0])}): recovery stopped short")
    else:
        checks.append(f"marker rows before the moment: the {len(known)} recorded ({_digest(known)}) are all there "
                      f"({len(have)} restored); none after it")

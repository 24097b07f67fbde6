"""``verify_backup``: a backup is only a backup once restored. Restore it into a scratch database, check
it against the manifest, drop the scratch, and write the verdict into the manifest.

The scratch database is the engine's (``Backup.scratch_database``): PostgreSQL: an embedded PostgreSQL 16
(pgserver) in the scratch directory, or a temporary database on a server given with ``scratch``;
MySQL/MariaDB: a temporary database on the server given with ``scratch`` (default: the backup's own server, with
the backup's credentials right after it, ``own_server``);
SQLite: a temporary file. Checks: object sizes and SHA-256, the engine's own checks of the objects
(``Backup.check_objects``: SQLite's ``PRAGMA integrity_check``), the restore itself, row counts per table
(Great Expectations) and the schema fingerprint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import time
import uuid
from pathlib import Path

from golive import __version__
from golive.backup.checks import check_restored
from golive.backup.manifest import Verification
from golive.backup.naming import parse_location
from golive.backup.options import VerifyOptions, VerifyResult
from golive.backup.restore import encryption_key, fetch_all, scratch_dir
from golive.backup.store import BackupStore
from golive.backup.stream import ScratchFull
from golive.dialects import get_dialect
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TransientError
from golive.urls import as_url, mask, secret

log = logging.getLogger(__name__)


@contextlib.contextmanager
def scratch_database(manifest, options: VerifyOptions, workdir: Path, notes: list[str] | None = None):
    """Yield the URL of an empty scratch database for ``manifest``'s engine; drop it afterwards.

    ``notes`` receives a line when the scratch is not the default one (an embedded PostgreSQL lacking an
    extension the backup needs: then a temporary database on the backup's own server)."""
    notes = [] if notes is None else notes
    name = f"{options.scratch_prefix}{uuid.uuid4().hex[:10]}"
    given, own = secret(options.scratch), secret(options.own_server)
    server = as_url(given, role="scratch") if given else None
    own_url = as_url(own, role="scratch") if own else None
    with get_dialect(manifest.engine).backup.scratch_database(manifest, name=name, server=server, workdir=workdir,
                                                              notes=notes, own=own_url) as url:
        yield url


def verify_backup(url: str, options: VerifyOptions | None = None) -> VerifyResult:
    """Restore ``url`` (``.../<ID>`` or ``.../latest``) into a scratch database and check it.

    A damaged object, a failing restore or a count or schema mismatch is a *failed* verification (recorded
    in the manifest, ``ok`` False). Problems of the machine rather than the backup (scratch disk full, no
    scratch server, its credentials refused, the storage still failing after its retries) raise instead, and
    record nothing: the verification did not run.
    """
    options = options or VerifyOptions()
    t0 = time.perf_counter()
    loc = parse_location(url, want_backup=True)
    store = BackupStore(loc.base, options.storage)
    manifest = store.resolve(loc)
    key = encryption_key(manifest, options.encryption_key)
    from golive.validation import gx_worker

    gx_worker.prestart()
    work = scratch_dir(options.scratch_dir, "golive-verify-")
    checks, problems, timings = [], [], {}
    where = ""
    try:
        try:
            t = time.perf_counter()
            files = fetch_all(store, manifest, work, key, options.jobs)
            timings["download"] = round(time.perf_counter() - t, 3)
            checks.append(f"{len(manifest.objects)} objects: sizes and SHA-256 match the manifest")
            engine = get_dialect(manifest.engine).backup
            checks += engine.check_objects(files)  # raises BackupCorrupt: the verdict
            with scratch_database(manifest, options, work, checks) as scratch:
                where = scratch.masked
                t = time.perf_counter()
                # the scratch has no roles of the backup's server: owners and privileges are left out
                engine.restore(scratch, files, manifest, force=False, jobs=options.jobs, no_owner=True)
                timings["restore"] = round(time.perf_counter() - t, 3)
                checks.append("restored into a scratch database")
                t = time.perf_counter()
                out = Path(options.out_dir) if options.out_dir else work / "gx"
                c, p = check_restored(scratch, manifest, out)
                timings["checks"] = round(time.perf_counter() - t, 3)
                checks += c
                problems += p
        except ScratchFull as exc:
            msg = str(exc) if "removed" in str(exc) else f"{exc}; the scratch directory was removed"
            raise ScratchFull(msg) from None
        except (ConnectionFailed, ConfigError):
            raise
        except TransientError as exc:  # the storage or the scratch server failed, not the backup: no verdict
            raise TransientError(f"the verification could not run: {exc}; nothing was recorded",
                                 **exc.context) from None
        except GoliveError as exc:  # the backup did not restore: that is the verdict
            problems.append(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = round(time.perf_counter() - t0, 3)
    verification = Verification(status="failed" if problems else "passed", at=dt.datetime.now(dt.timezone.utc),
                                seconds=seconds, scratch=where or "(not reached)", checks=checks,
                                problems=[mask(p) for p in problems], golive_version=__version__)
    if options.record:
        manifest.verification = verification
        store.write_manifest(manifest)
    timings["total"] = seconds
    return VerifyResult(ok=not problems, id=manifest.id, url=store.url(manifest.id), verification=verification,
                        manifest=manifest, timings=timings)

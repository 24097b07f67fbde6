"""``restore_backup``: check and download every object, then restore, then prove the result.

Order matters: every object is downloaded into the scratch directory and its size and SHA-256 compared with
the manifest **before the target is touched**, so a damaged backup is refused (the object named) while the
target is still as it was. The scratch directory is removed whatever happens.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from golive.backup.checks import check_restored
from golive.backup.crypto import key_id, parse_key
from golive.backup.manifest import Manifest
from golive.backup.naming import parse_location
from golive.backup.options import RestoreOptions, RestoreResult
from golive.backup.store import BackupStore
from golive.backup.stream import BackupCorrupt, ScratchFull, fetch, parse_compression
from golive.model.backup import make_scratch
from golive.dialects import dialect_of, resolve
from golive.errors import ConfigError, GoliveError
from golive.urls import as_url, secret

log = logging.getLogger(__name__)


def encryption_key(manifest: Manifest, key_text, *, what: str | None = None) -> bytes | None:
    """The key for ``manifest``'s objects (a backup's, or an archive's: ``what`` names it); a missing or wrong key
    is refused by its fingerprint."""
    what = what or f"backup {manifest.id}"
    if manifest.encryption is None:
        return None
    if not key_text:
        raise ConfigError(f"{what} is encrypted (key {manifest.encryption.key_id}): give its key "
                          "(--encrypt-key-file FILE or --encrypt-key-block NAME)")
    key = parse_key(secret(key_text))
    if key_id(key) != manifest.encryption.key_id:
        raise ConfigError(f"{what} was encrypted with key {manifest.encryption.key_id}, not with the "
                          f"key given ({key_id(key)})")
    return key


def fetch_all(store: BackupStore, manifest: Manifest, scratch: Path, key: bytes | None, jobs: int = 4) -> dict[str, Path]:
    """Download every object into ``scratch`` (checked, decrypted, decompressed): name -> local file."""
    compression = parse_compression(manifest.compression)
    files = {o.name: scratch / o.name.replace("/", "__") for o in manifest.objects}

    def one(entry):
        return fetch(store.storage, store.key(manifest.id, entry.stored_as), entry, files[entry.name], compression, key)

    errors = []
    with ThreadPoolExecutor(max(1, min(jobs, 4)), thread_name_prefix="golive-fetch") as pool:
        for fut in [pool.submit(one, o) for o in manifest.objects]:
            try:
                fut.result()
            except BaseException as exc:  # noqa: BLE001 - reported below, the most telling first
                errors.append(exc)
    if errors:
        for kind in (BackupCorrupt, ScratchFull):
            for exc in errors:
                if isinstance(exc, kind):
                    raise exc
        raise errors[0]
    return files


def scratch_dir(parent: str | None, prefix: str) -> Path:
    """A new scratch directory (``make_scratch``: what killed restores and verifications left there goes first)."""
    try:
        return Path(make_scratch(parent, prefix))
    except OSError as exc:
        raise ConfigError(f"cannot create a scratch directory in {parent or tempfile.gettempdir()}: "
                          f"{exc.strerror}") from None


class RestoreJournal:
    """``<state_dir>/restores/<target>.json`` while a restore writes its target: the backup, the host and the process.

    A restore killed (``kill -9``) or failing half-way leaves a partly written target, which the same command run
    again would refuse as not empty. The journal says whose it is: a restore of the same backup into the same target
    whose process is gone replaces it as ``--force`` would. It is written only when the target is empty (or
    ``--force`` was given), so it never hands a database golive did not write to a later run; it goes when the
    restore ends without an error. ``state_dir`` None: no journal.
    """

    def __init__(self, state_dir: str | None, target, backup_id: str):
        import hashlib

        self.backup_id = backup_id
        ident = str(target.path.resolve()) if target.path is not None else target.masked
        self.target = target
        self.path = (Path(state_dir) / "restores" / f"{hashlib.sha1(ident.encode()).hexdigest()[:16]}.json"
                     if state_dir else None)
        self.written = False

    def interrupted(self) -> bool:
        """A restore of this backup into this target, by a process of this host that no longer runs."""
        import json
        import os
        import socket

        if self.path is None or not self.path.exists():
            return False
        try:
            j = json.loads(self.path.read_text(encoding="utf-8"))
            if j["backup"] != self.backup_id or j["host"] != socket.gethostname():
                return False
            os.kill(int(j["pid"]), 0)
        except ProcessLookupError:
            log.info("replacing what the interrupted restore of %s into %s wrote", self.backup_id, self.target.masked)
            return True
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return False

    def target_empty(self, engine) -> bool:
        """True when the target holds no table (a SQLite file that does not exist yet is empty)."""
        if self.target.path is not None and not self.target.path.exists():
            return True
        try:
            tables, _ = engine.inspect(self.target, counts=False)
        except GoliveError:
            return False  # unknown: no journal, so no later run replaces it unasked
        return not tables

    def begin(self) -> None:
        import json
        import os
        import socket

        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"backup": self.backup_id, "target": self.target.masked,
                                       "host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8")
            os.replace(tmp, self.path)
            self.written = True
        except OSError as exc:  # a read-only or full state directory: the restore itself does not need it
            log.warning("could not write the restore journal %s: %s", self.path, exc)

    def end(self) -> None:
        if self.path is not None and (self.written or self.path.exists()):
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def restore_backup(from_url: str, to_db_url, options: RestoreOptions | None = None) -> RestoreResult:
    """Restore the backup at ``from_url`` (``.../<ID>`` or ``.../latest``) into ``to_db_url``.

    A non-empty target is refused unless ``options.force`` (or it is what a killed run of this same restore
    half-wrote: ``RestoreJournal``); with ``force`` everything in it is replaced, so
    afterwards it holds exactly the backup (also when it is the database the backup was taken from: objects
    created since are gone). Ends with the manifest's row counts (Great Expectations) and schema fingerprint
    compared; ``ok`` is False when they differ.
    """
    options = options or RestoreOptions()
    t0 = time.perf_counter()
    loc = parse_location(from_url, want_backup=True)
    target = resolve(as_url(to_db_url, role="target"))
    store = BackupStore(loc.base, options.storage)
    manifest = store.resolve(loc)
    if manifest.engine != target.dialect:
        raise ConfigError(f"backup {manifest.id} is of a {manifest.engine} database; {target.masked} is {target.dialect}")
    key = encryption_key(manifest, options.encryption_key)
    engine = dialect_of(target).backup
    engine.check_connects(target, "target")
    if options.checks:
        from golive.validation import gx_worker

        gx_worker.prestart()  # Great Expectations imports while the objects download
    scratch = scratch_dir(options.scratch_dir, "golive-restore-")
    timings = {}
    try:
        t = time.perf_counter()
        try:
            files = fetch_all(store, manifest, scratch, key, options.jobs)
        except ScratchFull as exc:
            raise ScratchFull(f"{exc}; nothing was restored, the scratch directory was removed") from None
        timings["download"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        journal = RestoreJournal(options.state_dir, target, manifest.id)
        force = options.force or journal.interrupted()  # what a killed run of this same restore half-wrote
        if force or journal.target_empty(engine):
            journal.begin()
        details = engine.restore(target, files, manifest, force=force, jobs=options.jobs,
                                 no_owner=options.no_owner)
        if force and not options.force:
            details = {**(details or {}), "replaced_interrupted_restore": True}
        timings["restore"] = round(time.perf_counter() - t, 3)
        checks, problems = [], []
        if options.checks:
            t = time.perf_counter()
            out = Path(options.out_dir) if options.out_dir else scratch / "gx"
            checks, problems = check_restored(target, manifest, out)
            timings["checks"] = round(time.perf_counter() - t, 3)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    journal.end()
    timings["total"] = round(time.perf_counter() - t0, 3)
    return RestoreResult(ok=not problems, id=manifest.id, url=store.url(manifest.id), target=target.masked,
                         manifest=manifest, checks=checks, problems=problems, timings=timings, details=details or {})


__all__ = ["restore_backup", "fetch_all", "encryption_key", "GoliveError"]

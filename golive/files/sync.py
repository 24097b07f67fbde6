"""Upload an uploads folder: plan against the manifest, upload batches, verify every object, summarize.

The unit of work is a ``Batch`` of files (what a Prefect task retries). For each file golive reads the
bytes once, hashes them, uploads them with their Content-MD5 and compares the ETag the server returns with
the local MD5 (multipart: each part's MD5, then the multipart ETag; the whole-file MD5 goes into the
object's ``golive-md5`` metadata). Only then is the file recorded in the manifest as verified.

Re-runs: a file whose size and mtime match its manifest row is skipped without reading it or asking the
server. A file whose mtime changed but whose content did not (same size and MD5) is skipped after hashing.
When the manifest is missing, one listing of the destination stands in for it: objects with the right
size and ETag are recorded as verified instead of being uploaded again.

``upload_folder`` runs the whole job in a thread pool without Prefect (scripts, the demo); the CLI and
``flows/migrate_files.py`` run the same steps as Prefect tasks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from golive.errors import (ConfigError, ConnectionFailed, DiskFull, GoliveError, SourceError, TerminalError,
                           TransientError)
from golive.files.manifest import Entry, Manifest, manifest_path
from golive.files.scan import LocalFile, Problem, human_bytes, scan_source
from golive.storage import (S3_MAX_PUT, FileChanged, Interrupted, MiB, SourceUnreadable, Storage, StorageConfig,
                            check_stop, content_type, multipart_etag, open_storage, parse_dest, part_size, read_source)

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "golive-runs"


class UploadJob(BaseModel):
    """Everything a batch needs: small, picklable, no secrets in its repr."""

    source: str = Field(description="Absolute path of the uploads folder")
    storage: StorageConfig
    manifest: str = Field(description="Path of the manifest (SQLite) for this source and destination")
    follow_symlinks: bool = False
    create_bucket: bool = False
    multipart_threshold: int = Field(16 * MiB, ge=1, description="Files above this size go up in parts")
    multipart_chunksize: int = Field(8 * MiB, ge=5 * MiB, description="Part size (raised to fit 10,000 parts)")
    workers: int = Field(8, ge=1, le=256)
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)


def make_job(source: str | os.PathLike, dest: str, *, endpoint_url: str | None = None, region: str | None = None,
             addressing_style: str = "auto", workers: int = 8, state_dir: str | os.PathLike = DEFAULT_STATE_DIR,
             follow_symlinks: bool = False, create_bucket: bool = False,
             multipart_threshold: int = 16 * MiB, multipart_chunksize: int = 8 * MiB,
             credentials: dict | None = None, max_attempts: int = 4) -> UploadJob:
    """Validate the options and build an ``UploadJob``.

    Args:
        credentials: optional ``{"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}``;
            without it boto3's standard chain (env, profile, instance role) applies.

    Raises:
        ConfigError: a bad destination URL, endpoint or option.
    """
    parse_dest(dest)
    if not os.path.isdir(source):
        what = "is not a folder" if os.path.exists(source) else "does not exist"
        raise SourceError(f"source folder {source} {what}")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    creds = {k: SecretStr(v) for k, v in (credentials or {}).items() if v}
    storage = StorageConfig(
        dest=dest, endpoint_url=endpoint_url or None, region=region or None, addressing_style=addressing_style,
        access_key_id=creds.get("aws_access_key_id"), secret_access_key=creds.get("aws_secret_access_key"),
        session_token=creds.get("aws_session_token"), max_attempts=max_attempts, pool_size=max(16, workers * 2))
    src = os.path.abspath(source)
    return UploadJob(source=src, storage=storage,
                     manifest=str(manifest_path(os.path.abspath(state_dir), src, dest, endpoint_url)),
                     follow_symlinks=follow_symlinks, create_bucket=create_bucket,
                     multipart_threshold=min(multipart_threshold, S3_MAX_PUT),
                     multipart_chunksize=multipart_chunksize, workers=workers)


# ---------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class Todo:
    """A file to upload. ``md5_hint``/``etag_hint``: what the destination is believed to hold already
    (manifest row whose mtime changed; a listed object of the same size). A matching hash skips it."""

    rel: str
    size: int
    md5_hint: str | None = None
    etag_hint: str | None = None  # "" = the object exists, ask the storage for its checksum


@dataclass
class Batch:
    index: int
    files: list[Todo]

    @property
    def bytes(self) -> int:
        return sum(t.size for t in self.files)


@dataclass
class UploadPlan:
    source: str
    dest: str
    todo: list[Todo] = field(default_factory=list)
    unchanged: int = 0
    unchanged_bytes: int = 0
    #: unchanged files an earlier run uploaded and verified that this plan's listing found at the destination
    done: list[Todo] = field(default_factory=list)
    #: files the manifest holds whose object is gone from the destination (or is another size): uploaded again
    gone: int = 0
    problems: list[Problem] = field(default_factory=list)
    listed: bool = False  # the destination was listed (manifest missing or never reconciled)
    found_listed: int = 0  # files the listing showed already there (checked by hash before uploading)
    files_total: int = 0
    bytes_total: int = 0

    @property
    def todo_bytes(self) -> int:
        return sum(t.size for t in self.todo)

    def batches(self, workers: int, max_files: int = 1000, max_bytes: int = 1 << 30, *,
                files: list[Todo] | None = None) -> list[Batch]:
        """Cut the to-do list (or ``files``) into batches of about equal bytes, a multiple of ``workers`` of them.

        Few, big batches: each batch is a Prefect task run, and task runs are not free (state events,
        server work), so one batch per worker is the aim; ``max_files``/``max_bytes`` cap a batch so a
        retry or a failure stays small on big uploads. Batches are contiguous in path order.
        """
        todo = self.todo if files is None else files
        if not todo:
            return []
        total = sum(t.size for t in todo) + len(todo)  # +1 per file: empty files count too
        n = max(-(-len(todo) // max_files), -(-total // max_bytes), 1)
        n = min(len(todo), -(-n // workers) * workers)
        target = total / n
        out: list[Batch] = []
        cur: list[Todo] = []
        acc = 0.0
        for t in todo:
            if cur and acc + (t.size + 1) / 2 > target * (len(out) + 1) and len(out) < n - 1:
                out.append(Batch(len(out), cur))
                cur = []
            cur.append(t)
            acc += t.size + 1
        out.append(Batch(len(out), cur))
        return out


def check_destination(job: UploadJob) -> str:
    """Make sure the destination answers and accepts the credentials (creating the bucket if asked).

    Returns a printable description. Raises ``ConnectionFailed``/``ConfigError`` with one line otherwise.
    A destination ``prefetch_plan`` checked for this job moments ago is not asked again.
    """
    with _PREFETCHED_LOCK:
        if _job_key(job) in _PREFETCHED:
            return _PREFETCHED[_job_key(job)][0]
    storage = open_storage(job.storage)
    storage.check(create=job.create_bucket, creatable=True)
    return storage.describe()


#: destinations checked and plans made ahead of a flow run in this process (see ``prefetch_plan``)
_PREFETCHED: dict[tuple, tuple[str, "UploadPlan"]] = {}
_PREFETCHED_LOCK = threading.Lock()


def _job_key(job: UploadJob) -> tuple:
    # everything but the run id and the worker count (the CLI's job and the flow's are built apart)
    return job.storage, job.model_dump_json(exclude={"run_id", "workers", "storage"})


def prefetch_plan(job: UploadJob) -> UploadPlan:
    """Check the destination and plan now, for the flow's tasks in this process to take.

    The CLI calls this in a thread while Prefect starts up, so the listing, the scan and the manifest
    work overlap with the import instead of following it (as ``commands.prefetch_plan`` does for
    databases). The ``check-destination`` and ``plan-upload`` tasks of the next ``migrate_files`` run
    for the same job then return these results instead of asking again; ``plan_upload`` hands the
    plan out once.
    """
    where = check_destination(job)
    plan = plan_upload(job)
    with _PREFETCHED_LOCK:
        _PREFETCHED[_job_key(job)] = (where, plan)
    return plan


def plan_upload(job: UploadJob, *, offline: bool = False, dry_run: bool = False) -> UploadPlan:
    """Scan the source and decide, file by file, what to upload.

    Args:
        offline: never contact the destination; if the manifest has not been reconciled with a listing
            yet, the plan has ``listed=False`` and every unknown file is to-do (the CLI uses this to see
            cheaply whether there is anything to do at all).
        dry_run: do not create or change the manifest.
    """
    if not (offline or dry_run):
        with _PREFETCHED_LOCK:
            prefetched = _PREFETCHED.pop(_job_key(job), None)
        if prefetched is not None:
            return prefetched[1]
    dest = parse_dest(job.storage.dest)
    state_dir = Path(job.manifest).parent.parent
    storage = None if offline else open_storage(job.storage)
    scan = scan_source(job.source, prefix=dest.prefix, follow_symlinks=job.follow_symlinks,
                       max_size=storage.max_object_size if storage else (5 << 40) if dest.scheme == "s3" else 1 << 62,
                       max_key_bytes=1024 if dest.scheme == "s3" else 4096, exclude=(str(state_dir),))
    plan = UploadPlan(source=job.source, dest=job.storage.dest, problems=list(scan.problems),
                      files_total=len(scan.files), bytes_total=scan.total_bytes)
    manifest = _open_manifest(job, create=not dry_run)
    entries = manifest.load() if manifest else {}
    listing = None
    if not (manifest and manifest.reconciled) and not offline:
        listing = {o.key: o for o in storage.list()}
        plan.listed = True
        log.info("manifest %s missing or never reconciled: listed %d objects", job.manifest, len(listing))
    if manifest and not dry_run and storage is not None:
        for key, upload_id in manifest.pending():  # left behind by a crash
            storage.abort_multipart(key, upload_id)
            manifest.remove_pending(key)
    recorded: list[tuple[LocalFile, Entry]] = []  # unchanged since an earlier run uploaded and verified them
    for f in scan.files:
        key = dest.key(f.rel)
        e = entries.get(f.rel)
        if e and e.key == key and e.size == f.size and e.mtime_ns == f.mtime_ns:
            recorded.append((f, e))
        elif e and e.key == key and e.size == f.size:
            plan.todo.append(Todo(f.rel, f.size, md5_hint=e.md5))
        elif listing is not None and key in listing and listing[key].size == f.size:
            plan.todo.append(Todo(f.rel, f.size, etag_hint=listing[key].etag or ""))
            plan.found_listed += 1
        else:
            plan.todo.append(Todo(f.rel, f.size))
    if recorded and listing is None and (plan.todo or plan.problems) and not offline:
        # a re-run with work to do (after a failure): what the manifest holds is confirmed by one listing
        # rather than trusted, so an object deleted since is uploaded again; with nothing else to do, the
        # manifest alone decides (no request; ``golive verify files`` checks the destination)
        listing = {o.key: o for o in storage.list()}
    for f, e in recorded:
        there = listing.get(e.key) if listing is not None else None
        if listing is not None and (there is None or there.size != f.size):
            plan.todo.append(Todo(f.rel, f.size))  # the object is gone (or replaced): uploaded again
            plan.gone += 1
            continue
        plan.unchanged += 1
        plan.unchanged_bytes += f.size
        if listing is not None:  # confirmed: shown as Cached batches (``tasks.files.uploaded_batch``)
            plan.done.append(Todo(f.rel, f.size, md5_hint=e.md5, etag_hint=e.etag))
    if plan.gone:
        order = {f.rel: i for i, f in enumerate(scan.files)}
        plan.todo.sort(key=lambda t: order[t.rel])  # batches are contiguous in the scan's order
    if listing is not None and manifest and not dry_run:
        manifest.set_meta("reconciled_at", str(time.time()))
    multipart = {dest.key(t.rel) for t in plan.todo if t.size > job.multipart_threshold}
    if storage is not None and not dry_run and multipart:  # only files going up in parts can have uploads open
        _abort_strays(storage, dest, multipart)
    return plan


def _abort_strays(storage: Storage, dest, todo_keys: set[str]) -> None:
    """Abort the multipart uploads left open at keys this run is about to write in parts: a run killed before it
    recorded an upload's ID, or a CreateMultipartUpload whose answer was lost, leaves one the manifest does
    not know (billed until a lifecycle rule removes it). One listing of the destination's uploads."""
    try:
        found = storage.open_uploads(dest.prefix)
    except GoliveError as exc:
        log.info("could not list the multipart uploads under %s: %s", dest, exc)
        return
    for key, upload_id in found:
        if key in todo_keys:
            storage.abort_multipart(key, upload_id)
            log.info("aborted the multipart upload %s of %s left by an earlier run", upload_id, key)


def _open_manifest(job: UploadJob, create: bool) -> Manifest | None:
    if not create and not os.path.exists(job.manifest):
        return None
    return _manifest(job.manifest, create, job.source, job.storage.dest, job.storage.endpoint_url)


_MANIFESTS: dict[str, Manifest] = {}
_MANIFESTS_LOCK = threading.Lock()


def _manifest(path: str, create: bool, source: str, dest: str, endpoint: str | None) -> Manifest:
    with _MANIFESTS_LOCK:
        m = _MANIFESTS.get(path)
        if m is None or not os.path.exists(path):
            m = Manifest(path, create=create, source=source, dest=dest, endpoint=endpoint)
            _MANIFESTS[path] = m
        return m


# ---------------------------------------------------------------- stopping (Ctrl-C)

#: one event per run (``UploadJob.run_id``): set, the run's batches stop at their next file or part
_STOPS: dict[str, threading.Event] = {}
_STOPS_LOCK = threading.Lock()


def stop_event(job: UploadJob) -> threading.Event:
    """The event that stops ``job``'s batches (created on first use)."""
    with _STOPS_LOCK:
        return _STOPS.setdefault(job.run_id, threading.Event())


def stop(job: UploadJob) -> None:
    """Stop ``job``'s batches soon (Ctrl-C): none starts another file; a multipart upload in progress is aborted
    before its next part; a single PUT in flight finishes (and is verified and recorded). What is recorded in
    the manifest is what the re-run skips."""
    stop_event(job).set()


# ---------------------------------------------------------------- upload one batch


class BatchResult(BaseModel):
    """What one batch did. Counts and paths only, never contents."""

    index: int
    uploaded: list[str] = []
    uploaded_bytes: int = 0
    unchanged: int = 0
    unchanged_bytes: int = 0
    empty: int = 0
    multipart: int = 0
    problems: list[Problem] = []


# Partial results of batches whose attempt failed with transient errors, so that the retry (Prefect
# re-runs the task in this process) reports what the first attempt uploaded as uploaded, not unchanged.
_PARTIAL: dict[tuple[str, int], BatchResult] = {}
_PARTIAL_LOCK = threading.Lock()


def upload_batch(job: UploadJob, batch: Batch) -> BatchResult:
    """Upload and verify the files of one batch; record each in the manifest as it completes.

    Per-file problems (unreadable, changed during upload, rejected by the server) go into the result.
    Files that failed with transient errors (5xx, throttling, timeouts, after botocore's own retries)
    make the batch raise ``TransientError`` at the end, once every other file is done; a retry of the
    batch then skips what is already recorded. Credential or bucket errors raise at once, and so does
    ``Interrupted`` once ``stop(job)`` was called.
    """
    storage = open_storage(job.storage)
    manifest = _manifest(job.manifest, True, job.source, job.storage.dest, job.storage.endpoint_url)
    halt = stop_event(job)
    with _PARTIAL_LOCK:
        result = _PARTIAL.pop((job.run_id, batch.index), None) or BatchResult(index=batch.index)
    done = set(result.uploaded) | {p.path for p in result.problems}
    transient: list[tuple[str, TransientError]] = []
    for todo in batch.files:
        if todo.rel in done:
            continue
        check_stop(halt, f"batch {batch.index}")
        try:
            outcome, size, parts = _upload_one(job, storage, manifest, todo, halt)
        except TransientError as exc:
            transient.append((todo.rel, exc))
            continue
        except (ConnectionFailed, ConfigError, Interrupted, DiskFull):
            raise
        except FileChanged:
            result.problems.append(Problem(path=todo.rel, kind="changed", reason=(
                "changed while being uploaded; not recorded as verified (re-run to upload the new version)")))
            continue
        except FileNotFoundError:
            result.problems.append(Problem(path=todo.rel, kind="vanished", reason="deleted before it could be uploaded"))
            continue
        except SourceUnreadable as exc:
            result.problems.append(Problem(path=todo.rel, kind="unreadable", reason=exc.message.split(": ", 1)[-1]))
            continue
        except OSError as exc:
            result.problems.append(Problem(path=todo.rel, kind="unreadable", reason=f"cannot open ({exc.strerror or exc})"))
            continue
        except TerminalError as exc:
            result.problems.append(Problem(path=todo.rel, kind="failed", reason=f"upload rejected: {exc}"))
            continue
        if outcome == "unchanged":
            result.unchanged += 1
            result.unchanged_bytes += size
        else:
            result.uploaded.append(todo.rel)
            result.uploaded_bytes += size
            result.empty += size == 0
            result.multipart += parts > 0
    if transient:
        with _PARTIAL_LOCK:
            _PARTIAL[(job.run_id, batch.index)] = result
        first_rel, first = transient[0]
        raise TransientError(f"batch {batch.index}: {len(transient)} file(s) failed with transient errors, "
                             f"e.g. {first_rel}: {first}", failed=[r for r, _ in transient])
    return result


def _upload_one(job: UploadJob, storage: Storage, manifest: Manifest, todo: Todo,
                halt: threading.Event | None = None) -> tuple[str, int, int]:
    """Upload one file and verify it. Returns ``(outcome, size, parts)``; outcome is uploaded/unchanged."""
    dest = storage.dest
    path = os.path.join(job.source, todo.rel)
    key = dest.key(todo.rel)
    ctype = content_type(todo.rel)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (0 if job.follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb", buffering=0) as fh:
        st0 = os.fstat(fd)
        size = st0.st_size
        if size > storage.max_object_size:
            raise TerminalError(f"{human_bytes(size)} is over the destination's object limit")
        parts = 0
        if size <= job.multipart_threshold:
            data = read_source(fh, size, key)
            digest = hashlib.md5(data)
            md5_hex = etag_local = digest.hexdigest()
            if _already_there(storage, key, todo, md5_hex, etag_local):
                _check_unchanged(path, st0, job.follow_symlinks)
                manifest.record(Entry(todo.rel, key, size, st0.st_mtime_ns, md5_hex, etag_local, 0))
                return "unchanged", size, 0
            etag = storage.put(key, data, digest.digest(), ctype)
            del data
            if etag != md5_hex:
                raise TransientError(f"{key}: stored ETag {etag} does not match the local MD5 {md5_hex}", key=key)
        else:
            chunk = part_size(size, job.multipart_chunksize)
            md5_hex, etag_local = _hash_parts(fh, size, chunk, key, halt)
            if _already_there(storage, key, todo, md5_hex, etag_local):
                _check_unchanged(path, st0, job.follow_symlinks)
                manifest.record(Entry(todo.rel, key, size, st0.st_mtime_ns, md5_hex, etag_local, -(-size // chunk)))
                return "unchanged", size, 0
            fh.seek(0)
            etag, sent_md5 = storage.put_multipart(key, fh, size, chunk, md5_hex, ctype,
                                                   on_start=lambda uid: manifest.add_pending(key, uid), stop=halt)
            manifest.remove_pending(key)
            if sent_md5 != md5_hex:
                raise FileChanged(f"{key}: content changed between hashing and upload", key=key)
            if etag not in (etag_local, md5_hex):
                raise TransientError(f"{key}: stored ETag {etag} does not match the local file", key=key)
            parts = -(-size // chunk)
        _check_unchanged(path, st0, job.follow_symlinks)
    manifest.record(Entry(todo.rel, key, size, st0.st_mtime_ns, md5_hex, etag, parts))
    return "uploaded", size, parts


def _hash_parts(fh, size: int, chunk: int, key: str, halt: threading.Event | None = None) -> tuple[str, str]:
    whole = hashlib.md5()
    digests = []
    remaining = size
    while remaining > 0:
        check_stop(halt, key)
        data = read_source(fh, min(chunk, remaining), key)
        remaining -= len(data)
        whole.update(data)
        digests.append(hashlib.md5(data).digest())
    return whole.hexdigest(), multipart_etag(digests)


def _already_there(storage: Storage, key: str, todo: Todo, md5_hex: str, etag_local: str) -> bool:
    """True when the destination already holds these bytes (known from the manifest or a listing)."""
    if todo.md5_hint is not None:
        return todo.md5_hint == md5_hex
    if todo.etag_hint is None:
        return False
    if todo.etag_hint in (md5_hex, etag_local):
        return True
    if todo.etag_hint == "" or "-" in todo.etag_hint:
        # file:// (no ETags) or a multipart object cut differently: one HEAD for the stored MD5
        return storage.head_md5(key) == md5_hex
    return False


def _check_unchanged(path: str, st0: os.stat_result, follow: bool) -> None:
    try:
        st1 = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        raise FileChanged(f"{path}: deleted during upload") from None
    if (st1.st_size, st1.st_mtime_ns, st1.st_ino, st1.st_ctime_ns) != (
            st0.st_size, st0.st_mtime_ns, st0.st_ino, st0.st_ctime_ns):
        raise FileChanged(f"{path}: changed during upload")


def failed_batch(batch: Batch, error: BaseException, job: UploadJob) -> BatchResult:
    """The result of a batch whose task failed for good: what got done, and a problem for the rest."""
    with _PARTIAL_LOCK:
        result = _PARTIAL.pop((job.run_id, batch.index), None) or BatchResult(index=batch.index)
    done = set(result.uploaded) | {p.path for p in result.problems}
    manifest = _manifest(job.manifest, True, job.source, job.storage.dest, job.storage.endpoint_url)
    recorded = manifest.get_many(t.rel for t in batch.files if t.rel not in done)
    message = str(error).split("\n", 1)[0]
    for t in batch.files:
        if t.rel in done:
            continue
        if t.rel in recorded:  # recorded before the failure (e.g. the attempt that raised got this far)
            result.unchanged += 1
            result.unchanged_bytes += t.size
        else:
            result.problems.append(Problem(path=t.rel, kind="failed", reason=f"not uploaded: {message}"))
    return result


# ---------------------------------------------------------------- report


class UploadReport(BaseModel):
    """The outcome of ``golive migrate files`` (also written by ``--report FILE``)."""

    source: str
    dest: str
    manifest: str
    dry_run: bool = False
    started_at: str
    seconds: float = 0.0
    files_total: int = 0
    bytes_total: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    unchanged: int = 0
    unchanged_bytes: int = 0
    problems: list[Problem] = []
    notes: list[str] = []
    uploaded_paths: list[str] = Field(default_factory=list, description="This run's uploads (dry run: would upload)")

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        verb = "would upload" if self.dry_run else "uploaded"
        return (f"{verb} {self.uploaded} files ({human_bytes(self.uploaded_bytes)}), "
                f"{self.unchanged} unchanged, {len(self.problems)} problem(s)")


def summarize(job: UploadJob, plan: UploadPlan, results: list[BatchResult], started: float,
              dry_run: bool = False) -> UploadReport:
    """Fold the plan and the batch results into one report."""
    report = UploadReport(source=job.source, dest=job.storage.dest, manifest=job.manifest, dry_run=dry_run,
                          started_at=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
                          files_total=plan.files_total, bytes_total=plan.bytes_total,
                          unchanged=plan.unchanged, unchanged_bytes=plan.unchanged_bytes,
                          problems=list(plan.problems))
    empty = multipart = 0
    for r in sorted(results, key=lambda r: r.index):
        report.uploaded += len(r.uploaded)
        report.uploaded_bytes += r.uploaded_bytes
        report.uploaded_paths.extend(r.uploaded)
        report.unchanged += r.unchanged
        report.unchanged_bytes += r.unchanged_bytes
        report.problems.extend(r.problems)
        empty += r.empty
        multipart += r.multipart
    report.problems.sort(key=lambda p: p.path)
    if empty:
        report.notes.append(f"{empty} empty (0-byte) file(s) uploaded as empty objects")
    if multipart:
        report.notes.append(f"{multipart} file(s) over {human_bytes(job.multipart_threshold)} uploaded in parts")
    if plan.gone:
        report.notes.append(f"{plan.gone} file(s) the manifest held were gone from the destination (or another "
                            "size there): uploaded again")
    if plan.found_listed and not dry_run:
        report.notes.append(f"no manifest yet: {plan.found_listed} file(s) found in the destination listing were "
                            "checked by hash instead of being uploaded blindly")
    report.seconds = round(time.time() - started, 3)
    return report


def write_report(report: BaseModel, path: str | os.PathLike | None) -> None:
    """Write ``report`` as JSON to ``path`` (atomically); no-op when ``path`` is empty."""
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def dry_run_report(job: UploadJob, plan: UploadPlan, started: float) -> UploadReport:
    """What a run would do: files whose hash matches what the destination holds count as unchanged."""
    storage = open_storage(job.storage)
    result = BatchResult(index=0)

    def resolve(t: Todo) -> bool:
        if t.md5_hint is None and t.etag_hint is None:
            return False
        try:
            path = os.path.join(job.source, t.rel)
            with open(path, "rb") as fh:
                if t.size <= job.multipart_threshold:
                    md5_hex = etag = hashlib.md5(fh.read()).hexdigest()
                else:
                    md5_hex, etag = _hash_parts(fh, t.size, part_size(t.size, job.multipart_chunksize), t.rel)
            return _already_there(storage, storage.dest.key(t.rel), t, md5_hex, etag)
        except (OSError, GoliveError):
            return False

    with ThreadPoolExecutor(max(1, min(job.workers, 8))) as pool:
        same = list(pool.map(resolve, plan.todo))
    for t, s in zip(plan.todo, same):
        if s:
            result.unchanged += 1
            result.unchanged_bytes += t.size
        else:
            result.uploaded.append(t.rel)
            result.uploaded_bytes += t.size
            result.empty += t.size == 0
    report = summarize(job, plan, [result], started, dry_run=True)
    report.notes = [n for n in report.notes if "empty" not in n]
    return report


# ---------------------------------------------------------------- the whole job, without Prefect


def upload_folder(source: str | os.PathLike, dest: str, *, endpoint_url: str | None = None,
                  region: str | None = None, addressing_style: str = "auto", workers: int = 8,
                  state_dir: str | os.PathLike = DEFAULT_STATE_DIR, follow_symlinks: bool = False,
                  create_bucket: bool = False, dry_run: bool = False, credentials: dict | None = None,
                  retries: int = 4, report_path: str | os.PathLike | None = None, max_attempts: int = 4,
                  multipart_threshold: int = 16 * MiB, multipart_chunksize: int = 8 * MiB) -> UploadReport:
    """Upload ``source`` to ``dest`` and verify every object; the same steps as the ``migrate_files`` flow,
    in a plain thread pool (for scripts and the demo; no Prefect API needed).

    Args:
        source: the uploads folder (never modified).
        dest: ``s3://bucket/prefix`` or ``file:///dir``.
        endpoint_url, region, addressing_style: for S3-compatible services.
        workers: files uploaded at the same time.
        state_dir: where the manifest lives (``<state_dir>/files/*.sqlite``).
        dry_run: plan only; nothing is uploaded and the manifest is not touched.
        credentials: optional ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token``.
        retries: how often a batch is retried after transient errors (exponential backoff, 1 s base).
        max_attempts: attempts per request (botocore's standard retry mode), within each batch attempt.
        multipart_threshold, multipart_chunksize: files above the threshold go up in parts of the chunk size.

    Returns:
        An ``UploadReport``; ``report.exit_code`` is 1 when any file was not uploaded and verified.

    Raises:
        SourceError, ConfigError, ConnectionFailed: bad input (the CLI exits 2).
    """
    started = time.time()
    job = make_job(source, dest, endpoint_url=endpoint_url, region=region, addressing_style=addressing_style,
                   workers=workers, state_dir=state_dir, follow_symlinks=follow_symlinks,
                   create_bucket=create_bucket, credentials=credentials, max_attempts=max_attempts,
                   multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize)
    check_destination(job)
    plan = plan_upload(job, dry_run=dry_run)
    if dry_run:
        report = dry_run_report(job, plan, started)
    else:
        halt = stop_event(job)

        def run(batch: Batch) -> BatchResult:
            for attempt in range(retries + 1):
                try:
                    return upload_batch(job, batch)
                except TransientError as exc:
                    if attempt == retries or halt.wait(2 ** attempt):
                        return failed_batch(batch, exc, job)
            raise AssertionError("unreachable")  # pragma: no cover

        pool = ThreadPoolExecutor(workers, thread_name_prefix="golive-upload")
        try:
            results = list(pool.map(run, plan.batches(workers)))
        except BaseException:  # Ctrl-C: the batches in flight stop at their next file or part, no new one starts
            stop(job)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        report = summarize(job, plan, results, started)
    write_report(report, report_path)
    return report

"""The chaos campaign's trials, shared by the quick sample in ``make test`` (tests/chaos/test_*.py) and the full
campaign (``bench/chaos.py --trials N``).

A trial runs one flow (``files``, ``backup``, ``restore``, ``verify``, ...) under one fault, then checks the end state
against the real components (the moto server asked directly, not through the fault proxy; the databases):

* object storage faults (``reset``, ``lost``, ``503``, ``stall``, ``truncate``: ``tests/s3proxy.py``) on a share of the
  requests: at 10 % the run is retried and finishes, and what it stored equals the source (every object and its
  checksum; a restore equals the database backed up); at 100 % it fails with one line, and nothing is claimed that is
  not there (no backup manifest without its objects, no manifest row of the uploads without its object, no
  verdict on a backup that was never read), and the next run without faults finishes equal, leaving nothing behind;
* a full disk where golive writes locally (``disk_trial``);
* ``kill -9`` at a seeded moment (``kill_trial``).

Every trial returns an ``Outcome``: its failures are sentences naming what differs, empty when it survived.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20
WRITES = ("PUT", "POST", "DELETE")
READS = ("GET", "HEAD")
S3_FAULTS = ("reset", "lost", "503", "stall", "truncate")


@dataclass
class Env:
    """The components a trial runs against."""

    s3_endpoint: str  # the moto server itself (checks go here, never through the proxy)
    proxy: object  # tests/s3proxy.S3Proxy in front of it (the runs go there)
    work: Path  # a scratch folder of the trial's files
    pg_admin_url: str | None = None
    mysql_admin_url: str | None = None
    cli_env: dict = field(default_factory=dict)  # PREFECT_API_URL, PYTHONPATH for ``python -m golive``
    quick: bool = False  # smaller data (make test): the same paths (multipart uploads, parts), fewer bytes

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1")

    def new_bucket(self, tag: str) -> str:
        name = f"chaos-{tag}-{uuid.uuid4().hex[:8]}"[:63].lower()
        self.s3().create_bucket(Bucket=name)
        return name

    def trial_dir(self, tag: str) -> Path:
        path = self.work / f"{tag}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path


@dataclass
class Outcome:
    flow: str
    fault: str
    seed: int
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def survived(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        head = f"{self.flow} x {self.fault} (seed {self.seed})"
        return head + (": survived" if self.survived else ": " + "; ".join(self.failures))


# ---------------------------------------------------------------- what the trials run on


def make_uploads(root: Path, seed: int, n: int = 24, big: int = 17 * MiB) -> Path:
    """An uploads folder: ``n`` small files and one of ``big`` bytes (a multipart upload of 3 parts)."""
    rnd = random.Random(seed)
    for i in range(n):
        p = root / f"{2020 + i % 3}" / f"img{i:03d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(rnd.randint(0, 40_000)))
    if big:
        (root / "video").mkdir(parents=True, exist_ok=True)
        (root / "video" / "big.mp4").write_bytes(rnd.randbytes(big))
    return root


def make_sqlite(path: Path, seed: int, mib: int = 7) -> str:
    """A SQLite database of about ``mib`` MiB, most of it incompressible (a backup of 2 parts of 5 MiB)."""
    rnd = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB, note TEXT)")
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)")
    db.executemany("INSERT INTO blobs VALUES (?, ?, ?)",
                   ((i, rnd.randbytes(4000), f"row {i}\t\n") for i in range(mib * 256)))
    db.executemany("INSERT INTO users VALUES (?, ?, ?)", ((i, f"u{i}@example.com", "名前 " * (i % 5))
                                                          for i in range(2000)))
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def sqlite_dump(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_uploads(s3, bucket: str) -> list[dict]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def keys(s3, bucket: str, prefix: str = "") -> dict[str, int]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def one_line(exc: BaseException) -> str | None:
    """A failure sentence when ``exc`` is not one readable line of golive's."""
    from golive.errors import GoliveError

    text = str(exc)
    if not isinstance(exc, GoliveError):
        return f"failed with {type(exc).__name__} instead of a golive error: {text[:200]}"
    if "\n" in text or not text.strip():
        return f"the error is not one line: {text[:200]!r}"
    return None


# ---------------------------------------------------------------- uploads (golive migrate files)


def check_uploads(s3, bucket: str, prefix: str, src: Path, manifest_file: str) -> list[str]:
    """Everything in ``src`` is in the bucket with its bytes, nothing else is, no multipart upload is open, and
    the manifest records every file with its checksum."""
    from golive.files.manifest import Manifest

    problems = []
    stored = keys(s3, bucket, prefix)
    local = {p.relative_to(src).as_posix(): p for p in src.rglob("*") if p.is_file()}
    for rel, path in local.items():
        key = prefix + rel
        if key not in stored:
            problems.append(f"{key} missing from the bucket")
            continue
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if md5(body) != md5(path.read_bytes()):
            problems.append(f"{key} differs from the source file")
    extra = set(stored) - {prefix + r for r in local}
    if extra:
        problems.append(f"{len(extra)} object(s) in the bucket that are no file: {sorted(extra)[:3]}")
    if multipart_uploads(s3, bucket):
        problems.append(f"{len(multipart_uploads(s3, bucket))} multipart upload(s) left open in the bucket")
    m = Manifest(manifest_file, create=False)
    try:
        rows = m.load()
        if set(rows) != set(local):
            problems.append(f"the manifest records {len(rows)} file(s), the folder has {len(local)}")
        for rel, e in rows.items():
            if rel in local and e.md5 != md5(local[rel].read_bytes()):
                problems.append(f"the manifest's MD5 of {rel} is not the file's")
        if m.pending():
            problems.append(f"the manifest still lists {len(m.pending())} multipart upload(s) in flight")
    finally:
        m.close()
    return problems


def check_claims(s3, bucket: str, src: Path, manifest_file: str) -> list[str]:
    """After a failed upload: every file the manifest calls verified is in the bucket with its bytes. (Multipart
    uploads the failing storage would not let golive abort are the next run's to remove: ``check_uploads``.)"""
    problems = []
    if not os.path.exists(manifest_file):
        return problems
    db = sqlite3.connect(f"file:{manifest_file}?mode=ro", uri=True)  # read only: the disk may still be full
    try:
        rows = db.execute("SELECT rel, key FROM files").fetchall()
    except sqlite3.OperationalError:  # created, but the disk filled before its tables were: it records nothing
        rows = []
    finally:
        db.close()
    for rel, key in rows:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            problems.append(f"the manifest records {rel} as uploaded; the bucket has no {key}")
            continue
        if md5(body) != md5((src / rel).read_bytes()):
            problems.append(f"the manifest records {rel} as uploaded; {key} holds other bytes")
    return problems


def files_trial(env: Env, fault: str, rate: float, seed: int) -> Outcome:
    """``golive migrate files``'s engine (``upload_folder``: the flow's steps in a thread pool) through the fault
    proxy; then the end state."""
    from golive.errors import GoliveError
    from golive.files.manifest import manifest_path
    from golive.files.sync import upload_folder

    out = Outcome("files", f"{fault}@{rate:.0%}", seed)
    t0 = time.monotonic()
    d = env.trial_dir("files")
    src = make_uploads(d / "uploads", seed, n=8 if env.quick else 24, big=(6 if env.quick else 17) * MiB)
    bucket = env.new_bucket("files")
    dest, state = f"s3://{bucket}/u", d / "state"
    s3 = env.s3()
    manifest = str(manifest_path(os.path.abspath(state), os.path.abspath(src), dest, env.proxy.url))
    total = sum(1 for p in src.rglob("*") if p.is_file())
    env.proxy.reset()
    full = rate >= 1
    env.proxy.chaos(fault, rate, seed, methods=WRITES if full else ())
    kw = dict(endpoint_url=env.proxy.url, state_dir=state, workers=4, multipart_threshold=5 * MiB,
              multipart_chunksize=5 * MiB)
    try:
        report = upload_folder(src, dest, retries=0 if full else 4, max_attempts=1 if full else 4, **kw)
    except GoliveError as exc:
        report, err = None, exc
    except Exception as exc:  # noqa: BLE001 - reported as a failure
        report, err = None, exc
    else:
        err = None
    env.proxy.reset()
    if full:
        if err is not None:
            if (why := one_line(err)):
                out.failures.append(why)
        elif report.ok and fault not in ("stall", "truncate"):
            out.failures.append("every write failed, yet the run reported success")
        out.failures += check_claims(s3, bucket, src, manifest)
        # the next run, without faults, finishes the job and leaves nothing behind
        report = upload_folder(src, dest, **kw)
        if not report.ok or report.uploaded + report.unchanged != total:
            out.failures.append(f"the run after the faults did not finish: {report.summary()}")
    elif err is not None:
        out.failures.append(f"failed at {rate:.0%} {fault}: {err}")
    elif not report.ok or report.uploaded + report.unchanged != total:
        out.failures.append(f"not finished at {rate:.0%} {fault}: {report.summary()}: "
                            + "; ".join(p.line() for p in report.problems[:2]))
    out.failures += check_uploads(s3, bucket, "u/", src, manifest)
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


# ---------------------------------------------------------------- backups, restores, verifications


def check_backups(s3, bucket: str, prefix: str, expect: int | None = None) -> tuple[list[str], list]:
    """Every listed backup's objects are there with the manifest's SHA-256; nothing else is under ``prefix``; no
    multipart upload is open. Returns (problems, manifests)."""
    from golive.backup.manifest import Manifest

    problems, manifests = [], []
    stored = keys(s3, bucket, prefix)
    owned = set()
    for key in sorted(stored):
        if key.endswith("/manifest.json"):
            m = Manifest.from_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key)
            manifests.append(m)
            owned.add(key)
            base = key[: -len("manifest.json")]
            for o in m.objects:
                okey = base + o.stored_as
                owned.add(okey)
                if okey not in stored:
                    problems.append(f"backup {m.id} is listed but its object {o.stored_as} is missing")
                    continue
                body = s3.get_object(Bucket=bucket, Key=okey)["Body"].read()
                if hashlib.sha256(body).hexdigest() != o.sha256 or len(body) != o.size:
                    problems.append(f"backup {m.id}: {o.stored_as} does not match its manifest")
    stray = set(stored) - owned
    if stray:
        problems.append(f"{len(stray)} object(s) of no backup left under {prefix}: {sorted(stray)[:2]}")
    if multipart_uploads(s3, bucket):
        problems.append(f"{len(multipart_uploads(s3, bucket))} multipart upload(s) left open in the bucket")
    if expect is not None and len(manifests) != expect:
        problems.append(f"{len(manifests)} backup(s) listed, expected {expect}")
    return problems, manifests


def _storage(url: str, attempts: int = 4):
    from golive.backup import StorageOptions

    return StorageOptions(endpoint_url=url, max_attempts=attempts)


def backup_trial(env: Env, fault: str, rate: float, seed: int) -> Outcome:
    """``golive backup``'s engine (``backup_database``) through the fault proxy; then the bucket, and a restore of
    what it stored (without faults) compared with the source."""
    from golive.backup import BackupOptions, RestoreOptions, backup_database, restore_backup

    out = Outcome("backup", f"{fault}@{rate:.0%}", seed)
    t0 = time.monotonic()
    d = env.trial_dir("backup")
    src = make_sqlite(d / "app.db", seed)
    bucket = env.new_bucket("backup")
    at = f"s3://{bucket}/b"
    s3 = env.s3()
    full = rate >= 1
    env.proxy.reset()
    env.proxy.chaos(fault, rate, seed, methods=WRITES if full else ())
    opts = BackupOptions(compress="zstd:1", part_size_mb=5, storage=_storage(env.proxy.url, 2 if full else 4))
    err = None
    try:
        backup_database(src, at, opts)
    except Exception as exc:  # noqa: BLE001
        err = exc
    env.proxy.reset()
    if full:
        if err is None and fault not in ("stall", "truncate"):
            out.failures.append("every write failed, yet the backup reported success")
        elif err is not None and (why := one_line(err)):
            out.failures.append(why)
        problems, manifests = check_backups(s3, bucket, "b/")
        out.failures += [p for p in problems if "listed" in p or "does not match" in p]
        # the next backup, without faults, is whole and removes what the failed one left
        backup_database(src, at, BackupOptions(compress="zstd:1", part_size_mb=5, storage=_storage(env.s3_endpoint)))
        expect = len(manifests) + 1
    else:
        if err is not None:
            out.failures.append(f"failed at {rate:.0%} {fault}: {err}")
        expect = 1
    problems, manifests = check_backups(s3, bucket, "b/", expect=expect)
    out.failures += problems
    if manifests and not problems:
        target = d / "restored.db"
        restore_backup(f"{at}/{manifests[-1].id}", f"sqlite:///{target}",
                       RestoreOptions(storage=_storage(env.s3_endpoint), checks=False))
        if sqlite_dump(target) != sqlite_dump(d / "app.db"):
            out.failures.append("the restored database differs from the source")
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


def _backed_up(env: Env, d: Path, seed: int) -> tuple[str, str, str]:
    """A SQLite database and a backup of it made without faults: (source path URL, bucket, backup URL)."""
    from golive.backup import BackupOptions, backup_database

    src = make_sqlite(d / "app.db", seed)
    bucket = env.new_bucket("rst")
    res = backup_database(src, f"s3://{bucket}/b", BackupOptions(part_size_mb=5, storage=_storage(env.s3_endpoint)))
    return src, bucket, res.url


def restore_trial(env: Env, fault: str, rate: float, seed: int) -> Outcome:
    """``golive restore``'s engine through the fault proxy (reads); the restored database against the source."""
    from golive.backup import RestoreOptions, restore_backup

    out = Outcome("restore", f"{fault}@{rate:.0%}", seed)
    t0 = time.monotonic()
    d = env.trial_dir("restore")
    _, _, url = _backed_up(env, d, seed)
    full = rate >= 1
    target = d / "restored.db"
    scratch = d / "scratch"
    scratch.mkdir()
    env.proxy.reset()
    env.proxy.chaos(fault, rate, seed, methods=READS if full else ())
    err = None
    try:
        restore_backup(url, f"sqlite:///{target}",
                       RestoreOptions(storage=_storage(env.proxy.url, 2 if full else 4), checks=False,
                                      scratch_dir=str(scratch)))
    except Exception as exc:  # noqa: BLE001
        err = exc
    env.proxy.reset()
    if full and err is None and fault not in ("stall",):
        out.failures.append("every read failed, yet the restore reported success")
    if full and err is not None:
        if (why := one_line(err)):
            out.failures.append(why)
        if target.exists() and sqlite_dump(target):
            out.failures.append("the restore failed, yet the target was written")
    if not full and err is not None:
        out.failures.append(f"failed at {rate:.0%} {fault}: {err}")
    if err is None and sqlite_dump(target) != sqlite_dump(d / "app.db"):
        out.failures.append("the restored database differs from the source")
    if list(scratch.iterdir()):
        out.failures.append(f"the scratch directory was left holding {[p.name for p in scratch.iterdir()]}")
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


def verify_trial(env: Env, fault: str, rate: float, seed: int) -> Outcome:
    """``golive backups verify``'s engine through the fault proxy: the verdict is the backup's, never the
    network's (a verification that could not read the backup records nothing)."""
    from golive.backup import VerifyOptions, verify_backup
    from golive.backup.naming import parse_location
    from golive.backup.store import BackupStore

    out = Outcome("verify", f"{fault}@{rate:.0%}", seed)
    t0 = time.monotonic()
    d = env.trial_dir("verify")
    _, _, url = _backed_up(env, d, seed)
    full = rate >= 1
    env.proxy.reset()
    env.proxy.chaos(fault, rate, seed, methods=READS if full else ())
    err, res = None, None
    try:
        res = verify_backup(url, VerifyOptions(storage=_storage(env.proxy.url, 2 if full else 4),
                                               scratch_dir=str(d)))
    except Exception as exc:  # noqa: BLE001
        err = exc
    env.proxy.reset()
    loc = parse_location(url, want_backup=True)
    recorded = BackupStore(loc.base, _storage(env.s3_endpoint)).resolve(loc).verification
    if full:
        if err is None and fault != "stall":
            out.failures.append(f"every read failed, yet verify returned a verdict "
                                f"({res.verification.status}: {'; '.join(res.verification.problems)[:200]})")
        elif err is not None and (why := one_line(err)):
            out.failures.append(why)
        if recorded is not None and recorded.status != "passed":
            out.failures.append(f"a verification that could not read the backup recorded {recorded.status!r}: "
                                + "; ".join(recorded.problems)[:200])
    else:
        if err is not None:
            out.failures.append(f"failed at {rate:.0%} {fault}: {err}")
        elif not res.ok:
            out.failures.append("a good backup failed verification: " + "; ".join(res.verification.problems)[:300])
        if recorded is None or recorded.status != "passed":
            out.failures.append(f"the manifest records {recorded.status if recorded else 'no'} verification")
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


S3_TRIALS = {"files": files_trial, "backup": backup_trial, "restore": restore_trial, "verify": verify_trial}


# ---------------------------------------------------------------- the CLI (kill -9 trials)


def _run(env: Env, argv: list[str], *, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env.cli_env},
                          cwd=str(cwd))


def _popen(env: Env, argv: list[str], *, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env.cli_env}, cwd=str(cwd), start_new_session=True)


def golive_cli(env: Env, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return _run(env, [sys.executable, "-m", "golive", *map(str, args)], cwd=cwd, timeout=timeout)


# ---------------------------------------------------------------- a full disk (a small tmpfs)


class MountRefused(Exception):
    """A tmpfs cannot be mounted here (not root, or no permission): the trial cannot run."""


class TinyDisk:
    """A real small file system (``mount -t tmpfs -o size=2m``), always unmounted on exit; ``fill(leave)`` takes
    all but ``leave`` bytes of it with a filler file that ``free()`` removes."""

    def __init__(self, path: Path, size: str = "2m"):
        self.path, self.size = path, size

    def __enter__(self) -> "TinyDisk":
        self.path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.path)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            self.path.rmdir()
            raise MountRefused(res.stderr.strip() or f"mount exited {res.returncode}")
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)

    def fill(self, leave: int) -> None:
        free = shutil.disk_usage(self.path).free
        with open(self.path / "filler", "wb") as fh:
            fh.write(b"\0" * max(0, free - leave))

    def free(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)

    def contents(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name != "filler")


def _full_error(out: Outcome, err: BaseException | None, where: Path) -> None:
    from golive.errors import DiskFull

    if err is None:
        out.failures.append(f"the disk under {where} was full, yet the run reported success")
    elif not isinstance(err, DiskFull):
        out.failures.append(f"a full disk gave {type(err).__name__}, not a clear error: {str(err)[:200]}")
    else:
        if (why := one_line(err)):
            out.failures.append(why)
        if str(where) not in str(err):
            out.failures.append(f"the error does not name {where}: {err}")


def disk_state_trial(env: Env, seed: int) -> Outcome:
    """``migrate files`` with its state directory (the manifest) on a disk that fills up mid-run."""
    from golive.files.manifest import manifest_path
    from golive.files.sync import upload_folder

    out = Outcome("files", "disk full: state dir", seed)
    t0 = time.monotonic()
    d = env.trial_dir("diskstate")
    src = make_uploads(d / "uploads", seed, n=60, big=0)
    bucket = env.new_bucket("disk")
    dest = f"s3://{bucket}/u"
    with TinyDisk(d / "state") as disk:
        state = disk.path / "golive-runs"
        manifest = str(manifest_path(os.path.abspath(state), os.path.abspath(src), dest, env.s3_endpoint))
        disk.fill(leave=LEAVE_STATE)  # room for the manifest and its first records, not for all of them
        err = None
        try:
            upload_folder(src, dest, endpoint_url=env.s3_endpoint, state_dir=state, workers=4)
        except Exception as exc:  # noqa: BLE001
            err = exc
        _full_error(out, err, Path(manifest).parent)
        if os.path.exists(manifest):
            db = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True)
            try:
                ok = db.execute("PRAGMA integrity_check").fetchone()[0]
            except sqlite3.Error as exc:
                ok = str(exc)
            finally:
                db.close()
            if ok != "ok":
                out.failures.append(f"the manifest is damaged after the disk filled: {ok}")
            db = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True)
            try:
                out.note = f"{db.execute('SELECT count(*) FROM files').fetchone()[0]} file(s) recorded when it filled"
            except sqlite3.Error:
                out.note = "it filled before the manifest's tables were made"
            finally:
                db.close()
            out.failures += check_claims(env.s3(), bucket, src, manifest)
        disk.free()
        report = upload_folder(src, dest, endpoint_url=env.s3_endpoint, state_dir=state, workers=4)
        if not report.ok:
            out.failures.append(f"the run after freeing space did not finish: {report.summary()}")
        out.failures += check_uploads(env.s3(), bucket, "u/", src, manifest)
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


def disk_staging_trial(env: Env, seed: int) -> Outcome:
    """``golive backup`` of SQLite with its staging (the snapshot copy) on a full disk."""
    from golive.backup import BackupOptions, backup_database

    out = Outcome("backup", "disk full: staging", seed)
    t0 = time.monotonic()
    d = env.trial_dir("diskstage")
    src = make_sqlite(d / "app.db", seed, mib=1)
    bucket = env.new_bucket("disk")
    at = f"s3://{bucket}/b"
    with TinyDisk(d / "stage") as disk:
        disk.fill(leave=256 << 10)
        opts = BackupOptions(storage=_storage(env.s3_endpoint), scratch_dir=str(disk.path))
        err = None
        try:
            backup_database(src, at, opts)
        except Exception as exc:  # noqa: BLE001
            err = exc
        _full_error(out, err, disk.path)
        problems, manifests = check_backups(env.s3(), bucket, "b/", expect=0)
        out.failures += problems
        if disk.contents():
            out.failures.append(f"the staging directory was left holding {disk.contents()}")
        disk.free()
        backup_database(src, at, opts)
        problems, manifests = check_backups(env.s3(), bucket, "b/", expect=1)
        out.failures += problems
        out.failures += _restores_equal(env, d, at, manifests, d / "app.db")
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


def _restores_equal(env: Env, d: Path, at: str, manifests: list, source: Path) -> list[str]:
    from golive.backup import RestoreOptions, restore_backup

    if not manifests:
        return []
    target = d / f"check-{uuid.uuid4().hex[:6]}.db"
    restore_backup(f"{at}/{manifests[-1].id}", f"sqlite:///{target}",
                   RestoreOptions(storage=_storage(env.s3_endpoint), checks=False))
    return [] if sqlite_dump(target) == sqlite_dump(source) else ["the restored database differs from the source"]


def disk_scratch_trial(env: Env, seed: int) -> Outcome:
    """``golive restore`` with its scratch directory (the downloaded objects) on a full disk."""
    from golive.backup import RestoreOptions, restore_backup

    out = Outcome("restore", "disk full: scratch", seed)
    t0 = time.monotonic()
    d = env.trial_dir("diskscratch")
    src = make_sqlite(d / "app.db", seed, mib=1)
    from golive.backup import BackupOptions, backup_database

    bucket = env.new_bucket("disk")
    res = backup_database(src, f"s3://{bucket}/b", BackupOptions(storage=_storage(env.s3_endpoint)))
    target = d / "restored.db"
    with TinyDisk(d / "scratch") as disk:
        disk.fill(leave=256 << 10)
        opts = RestoreOptions(storage=_storage(env.s3_endpoint), scratch_dir=str(disk.path), checks=False)
        err = None
        try:
            restore_backup(res.url, f"sqlite:///{target}", opts)
        except Exception as exc:  # noqa: BLE001
            err = exc
        _full_error(out, err, disk.path)
        if target.exists() and sqlite_dump(target):
            out.failures.append("the restore failed, yet the target was written")
        if disk.contents():
            out.failures.append(f"the scratch directory was left holding {disk.contents()}")
        disk.free()
        restore_backup(res.url, f"sqlite:///{target}", opts)
        if sqlite_dump(target) != sqlite_dump(d / "app.db"):
            out.failures.append("the restore after freeing space differs from the source")
    out.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return out


LEAVE_STATE = 256 << 10
DISK_TRIALS = {"state": disk_state_trial, "staging": disk_staging_trial, "scratch": disk_scratch_trial}


# ---------------------------------------------------------------- kill -9 at a moment, then the same command


@dataclass
class Setup:
    """One flow's command, made ready: ``args`` for ``golive``, ``check()`` -> failures of the end state after the
    re-run, ``ready()`` -> True at the moment a fixed kill point is reached (tests), ``cleanup()``."""

    args: list
    check: object
    ready: object = None
    cleanup: object = None
    env: dict = field(default_factory=dict)
    engine: str | None = None  # the same job through golive's Python API in a plain process (no Prefect): quicker
    #: a restore killed after it had finished its work (while it reported): run again, it refuses the target it
    #: filled (never taking a non-empty target for its own); the trial then only asks that the target be whole
    done_refusal: str | None = None
    #: (text, extra argument): a re-run refused saying ``text`` (a release that was interrupted: it says what it
    #: found) is run once more with the option that accepts that state
    resume: tuple[str, str] | None = None

    def argv(self, engine: bool) -> list[str]:
        if engine:
            return [sys.executable, "-c", self.engine]
        return [sys.executable, "-m", "golive", *map(str, self.args)]


def leftover_processes(tag: str, grace: float = 5.0) -> list[str]:
    """Processes a trial's command started (they carry ``GOLIVE_CHAOS_TRIAL=tag``) still alive ``grace`` seconds
    after it ended (a helper notices its parent is gone within a second or two); killed."""
    import psutil

    def ours():
        out = []
        for p in psutil.process_iter(["pid", "name"]):
            try:
                if p.environ().get("GOLIVE_CHAOS_TRIAL") == tag:
                    out.append(p)
            except (psutil.Error, OSError):
                continue
        return out

    deadline = time.monotonic() + grace
    found = ours()
    while found and time.monotonic() < deadline:
        time.sleep(0.25)
        found = [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    names = []
    for p in found:
        try:
            names.append(f"{' '.join(p.cmdline()[:4])[:120]} (pid {p.pid})")
            p.kill()
        except (psutil.Error, OSError):
            continue
    return names


def kill_trial(env: Env, flow: str, seed: int, *, at: float | None = None, timeout: float = 240,
               engine: bool = False) -> Outcome:
    """Start ``flow``'s command, ``kill -9`` it ``at`` seconds in (None: at the flow's fixed point, once
    ``setup.ready()``), run the same command again: it must exit 0 and leave the end state an uninterrupted run
    leaves, nothing behind. ``engine``: the same job through the Python API in a plain process (what ``make test``
    runs: no Prefect start-up), else the ``golive`` command."""
    import signal

    out = Outcome(flow, "kill -9", seed)
    t0 = time.monotonic()
    d = env.trial_dir("kill-" + flow)
    setup = KILL_SETUPS[flow](env, d, seed)
    tag = uuid.uuid4().hex
    run_env = dict(env.cli_env, GOLIVE_CHAOS_TRIAL=tag, TMPDIR=str(d / "tmp"), **setup.env)
    (d / "tmp").mkdir()
    cli = Env(env.s3_endpoint, env.proxy, env.work, env.pg_admin_url, env.mysql_admin_url, run_env)
    try:
        proc = _popen(cli, setup.argv(engine), cwd=d)
        started = time.monotonic()
        deadline = started + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if at is not None and time.monotonic() - started >= at:
                break
            if at is None and setup.ready():
                break
            time.sleep(0.02)
        moment = time.monotonic() - started
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the process only (the OOM killer's way): its children see it go
            out.note = f"killed at {moment:.2f} s"
            proc.communicate()
            time.sleep(0.3)  # children notice their parent is gone
            res = _run(cli, setup.argv(engine), cwd=d, timeout=timeout)
            if res.returncode != 0 and setup.resume and setup.resume[0] in res.stderr:
                out.note += f"; run again: {setup.resume[1]}"
                res = _run(cli, setup.argv(engine) + [setup.resume[1]], cwd=d, timeout=timeout)
        else:  # it ended first: nothing was killed, its own end state is checked (a restore run again is refused)
            out.note = f"finished (exit {proc.returncode}) before the kill at {moment:.2f} s"
            stdout, stderr = proc.communicate()
            res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        problems = setup.check()
        if res.returncode != 0 and setup.done_refusal and setup.done_refusal in res.stderr and not problems:
            out.note += "; it had finished its work: run again, refused (not empty), the target whole"
        elif res.returncode != 0:
            tail = " | ".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-2:])
            out.failures.append(f"the same command again exited {res.returncode}: {tail[:300]}")
        out.failures += problems
        tmp = [p.name for p in (d / "tmp").iterdir()]
        if tmp:
            out.failures.append(f"left in the temp directory: {tmp[:4]}")
        if (alive := leftover_processes(tag)):
            out.failures.append(f"processes left running: {', '.join(alive[:4])}")
    finally:
        leftover_processes(tag, grace=0)
        if setup.cleanup:
            setup.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    out.seconds = time.monotonic() - t0
    return out


def _snippet(*lines: str) -> str:
    """A Python program that does a job through golive's API and exits 0 when it went well (``ok``)."""
    return "\n".join(["import sys", "from golive.runtime import apply_offline_defaults", "apply_offline_defaults()",
                      *lines, "sys.exit(0 if ok else 1)"])


def _files_setup(env: Env, d: Path, seed: int) -> Setup:
    from golive.files.manifest import manifest_path

    src = make_uploads(d / "uploads", seed, n=12 if env.quick else 40, big=0)
    rnd = random.Random(seed)
    for i in range(2):
        (src / "video" / f"v{i}.mp4").parent.mkdir(parents=True, exist_ok=True)
        (src / "video" / f"v{i}.mp4").write_bytes(rnd.randbytes((6 if env.quick else 12) * MiB))
    bucket = env.new_bucket("kill")
    dest, state = f"s3://{bucket}/u", d / "state"
    manifest = str(manifest_path(os.path.abspath(state), os.path.abspath(src), dest, env.s3_endpoint))
    s3 = env.s3()
    return Setup(
        args=["migrate", "files", "--source", src, "--dest", dest, "--endpoint-url", env.s3_endpoint, "--state-dir",
              state, "--workers", "2", "--multipart-threshold-mb", "5", "--multipart-chunk-mb", "5"],
        check=lambda: check_uploads(s3, bucket, "u/", src, manifest),
        ready=lambda: bool(multipart_uploads(s3, bucket)),
        engine=_snippet("from golive.files.sync import upload_folder",
                        f"r = upload_folder({str(src)!r}, {dest!r}, endpoint_url={env.s3_endpoint!r}, "
                        f"state_dir={str(state)!r}, workers=2, multipart_threshold=5 << 20, "
                        "multipart_chunksize=5 << 20)", "ok = r.ok"))


def _backup_setup(env: Env, d: Path, seed: int) -> Setup:
    verified = not env.quick  # the engine job of make test leaves out the verification (Great Expectations' import)
    src = make_sqlite(d / "app.db", seed, mib=10 if env.quick else 20)
    bucket = env.new_bucket("kill")
    at = f"s3://{bucket}/b"
    s3 = env.s3()

    def check() -> list[str]:
        problems, manifests = check_backups(s3, bucket, "b/")
        if not manifests:
            problems.append("no backup listed after the re-run")
        elif not problems:
            problems += _restores_equal(env, d, at, manifests, d / "app.db")
            if verified and (manifests[-1].verification is None or manifests[-1].verification.status != "passed"):
                problems.append("the re-run's backup is not recorded as verified")
        return problems

    return Setup(args=["backup", "--db", src, "--to", at, "--endpoint-url", env.s3_endpoint],
                 check=check, ready=lambda: bool(multipart_uploads(s3, bucket)),
                 engine=_snippet("from golive.backup import (BackupOptions, StorageOptions, VerifyOptions, "
                                 "backup_database, verify_backup)",
                                 f"s = StorageOptions(endpoint_url={env.s3_endpoint!r})",
                                 f"r = backup_database({src!r}, {at!r}, BackupOptions(storage=s))",
                                 "ok = verify_backup(r.url, VerifyOptions(storage=s)).ok" if verified else "ok = True"))


def _restore_setup(env: Env, d: Path, seed: int) -> Setup:
    from golive.backup import BackupOptions, backup_database

    src = make_sqlite(d / "app.db", seed, mib=10 if env.quick else 20)
    bucket = env.new_bucket("kill")
    backup_database(src, f"s3://{bucket}/b", BackupOptions(storage=_storage(env.s3_endpoint)))
    target = d / "restored.db"

    def check() -> list[str]:
        return [] if sqlite_dump(target) == sqlite_dump(d / "app.db") else ["the restored database differs"]

    def ready() -> bool:
        return any(p.is_dir() and any(p.iterdir()) for p in (d / "tmp").iterdir())  # downloading

    return Setup(args=["restore", "--from", f"s3://{bucket}/b/latest", "--to", f"sqlite:///{target}",
                       "--endpoint-url", env.s3_endpoint], check=check, ready=ready, done_refusal="is not empty",
                 engine=_snippet("from golive.backup import RestoreOptions, StorageOptions, restore_backup",
                                 f"r = restore_backup('s3://{bucket}/b/latest', 'sqlite:///{target}', "
                                 f"RestoreOptions(storage=StorageOptions(endpoint_url={env.s3_endpoint!r}), "
                                 f"checks={not env.quick}))",
                                 "ok = r.ok"))


def make_app_sqlite(path: Path, seed: int, rows: int = 60_000) -> dict[str, list]:
    """The migration trials' source: a table of ``rows`` events and a small one; returns its rows per table."""
    rnd = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kinds (name TEXT PRIMARY KEY, label TEXT)")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL REFERENCES kinds(name), "
               "n INTEGER, note TEXT)")
    db.executemany("INSERT INTO kinds VALUES (?, ?)", [("a", "Alpha"), ("b", "Beta"), ("c", "猫")])
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)",
                   ((i, "abc"[i % 3], rnd.randint(-10**9, 10**9), f"note {i} " + "x" * rnd.randint(0, 60))
                    for i in range(1, rows + 1)))
    db.commit()
    rows_by_table = {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall()) for t in ("kinds", "events")}
    db.close()
    return rows_by_table


def _with_db(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def _migrate_setup(engine: str):
    def setup(env: Env, d: Path, seed: int) -> Setup:
        expected = make_app_sqlite(d / "app.db", seed)
        name = f"chaos_{uuid.uuid4().hex[:10]}"
        if engine == "postgresql":
            import psycopg

            with psycopg.connect(env.pg_admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = _with_db(env.pg_admin_url, name)

            def query(sql):
                with psycopg.connect(url, connect_timeout=3) as conn:
                    return conn.execute(sql).fetchall()

            def drop():
                with psycopg.connect(env.pg_admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            tables_sql = ("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                          "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
            expect_tables = {"public.kinds", "public.events", "_golive.runs", "_golive.chunks", "_golive.capture"}
            chunks_sql = "SELECT count(*) FROM _golive.chunks"
        else:
            import pymysql

            from golive.urls import parse_url

            u = parse_url(env.mysql_admin_url)

            def connect(db=None):
                return pymysql.connect(host=u.host, port=u.port or 3306, user=u.user or "root",
                                       password=u.password or "", database=db, charset="utf8mb4", autocommit=True)

            conn = connect()
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            conn.close()
            url = _with_db(env.mysql_admin_url, name)

            def query(sql):
                conn = connect(name)
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        return cur.fetchall()
                finally:
                    conn.close()

            def drop():
                conn = connect()
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                conn.close()

            tables_sql = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            expect_tables = {"kinds", "events", "_golive_runs", "_golive_chunks", "_golive_capture"}
            chunks_sql = "SELECT count(*) FROM _golive_chunks"

        def check() -> list[str]:
            problems = []
            tables = {r[0] for r in query(tables_sql)}
            if tables - expect_tables:
                problems.append(f"tables left in the target: {sorted(tables - expect_tables)}")
            for t, rows in expected.items():
                got = sorted(tuple(r) for r in query(f"SELECT * FROM {t}"))
                if got != rows:
                    problems.append(f"{t}: {len(got)} row(s) in the target, {len(rows)} in the source"
                                    + ("" if len(got) != len(rows) else ", values differ"))
            return problems

        def ready() -> bool:
            try:
                return query(chunks_sql)[0][0] >= 2
            except Exception:  # noqa: BLE001 - not created yet
                return False

        return Setup(args=["migrate", "db", "--source", f"sqlite:///{d / 'app.db'}", "--target", url,
                           "--chunk-rows", "5000", "--workers", "1", "--no-validate"],
                     check=check, ready=ready, cleanup=drop)

    return setup


def _restore_pg_setup(env: Env, d: Path, seed: int) -> Setup:
    """A PostgreSQL database backed up (without faults), restored into an empty one: ``pg_restore`` is killed
    with golive (it dies with its parent), and the same command replaces what it half-wrote."""
    import psycopg

    from golive.backup import BackupOptions, backup_database

    names = [f"chaos_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(env.pg_admin_url, autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    src, dst = (_with_db(env.pg_admin_url, n) for n in names)
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, body text, n double precision)")
        conn.execute("INSERT INTO big SELECT g, md5(g::text) || repeat('x', (random() * 200)::int), random() "
                     f"FROM generate_series(1, {100_000 if env.quick else 300_000}) g")
        conn.execute("CREATE INDEX big_n ON big (n)")
        conn.execute("CREATE TABLE small AS SELECT g AS id, g * 2 AS twice FROM generate_series(1, 1000) g")
    bucket = env.new_bucket("kill")
    backup_database(src, f"s3://{bucket}/b", BackupOptions(storage=_storage(env.s3_endpoint)))

    def content(url):
        with psycopg.connect(url) as conn:
            return [conn.execute(f"SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) "
                                 f"FROM {t} x").fetchone() for t in ("big", "small")]

    def check() -> list[str]:
        try:
            return [] if content(dst) == content(src) else ["the restored database differs from the source"]
        except psycopg.Error as exc:
            return [f"the restored database cannot be read: {str(exc).strip()[:200]}"]

    def ready() -> bool:
        try:
            with psycopg.connect(dst, connect_timeout=3) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' "
                                    "AND datname = current_database()").fetchone()[0] > 0
        except psycopg.Error:
            return False

    def drop():
        with psycopg.connect(env.pg_admin_url, autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')

    return Setup(args=["restore", "--from", f"s3://{bucket}/b/latest", "--to", dst, "--endpoint-url", env.s3_endpoint],
                 check=check, ready=ready, cleanup=drop, done_refusal="is not empty",
                 engine=_snippet("from golive.backup import RestoreOptions, StorageOptions, restore_backup",
                                 f"r = restore_backup('s3://{bucket}/b/latest', {dst!r}, "
                                 f"RestoreOptions(storage=StorageOptions(endpoint_url={env.s3_endpoint!r}), "
                                 f"checks={not env.quick}))", "ok = r.ok"))


KILL_SETUPS = {"files": _files_setup, "backup": _backup_setup, "restore": _restore_setup, "restore-pg": _restore_pg_setup,
               "migrate-pg": _migrate_setup("postgresql"), "migrate-mysql": _migrate_setup("mysql")}

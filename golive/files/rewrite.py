"""``golive rewrite-paths``: turn a file-path column into object keys or URLs, only where the file was
uploaded and verified; reversibly.

For each row (in primary-key batches, one transaction each): the value, minus ``--strip-prefix``, is the
file's path under the uploads folder; the upload manifest says whether that file was uploaded and
verified and under which key; the new value is the ``--to`` template with ``{key}`` (the object key),
``{path}`` (the path under the uploads folder) and ``{bucket}`` filled in. In ``http(s)://`` templates
``{key}`` and ``{path}`` are percent-encoded (``/`` kept), since they become part of a URL.

Rows whose file is not in the manifest are reported and left alone. The old and new values go into
``_golive_path_map`` (see ``golive.files.db``) in the same transaction, which makes a second run change 0
rows and ``--reverse`` possible.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field, SecretStr

from golive.errors import ConfigError
from golive.files.db import PathDB, connect, translate_error
from golive.files.manifest import Manifest, find_manifests
from golive.storage import parse_dest
from golive.files.sync import DEFAULT_STATE_DIR

log = logging.getLogger(__name__)

SAMPLES = 5
MISSING_SAMPLES = 20


class RewriteJob(BaseModel):
    """One column to rewrite (or reverse). ``db`` is a secret: it may carry a password."""

    db: SecretStr = Field(description="Database URL (sqlite:///app.db, postgresql://..., mysql://...)")
    table: str = Field(description="Table holding the paths, e.g. images (schema.table allowed)")
    column: str = Field(description="Column holding the paths, e.g. path")
    to: str = Field("", description="Template for the new value: s3://bucket/{key} or https://cdn/{key}")
    strip_prefix: str = Field("", description="Leading part of the stored value that is not part of the "
                                              "path under the uploads folder, e.g. uploads/")
    manifests: list[str] = Field(default_factory=list, description="Upload manifests to trust")
    batch_size: int = Field(1000, ge=1, le=100_000)
    reverse: bool = False


class Sample(BaseModel):
    pk: str
    before: str | None
    after: str | None = None
    reason: str | None = None


class RewriteBatch(BaseModel):
    """What one batch did (or would do, in a dry run)."""

    last_pk: Any = None  # None: the table has no more rows
    scanned: int = 0
    rewritten: int = 0
    already: int = 0  # rewritten by an earlier run (value equals the recorded new value)
    missing: int = 0  # path under the prefix, but the file is not in the manifest
    other: int = 0  # NULL/empty, a URL, or not under --strip-prefix: left alone
    changed_since: int = 0  # reverse: the value is no longer what golive wrote
    samples: list[Sample] = []
    missing_samples: list[Sample] = []
    other_samples: list[Sample] = []


class RewriteReport(BaseModel):
    db: str
    table: str
    column: str
    to: str
    reverse: bool = False
    dry_run: bool = False
    started_at: str = ""
    seconds: float = 0.0
    batches: int = 0
    scanned: int = 0
    rewritten: int = 0
    already: int = 0
    missing: int = 0
    other: int = 0
    changed_since: int = 0
    samples: list[Sample] = []
    missing_samples: list[Sample] = []
    other_samples: list[Sample] = []
    map_rows_left: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if (self.missing or self.changed_since) else 0

    def add(self, b: RewriteBatch) -> None:
        self.batches += 1
        for name in ("scanned", "rewritten", "already", "missing", "other", "changed_since"):
            setattr(self, name, getattr(self, name) + getattr(b, name))
        self.samples = (self.samples + b.samples)[:SAMPLES]
        self.missing_samples = (self.missing_samples + b.missing_samples)[:MISSING_SAMPLES]
        self.other_samples = (self.other_samples + b.other_samples)[:SAMPLES]


# ---------------------------------------------------------------- job


def make_rewrite_job(db: str, table: str, column: str, *, to: str = "", strip_prefix: str = "",
                     manifest: str | None = None, dest: str | None = None,
                     state_dir: str | os.PathLike = DEFAULT_STATE_DIR, batch_size: int = 1000,
                     reverse: bool = False) -> RewriteJob:
    """Validate the options and find the upload manifest(s) to trust.

    Which manifest: ``manifest`` if given; else those under ``state_dir`` whose destination is ``dest``;
    else those whose bucket is the one in an ``s3://bucket/...`` template; else the only one there is.
    ``db`` may be ``embedded://DIR``: the embedded PostgreSQL in DIR, started if it is not running.

    Raises:
        ConfigError: a bad template, or no (or an ambiguous) manifest.
    """
    if not reverse:
        if not to:
            raise ConfigError("--to is required (e.g. --to 's3://bucket/{key}' or --to 'https://cdn.example.com/{key}')")
        if "{key}" not in to and "{path}" not in to:
            raise ConfigError(f"--to {to!r} has no {{key}} or {{path}} placeholder")
        try:
            to.format(key="k", path="p", bucket="b")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"--to {to!r}: bad placeholder {exc} (use {{key}}, {{path}}, {{bucket}})") from None
    manifests = [] if reverse else _pick_manifests(to, manifest, dest, state_dir)
    from golive.dialects import resolve
    from golive.urls import as_url

    db = resolve(as_url(db)).raw  # embedded://DIR, as `migrate db --target embedded://DIR` wrote it: its server
    return RewriteJob(db=SecretStr(db), table=table, column=column, to=to, strip_prefix=strip_prefix,
                      manifests=[str(m) for m in manifests], batch_size=batch_size, reverse=reverse)


def _pick_manifests(to: str, manifest: str | None, dest: str | None, state_dir) -> list[Path]:
    if manifest:
        if not os.path.exists(manifest):
            raise ConfigError(f"manifest {manifest} does not exist")
        return [Path(manifest)]
    found = find_manifests(state_dir)
    if not found:
        raise ConfigError(f"no upload manifest under {Path(state_dir) / 'files'}: run `golive migrate files` "
                          "first (from the same directory, or pass --state-dir / --manifest)")
    if dest:
        picked = [p for p, meta in found if meta.get("dest", "").rstrip("/") == dest.rstrip("/")]
        if not picked:
            raise ConfigError(f"no upload manifest for {dest} under {Path(state_dir) / 'files'}")
        return picked
    if to.startswith("s3://"):
        bucket = to[5:].split("/", 1)[0]
        picked = [p for p, meta in found if meta.get("dest", "").startswith(f"s3://{bucket}")]
        if picked:
            return picked
    if len(found) == 1:
        return [found[0][0]]
    dests = ", ".join(sorted({meta.get("dest", "?") for _, meta in found}))
    raise ConfigError(f"several uploads are known ({dests}): pass --dest or --manifest to choose")


def check_target(job: RewriteJob) -> str:
    """Check the table and column exist and the table has a one-column primary key; return its name."""
    db = connect(job.db.get_secret_value())
    try:
        cols = db.columns(job.table)
        if not cols:
            raise ConfigError(f"table {job.table} not found in {db.url}")
        if job.column not in cols:
            raise ConfigError(f"table {job.table} has no column {job.column} (columns: {', '.join(cols)})")
        pk = db.primary_key(job.table)
        if len(pk) != 1:
            raise ConfigError(f"table {job.table} needs a one-column primary key to be rewritten in batches "
                              f"(it has {', '.join(pk) or 'none'})")
        return pk[0]
    finally:
        db.close()


# ---------------------------------------------------------------- the value -> path -> new value


def path_of(value: Any, strip_prefix: str) -> str | None:
    """The path under the uploads folder that a stored value names, or None if it names none."""
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip()
    if "://" in v or v.startswith("data:"):
        return None
    v = _norm(v)
    prefix = _norm(strip_prefix)
    if prefix:
        if not v.startswith(prefix):
            return None
        v = _norm(v[len(prefix):])
    return v or None


def _norm(p: str) -> str:
    while p.startswith("./"):
        p = p[2:]
    return p.lstrip("/")


class _Targets:
    """Looks up paths in the manifest(s) and renders the template."""

    def __init__(self, job: RewriteJob):
        self.job = job
        self.manifests = [Manifest(m, create=False) for m in job.manifests]
        self.buckets = []
        for m in self.manifests:
            dest = m.meta().get("dest", "")
            self.buckets.append(parse_dest(dest).bucket if dest.startswith("s3") else "")
        self.url = job.to.startswith(("http://", "https://"))

    def lookup(self, rels: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for m, bucket in zip(self.manifests, self.buckets):
            for rel, e in m.get_many([r for r in rels if r not in out]).items():
                key, path = (quote(e.key, safe="/~"), quote(rel, safe="/~")) if self.url else (e.key, rel)
                out[rel] = self.job.to.format(key=key, path=path, bucket=bucket)
        return out

    def close(self) -> None:
        for m in self.manifests:
            m.close()


# ---------------------------------------------------------------- one batch


def rewrite_batch(job: RewriteJob, pk: str, after: Any, *, dry_run: bool = False,
                  db: PathDB | None = None, targets: _Targets | None = None) -> RewriteBatch:
    """Rewrite (or, with ``job.reverse``, restore) the next ``job.batch_size`` rows after ``after``.

    One transaction: read and lock the rows, compute, update, record the mapping, commit.
    """
    own_db = db is None
    db = db or connect(job.db.get_secret_value())
    own_targets = targets is None and not job.reverse
    targets = targets or (None if job.reverse else _Targets(job))
    try:
        if not dry_run:
            if not job.reverse:
                db.ensure_map_table()
                db.commit()
            db.begin()
        rows = db.fetch(job.table, pk, job.column, after, job.batch_size, lock=not dry_run)
        result = RewriteBatch(last_pk=rows[-1][0] if rows else None, scanned=len(rows))
        has_map = db.has_map_table()
        mapping = db.map_get(job.table, job.column, [str(r[0]) for r in rows]) if has_map and rows else {}
        if job.reverse:
            _reverse_rows(db, job, pk, rows, mapping, result, dry_run)
        else:
            _rewrite_rows(db, job, pk, rows, mapping, targets, result, dry_run)
        if dry_run:
            db.rollback()
        else:
            db.commit()
        return result
    except Exception as exc:
        try:
            db.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; the transaction is too
            pass
        raise translate_error(exc, db) from None
    except BaseException:
        db.rollback()
        raise
    finally:
        if own_targets and targets:
            targets.close()
        if own_db:
            db.close()


def _rewrite_rows(db, job, pk, rows, mapping, targets, result, dry_run) -> None:
    rels = {}
    for row_pk, value in rows:
        m = mapping.get(str(row_pk))
        if m is not None and m[1] == value:
            result.already += 1
            continue
        rel = path_of(value, job.strip_prefix)
        if rel is None:
            result.other += 1
            if len(result.other_samples) < SAMPLES:
                result.other_samples.append(Sample(pk=str(row_pk), before=value, reason=_why_other(value, job)))
            continue
        rels[row_pk] = (value, rel)
    found = targets.lookup(sorted({rel for _, rel in rels.values()})) if rels else {}
    updates, maps = [], []
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for row_pk, (value, rel) in rels.items():
        new = found.get(rel)
        if new is None:
            result.missing += 1
            if len(result.missing_samples) < MISSING_SAMPLES:
                result.missing_samples.append(Sample(pk=str(row_pk), before=value,
                                                     reason=f"{rel} was not uploaded and verified"))
            continue
        if new == value:
            result.already += 1
            continue
        updates.append((new, row_pk))
        maps.append((str(row_pk), value, new, now))
        if len(result.samples) < SAMPLES:
            result.samples.append(Sample(pk=str(row_pk), before=value, after=new))
    result.rewritten = len(updates)
    if updates and not dry_run:
        db.update(job.table, pk, job.column, updates)
        db.map_put(job.table, job.column, maps)


def _reverse_rows(db, job, pk, rows, mapping, result, dry_run) -> None:
    updates, done = [], []
    for row_pk, value in rows:
        m = mapping.get(str(row_pk))
        if m is None:
            result.other += 1
            continue
        old, new = m
        if value != new:
            result.changed_since += 1
            if len(result.missing_samples) < MISSING_SAMPLES:
                result.missing_samples.append(Sample(pk=str(row_pk), before=value, after=old, reason=(
                    "changed since golive rewrote it; left as is")))
            continue
        updates.append((old, row_pk))
        done.append(str(row_pk))
        if len(result.samples) < SAMPLES:
            result.samples.append(Sample(pk=str(row_pk), before=value, after=old))
    result.rewritten = len(updates)
    if updates and not dry_run:
        db.update(job.table, pk, job.column, updates)
        db.map_delete(job.table, job.column, done)


def _why_other(value: Any, job: RewriteJob) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if "://" in value:
        return "already a URL"
    return f"not under --strip-prefix {job.strip_prefix!r}"


def finish(job: RewriteJob, report: RewriteReport, dry_run: bool) -> RewriteReport:
    """After the last batch: count the mapping rows left; drop the table when a reverse emptied it."""
    db = connect(job.db.get_secret_value())
    try:
        report.map_rows_left = db.map_count(job.table, job.column)
        if job.reverse and not dry_run and db.has_map_table() and db.map_count() == 0:
            db.drop_map_table()
    finally:
        db.close()
    return report


def new_report(job: RewriteJob, dry_run: bool, started: float) -> RewriteReport:
    from golive.urls import mask

    return RewriteReport(db=mask(job.db.get_secret_value()), table=job.table, column=job.column, to=job.to,
                         reverse=job.reverse, dry_run=dry_run,
                         started_at=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"))


def rewrite_paths(job: RewriteJob, *, dry_run: bool = False) -> RewriteReport:
    """The whole rewrite (or reverse) without Prefect: every batch in key order, one connection."""
    started = time.time()
    pk = check_target(job)
    report = new_report(job, dry_run, started)
    db = connect(job.db.get_secret_value())
    targets = None if job.reverse else _Targets(job)
    try:
        after = None
        while True:
            batch = rewrite_batch(job, pk, after, dry_run=dry_run, db=db, targets=targets)
            if batch.scanned:
                report.add(batch)
            if batch.last_pk is None or batch.scanned < job.batch_size:
                break
            after = batch.last_pk
    finally:
        if targets:
            targets.close()
        db.close()
    finish(job, report, dry_run)
    report.seconds = round(time.time() - started, 3)
    return report

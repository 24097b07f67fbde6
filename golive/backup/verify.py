"""``verify_backup``: a backup is only a backup once restored. Restore it into a scratch database, check
it against the manifest, drop the scratch, and write the verdict into the manifest.

Scratch per engine: PostgreSQL: an embedded PostgreSQL 16 (pgserver) in the scratch directory, or a
temporary database on a server given with ``scratch``; MySQL/MariaDB: a temporary database on the server
given with ``scratch`` (default: the backup's own server); SQLite: a temporary file, checked with
``PRAGMA integrity_check``. Checks: object sizes and SHA-256, the restore itself, row counts per table
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
from golive.backup.engines import check_restored, engine
from golive.backup.manifest import Verification
from golive.backup.naming import parse_location
from golive.backup.options import VerifyOptions, VerifyResult
from golive.backup.restore import encryption_key, fetch_all, scratch_dir
from golive.backup.store import BackupStore
from golive.backup.stream import BackupCorrupt, ScratchFull
from golive.errors import ConfigError, ConnectionFailed, GoliveError, TerminalError
from golive.urls import DatabaseURL, mask, parse_url

log = logging.getLogger(__name__)


def _with_db(url: DatabaseURL, name: str) -> DatabaseURL:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.raw)
    return parse_url(urlunsplit(parts._replace(path="/" + name)), role="scratch")


@contextlib.contextmanager
def scratch_database(manifest, options: VerifyOptions, workdir: Path, notes: list[str] | None = None):
    """Yield the URL of an empty scratch database for ``manifest``'s engine; drop it afterwards.

    ``notes`` receives a line when the scratch is not the default one (an embedded PostgreSQL lacking an
    extension the backup needs: then a temporary database on the backup's own server)."""
    notes = [] if notes is None else notes
    name = f"{options.scratch_prefix}{uuid.uuid4().hex[:10]}"
    given = options.scratch.get_secret_value() if options.scratch else None
    if manifest.engine == "sqlite":
        yield parse_url(f"sqlite:///{workdir / 'verify.sqlite'}")
        return
    if manifest.engine == "postgresql" and not given:
        import warnings

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
        import psycopg

        try:
            srv = pgserver.get_server(str(workdir / "pgdata"), cleanup_mode="delete")
        except Exception as exc:  # noqa: BLE001 - initdb failing (a full disk) says so in one line
            text = str(exc)
            if "No space left" in text or "could not write" in text:
                raise ScratchFull(f"no space left in the scratch directory {workdir} for the embedded PostgreSQL; "
                                  "the scratch directory was removed") from None
            raise TerminalError(f"could not start the embedded PostgreSQL for verification: "
                                f"{mask(text.strip().splitlines()[-1] if text.strip() else type(exc).__name__)}") from None
        try:
            with psycopg.connect(srv.get_uri("postgres"), autocommit=True) as conn:
                have = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
                lacking = sorted(set(manifest.details.get("extensions", [])) - have)
                if not lacking:
                    conn.execute(f'CREATE DATABASE "{name}"')
            if not lacking:
                yield parse_url(srv.get_uri(name), role="scratch")
        finally:
            srv.cleanup()
        if not lacking:
            return
        given = manifest.details.get("server")
        if not given:
            raise ConfigError(f"the embedded PostgreSQL lacks the extension(s) {', '.join(lacking)} this backup "
                              "needs: verify on a server that has them (--scratch postgresql://…)")
        notes.append(f"the embedded PostgreSQL lacks {', '.join(lacking)}: verified in a temporary database on "
                     "the backup's own server")
    if manifest.engine == "postgresql":
        from golive.backup.postgresql import connect

        admin = parse_url(given, role="scratch")
        conn = connect(admin, role="scratch server")
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
            yield _with_db(admin, name)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()
        return
    from golive.backup.mysql import connect, qi

    server = given or manifest.details.get("server")
    if not server:
        raise ConfigError("give the MySQL/MariaDB server to verify on: --scratch mysql://user:pass@host/db")
    admin = parse_url(server, role="scratch")
    try:
        conn = connect(admin, role="scratch server", database=False)
    except ConnectionFailed as exc:
        raise ConnectionFailed(f"{exc} (give the scratch server with --scratch mysql://user:pass@host/db)") from None
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {qi(name)}")
        yield _with_db(admin, name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {qi(name)}")
        conn.close()


def verify_backup(url: str, options: VerifyOptions | None = None) -> VerifyResult:
    """Restore ``url`` (``.../<ID>`` or ``.../latest``) into a scratch database and check it.

    A damaged object, a failing restore or a count or schema mismatch is a *failed* verification (recorded
    in the manifest, ``ok`` False). Problems of the machine rather than the backup (scratch disk full, no
    scratch server) raise instead, and record nothing.
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
            if manifest.engine == "sqlite":
                from golive.backup.sqlite import DB_OBJECT, integrity

                bad = integrity(files[DB_OBJECT])
                if bad:
                    raise BackupCorrupt(f"{DB_OBJECT}: PRAGMA integrity_check: {bad[0]}")
                checks.append("PRAGMA integrity_check: ok")
            with scratch_database(manifest, options, work, checks) as scratch:
                where = scratch.masked
                t = time.perf_counter()
                kwargs = {"force": False}
                if manifest.engine == "postgresql":
                    kwargs.update(jobs=options.jobs, no_owner=True)
                elif manifest.engine == "mysql":
                    kwargs.update(jobs=max(options.jobs, 3))  # loads are server-bound: one more than the cores
                engine(manifest.engine).restore(scratch, files, manifest, **kwargs)
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

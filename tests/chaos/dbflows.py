"""The database flows of the chaos campaign (issue 22): their ``Setup`` for ``kill -9`` trials (registered in
``chaoslib.KILL_SETUPS``) and the server-restart trial (``restart_trial``).

Flows: ``backup-pg``, ``backup-mysql`` (``golive backup``, verified on the same server), ``restore-mysql``,
``validate`` (MariaDB source, PostgreSQL target), ``files-verify`` (``golive verify files``), ``rewrite``
(``golive rewrite-paths``), ``backups-verify``, ``backups-prune``, ``release`` (``--migrations sql:DIR``), ``purge``
(``golive maintenance purge-soft-deleted``), ``migrate-mysql-src`` (MariaDB -> PostgreSQL), ``migrate-pg-src``
(PostgreSQL -> MariaDB); with chaoslib's ``restore-pg`` and ``migrate-mysql`` (SQLite -> MariaDB).

Every database this makes is named ``chaos22_*`` and dropped by the setup's ``cleanup``.

A restart trial (``restart_trial``) runs the command against the harness's own servers (``servers.Servers``) and
restarts the source's or the target's server at a moment; the command must then either exit 0 with the end state
of an uninterrupted run, or exit non-zero with one line (no traceback, no exception class) naming what happened;
and the same command, run again with the servers up, must exit 0 with that end state, leaving nothing behind
(scratch databases, temp files, processes, open multipart uploads).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

try:
    from . import chaoslib as lib
except ImportError:  # bench/chaos.py: tests/chaos on sys.path
    import chaoslib as lib

from golive.urls import parse_url

Env, Outcome, Setup = lib.Env, lib.Outcome, lib.Setup

# ---------------------------------------------------------------- databases on a server (PG or MariaDB)


class Db:
    """One ``chaos22_*`` database on the PostgreSQL (``kind='pg'``) or MariaDB (``'mysql'``) of ``admin_url``."""

    def __init__(self, kind: str, admin_url: str, name: str | None = None):
        self.kind, self.admin_url = kind, admin_url
        self.name = name or f"chaos22_{uuid.uuid4().hex[:10]}"
        self.url = lib._with_db(admin_url, self.name)

    def _connect(self, database: str | None):
        if self.kind == "pg":
            import psycopg

            return psycopg.connect(lib._with_db(self.admin_url, database or "postgres"), autocommit=True,
                                   connect_timeout=5)
        import pymysql

        u = parse_url(self.admin_url)
        return pymysql.connect(host=u.host, port=u.port or 3306, user=u.user or "root", password=u.password or "",
                               database=database, charset="utf8mb4", autocommit=True, connect_timeout=5)

    def admin(self, sql: str) -> list:
        return self._run(None, sql)

    def _run(self, database, sql, rows=None):
        conn = self._connect(database)
        try:
            cur = conn.cursor()
            if rows is not None:
                cur.executemany(sql, rows)
                return []
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def query(self, sql: str) -> list:
        return self._run(self.name, sql)

    def many(self, sql: str, rows) -> None:
        self._run(self.name, sql, list(rows))

    def create(self) -> "Db":
        if self.kind == "pg":
            self.admin(f'CREATE DATABASE "{self.name}"')
        else:
            self.admin(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return self

    def drop(self) -> None:
        try:
            if self.kind == "pg":
                self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            else:
                self.admin(f"DROP DATABASE IF EXISTS `{self.name}`")
        except Exception:  # noqa: BLE001 - best effort (the server may be the one a trial just restarted)
            pass

    def tables(self) -> set[str]:
        if self.kind == "pg":
            return {r[0] for r in self.query("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                                             "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")}
        return {r[0] for r in self.query("SELECT TABLE_NAME FROM information_schema.TABLES "
                                         "WHERE TABLE_SCHEMA = DATABASE()")}

    def rows(self, table: str) -> list[tuple]:
        return sorted(tuple(r) for r in self.query(f"SELECT * FROM {table}"))

    def scratch_databases(self, stale: bool = False) -> list[str]:
        """golive's temporary databases (verifications) on this server; ``stale``: only those no session holds
        any more (left behind, not another verification running now)."""
        if self.kind == "pg":
            rows = self.admin("SELECT datname, EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = "
                              "'golive-scratch:' || datname) FROM pg_database WHERE datname LIKE 'golive\\_verify\\_%'")
        else:
            rows = [(n, self.admin(f"SELECT NOT IS_FREE_LOCK('golive-scratch:{n}')")[0][0])
                    for (n,) in self.admin("SHOW DATABASES LIKE 'golive\\_verify\\_%'")]
        return [n for n, held in rows if not (stale and held)]


APP_TABLES = ("kinds", "events")


def load_app(db: Db, seed: int, rows: int) -> dict[str, list]:
    """The app tables of ``chaoslib.make_app_sqlite`` in ``db``; returns its rows per table."""
    rnd = random.Random(seed)
    db.query("CREATE TABLE kinds (name varchar(20) PRIMARY KEY, label varchar(100))")
    db.query("CREATE TABLE events (id integer PRIMARY KEY, kind varchar(20) NOT NULL REFERENCES kinds(name), "
             "n bigint, note text)")
    kinds = [("a", "Alpha"), ("b", "Beta"), ("c", "猫")]
    events = [(i, "abc"[i % 3], rnd.randint(-10**9, 10**9), f"note {i} " + "x" * rnd.randint(0, 60))
              for i in range(1, rows + 1)]
    db.many("INSERT INTO kinds VALUES (%s, %s)", kinds)
    for i in range(0, len(events), 5000):
        db.many("INSERT INTO events VALUES (%s, %s, %s, %s)", events[i:i + 5000])
    return {"kinds": sorted(kinds), "events": sorted(events)}


def check_app(db: Db, expected: dict[str, list], bookkeeping: set[str]) -> list[str]:
    problems = []
    prefix = "public." if db.kind == "pg" else ""
    tables = db.tables()
    extra = tables - {prefix + t for t in expected} - bookkeeping
    if extra:
        problems.append(f"tables left in the target: {sorted(extra)}")
    for t, rows in expected.items():
        try:
            got = db.rows(t)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{t}: cannot be read ({str(exc).strip()[:120]})")
            continue
        if got != rows:
            problems.append(f"{t}: {len(got)} row(s) in the target, {len(rows)} in the source"
                            + ("" if len(got) != len(rows) else ", values differ"))
    return problems


BOOKKEEPING = {"pg": {"_golive.runs", "_golive.chunks", "_golive.capture"},
               "mysql": {"_golive_runs", "_golive_chunks", "_golive_capture"}}


def content(db: Db, tables=("big", "small")) -> list:
    """Row count and a digest of every row, per table, computed by the server (equal content, any engine)."""
    out = []
    for t in tables:
        rows = db.rows(t)
        out.append((len(rows), hash(tuple(rows))))
    return out


def load_big(db: Db, seed: int, rows: int) -> None:
    """Two tables (``big``: ``rows`` rows with text; ``small``) to back up and restore."""
    if db.kind == "pg":
        db.query(f"SELECT setseed({(seed % 1000) / 1000})")
        db.query("CREATE TABLE big (id int PRIMARY KEY, body text, n double precision)")
        db.query("INSERT INTO big SELECT g, md5(g::text) || repeat('x', (g % 200)), g / 7.0 "
                 f"FROM generate_series(1, {rows}) g")
        db.query("CREATE INDEX big_n ON big (n)")
        db.query("CREATE TABLE small (id int PRIMARY KEY, twice int)")
        db.query("INSERT INTO small SELECT g, g * 2 FROM generate_series(1, 1000) g")
    else:
        db.query("CREATE TABLE big (id int PRIMARY KEY, body text, n double, KEY big_n (n))")
        batch = [(g, f"{g:032x}" + "x" * (g % 200), g / 8) for g in range(1, rows + 1)]
        for i in range(0, len(batch), 5000):
            db.many("INSERT INTO big VALUES (%s, %s, %s)", batch[i:i + 5000])
        db.query("CREATE TABLE small (id int PRIMARY KEY, twice int)")
        db.many("INSERT INTO small VALUES (%s, %s)", [(g, g * 2) for g in range(1, 1001)])


def _kind(url: str) -> str:
    return "pg" if url.startswith("postgres") else "mysql"


# ---------------------------------------------------------------- setups


def _backup_db_setup(kind: str):
    def setup(env: Env, d: Path, seed: int) -> Setup:
        admin = env.pg_admin_url if kind == "pg" else env.mysql_admin_url
        src = Db(kind, admin).create()
        load_big(src, seed, 30_000 if env.quick else 200_000)
        bucket = env.new_bucket("b22")
        at = f"s3://{bucket}/b"
        s3 = env.s3()
        restored: list[Db] = []

        def check() -> list[str]:
            from golive.backup import RestoreOptions, restore_backup

            problems, manifests = lib.check_backups(s3, bucket, "b/")
            if not manifests:
                return problems + ["no backup listed after the re-run"]
            last = manifests[-1]
            if last.verification is None or last.verification.status != "passed":
                problems.append("the re-run's backup is not recorded as verified")
            for m in manifests:  # every backup of this intact database is good: a failed verdict is a false one
                if m.verification is not None and m.verification.status != "passed":
                    problems.append(f"backup {m.id} of an intact database is recorded as {m.verification.status}: "
                                    + "; ".join(m.verification.problems)[:200])
            if (left := src.scratch_databases(stale=True)):
                problems.append(f"scratch databases left on the server: {left}")
            if problems:
                return problems
            dst = Db(kind, admin).create()
            restored.append(dst)
            restore_backup(f"{at}/{last.id}", dst.url, RestoreOptions(storage=lib._storage(env.s3_endpoint),
                                                                      checks=False))
            return [] if content(dst) == content(src) else ["a restore of the backup differs from the source"]

        def cleanup():
            for db in [src, *restored]:
                db.drop()

        return Setup(args=["backup", "--db", src.url, "--to", at, "--endpoint-url", env.s3_endpoint, "--scratch", admin],
                     check=check, cleanup=cleanup, ready=lambda: _verifying(src))

    return setup


def _verifying(db: Db) -> bool:
    """The fixed point of a backup: its verification restores into its scratch database (the dump is stored)."""
    try:
        for name in db.scratch_databases():
            if db.kind == "pg":
                return bool(db.admin("SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_restore' "
                                     f"AND datname = '{name}'"))
            return bool(db.admin(f"SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{name}'"))
    except Exception:  # noqa: BLE001
        pass
    return False


def _restore_mysql_setup(env: Env, d: Path, seed: int) -> Setup:
    from golive.backup import BackupOptions, backup_database

    src = Db("mysql", env.mysql_admin_url).create()
    dst = Db("mysql", env.mysql_admin_url).create()
    load_big(src, seed, 30_000 if env.quick else 200_000)
    bucket = env.new_bucket("r22")
    backup_database(src.url, f"s3://{bucket}/b", BackupOptions(storage=lib._storage(env.s3_endpoint)))

    def check() -> list[str]:
        try:
            return [] if content(dst) == content(src) else ["the restored database differs from the source"]
        except Exception as exc:  # noqa: BLE001
            return [f"the restored database cannot be read: {str(exc).strip()[:200]}"]

    def ready() -> bool:
        try:
            return bool(dst.tables())
        except Exception:  # noqa: BLE001
            return False

    return Setup(args=["restore", "--from", f"s3://{bucket}/b/latest", "--to", dst.url, "--endpoint-url",
                       env.s3_endpoint], check=check, ready=ready, done_refusal="is not empty",
                 cleanup=lambda: (src.drop(), dst.drop()))


def _migrate_db_setup(src_kind: str, dst_kind: str):
    """``golive migrate db`` from a PostgreSQL or MariaDB source (``chaos22_*``) into the other engine."""

    def setup(env: Env, d: Path, seed: int) -> Setup:
        admin = {"pg": env.pg_admin_url, "mysql": env.mysql_admin_url}
        src = Db(src_kind, admin[src_kind]).create()
        dst = Db(dst_kind, admin[dst_kind]).create()
        expected = load_app(src, seed, 30_000 if env.quick else 60_000)

        def ready() -> bool:
            chunks = "_golive.chunks" if dst_kind == "pg" else "_golive_chunks"
            try:
                return dst.query(f"SELECT count(*) FROM {chunks}")[0][0] >= 2
            except Exception:  # noqa: BLE001 - not created yet
                return False

        return Setup(args=["migrate", "db", "--source", src.url, "--target", dst.url, "--chunk-rows", "5000",
                           "--workers", "1", "--no-validate"],
                     check=lambda: check_app(dst, expected, BOOKKEEPING[dst_kind]), ready=ready,
                     cleanup=lambda: (src.drop(), dst.drop()))

    return setup


def _validate_setup(env: Env, d: Path, seed: int) -> Setup:
    """A MariaDB database migrated into PostgreSQL (by ``golive migrate db``), then ``golive validate``."""
    src = Db("mysql", env.mysql_admin_url).create()
    dst = Db("pg", env.pg_admin_url).create()
    load_app(src, seed, 30_000 if env.quick else 80_000)
    res = lib.golive_cli(env, "migrate", "db", "--source", src.url, "--target", dst.url, "--no-validate", cwd=d)
    if res.returncode != 0:
        raise RuntimeError(f"the migration before validate failed: {res.stderr.strip()[-300:]}")

    def check() -> list[str]:
        leftovers = [t for t in dst.tables() if "tmp" in t or "golive_v" in t]
        return [f"tables left in the target: {leftovers}"] if leftovers else []

    return Setup(args=["validate", "--source", src.url, "--target", dst.url, "--no-data-docs", "--workers", "2"],
                 check=check, cleanup=lambda: (src.drop(), dst.drop()))


def _uploaded(env: Env, d: Path, seed: int) -> tuple[Path, str, str]:
    """An uploads folder uploaded (without faults) into a new bucket: (folder, bucket, dest)."""
    from golive.files.sync import upload_folder

    src = lib.make_uploads(d / "uploads", seed, n=60 if env.quick else 300, big=0)
    bucket = env.new_bucket("f22")
    dest = f"s3://{bucket}/u"
    r = upload_folder(src, dest, endpoint_url=env.s3_endpoint, state_dir=d / "golive-runs", workers=4)
    assert r.ok, r.summary()
    return src, bucket, dest


def _files_verify_setup(env: Env, d: Path, seed: int) -> Setup:
    src, bucket, dest = _uploaded(env, d, seed)
    return Setup(args=["verify", "files", "--source", src, "--dest", dest, "--endpoint-url", env.s3_endpoint,
                       "--workers", "2"], check=lambda: [])


def _rewrite_setup(env: Env, d: Path, seed: int) -> Setup:
    src, bucket, dest = _uploaded(env, d, seed)
    rels = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    rows = 4000 if env.quick else 20_000
    db = sqlite3.connect(d / "app.db")
    db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, path TEXT)")
    db.executemany("INSERT INTO docs VALUES (?, ?)", ((i, "uploads/" + rels[i % len(rels)]) for i in range(rows)))
    db.commit()
    db.close()
    want = [(i, f"s3://{bucket}/u/{rels[i % len(rels)]}") for i in range(rows)]

    def check() -> list[str]:
        db = sqlite3.connect(d / "app.db")
        try:
            got = db.execute("SELECT id, path FROM docs ORDER BY id").fetchall()
        finally:
            db.close()
        bad = [g for g, w in zip(got, want) if g != w]
        return [f"{len(bad)} of {rows} row(s) not rewritten as expected, e.g. {bad[:1]}"] if bad else []

    return Setup(args=["rewrite-paths", "--db", f"sqlite:///{d / 'app.db'}", "--table", "docs", "--column", "path",
                       "--to", f"s3://{bucket}/{{key}}", "--strip-prefix", "uploads/", "--dest", dest,
                       "--batch-size", "100"], check=check)


def _backups_setup(env: Env, d: Path, seed: int, count: int) -> tuple[str, str, list]:
    from golive.backup import BackupOptions, backup_database

    src = lib.make_sqlite(d / "app.db", seed, mib=4 if env.quick else 12)
    bucket = env.new_bucket("v22")
    at = f"s3://{bucket}/b"
    ids = [backup_database(src, at, BackupOptions(storage=lib._storage(env.s3_endpoint))).url for _ in range(count)]
    return bucket, at, ids


def _backups_verify_setup(env: Env, d: Path, seed: int) -> Setup:
    bucket, at, ids = _backups_setup(env, d, seed, 1)
    s3 = env.s3()

    def check() -> list[str]:
        problems, manifests = lib.check_backups(s3, bucket, "b/", expect=1)
        v = manifests[0].verification if manifests else None
        if v is None or v.status != "passed":
            problems.append(f"the backup's verification is recorded as {v.status if v else 'nothing'}")
        return problems

    return Setup(args=["backups", "verify", ids[0], "--endpoint-url", env.s3_endpoint], check=check)


def _backups_prune_setup(env: Env, d: Path, seed: int) -> Setup:
    bucket, at, ids = _backups_setup(env, d, seed, 5)
    s3 = env.s3()
    keep = [u.rsplit("/", 1)[1] for u in ids[-2:]]

    def check() -> list[str]:
        problems, manifests = lib.check_backups(s3, bucket, "b/")
        got = [m.id for m in manifests]
        if sorted(got) != sorted(keep):
            problems.append(f"backups kept {got}, expected {keep}")
        return problems

    return Setup(args=["backups", "prune", "--at", at, "--keep-last", "2", "--keep-daily", "0", "--keep-weekly", "0",
                       "--keep-monthly", "0", "--endpoint-url", env.s3_endpoint], check=check)


RELEASE_ROWS = 150_000


def _release_setup(env: Env, d: Path, seed: int) -> Setup:
    """Three SQL migrations (a column, an UPDATE of every row, an index) released into PostgreSQL."""
    db = Db("pg", env.pg_admin_url).create()
    rows = 20_000 if env.quick else RELEASE_ROWS
    db.query("CREATE TABLE t (id int PRIMARY KEY, v text)")
    db.query(f"INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, {rows}) g")
    mig = d / "migrations"
    mig.mkdir()
    (mig / "001_add_a.sql").write_text("ALTER TABLE t ADD COLUMN a int;\n")
    (mig / "002_fill_a.sql").write_text("UPDATE t SET a = id * 2;\n")
    (mig / "003_index_a.sql").write_text("CREATE INDEX t_a ON t (a);\n")

    def check() -> list[str]:
        problems = []
        versions = [r[0] for r in db.query("SELECT version FROM _golive.migrations ORDER BY 1")]
        if versions != ["001", "002", "003"]:
            problems.append(f"migrations recorded: {versions}")
        bad = db.query("SELECT count(*) FROM t WHERE a IS DISTINCT FROM id * 2")[0][0]
        if bad:
            problems.append(f"{bad} row(s) of t without 002's value")
        if not db.query("SELECT 1 FROM pg_indexes WHERE indexname = 't_a'"):
            problems.append("003's index is missing")
        if db.query("SELECT count(*) FROM t")[0][0] != rows:
            problems.append("t lost rows")
        if db.query("SELECT count(*) FROM _golive.releases WHERE state = 'running'")[0][0]:
            problems.append("a release is still recorded as running")
        return problems

    def ready() -> bool:
        try:
            return bool(db.query("SELECT 1 FROM _golive.releases WHERE state = 'running' "
                                 "AND step NOT IN ('backup', 'migrate')"))  # after its migrations
        except Exception:  # noqa: BLE001
            return False

    return Setup(args=["release", "--db", db.url, "--migrations", f"sql:{mig}", "--backup-to", f"file://{d}/b",
                       "--allow", "index-not-concurrent", "--allow", "unbatched-dml"],
                 check=check, ready=ready, cleanup=db.drop, resume=("--resolve-interrupted", "--resolve-interrupted"))


PURGE = {"old": 30_000, "young": 3_000, "live": 7_000}


def _purge_setup(env: Env, d: Path, seed: int) -> Setup:
    db = Db("pg", env.pg_admin_url).create()
    n = {k: v // (3 if env.quick else 1) for k, v in PURGE.items()}
    db.query("CREATE TABLE posts (id int PRIMARY KEY, deleted_at timestamptz, body text)")
    db.query(f"INSERT INTO posts SELECT g, now() - interval '90 days', md5(g::text) FROM generate_series(1, {n['old']}) g")
    db.query(f"INSERT INTO posts SELECT g, now() - interval '2 days', 'young' "
             f"FROM generate_series({n['old'] + 1}, {n['old'] + n['young']}) g")
    db.query(f"INSERT INTO posts SELECT g, NULL, 'live' FROM generate_series({n['old'] + n['young'] + 1}, "
             f"{n['old'] + n['young'] + n['live']}) g")

    def check() -> list[str]:
        got = dict(db.query("SELECT coalesce(body, ''), count(*) FROM posts WHERE body IN ('young', 'live') "
                            "GROUP BY 1"))
        old = db.query("SELECT count(*) FROM posts WHERE deleted_at < now() - interval '30 days'")[0][0]
        problems = []
        if old:
            problems.append(f"{old} old soft-deleted row(s) left")
        if got.get("young", 0) != n["young"] or got.get("live", 0) != n["live"]:
            problems.append(f"rows that must stay: {got}, expected young {n['young']}, live {n['live']}")
        return problems

    def ready() -> bool:
        try:
            return db.query("SELECT count(*) FROM posts")[0][0] < sum(n.values()) - 1000
        except Exception:  # noqa: BLE001
            return False

    return Setup(args=["maintenance", "--db", db.url, "purge-soft-deleted", "--table", "posts", "--older-than", "30d",
                       "--batch-size", "500", "--pause", "20ms"], check=check, ready=ready, cleanup=db.drop)


def _go_live_setup(env: Env, d: Path, seed: int) -> Setup:
    """``golive go-live`` of the sample app (SQLite with its bad rows, an uploads folder) into PostgreSQL and a
    bucket: backup, migrate, validate, upload, verify, rewrite the paths. The end state: every row but the rejected
    ones, every file in the bucket with its bytes, every image's path rewritten, the journal's steps all done."""
    from golive import sample
    from golive.go_live.config import load_config

    users = 60 if env.quick else 300
    counts = sample.build(d / "app.db", users=users, uploads=d / "uploads")
    dst = Db("pg", env.pg_admin_url).create()
    bucket = env.new_bucket("golive")
    (d / "golive.toml").write_text("\n".join([
        f'state_dir = "{d / "state"}"', "[source]", f'database = "sqlite:///{d / "app.db"}"',
        f'uploads = "{d / "uploads"}"', "[target]", f'database = "{dst.url}"', f'bucket = "s3://{bucket}/media"',
        f'endpoint_url = "{env.s3_endpoint}"', 'region = "us-east-1"',
        "[migrate]", "max_rejects = 100", "workers = 2", "[[rewrite]]", 'table = "images"', 'column = "path"',
        'strip_prefix = "uploads/"', 'template = "https://cdn.example.com/{path}"', ""]), encoding="utf-8")
    files = {p.relative_to(d / "uploads").as_posix(): p.stat().st_size
             for p in (d / "uploads").rglob("*") if p.is_file()}

    def check() -> list[str]:
        out = []
        cfg = load_config(d / "golive.toml")
        journal = json.loads((Path(cfg.state_dir) / "go-live" / f"{cfg.key()}.json").read_text())
        undone = [k for k, v in journal["steps"].items() if v.get("status") not in ("done", "skipped")]
        if undone:
            out.append(f"journal steps not done: {undone}")
        n = dst.query("SELECT count(*) FROM users")[0][0]
        if n != counts["users"]:
            out.append(f"users: {n} rows, the source has {counts['users']}")
        left = dst.query("SELECT count(*) FROM images WHERE NOT starts_with(path, 'https://cdn.example.com/')")[0][0]
        if left:
            out.append(f"{left} image path(s) not rewritten")
        got = {k[len("media/"):]: v for k, v in lib.keys(env.s3(), bucket, "media/").items()}
        if got != files:
            out.append(f"bucket: {len(got)} objects, the folder has {len(files)} files (or sizes differ)")
        out += [f"{m} multipart upload(s) left open" for m in [len(lib.multipart_uploads(env.s3(), bucket))] if m]
        return out

    def ready() -> bool:
        try:
            return dst.query("SELECT count(*) FROM _golive.chunks")[0][0] >= 1
        except Exception:  # noqa: BLE001 - not created yet
            return False

    return Setup(args=["go-live", "--config", d / "golive.toml"], check=check, ready=ready, cleanup=dst.drop)


SETUPS = {
    "go-live": _go_live_setup,
    "backup-pg": _backup_db_setup("pg"), "backup-mysql": _backup_db_setup("mysql"),
    "restore-mysql": _restore_mysql_setup, "validate": _validate_setup, "files-verify": _files_verify_setup,
    "rewrite": _rewrite_setup, "backups-verify": _backups_verify_setup, "backups-prune": _backups_prune_setup,
    "release": _release_setup, "purge": _purge_setup,
    "migrate-mysql-src": _migrate_db_setup("mysql", "pg"), "migrate-pg-src": _migrate_db_setup("pg", "mysql"),
}
lib.KILL_SETUPS.update(SETUPS)

#: the restart trials: flow -> {side: server kind}
RESTARTS = {
    "backup-pg": {"source": "pg"}, "backup-mysql": {"source": "mysql"},
    "restore-pg": {"target": "pg"}, "restore-mysql": {"target": "mysql"},
    "validate": {"source": "mysql", "target": "pg"},
    "migrate-mysql-src": {"source": "mysql", "target": "pg"}, "migrate-mysql": {"target": "mysql"},
    "release": {"target": "pg"}, "purge": {"target": "pg"},
}

# ---------------------------------------------------------------- the restart trial

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b")
#: an internal error's own words reaching the user (the cause unnamed)
PYTHON_TALK = re.compile(r"'NoneType'|object has no attribute|not subscriptable|unexpected keyword argument")


def one_clear_line(res: subprocess.CompletedProcess) -> str | None:
    """A failure sentence when a failed command did not end with one readable line of its own: its last line on
    stderr (``error: …``, or the statement of a release or maintenance run, "refused before …"; stdout's last when
    stderr is empty), no traceback, no exception class, nothing after it."""
    text = res.stdout + res.stderr
    if "Traceback (most recent call last)" in text:
        return "a Python traceback: " + " | ".join(res.stderr.strip().splitlines()[-2:])[:300]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if not lines:  # an outcome golive reports on stdout, its last line (``golive backup``'s exit 3: "backup
        # written, not verified: <why>")
        lines = [ln for ln in res.stdout.splitlines() if ln.strip()][-1:]
    if not lines:
        return "failed without a line"
    errors = [i for i, ln in enumerate(lines) if ln.lstrip().lower().startswith("error")]
    if len(errors) > 1:
        return f"{len(errors)} error lines, expected one: " + " | ".join(lines[-3:])[:300]
    if errors and errors[0] != len(lines) - 1:
        return "the error is not one line: " + " | ".join(lines[errors[0]:])[:300]
    if (m := CLASS_NAME.search(lines[-1])):
        return f"the line names an exception class ({m.group(0)}): {lines[-1][:300]}"
    if (m := PYTHON_TALK.search(lines[-1])):
        return f"the line is Python's, not golive's ({m.group(0)}): {lines[-1][:300]}"
    return None


def restart_trial(env: Env, servers, flow: str, side: str, seed: int, *, at: float | None = None,
                  timeout: float = 300) -> Outcome:
    """Run ``flow``'s command against the harness's servers; restart the ``side`` server ``at`` seconds in (None:
    once ``setup.ready()``); then the checks of the module's docstring."""
    kind = RESTARTS[flow][side]
    out = Outcome(flow, f"restart {side}", seed)
    t0 = time.monotonic()
    d = env.trial_dir("rst-" + flow)
    env = Env(env.s3_endpoint, env.proxy, env.work, servers.pg_url if servers.pg_port else None,
              servers.my_url if servers.my_port else None, env.cli_env, env.quick)
    setup = lib.KILL_SETUPS[flow](env, d, seed)
    tag = uuid.uuid4().hex
    (d / "tmp").mkdir()
    cli = Env(env.s3_endpoint, env.proxy, env.work, env.pg_admin_url, env.mysql_admin_url,
              dict(env.cli_env, GOLIVE_CHAOS_TRIAL=tag, TMPDIR=str(d / "tmp"), **setup.env))
    try:
        proc = lib._popen(cli, setup.argv(False), cwd=d)
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < timeout:
            if (at is not None and time.monotonic() - started >= at) or (at is None and setup.ready()):
                break
            time.sleep(0.05)
        moment = time.monotonic() - started
        if proc.poll() is None:
            away = servers.restart(kind)
            out.note = f"{kind} restarted at {moment:.2f} s ({away:.1f} s away)"
        else:
            out.note = f"finished (exit {proc.returncode}) before the restart at {moment:.2f} s"
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            out.failures.append(f"the command did not end within {timeout:.0f} s of the restart")
        first = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if first.returncode == 0:
            out.note += "; exit 0"
            out.failures += [f"exit 0, yet: {p}" for p in setup.check()]
        else:
            last = (first.stderr.strip() or first.stdout.strip()).splitlines()[-1:] or [""]
            out.note += f"; exit {first.returncode}: {last[0][:160]}"
            if (why := one_clear_line(first)):
                out.failures.append(why)
            res = lib._run(cli, setup.argv(False), cwd=d, timeout=timeout)
            if res.returncode != 0 and setup.resume and setup.resume[0] in res.stderr:
                out.note += f"; run again: {setup.resume[1]}"
                res = lib._run(cli, setup.argv(False) + [setup.resume[1]], cwd=d, timeout=timeout)
            if res.returncode != 0 and setup.done_refusal and setup.done_refusal in res.stderr:
                out.note += "; it had finished its work: run again, refused (not empty)"
            elif res.returncode != 0:
                tail = " | ".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-2:])
                out.failures.append(f"the same command again exited {res.returncode}: {tail[:300]}")
            out.failures += setup.check()
        tmp = [p.name for p in (d / "tmp").iterdir()]
        if tmp:
            out.failures.append(f"left in the temp directory: {tmp[:4]}")
        if (alive := lib.leftover_processes(tag)):
            out.failures.append(f"processes left running: {', '.join(alive[:4])}")
        for k, url in (("pg", env.pg_admin_url), ("mysql", env.mysql_admin_url)):
            if url and (left := Db(k, url).scratch_databases(stale=True)):
                out.failures.append(f"scratch databases left: {left}")
    except Exception as exc:  # noqa: BLE001 - the harness failed: the trial failed, saying how
        out.failures.append(f"the trial crashed: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        lib.leftover_processes(tag, grace=0)
        if setup.cleanup:
            setup.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    out.seconds = time.monotonic() - t0
    return out

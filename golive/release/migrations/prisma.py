"""``prisma:DIR``: ``prisma/migrations/*/migration.sql`` applied as ``prisma migrate deploy`` applies them,
without Prisma's CLI or Node.

The same semantics, read from prisma-engines (``schema-engine/core/src/commands/apply_migrations.rs`` and
``sql_migration_persistence.rs``):

* ``migration_lock.toml``'s provider must be the database's (``Release.prisma_provider``: ``postgresql`` / ``mysql``).
* ``_prisma_migrations`` is created exactly as Prisma creates it when missing (``Release.prisma_table_ddl``), and only in an empty schema
  (else Prisma's P3005: a database with tables but no migration history needs a baseline first). golive's own
  bookkeeping tables do not count.
* A row with ``finished_at`` and ``rolled_back_at`` both NULL is a failed migration: nothing new is applied
  (P3009) until it is resolved.
* Pending: the folders (sorted by name) without a row that is not rolled back.
* For each: a row ``(id = random UUID, checksum = SHA-256 of migration.sql, started_at, migration_name)``;
  the script (PostgreSQL: sent as one simple query, so several statements run in one implicit
  transaction; MySQL: statement by statement); then ``applied_steps_count + 1`` and ``finished_at``; on an
  error ``logs`` gets the error and the row stays unfinished.
* Checksums compare as Prisma's ``script_matches_checksum`` does (LF and CRLF endings alike, and the old
  checksums without zero padding); a changed applied migration is drift, and golive refuses it.
* Prisma's own advisory lock (``Release.try_prisma_lock``: PostgreSQL ``72707369``, MySQL
  ``GET_LOCK('prisma_migrate')``) is held by the release, so ``prisma migrate deploy`` cannot run beside it.

Down-migrations: a ``down.sql`` next to ``migration.sql`` (what ``prisma migrate diff … --script > down.sql``
produces, as Prisma's docs suggest); rolling one back sets the row's ``rolled_back_at``, which is how Prisma
marks a migration as not applied.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from golive.errors import ConfigError
from golive.model.release import text_of
from golive.release.migrations.base import BOOKKEEPING, Executor, MigrationSource, now, sha256_file
from golive.release.model import Applied, Migration, MigrationFailed, SourceStatus
from golive.release.sqltext import read_sql, split

TABLE = "_prisma_migrations"


def checksum(script: str) -> str:
    return hashlib.sha256(script.encode("utf-8")).hexdigest()


def matches(script: str, recorded: str) -> bool:
    """Prisma's ``script_matches_checksum``: line endings either way; old checksums lacked zero padding."""
    for variant in (script, script.replace("\r\n", "\n"), script.replace("\n", "\r\n")):
        digest = hashlib.sha256(variant.encode("utf-8")).digest()
        text = digest.hex() if (not recorded or len(recorded) == 64) else "".join(f"{b:x}" for b in digest)
        if text == recorded:
            return True
    return False


def migrations_dir(path: Path) -> Path:
    """``prisma/``, ``prisma/migrations`` or the app's root (holding ``prisma/migrations``)."""
    for candidate in (path / "migrations", path / "prisma" / "migrations", path):
        if candidate.is_dir() and (any((d / "migration.sql").is_file() for d in candidate.iterdir() if d.is_dir())
                                   or (candidate / "migration_lock.toml").is_file()):
            return candidate
    raise ConfigError(f"prisma:{path}: no migrations folder there (expected prisma/migrations/<name>/migration.sql)")


def lock_provider(mdir: Path) -> str | None:
    lock = mdir / "migration_lock.toml"
    if not lock.is_file():
        return None
    m = re.search(r'^\s*provider\s*=\s*"([^"]+)"', lock.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


class PrismaSource(MigrationSource):
    kind = "prisma"

    def __init__(self, path: Path, url) -> None:
        super().__init__(path, url)
        self._ids: dict[str, str] = {}

    def load(self) -> list[Migration]:
        mdir = migrations_dir(self.path)
        provider = lock_provider(mdir)
        wanted = self.release.prisma_provider
        if provider is not None and provider != wanted:
            # Prisma's P3019: the migrations were made for another database
            raise ConfigError(f"prisma:{mdir}: migration_lock.toml says provider {provider!r}, but the database is "
                              f"{wanted} (Prisma's P3019: make new migrations for this provider)")
        out = []
        for d in sorted(p for p in mdir.iterdir() if p.is_dir()):
            script_path = d / "migration.sql"
            if not script_path.is_file():
                raise ConfigError(f"prisma:{mdir}: {d.name}/ has no migration.sql")
            script = read_sql(script_path)
            # Prisma's checksum is of the file as written (a byte-order mark included); the SQL run is without it
            bom = "\ufeff" if script_path.read_bytes().startswith(b"\xef\xbb\xbf") else ""
            down = d / "down.sql"
            out.append(Migration(kind="prisma", version=d.name, name=d.name.split("_", 1)[-1], path=str(script_path),
                                 checksum=checksum(bom + script), sql=script, down_path=str(down) if down.is_file() else None,
                                 has_down=down.is_file(), transactional=self._atomic(script)))
        if not out:
            raise ConfigError(f"prisma:{mdir}: no migrations there")
        return out

    def _atomic(self, script: str) -> bool:
        """Does the script run in one implicit transaction (PostgreSQL's multi-statement simple query, unless it
        manages its own)? Where the engine commits each DDL statement (MySQL), never."""
        if not self.release.runs_whole_scripts:
            return False
        return self.release.script_is_atomic([s.upper for s in split(script, self.dialect)])

    # ------------------------------------------------------------ history

    def _exists(self, conn) -> bool:
        return self.release.table_exists(conn, self.release.current_schema(conn), TABLE)

    def rows(self, conn) -> list[dict]:
        if not self._exists(conn):
            return []
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
                        f"applied_steps_count FROM {TABLE} ORDER BY started_at")
            cols = [c[0] for c in cur.description]
            return [{k: text_of(v) if isinstance(v, (bytes, bytearray)) else v for k, v in zip(cols, r)}
                    for r in cur.fetchall()]

    def _other_tables(self, conn) -> list[str]:
        return [n for n in self.release.list_tables(conn) if not n.startswith(BOOKKEEPING)]

    def status(self, conn) -> SourceStatus:
        migrations = self.load()
        st = SourceStatus(migrations=migrations)
        if not self._exists(conn):
            others = self._other_tables(conn)
            if others:
                st.problems.append(f"the database has tables ({', '.join(others[:5])}) but no _prisma_migrations: "
                                   "Prisma's P3005, the schema is not empty; baseline it first "
                                   "(prisma migrate resolve --applied <the migration it already has>)")
            st.pending = list(migrations)
            st.notes.append("_prisma_migrations does not exist yet: it is created as Prisma creates it")
            return st
        on_disk = {m.version: m for m in migrations}
        live = []
        for r in self.rows(conn):
            if r["rolled_back_at"] is not None:
                continue
            if r["finished_at"] is None:
                st.failed.append(r["migration_name"])
                logs = (r["logs"] or "").strip()
                st.problems.append(f"the `{r['migration_name']}` migration started at {r['started_at']} failed"
                                   + (f" with the following logs: {logs.splitlines()[0][:200]}" if logs else "")
                                   + " (Prisma's P3009: resolve it before new migrations are applied)")
                continue
            live.append(r)
            m = on_disk.get(r["migration_name"])
            st.applied.append(Applied(version=r["migration_name"], name=r["migration_name"], checksum=r["checksum"],
                                      applied_at=r["finished_at"]))
            if m is None:
                st.missing.append(r["migration_name"])
            elif m.checksum != r["checksum"] and not matches(m.sql or "", r["checksum"]):
                st.drift.append(f"{m.version}: migration.sql changed after it was applied (the checksum in "
                                f"_prisma_migrations no longer matches)")
        names = {r["migration_name"] for r in self.rows(conn) if r["rolled_back_at"] is None}
        st.pending = [m for m in migrations if m.version not in names]
        if st.applied:
            st.current = st.applied[-1].version
        return st

    def prepare(self, conn) -> None:
        if not self._exists(conn):
            with conn.cursor() as cur:
                cur.execute(self.release.prisma_table_ddl)

    def _ts(self):
        return self.release.timestamp(now(), digits=3)  # the columns are DATETIME(3) where they are DATETIME

    def apply(self, ex: Executor, m: Migration, release_id: str) -> int:
        conn = ex.session()
        try:
            mid = str(uuid.uuid4())
            self._ids[m.version] = mid
            with conn.cursor() as cur:  # record_migration_started
                cur.execute(f"INSERT INTO {TABLE} (id, checksum, started_at, migration_name) VALUES (%s, %s, %s, %s)",
                            (mid, m.checksum, self._ts(), m.version))
            what = f"migration {m.version}"
            try:
                n = self._run(ex, m.sql or "", what=what, atomic=m.transactional)
            except MigrationFailed as exc:
                self._failed(conn, mid, m, exc)
                raise
            except Exception as exc:  # LockTimeout and the rest: recorded as Prisma records a failed step
                self._failed(conn, mid, m, exc)
                raise
            with conn.cursor() as cur:  # record_successful_step, record_migration_finished
                cur.execute(f"UPDATE {TABLE} SET applied_steps_count = applied_steps_count + 1 WHERE id = %s", (mid,))
                cur.execute(f"UPDATE {TABLE} SET finished_at = %s WHERE id = %s", (self._ts(), mid))
            return n
        finally:
            conn.close()

    def _run(self, ex: Executor, script: str, *, what: str, atomic: bool) -> int:
        """Run a script as Prisma does: whole, as one query, where the engine runs it so; else statement by
        statement. Returns the statements it holds."""
        if self.release.runs_whole_scripts:
            ex.run_script(script, what=what, atomic=atomic)
            return len(split(script, self.dialect))
        return ex.run(split(script, self.dialect), transactional=False, what=what)

    def _failed(self, conn, mid: str, m: Migration, exc: BaseException) -> None:
        code = exc.context.get("code", "") if hasattr(exc, "context") else ""
        logs = (f"A migration failed to apply. New migrations cannot be applied before the error is recovered from. "
                f"Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve"
                f"\n\nMigration name: {m.version}\n\nDatabase error code: {code or 'none'}\n\nDatabase error:\n{exc}")
        try:
            with conn.cursor() as cur:  # record_failed_step
                cur.execute(f"UPDATE {TABLE} SET logs = %s WHERE id = %s", (logs, mid))
        except Exception:  # noqa: BLE001 - the migration's own error is what matters
            pass

    def down(self, ex: Executor, m: Migration) -> int:
        script = read_sql(m.down_path)
        what = f"down-migration of {m.version}"
        n = self._run(ex, script, what=what, atomic=self._atomic(script))
        conn = ex.session()
        try:
            with conn.cursor() as cur:  # mark_migration_rolled_back_by_id
                cur.execute(f"UPDATE {TABLE} SET rolled_back_at = %s WHERE migration_name = %s AND rolled_back_at IS NULL "
                            "AND finished_at IS NOT NULL", (self._ts(), m.version))
        finally:
            conn.close()
        return n

    def forget_failed(self, conn, m: Migration) -> None:
        mid = self._ids.get(m.version)
        if mid and self._exists(conn):
            with conn.cursor() as cur:
                cur.execute(f"DELETE FROM {TABLE} WHERE id = %s AND finished_at IS NULL", (mid,))

    def probe(self, conn, m: Migration) -> str:
        for r in reversed(self.rows(conn)):
            if r["migration_name"] == m.version and r["rolled_back_at"] is None:
                return "applied" if r["finished_at"] is not None else "failed"
        return "absent"

    # ------------------------------------------------------------ Prisma's own lock

    def take_tool_lock(self, lock_conn) -> bool:
        """Take Prisma Migrate's advisory lock on the release's lock session (False: someone holds it)."""
        return self.release.try_prisma_lock(lock_conn)


__all__ = ["PrismaSource", "checksum", "matches", "sha256_file"]

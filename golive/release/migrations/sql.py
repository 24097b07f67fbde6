"""``sql:DIR``: ordered ``NNN_name.sql`` files, optional ``NNN_name.down.sql``, history in golive's own table.

The history table is ``_golive.migrations`` (PostgreSQL) or ``_golive_migrations`` (MySQL): one row per applied
file with its SHA-256, when, how long, by which release. A file whose checksum no longer matches its row
(edited after it was applied) stops the release, as does a file numbered below the latest applied one
(applied out of order) or a row recorded as failed (a non-transactional migration that stopped half-way).

On PostgreSQL each file runs in one transaction together with its history row, unless it holds a statement
that cannot run in a transaction block (``CREATE INDEX CONCURRENTLY``, ``VACUUM``, …) or a
``-- golive:no-transaction`` line: then statement by statement, its row marked failed until the last one
is done. On MySQL/MariaDB every file runs statement by statement (DDL commits on its own).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from golive.dialects.base import Dialect
from golive.errors import ConfigError
from golive.release.migrations.base import (Executor, MigrationSource, delete_history, ensure_history, read_history,
                                            record_history, sha256_file)
from golive.release.model import Migration, SourceStatus
from golive.release.sqltext import directive, read_sql, split

FILE_RE = re.compile(r"^(?P<version>\d+)_(?P<name>.+?)(?P<down>\.down)?\.sql$")


def transactional(sql: str, dialect: Dialect) -> bool:
    """Can the file run in one transaction: the engine's DDL is transactional, no ``-- golive:no-transaction``
    line, and no statement the engine refuses in a transaction block?"""
    if not dialect.transactional_ddl or directive(sql, "no-transaction"):
        return False
    return not any(dialect.release.needs_autocommit(st.clean) for st in split(sql, dialect))


class SqlSource(MigrationSource):
    kind = "sql"

    def load(self) -> list[Migration]:
        if not self.path.is_dir():
            raise ConfigError(f"sql:{self.path}: no such directory (give the folder of the NNN_name.sql files)")
        ups: dict[str, Path] = {}
        downs: dict[str, Path] = {}
        names: dict[str, str] = {}
        for f in sorted(self.path.iterdir()):
            if not f.is_file() or not f.name.endswith(".sql"):
                continue
            m = FILE_RE.match(f.name)
            if not m:
                raise ConfigError(f"sql:{self.path}: {f.name} is not named NNN_name.sql (or NNN_name.down.sql)")
            v = m.group("version")
            target = downs if m.group("down") else ups
            if v in target:
                raise ConfigError(f"sql:{self.path}: two {'down-' if m.group('down') else ''}migrations numbered {v}: "
                                  f"{target[v].name} and {f.name}")
            target[v] = f
            if not m.group("down"):
                names[v] = m.group("name")
        for v, f in downs.items():
            if v not in ups:
                raise ConfigError(f"sql:{self.path}: {f.name} has no up-migration {v}_….sql")
        numbers = {}
        for v in ups:
            if int(v) in numbers:
                raise ConfigError(f"sql:{self.path}: {ups[numbers[int(v)]].name} and {ups[v].name} have the same number")
            numbers[int(v)] = v
        out = []
        for v in sorted(ups, key=int):
            f = ups[v]
            text = read_sql(f)
            down = downs.get(v)
            out.append(Migration(kind="sql", version=v, name=names[v], path=str(f), checksum=sha256_file(f), sql=text,
                                 down_path=str(down) if down else None, has_down=down is not None,
                                 transactional=transactional(text, self.dialect)))
        if not out:
            raise ConfigError(f"sql:{self.path}: no NNN_name.sql files there")
        return out

    def status(self, conn) -> SourceStatus:
        migrations = self.load()
        by_version = {m.version: m for m in migrations}
        st = SourceStatus(migrations=migrations)
        done = set()
        for applied, success in read_history(conn, self.dialect, "sql"):
            if not success:
                st.failed.append(applied.version)
                st.problems.append(f"migration {applied.version}_{applied.name} is recorded as failed (it stopped "
                                   "half-way and was not rolled back): restore the release's backup, or repair the "
                                   "database by hand and delete its row from golive's history table")
                continue
            st.applied.append(applied)
            done.add(applied.version)
            m = by_version.get(applied.version)
            if m is None:
                st.missing.append(f"{applied.version}_{applied.name}")
            elif m.checksum != applied.checksum:
                st.drift.append(f"{m.label}: the file changed after it was applied (checksum {m.checksum[:12]} now, "
                                f"{(applied.checksum or '')[:12]} when applied)")
        if st.applied:
            st.current = max(st.applied, key=lambda a: int(a.version)).version
            latest = int(st.current)
        else:
            latest = -1
        st.pending = [m for m in migrations if m.version not in done and m.version not in st.failed]
        for m in st.pending:
            if int(m.version) < latest:
                st.problems.append(f"{m.label} is numbered below the latest applied migration {st.current}: it would "
                                   "be applied out of order (renumber it)")
        if st.current:
            st.current = by_version[st.current].label if st.current in by_version else st.current
        return st

    def prepare(self, conn) -> None:
        ensure_history(conn, self.dialect)

    def apply(self, ex: Executor, m: Migration, release_id: str) -> int:
        statements = split(m.sql or "", self.dialect)
        t0 = time.perf_counter()
        what = f"migration {m.label}"
        if m.transactional:
            return ex.run(statements, transactional=True, what=what, after=lambda conn: record_history(
                conn, self.dialect, "sql", m, success=True, release_id=release_id,
                execution_ms=int((time.perf_counter() - t0) * 1000)))
        conn = ex.session()
        try:
            record_history(conn, self.dialect, "sql", m, success=False, release_id=release_id)
        finally:
            conn.close()
        n = ex.run(statements, transactional=False, what=what)
        conn = ex.session()
        try:
            record_history(conn, self.dialect, "sql", m, success=True, release_id=release_id,
                           execution_ms=int((time.perf_counter() - t0) * 1000))
        finally:
            conn.close()
        return n

    def down(self, ex: Executor, m: Migration) -> int:
        text = read_sql(m.down_path)
        statements = split(text, self.dialect)
        forget = lambda conn: delete_history(conn, self.dialect, "sql", m.version)  # noqa: E731
        return ex.run(statements, transactional=transactional(text, self.dialect), what=f"down-migration of {m.label}",
                      after=forget)

    def forget_failed(self, conn, m: Migration) -> None:
        from golive.release.migrations.base import history_exists

        if history_exists(conn, self.dialect):
            delete_history(conn, self.dialect, "sql", m.version, only_failed=True)

    def probe(self, conn, m: Migration) -> str:
        for applied, success in read_history(conn, self.dialect, "sql"):
            if applied.version == m.version:
                return "applied" if success else "failed"
        return "absent"

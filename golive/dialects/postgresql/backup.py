"""PostgreSQL: ``pg_dump -Fc -Z0`` streamed through zstd, ``pg_restore -j`` from a scratch file.

* **Which pg_dump.** pg_dump must be at least as new as the server (an older one refuses, a newer one
  writes archives that older pg_restore cannot read). ``golive.dialects.postgresql.tools`` looks on PATH, in
  ``/usr/lib/postgresql/*/bin`` and in pgserver's bundle, takes the oldest one that is new enough; golive
  records it in the manifest; when none is, it refuses with one line naming what it found.
* **One snapshot.** golive opens a REPEATABLE READ transaction, exports its snapshot, and gives it to
  ``pg_dump --snapshot``; the row counts and the schema fingerprint are taken in that same transaction
  while pg_dump runs, so they describe exactly the dumped data.
* **Why -Z0 | zstd.** pg_dump 15 compresses with gzip only (single-threaded, 3x slower here); zstd runs
  in its own process on every core. pg_dump's output goes into zstd by ``splice`` (in the kernel, counted;
  Python only hashes and uploads the compressed bytes): 0.5-0.7 s less CPU at scale 1 on two cores.
* **Restore.** ``pg_restore -j`` needs a seekable file: the object is downloaded, checked and decompressed
  into the scratch directory first (its SHA-256 is verified before the target is touched).
* **Verify.** The scratch database is an embedded PostgreSQL 16 (pgserver) in the verification's scratch
  directory, or a temporary database on a server given to verify on (also when the embedded one lacks an
  extension the backup needs: then the backup's own server).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
from pathlib import Path

from golive.dialects.base import Backup
from golive.dialects.postgresql.session import connect as session_connect, libpq, qi, translate_error
from golive.errors import ConfigError, TargetNotEmpty, TerminalError, TransientError
from golive.model.backup import Pumped, ScratchFull, TableEntry, Tool, first_line
from golive.runtime import die_with_parent
from golive.urls import DatabaseURL, mask, parse_url

log = logging.getLogger(__name__)

DUMP_OBJECT = "db.dump"
_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')"


# ---------------------------------------------------------------- tools

def find_tool(name: str, at_least: int) -> Tool:
    """The ``name`` program (pg_dump, pg_restore) of major version >= ``at_least`` (``golive.dialects.postgresql.tools.find``:
    PATH, /usr/lib/postgresql/*/bin, pgserver's bundle; the oldest new enough), with its full version."""
    from golive.dialects.postgresql.tools import find

    path, major = find(name, at_least)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
        m = re.search(r"\(PostgreSQL\)\s+(\S+)", out)
        version = m.group(1) if m else str(major)
    except (OSError, subprocess.SubprocessError):
        version = str(major)
    return Tool(name=name, version=version, path=path)


def tool_major(tool: Tool) -> int:
    return int(re.match(r"\d+", tool.version).group(0))


def libpq_dsn(url: DatabaseURL) -> tuple[str, dict]:
    """A connection URL without the password, and the environment that carries it (never the command line)."""
    dsn = re.sub(r"^(postgresql://[^:/@?#]*):[^@/?#]*@", r"\1@", libpq(url))
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = url.password_text
    return dsn, env


def server_url(url: DatabaseURL) -> str:
    """The backup's server without a password (verify's fallback scratch server; libpq finds the password in
    PGPASSWORD or ~/.pgpass)."""
    return libpq_dsn(url)[0]


def connect(url: DatabaseURL, *, autocommit: bool = True, role: str = "database"):
    return session_connect(url, autocommit=autocommit, role=role)


def server_major(conn) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


# ---------------------------------------------------------------- counts and fingerprint

def list_tables(conn) -> list[tuple[str, str]]:
    """(schema, table) of every table whose rows pg_dump dumps (leaf tables, not extension members)."""
    rows = conn.execute(f"SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        f"WHERE c.relkind = 'r' AND {_SYSTEM} AND {_NOT_EXT}").fetchall()
    return sorted(rows)


def count_rows(conn, tables: list[tuple[str, str]]) -> list[TableEntry]:
    out = []
    for schema, table in tables:
        n = conn.execute(f"SELECT count(*) FROM {qi(schema)}.{qi(table)}").fetchone()[0]
        out.append(TableEntry(name=f"{schema}.{table}", schema_name=schema, table=table, rows=n))
    return out


#: tables counted per transaction of ``count_rows_in_snapshot``: each count holds a lock to its transaction's end
COUNT_BATCH_TABLES = 500


def count_rows_in_snapshot(url: DatabaseURL, snapshot: str, tables: list[tuple[str, str]]) -> list[TableEntry]:
    """Row counts in an exported snapshot (the one pg_dump dumps), ``COUNT_BATCH_TABLES`` tables per transaction
    of a second connection: a ``count(*)`` holds its table's lock to the end of the transaction, so counting
    10,000 tables in one transaction (next to pg_dump's own lock on each) ran out of the server's lock table."""
    out: list[TableEntry] = []
    conn = connect(url)  # autocommit: the transactions are the statements below
    try:
        for i in range(0, len(tables), COUNT_BATCH_TABLES):
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # pg_export_snapshot()'s own text: no quote
            out += count_rows(conn, tables[i:i + COUNT_BATCH_TABLES])
            conn.execute("ROLLBACK")
    finally:
        conn.close()
    return out


def lock_room(conn) -> int:
    """Locks the whole server can hold at once: max_locks_per_transaction x (max_connections +
    max_prepared_transactions) (https://www.postgresql.org/docs/current/runtime-config-locks.html)."""
    per, conns, prepared = conn.execute(
        "SELECT current_setting('max_locks_per_transaction')::int, current_setting('max_connections')::int, "
        "current_setting('max_prepared_transactions')::int").fetchone()
    return per * (conns + prepared)


def check_lock_room(conn, tables: int) -> None:
    """Refuse, before anything is written, a dump the server's lock table cannot hold: pg_dump locks every table
    it dumps in one transaction (and golive's counts lock up to ``COUNT_BATCH_TABLES`` more next to it).

    Raises:
        ConfigError: too many tables for ``max_locks_per_transaction``; says the setting that would do.
    """
    room = lock_room(conn)
    need = tables + min(tables, COUNT_BATCH_TABLES) + 100  # + what other sessions commonly hold
    if need > room:
        per = conn.execute("SHOW max_locks_per_transaction").fetchone()[0]
        conns = room // int(per)
        raise ConfigError(
            f"{tables} tables: pg_dump locks every table in one transaction and this server's lock table holds "
            f"{room} locks (max_locks_per_transaction {per} x {conns} connections); set max_locks_per_transaction "
            f"to at least {-(-need // conns)} (ALTER SYSTEM SET max_locks_per_transaction = "
            f"{-(-need // conns)}; then restart PostgreSQL) and back up again")


_FINGERPRINT_SQL = f"""
SELECT n.nspname, c.relname, c.relkind::text,
  coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END, ', ' ORDER BY a.attnum)
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ''),
  coalesce((SELECT string_agg(x.conname || ' ' || pg_get_constraintdef(x.oid), ', ' ORDER BY x.conname COLLATE "C")
     FROM pg_constraint x WHERE x.conrelid = c.oid), ''),
  coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid) COLLATE "C")
     FROM pg_index i WHERE i.indrelid = c.oid), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_SYSTEM} AND {_NOT_EXT}
"""


def fingerprint(conn) -> str:
    """SHA-256 of the schema: every relation, its columns (types, NOT NULL, defaults), constraints, indexes."""
    rows = sorted(tuple(r) for r in conn.execute(_FINGERPRINT_SQL).fetchall())
    h = hashlib.sha256()
    for r in rows:
        h.update(("\x1f".join(r) + "\n").encode("utf-8"))
    return h.hexdigest()


def schema_rows(conn) -> list[tuple]:
    """The rows the fingerprint hashes (schema, relation, kind, columns, constraints, indexes), sorted: what a
    release compares to say which objects differ from before."""
    return sorted(tuple(r) for r in conn.execute(_FINGERPRINT_SQL).fetchall())


def inspect(url: DatabaseURL, counts: bool = True) -> tuple[list[TableEntry], str]:
    """Tables (with row counts unless ``counts`` is False: then -1) and the fingerprint of a database now."""
    conn = connect(url)
    try:
        names = list_tables(conn)
        tables = count_rows(conn, names) if counts else [
            TableEntry(name=f"{s}.{t}", schema_name=s, table=t, rows=-1) for s, t in names]
        return tables, fingerprint(conn)
    finally:
        conn.close()


# ---------------------------------------------------------------- backup

def backup(url: DatabaseURL, sink) -> dict:
    """Dump ``url`` into ``sink`` (``sink.open(name, kind)`` -> ObjectWriter). Returns the manifest fields."""
    conn = connect(url, autocommit=False)
    try:
        major = server_major(conn)
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.rollback()
        tool = find_tool("pg_dump", major)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        dbname = conn.execute("SELECT current_database()").fetchone()[0]
        extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' "
                                                 "ORDER BY 1").fetchall()]
        names = list_tables(conn)
        check_lock_room(conn, len(names))
        dsn, env = libpq_dsn(url)
        writer = sink.open(DUMP_OBJECT, "pg_dump")
        proc = subprocess.Popen([tool.path, "-Fc", "-Z0", f"--snapshot={snapshot}", "--no-password", "--dbname", dsn],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        pumped = Pumped(proc, writer, "pg_dump")
        try:
            # while pg_dump runs: counts and fingerprint in the snapshot it dumps
            tables = count_rows_in_snapshot(url, snapshot, names)
            fp = fingerprint(conn)
        except BaseException:
            proc.kill()
            pumped.join()
            writer.abort()
            raise
        stderr = pumped.join()
        rc = proc.wait()
        if pumped.errors or rc != 0:
            writer.abort()
            if pumped.errors:
                raise pumped.errors[0]
            msg = first_line(mask(stderr.decode("utf-8", "replace")))
            raise TerminalError(f"pg_dump failed (exit {rc}): {msg or 'no message'}")
        try:
            entry = writer.close()
        except BaseException:
            writer.abort()
            raise
        return {"server_version": version, "database": dbname, "tool": tool, "objects": [entry], "tables": tables,
                "schema_fingerprint": fp, "details": {"format": "pg_dump custom (-Fc -Z0)", "snapshot": snapshot,
                                                      "extensions": extensions, "server": server_url(url)}}
    except Exception as exc:
        raise translate_error(exc, f"backup of {url.masked}") from None
    finally:
        conn.close()


# ---------------------------------------------------------------- restore

def is_empty(conn) -> list[str]:
    """What the database already holds (up to 5 names), empty when nothing."""
    rows = conn.execute(f"SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        f"WHERE c.relkind IN ('r','p','v','m','S','f') AND {_SYSTEM} AND {_NOT_EXT} "
                        f"UNION ALL SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p JOIN pg_namespace n "
                        f"ON n.oid = p.pronamespace WHERE {_SYSTEM} AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE "
                        f"e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e') LIMIT 5").fetchall()
    return [r[0] for r in rows]


def wipe(conn) -> None:
    """Drop everything a restore recreates, in one transaction: every non-system schema (public is made
    again as PostgreSQL creates it), extensions other than plpgsql, large objects."""
    major = server_major(conn)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '30s'")
        for (name,) in conn.execute(f"SELECT n.nspname FROM pg_namespace n WHERE {_SYSTEM}").fetchall():
            conn.execute(f"DROP SCHEMA {qi(name)} CASCADE")
        for (name,) in conn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'").fetchall():
            conn.execute(f"DROP EXTENSION IF EXISTS {qi(name)} CASCADE")
        if major >= 15:
            conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
            conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        else:
            conn.execute("CREATE SCHEMA public")
            conn.execute("GRANT ALL ON SCHEMA public TO PUBLIC")
        conn.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
        conn.execute("SELECT lo_unlink(oid) FROM pg_largeobject_metadata")


def restore(url: DatabaseURL, files: dict[str, Path], manifest, *, force: bool, jobs: int = 2,
            no_owner: bool = False) -> dict:
    """Restore the dump in ``files`` into ``url`` with ``pg_restore -j``; wipes first under ``force``."""
    conn = connect(url, role="target")
    try:
        dump_major = tool_major(manifest.tool)
        tool = find_tool("pg_restore", dump_major)  # it must read the archive pg_dump wrote
        existing = is_empty(conn)
        if existing and not force:
            raise TargetNotEmpty(f"target {url.masked} is not empty (it has {', '.join(existing)}): restore into an "
                                 "empty database, or pass --force to replace everything in it")
        if existing:
            wipe(conn)
    except TargetNotEmpty:
        raise
    except Exception as exc:
        raise translate_error(exc, f"restore into {url.masked}") from None
    finally:
        conn.close()
    dsn, env = libpq_dsn(url)
    cmd = [tool.path, "-j", str(max(1, jobs)), "--exit-on-error", "--no-password", "-d", dsn]
    if no_owner:
        cmd += ["--no-owner", "--no-privileges"]
    proc = subprocess.run(cmd + [str(files[DUMP_OBJECT])], capture_output=True, env=env, preexec_fn=die_with_parent())
    if proc.returncode != 0:
        text = mask(proc.stderr.decode("utf-8", "replace"))
        msg = first_line(text)
        if connection_lost(text):  # the server went away (a restart): not the backup's fault, worth a retry
            raise TransientError(f"pg_restore into {url.masked} lost its connection to the server ({msg}); the "
                                 "target is partly restored")
        raise TerminalError(f"pg_restore into {url.masked} failed (exit {proc.returncode}): {msg or 'no message'}; "
                            "the target is partly restored: run the restore again with --force")
    return {"tool": tool.model_dump()}


#: libpq's and the server's words for a session that ended under a client tool (a restart, a crash, a shutdown)
_LOST = ("server closed the connection unexpectedly", "terminating connection due to administrator command",
         "terminating connection because of crash of another server process", "the database system is shutting down",
         "the database system is starting up", "the database system is in recovery mode", "no connection to the server",
         "connection refused", "SSL SYSCALL error: EOF detected", "could not receive data from server")


def connection_lost(stderr: str) -> bool:
    """A client tool's (pg_restore's) error output says its connection to the server was lost."""
    low = stderr.lower()
    return any(w.lower() in low for w in _LOST)


# ---------------------------------------------------------------- verify's scratch database

@contextlib.contextmanager
def scratch_database(manifest, *, name: str, server: DatabaseURL | None, workdir: Path, notes: list[str],
                     own: DatabaseURL | None = None):
    """An empty database ``name`` to verify in: on an embedded PostgreSQL in ``workdir`` unless ``server`` is
    given (or the embedded one lacks an extension the backup needs: then on the backup's own server, with the
    credentials the backup used when they are at hand, ``own``)."""
    if server is None:
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
        recorded = manifest.details.get("server")
        if own is None and not recorded:
            raise ConfigError(f"the embedded PostgreSQL lacks the extension(s) {', '.join(lacking)} this backup "
                              "needs: verify on a server that has them (--scratch postgresql://…)")
        notes.append(f"the embedded PostgreSQL lacks {', '.join(lacking)}: verified in a temporary database on "
                     "the backup's own server")
        server = own if own is not None else parse_url(recorded, role="scratch")
    conn = connect(server, role="scratch server")
    try:
        # the session that made it is named after it: a database whose session is gone (its verification killed,
        # or cut off by a server restart) is the next verification's to drop
        conn.execute("SELECT set_config('application_name', %s, false)", (SCRATCH_OWNER + name,))
        sweep_scratch_databases(conn, name)
        conn.execute(f'CREATE DATABASE "{name}"')
        yield server.with_database(name, role="scratch")
    finally:
        drop_scratch_database(conn, server, name)


#: ``application_name`` of the session that holds a scratch database (its name follows)
SCRATCH_OWNER = "golive-scratch:"


def sweep_scratch_databases(conn, name: str) -> list[str]:
    """Drop the scratch databases of the same prefix as ``name`` (``PREFIX`` + 10 hex digits, as
    ``golive.backup.verify`` names them) whose owning session is gone; returns their names."""
    prefix = name[:-10]
    rows = conn.execute(
        "SELECT d.datname FROM pg_database d WHERE left(d.datname, %s) = %s AND d.datname ~ %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = %s || d.datname)",
        (len(prefix), prefix, "^.{%d}[0-9a-f]{10}$" % len(prefix), SCRATCH_OWNER)).fetchall()
    for (stale,) in rows:
        conn.execute(f"DROP DATABASE IF EXISTS {qi(stale)} WITH (FORCE)")
        log.info("dropped the scratch database %s a verification that no longer runs left", stale)
    return [r[0] for r in rows]


def drop_scratch_database(conn, server: DatabaseURL, name: str) -> None:
    """Drop ``name``; over a new session when the server ended ours (a restart): what cannot be dropped now, the
    next verification on that server drops (``sweep_scratch_databases``)."""
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - the session is gone; a new one, once
        try:
            with connect(server, role="scratch server") as again:
                again.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - never hide the verification's own outcome
            log.warning("could not drop the scratch database %s (the next verification there will): %s", name,
                        mask(first_line(str(exc))))
    finally:
        with contextlib.suppress(Exception):
            conn.close()


# ---------------------------------------------------------------- the concern


class PostgresBackup(Backup):
    """``pg_dump -Fc`` of one exported snapshot, ``pg_restore -j``; verified on an embedded PostgreSQL."""

    def backup(self, url: DatabaseURL, sink, *, scratch_dir: str | None = None) -> dict:
        return backup(url, sink)  # streamed: nothing is copied locally

    def restore(self, url: DatabaseURL, files: dict[str, Path], manifest, *, force: bool, jobs: int = 2,
                no_owner: bool = False) -> dict:
        return restore(url, files, manifest, force=force, jobs=jobs, no_owner=no_owner)

    def inspect(self, url: DatabaseURL, *, counts: bool = True) -> tuple[list[TableEntry], str]:
        return inspect(url, counts=counts)

    def schema_rows(self, url: DatabaseURL) -> list[tuple]:
        conn = connect(url)
        try:
            return schema_rows(conn)
        finally:
            conn.close()

    def scratch_database(self, manifest, *, name: str, server: DatabaseURL | None, workdir: Path,
                         notes: list[str], own: DatabaseURL | None = None):
        return scratch_database(manifest, name=name, server=server, workdir=workdir, notes=notes, own=own)

"""The pre-check: each line pass, warn or fail; any fail refuses the release before anything changes.

Lines (IDs as in the report): ``connectivity``, ``server-version``, ``extensions``, ``release-lock`` (no
other release running: the advisory lock is taken here and held to the end), ``previous-release`` (what an
interrupted one left), ``migrations`` (pending listed), ``drift``, ``history`` (the tool's own refusals:
failed migrations, out of order, not baselined), ``privileges``, ``long-transactions``, ``disk-server``,
``disk-backup``, ``disk-scratch``, ``backup-destination``, ``rollback``, ``health-before``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from golive.release.model import Check, Migration, SourceStatus
from golive.units import human_bytes, human_duration
from golive.urls import DatabaseURL

MYSQL_DDL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES")


def ok(id: str, message: str, **details) -> Check:
    return Check(id=id, status="pass", message=message, details=details)


def warn(id: str, message: str, **details) -> Check:
    return Check(id=id, status="warn", message=message, details=details)


def fail(id: str, message: str, **details) -> Check:
    return Check(id=id, status="fail", message=message, details=details)


def server_version(info: dict, dialect: str) -> Check:
    v = info["version"]
    if dialect == "postgresql":
        num = info["version_num"]
        if num < 110000:
            return warn("server-version", f"PostgreSQL {v}: before 11, ADD COLUMN with any default rewrites the table")
        if num < 120000:
            return warn("server-version", f"PostgreSQL {v}: before 12, REINDEX CONCURRENTLY and SET NOT NULL via a "
                                          "validated CHECK are not available")
        return ok("server-version", f"PostgreSQL {v}")
    name = "MariaDB" if info.get("mariadb") else "MySQL"
    return ok("server-version", f"{name} {v.split('-')[0]}")


def extensions(conn, dialect: str, wanted: list[str]) -> Check | None:
    if dialect != "postgresql" or not wanted:
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT name, installed_version FROM pg_available_extensions WHERE name = ANY(%s)", (wanted,))
        found = {r[0]: r[1] for r in cur.fetchall()}
    missing = [e for e in wanted if e not in found]
    if missing:
        return fail("extensions", f"the migrations create extension(s) {', '.join(missing)}, which this server does not "
                                  "have (install the package on the server first)")
    return ok("extensions", "; ".join(f"{e} {'installed ' + found[e] if found[e] else 'available'}" for e in wanted))


def migrations(status: SourceStatus) -> list[Check]:
    out = []
    at = status.current or "no migration applied yet"
    if status.pending:
        out.append(ok("migrations", f"{len(status.pending)} pending: {', '.join(m.label for m in status.pending)} "
                                    f"(the database is at {at})", pending=[m.label for m in status.pending]))
    else:
        out.append(ok("migrations", f"nothing pending (the database is at {at})", pending=[]))
    if status.drift:
        out.append(fail("drift", "applied migration(s) changed since they were applied: " + "; ".join(status.drift)
                        + " (restore the files as they were, or make the change a new migration)"))
    if status.problems:
        out.append(fail("history", "; ".join(status.problems)))
    if status.missing:
        out.append(warn("history", f"applied but not in the folder: {', '.join(status.missing)} (an older checkout?)"))
    for n in status.notes:
        out.append(ok("history", n))
    return out


def privileges(conn, dialect: str, info: dict, tables: list[tuple[str | None, str]]) -> list[Check]:
    with conn.cursor() as cur:
        if dialect == "postgresql":
            if info.get("superuser"):
                return [ok("privileges", f"{info['user']} is a superuser")]
            cur.execute("SELECT has_database_privilege(current_database(), 'CREATE'), "
                        "has_schema_privilege(current_schema(), 'CREATE')")
            db_create, schema_create = cur.fetchone()
            names = [f"{s}.{t}" for s, t in tables]
            cur.execute("SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN "
                        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname || '.' || c.relname = ANY(%s) AND NOT "
                        "pg_has_role(current_user, c.relowner, 'USAGE')", (names,))
            not_owned = cur.fetchall()
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND "
                        "nspname NOT LIKE 'pg\\_%' AND NOT pg_has_role(current_user, nspowner, 'USAGE')")
            other_schemas = [r[0] for r in cur.fetchall()]
            out = []
            problems = []
            if not schema_create:
                problems.append(f"no CREATE on schema {info['schema']}")
            if not_owned:
                problems.append("ALTER needs the owner: " + ", ".join(f"{t} (owned by {o})" for t, o in not_owned))
            if problems:
                out.append(fail("privileges", f"{info['user']}: " + "; ".join(problems)))
            else:
                out.append(ok("privileges", f"{info['user']} may create in {info['schema']} and owns the "
                                            f"{len(tables)} table(s) the migrations change"
                              + ("" if db_create else " (no CREATE on the database: the _golive schema must exist)")))
            if other_schemas:
                out.append(warn("privileges", f"a rollback by restore drops every schema; {info['user']} does not own "
                                              f"{', '.join(other_schemas)}"))
            return out
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = [str(r[0]) for r in cur.fetchall()]
    have = set()
    db = info["database"]
    for g in grants:
        m = re.match(r"GRANT (.+?) ON (\S+) TO", g, re.I)
        if not m:
            continue
        target = m.group(2).replace("`", "")
        if target not in ("*.*", f"{db}.*"):
            continue
        privs = m.group(1).upper()
        if privs.startswith("ALL"):
            have.update(MYSQL_DDL_PRIVILEGES)
        have.update(p.strip() for p in privs.split(","))
    missing = [p for p in MYSQL_DDL_PRIVILEGES if p not in have]
    if missing:
        return [fail("privileges", f"{info['user']} lacks {', '.join(missing)} on {db}.* (the migrations and the "
                                   "rollback need them)")]
    return [ok("privileges", f"{info['user']} has {', '.join(MYSQL_DDL_PRIVILEGES)} on {db}")]


def long_transactions(conn, dialect: str, tables: set, threshold_s: float) -> Check:
    """Old transactions: listed (warn); one holding a lock on a table the migrations change fails (the DDL would
    wait for it, and the app behind the DDL)."""
    with conn.cursor() as cur:
        if dialect == "postgresql":
            cur.execute("SELECT a.pid, a.usename, a.application_name, a.state, "
                        "extract(epoch FROM now() - a.xact_start)::float8, left(a.query, 120), "
                        "(SELECT array_agg(DISTINCT n.nspname || '.' || c.relname) FROM pg_locks l JOIN pg_class c ON "
                        "c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = a.pid AND "
                        "l.granted) FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> "
                        "pg_backend_pid() AND a.xact_start IS NOT NULL AND a.backend_type = 'client backend' AND "
                        "now() - a.xact_start > make_interval(secs => %s) ORDER BY a.xact_start", (threshold_s,))
            rows = [(r[0], f"{r[1]}/{r[2] or '-'} {r[3]}", r[4], r[5], set(r[6] or [])) for r in cur.fetchall()]
            wanted = {f"{s}.{t}" for s, t in tables}
        else:
            cur.execute("SELECT t.trx_mysql_thread_id, p.USER, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), "
                        "LEFT(COALESCE(t.trx_query, p.INFO, ''), 120) FROM information_schema.INNODB_TRX t LEFT JOIN "
                        "information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE t.trx_started < NOW() - "
                        "INTERVAL %s SECOND AND t.trx_mysql_thread_id <> CONNECTION_ID()", (int(threshold_s),))
            rows = [(r[0], str(r[1]), float(r[2] or 0), str(r[3] or ""), set()) for r in cur.fetchall()]
            wanted = {t for _, t in tables}
            try:  # who holds metadata locks on the tables (performance_schema, when enabled)
                cur.execute("SELECT t.PROCESSLIST_ID, m.OBJECT_NAME FROM performance_schema.metadata_locks m JOIN "
                            "performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID WHERE m.OBJECT_SCHEMA = "
                            "DATABASE() AND m.LOCK_STATUS = 'GRANTED'")
                held: dict = {}
                for pid, obj in cur.fetchall():
                    held.setdefault(pid, set()).add(str(obj))
                rows = [(p, w, s, q, held.get(p, set())) for p, w, s, q, _ in rows]
            except Exception:  # noqa: BLE001 - performance_schema off
                pass
    if not rows:
        return ok("long-transactions", f"no transaction open longer than {human_duration(threshold_s)}")
    blocking = [r for r in rows if r[4] & wanted]
    listed = "; ".join(f"{'pid' if dialect == 'postgresql' else 'connection'} {p} ({who}, open "
                       f"{human_duration(secs)}: {q.strip() or '-'})" for p, who, secs, q, _ in (blocking or rows)[:3])
    if blocking:
        return fail("long-transactions", f"{len(blocking)} transaction(s) hold locks on tables the migrations change, "
                                         f"so the DDL would wait for them (and the app behind it): {listed}",
                    sessions=[r[0] for r in blocking])
    return warn("long-transactions", f"{len(rows)} transaction(s) open longer than {human_duration(threshold_s)} "
                                     f"(not on the tables the migrations change): {listed}")


def _is_local(url: DatabaseURL) -> bool:
    host = url.host or url.query.get("host") or url.query.get("unix_socket")
    return host in (None, "", "localhost", "127.0.0.1", "::1") or (host or "").startswith("/")


def disk(conn, url: DatabaseURL, info: dict, rewrite_bytes: int, backup_to: str | None,
         expected_backup: int | None, expected_raw: int | None) -> list[Check]:
    """Free space: the server's data volume (when this machine can see it), the backup's folder (file://), and
    the scratch space a rollback by restore downloads into."""
    out = []
    size = info["bytes"]
    data_dir = None
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT current_setting('data_directory')" if url.dialect == "postgresql" else "SELECT @@datadir")
            data_dir = str(cur.fetchone()[0])
        except Exception:  # noqa: BLE001 - PostgreSQL: needs pg_read_all_settings
            from golive.release.db import _rollback

            _rollback(conn)
    if data_dir and _is_local(url) and os.path.isdir(data_dir):
        try:
            free = shutil.disk_usage(data_dir).free
        except OSError:
            free = None
    else:
        free = None
    if free is None:
        why = ("the server is not on this machine" if not _is_local(url) else
               "its data directory is not readable here" if data_dir else "the server does not say where its data is")
        out.append(warn("disk-server", f"cannot read the free space of the server's data volume ({why}); the database "
                                       f"is {human_bytes(size)}" + (f", the largest table a migration rewrites "
                                                                    f"{human_bytes(rewrite_bytes)}" if rewrite_bytes else "")))
    elif free < rewrite_bytes * 1.1:
        out.append(fail("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}), but a migration "
                                       f"rewrites a table of {human_bytes(rewrite_bytes)} (it needs a second copy)"))
    elif free < size:
        out.append(warn("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}), less than the "
                                       f"database ({human_bytes(size)})"))
    else:
        out.append(ok("disk-server", f"{human_bytes(free)} free on the data volume ({data_dir}); the database is "
                                     f"{human_bytes(size)}"))
    need = expected_backup if expected_backup is not None else size
    basis = "the previous backup's size" if expected_backup is not None else "the database's size (no previous backup)"
    if backup_to and backup_to.startswith("file://"):
        folder = Path(backup_to[len("file://"):])
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_b = shutil.disk_usage(probe).free
        check = fail if free_b < need else ok
        out.append(check("disk-backup", f"{human_bytes(free_b)} free for the backup in {folder}; it needs about "
                                        f"{human_bytes(need)} ({basis})"))
    raw = expected_raw if expected_raw is not None else size
    scratch = tempfile.gettempdir()
    free_s = shutil.disk_usage(scratch).free
    check = warn if free_s < raw else ok
    out.append(check("disk-scratch", f"{human_bytes(free_s)} free in {scratch}, where a rollback by restore downloads "
                                     f"the backup (about {human_bytes(raw)})"
                     + ("" if free_s >= raw else ": a rollback by restore would fail (set TMPDIR)")))
    return out


def rollback_plan(method: str, pending: list[Migration], dialect: str, conn) -> Check:
    out_msg = []
    if method == "down":
        missing = [m.label for m in pending if not m.has_down]
        if missing:
            return warn("rollback", f"--rollback down, but {', '.join(missing)} ha{'s' if len(missing) == 1 else 've'} no "
                                    "down-migration: a failure will restore the backup instead")
        out_msg.append("down-migrations for every pending migration (a half-applied one is restored from the backup)")
    else:
        out_msg.append("restore the backup")
    if dialect == "mysql":
        with conn.cursor() as cur:
            cur.execute("SELECT @@local_infile")
            if not int(cur.fetchone()[0] or 0):
                return fail("rollback", "the server has local_infile=OFF, so the backup could not be restored (golive "
                                        "loads tables with LOAD DATA LOCAL INFILE): SET GLOBAL local_infile = 1")
    return ok("rollback", "on failure: " + "; ".join(out_msg))


def health_before(urls: list[str], cmd: str | None) -> Check | None:
    from golive.release.health import probe_cmd, probe_url
    from golive.urls import mask

    if not urls and not cmd:
        return None
    bad = []
    for u in urls:
        good, detail = probe_url(u)
        if not good:
            bad.append(f"{mask(u)}: {detail}")
    if cmd:
        good, detail = probe_cmd(cmd, 30)
        if not good:
            bad.append(f"command: {detail}")
    if bad:
        return warn("health-before", "not healthy before the release (a failing health check afterwards will roll "
                                     "back): " + "; ".join(bad))
    return ok("health-before", f"healthy before the release ({len(urls) + (1 if cmd else 0)} check(s))")

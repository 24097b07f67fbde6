"""PostgreSQL's side of ``golive report db``: its checks (PgHero's set as the floor, and more), as data
(``golive.model.health.Check``); sizes and bloat are measured in ``bloat.py``.

Every check reads the catalog and the statistics views only, in a read-only session with a short
``lock_timeout`` and ``statement_timeout`` (``golive.health.report``). Objects are named as SQL
(``format('%I.%I')``), so each fix can be pasted into psql as it is.
"""

from __future__ import annotations

import re

from golive.dialects.base import Health
from golive.dialects.postgresql.bloat import (SYSTEM_SCHEMAS_SQL, TABLE_ACTIVITY_SQL, collect_sizes, needs_analyze,
                                              needs_vacuum, read_index_bloat, read_table_bloat, read_table_sizes)
from golive.dialects.postgresql.session import qi
from golive.model.health import (SOFT_DELETE_CAP, Check, Context, Finding, ServerFacts, TableSize, esc, pct, query,
                                 read_index_sizes, soft_delete_finding)
from golive.units import human_bytes, human_count, human_duration

USER = SYSTEM_SCHEMAS_SQL
INT_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}
INT_MIN = {"smallint": -32768, "integer": -2147483648, "bigint": -9223372036854775808}
#: the predefined roles that let a role read what a superuser can (a report's statistics and settings)
PREDEFINED_ROLE = re.compile(r"\bpg_(read_all_settings|read_all_stats|stat_scan_tables|monitor|read_all_data)\b")
#: a leftover of an interrupted REINDEX CONCURRENTLY (https://www.postgresql.org/docs/current/sql-reindex.html)
LEFTOVER_RE = re.compile(r"_cc(new|old)\d*$")


def _q(text: str | None, n: int = 200) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _overflow_severity(share: float, ctx: Context) -> str | None:
    t = ctx.thresholds
    return "critical" if share >= t.overflow_critical else "warning" if share >= t.overflow_warning else None


# ------------------------------------------------------------------ activity

def _read_long_queries(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    return [ctx.finding("critical" if r["seconds"] >= t.long_query_critical_seconds else "warning", f"pid {r['pid']}",
                        f"running for {human_duration(r['seconds'])} ({r['user']}, {r['application_name'] or '-'}"
                        f"{', waiting on ' + r['wait_event'] if r['wait_event_type'] == 'Lock' else ''}): "
                        f"{_q(r['query'])}", r) for r in rows]


def _read_idle_in_transaction(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    return [ctx.finding("critical" if r["idle_seconds"] >= t.long_query_critical_seconds else "warning",
                        f"pid {r['pid']}", f"idle in an open transaction for {human_duration(r['idle_seconds'])} "
                        f"({r['user']}, {r['application_name'] or '-'}): it holds its locks and keeps VACUUM from "
                        f"removing dead rows; last query: {_q(r['last_query'], 120)}", {**r, "db": ctx.dbname})
            for r in rows]


def _read_connections(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    r = rows[0]
    usable = max(r["max_connections"] - r["reserved"], 1)
    share = r["total"] / usable
    sev = "critical" if share >= t.connections_critical else "warning" if share >= t.connections_warning else "ok"
    top = ctx.query("SELECT coalesce(usename, '-') AS \"user\", coalesce(application_name, '') AS application, "
                    "count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5")
    return [ctx.finding(sev, "max_connections", f"{r['total']} of {usable} connections in use ({pct(share)}): "
                        f"{r['active']} active, {r['idle']} idle, {r['idle_in_transaction']} idle in transaction",
                        {**r, "share": round(share, 4), "by_client": top},
                        suggested=max(r["max_connections"] * 2, 100))]


# ------------------------------------------------------------------ vacuum, analyze, wraparound (the numbers: bloat.py)

def _last(*stamps) -> str:
    got = [s for s in stamps if s is not None]
    return max(got).isoformat(timespec="seconds") if got else "never"


def _read_vacuum(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        why = needs_vacuum(r, ctx.thresholds)
        if why:
            out.append(ctx.finding("warning", r["table"], f"{why}; last vacuum: {_last(r['last_vacuum'], r['last_autovacuum'])}",
                                   {k: r[k] for k in ("table", "n_live_tup", "n_dead_tup", "last_vacuum",
                                                      "last_autovacuum", "bytes")}))
    return out


def _read_analyze(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        why = needs_analyze(r, ctx.thresholds)
        if why:
            never = r["last_analyze"] is None and r["last_autoanalyze"] is None
            out.append(ctx.finding("warning" if never else "info", r["table"],
                                   f"{why}; the planner works from stale statistics",
                                   {k: r[k] for k in ("table", "n_live_tup", "n_mod_since_analyze", "last_analyze",
                                                      "last_autoanalyze")}))
    return out


def _read_autovacuum(rows, ctx: Context) -> list[Finding]:
    r = rows[0]
    out = []
    if r["autovacuum"] != "on" or r["track_counts"] != "on":
        out.append(ctx.finding("warning", "autovacuum", f"autovacuum = {r['autovacuum']}, track_counts = "
                               f"{r['track_counts']}: dead rows pile up between maintenance runs (only the "
                               "anti-wraparound vacuum still starts on its own)", r,
                               fix="ALTER SYSTEM SET autovacuum = on;\nALTER SYSTEM SET track_counts = on;\n"
                                   "SELECT pg_reload_conf();"))
    for table in r["disabled_tables"] or []:
        out.append(ctx.finding("info", table, "autovacuum is disabled for this table (autovacuum_enabled = off)",
                               {"table": table}, fix=f"ALTER TABLE {table} RESET (autovacuum_enabled);"))
    if not out:
        out.append(ctx.finding("ok", "autovacuum", "autovacuum is on", r))
    return out


def _read_wraparound(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for r in rows:
        if r["xids_left"] < t.wraparound_critical_xids:
            out.append(ctx.finding("critical", r["table"], f"{human_count(r['xids_left'])} transactions left before "
                                   "PostgreSQL stops accepting writes to prevent XID wraparound", r))
        elif r["xid_age"] > r["freeze_max_age"]:
            out.append(ctx.finding("warning", r["table"], f"oldest unfrozen XID is {human_count(r['xid_age'])} "
                                   f"transactions old, past autovacuum_freeze_max_age ({human_count(r['freeze_max_age'])}): "
                                   "autovacuum is not keeping up", r))
    if not out:
        db = ctx.query("SELECT age(datfrozenxid)::bigint AS xid_age FROM pg_database WHERE datname = current_database()")
        age = db[0]["xid_age"] if db else 0
        out.append(ctx.finding("ok", ctx.dbname, f"oldest unfrozen XID is {human_count(age)} transactions old "
                               f"({pct(age / 2146483648)} of the way to wraparound)", {"xid_age": age}, fix=""))
    return out


# ------------------------------------------------------------------ indexes and constraints

INDEX_LIST_SQL = f"""
SELECT x.indexrelid AS oid, format('%%I.%%I', n.nspname, ci.relname) AS "index", ci.relname AS index_name,
       format('%%I.%%I', n.nspname, ct.relname) AS "table", am.amname, x.indisunique, x.indisprimary, x.indisvalid,
       x.indkey::text AS indkey, x.indclass::text AS indclass, x.indcollation::text AS indcollation,
       x.indoption::text AS indoption, x.indnkeyatts, x.indpred IS NOT NULL AS partial,
       x.indexprs IS NOT NULL AS expression, pg_relation_size(x.indexrelid) AS bytes,
       pg_get_indexdef(x.indexrelid) AS definition,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) AS backs_constraint
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace JOIN pg_am am ON am.oid = ci.relam
WHERE {USER}
ORDER BY 3
"""


def duplicate_indexes(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(unneeded, covering) pairs: an index whose key columns (same operator classes, collations and
    ordering) are the leading key columns of another valid index of the same method on the same table
    (B-tree), or exactly its key columns (other methods). PgHero's rule, plus identical unique indexes."""
    def key(r):
        n = r["indnkeyatts"]
        cols = list(zip(r["indkey"].split()[:n], r["indclass"].split()[:n], r["indcollation"].split()[:n],
                        r["indoption"].split()[:n]))
        return cols

    usable = [r for r in rows if r["indisvalid"] and not r["partial"] and not r["expression"]]
    out = []
    for a in usable:
        if a["indisprimary"] or a["backs_constraint"] and not a["indisunique"]:
            continue
        ka = key(a)
        for b in usable:
            if b is a or b["table"] != a["table"] or b["amname"] != a["amname"]:
                continue
            kb = key(b)
            same = ka == kb
            prefix = a["amname"] == "btree" and len(ka) < len(kb) and kb[: len(ka)] == ka
            if a["indisunique"]:
                # a unique index is needed unless another unique one enforces exactly the same
                if not (same and b["indisunique"] and not a["backs_constraint"]
                        and (b["backs_constraint"] or a["index"] > b["index"])):
                    continue
            elif not (prefix or (same and (b["indisunique"] or a["index"] > b["index"]))):
                continue
            out.append((a, b))
            break
    return out


def _read_duplicates(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("warning", a["index"], f"covered by {b['index']} ({_cols(b['definition'])}) on {a['table']}: "
                        f"{human_bytes(a['bytes'])} written on every change for nothing",
                        {"index": a["index"], "table": a["table"], "definition": a["definition"], "bytes": a["bytes"],
                         "covered_by": b["index"], "covering_definition": b["definition"]})
            for a, b in duplicate_indexes(rows)]


def _cols(definition: str) -> str:
    m = re.search(r"\((.*)\)", definition)
    return m.group(1) if m else definition


def _read_unused(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for r in rows:
        old = (r["stats_days"] or 0) >= t.unused_min_days
        since = r["stats_since"].isoformat(timespec="seconds") if r["stats_since"] else "?"
        out.append(ctx.finding(
            "warning" if old else "info", r["index"],
            f"{r['idx_scan']} scans since {since} ({r['stats_days']:.1f} days of statistics"
            f"{'' if old else f', fewer than {t.unused_min_days:g}: a weekly or monthly job may still need it'}); "
            f"{human_bytes(r['bytes'])} on {r['table']}; scans on replicas are not counted here",
            r, recreate=r["definition"].replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)))
    return out


def _read_invalid_indexes(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        if LEFTOVER_RE.search(r["name"]):
            msg, fix = ("invalid: the leftover of an interrupted REINDEX CONCURRENTLY; it slows every write and "
                        "serves no query", f"DROP INDEX CONCURRENTLY {r['index']};  -- golive maintenance reindex drops it")
        else:
            msg, fix = ("invalid (a CREATE INDEX CONCURRENTLY that failed?): it slows every write and serves no query",
                        f"REINDEX INDEX CONCURRENTLY {r['index']};  -- or DROP INDEX CONCURRENTLY {r['index']}; "
                        "and create it again")
        out.append(ctx.finding("warning", r["index"], f"{msg} ({human_bytes(r['bytes'])} on {r['table']})", r, fix=fix))
    return out


def _read_invalid_constraints(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("warning", f"{r['table']}.{r['qname']}", f"{r['kind']} constraint NOT VALID: rows written "
                        f"before it was added are not checked ({r['definition']})", r) for r in rows]


def _read_fk_without_index(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    return [ctx.finding("warning" if r["rows"] >= t.seq_scan_min_rows else "info", f"{r['table']} ({r['columns']})",
                        f"foreign key {r['constraint_name']} to {r['referenced']} has no index on {r['table']} "
                        f"({r['columns']}): every DELETE or key UPDATE on {r['referenced']} scans "
                        f"{human_count(r['rows'])} rows", r) for r in rows]


def _read_no_pk(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("info", r["table"], f"no primary key ({human_count(r['rows'])} rows): logical replication "
                        "cannot replicate its UPDATEs and DELETEs, and tools cannot address single rows", r) for r in rows]


def _read_seq_scans(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("info", r["table"], f"{human_count(r['seq_scan'])} sequential scans vs {human_count(r['idx_scan'])} "
                        f"index scans on {human_count(r['n_live_tup'])} rows: a query may lack an index", r)
            for r in rows]


# ------------------------------------------------------------------ overflow

def _read_sequences(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        col_type = r["column_type"] if r["column_type"] in INT_MAX else None
        if r["increment_by"] > 0:
            cap = min(r["max_value"], INT_MAX[col_type]) if col_type else r["max_value"]
            share = r["last_value"] / cap if cap > 0 else 0.0
        else:
            cap = max(r["min_value"], INT_MIN[col_type]) if col_type else r["min_value"]
            share = r["last_value"] / cap if cap < 0 else 0.0
        sev = _overflow_severity(share, ctx)
        if not sev:
            continue
        owner = f" for {r['table']}.{r['column']} ({r['column_type']})" if r["table"] else ""
        if r["table"] and col_type != "bigint":
            fix = (f"-- rewrites {r['table']} under an ACCESS EXCLUSIVE lock (and the columns referencing it need the "
                   "same); on a big table add a bigint column, backfill it in batches and swap instead\n"
                   f"ALTER TABLE {r['table']} ALTER COLUMN {r['column']} TYPE bigint;\n"
                   f"ALTER SEQUENCE {r['sequence']} AS bigint;")
        else:
            fix = f"ALTER SEQUENCE {r['sequence']} AS bigint MAXVALUE 9223372036854775807;"
        out.append(ctx.finding(sev, r["sequence"], f"at {human_count(r['last_value'])} of {human_count(cap)} "
                               f"({pct(share)}){owner}", {**r, "capacity": cap, "share": round(share, 4)}, fix=fix))
    return out


INT_KEY_COLUMNS_SQL = f"""
SELECT DISTINCT format('%%I.%%I', n.nspname, t.relname) AS "table", quote_ident(a.attname) AS "column",
       format_type(a.atttypid, NULL) AS column_type
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
WHERE a.atttypid IN ('int2'::regtype, 'int4'::regtype) AND x.indisvalid AND x.indpred IS NULL AND t.relkind = 'r'
  AND {USER}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                  WHERE d.refobjid = t.oid AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass
                    AND d.deptype IN ('a', 'i'))
ORDER BY 1, 2
LIMIT 500
"""


def _read_int_columns(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:  # each max()/min() is answered from the index's two ends
        col, table = esc(r["column"]), esc(r["table"])
        got = ctx.query(f"SELECT max({col})::bigint AS hi, min({col})::bigint AS lo FROM {table}")[0]
        if got["hi"] is None:
            continue
        share = max(got["hi"] / INT_MAX[r["column_type"]], got["lo"] / INT_MIN[r["column_type"]])
        sev = _overflow_severity(share, ctx)
        if sev:
            out.append(ctx.finding(sev, f"{r['table']}.{r['column']}", f"{r['column_type']} column at "
                                   f"{human_count(got['hi'] if got['hi'] >= -got['lo'] else got['lo'])} ({pct(share)} of "
                                   "its range)", {**r, **got, "share": round(share, 4)}))
    return out


# ------------------------------------------------------------------ caches, queries, replication

def _read_cache(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    r = rows[0]
    out = []
    for what in ("table", "index"):
        hit, read = r[f"{what}_hit"] or 0, r[f"{what}_read"] or 0
        if hit + read < t.cache_min_reads:
            out.append(ctx.finding("ok", f"{what} cache", f"{what} cache: only {human_count(hit + read)} block requests "
                                   "so far, too few to judge", {"hit": hit, "read": read}, fix=""))
            continue
        rate = hit / (hit + read)
        sev = "warning" if rate < t.cache_hit_rate else "ok"
        out.append(ctx.finding(sev, f"{what} cache", f"{what} hit rate {rate * 100:.2f} % (threshold "
                               f"{t.cache_hit_rate * 100:.0f} %; shared_buffers = {r['shared_buffers']})",
                               {"hit": hit, "read": read, "rate": round(rate, 5), "shared_buffers": r["shared_buffers"]},
                               fix=None if sev == "warning" else ""))
    return out


#: pg_stat_statements (PostgreSQL 13+ column names); ``{schema}`` is the extension's schema
SLOW_QUERIES_SQL = """
SELECT queryid, calls, mean_exec_time AS mean_ms, total_exec_time AS total_ms, rows,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 300) AS query
FROM {schema}.pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND calls >= %(slow_query_min_calls)s AND mean_exec_time >= %(slow_query_ms)s
ORDER BY total_exec_time DESC
LIMIT 20
"""


def _read_slow_queries(rows, ctx: Context) -> list[Finding]:
    ext = ctx.query("SELECT quote_ident(extnamespace::regnamespace::text) AS schema FROM pg_extension "
                    "WHERE extname = 'pg_stat_statements'")
    libs = ctx.query("SELECT current_setting('shared_preload_libraries') AS libs")[0]["libs"]
    loaded = "pg_stat_statements" in [x.strip().strip('"') for x in libs.split(",")]
    if not ext or not loaded:
        wanted = ", ".join([x.strip() for x in libs.split(",") if x.strip()] + ([] if loaded else ["pg_stat_statements"]))
        steps = [] if loaded else [
            "-- 1. load the library (ALTER SYSTEM replaces the whole list: it keeps what is set now), then restart",
            f"ALTER SYSTEM SET shared_preload_libraries = '{wanted}';"]
        steps += ["-- 2. in this database:", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"]
        what = "not loaded (shared_preload_libraries)" if not loaded else "loaded but not created in this database"
        return [ctx.finding("info", "pg_stat_statements", f"pg_stat_statements is {what}: slow queries cannot be "
                            "listed. Enable it as the fix says (a restart is needed to load it)",
                            {"shared_preload_libraries": libs, "installed": bool(ext)}, fix="\n".join(steps))]
    sql = SLOW_QUERIES_SQL.format(schema=ext[0]["schema"])
    if ctx.version_num < 130000:
        sql = sql.replace("mean_exec_time", "mean_time").replace("total_exec_time", "total_time")
    return [ctx.finding("warning", f"query {r['queryid']}", f"{r['mean_ms']:.0f} ms on average over "
                        f"{human_count(r['calls'])} calls ({human_duration(r['total_ms'] / 1000)} in all): "
                        f"{_q(r['query'])}", r) for r in ctx.query(sql)]


def _read_replication(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    if ctx.query("SELECT pg_is_in_recovery() AS r")[0]["r"]:
        r = ctx.query("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag_seconds, "
                      "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AS caught_up")[0]
        lag = r["lag_seconds"] or 0
        sev = "warning" if lag >= t.replication_lag_seconds and not r["caught_up"] else "ok"
        out.append(ctx.finding(sev, "this replica", f"this server is a replica, {human_duration(lag)} behind its "
                               f"primary{' (caught up: the primary is quiet)' if r['caught_up'] else ''}", r,
                               fix="" if sev == "ok" else None))
        return out
    for r in ctx.query("SELECT application_name, client_addr::text AS client, state, sync_state, "
                       "extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds, "
                       "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS behind_bytes FROM pg_stat_replication"):
        lag = r["replay_lag_seconds"] or 0
        out.append(ctx.finding("warning" if lag >= t.replication_lag_seconds else "ok",
                               f"replica {r['application_name'] or r['client']}",
                               f"{r['state']} ({r['sync_state']}), replay {human_duration(lag)} and "
                               f"{human_bytes(r['behind_bytes'] or 0)} behind", r, fix=""))
    for r in ctx.query("SELECT slot_name, slot_type, database, active, pg_wal_lsn_diff(pg_current_wal_lsn(), "
                       "coalesce(restart_lsn, pg_current_wal_lsn()))::bigint AS retained_bytes FROM pg_replication_slots"):
        retained = r["retained_bytes"] or 0
        sev = "critical" if retained >= t.slot_retained_bytes else "warning" if not r["active"] else "ok"
        name = r["slot_name"] or ""
        owner = (f" (golive's point-in-time archive {name.removeprefix('golive_archive_')!r})"
                 if name.startswith("golive_archive_") else " (golive's online migration)"
                 if name.startswith("golive_") else "")
        fix = (f"start its archiver again (golive archive start), or golive archive forget --db … --name "
               f"{name.removeprefix('golive_archive_')} if archiving stopped for good"
               if name.startswith("golive_archive_") else
               f"SELECT pg_drop_replication_slot('{name}');  -- only if nothing will use it")
        out.append(ctx.finding(sev, f"slot {name}", f"{r['slot_type']} replication slot{owner}, "
                               f"{'active' if r['active'] else 'INACTIVE'}, keeps {human_bytes(retained)} of WAL "
                               "(the disk fills while nothing consumes it)", r,
                               fix=fix if sev != "ok" else ""))
    if not out:
        out.append(ctx.finding("ok", "replication", "no replicas and no replication slots", {}, fix=""))
    return out


#: column names apps use for "soft-deleted at" (Rails paranoia/discard, Laravel, Django safedelete, ...)
SOFT_DELETE_RE = "^(deleted|removed|archived|discarded|trashed)_(at|on|date|time)$"


def _read_soft_deleted(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        old = ctx.query(f"SELECT count(*) AS n FROM (SELECT 1 FROM {esc(r['table'])} WHERE {esc(r['column'])} < now() - "
                        f"%(soft_delete_days)s * interval '1 day' LIMIT {SOFT_DELETE_CAP + 1}) x")[0]["n"]
        if old:
            out.append(soft_delete_finding(ctx, r, old, f"DELETE FROM {r['table']} WHERE {r['column']} < now() - "
                                           f"interval '{ctx.thresholds.soft_delete_days:g} days';  -- all at once"))
    return out


def _read_matviews(rows, ctx: Context) -> list[Finding]:
    out = []
    for r in rows:
        how = ("CONCURRENTLY (it has a unique index): readers are not blocked" if r["concurrent_ok"] else
               "with an ACCESS EXCLUSIVE lock: its readers wait during a refresh (a unique index on plain columns "
               "would allow CONCURRENTLY)")
        if not r["ispopulated"]:
            out.append(ctx.finding("warning", r["view"], "never refreshed (WITH NO DATA): every SELECT on it fails",
                                   r, fix=f"REFRESH MATERIALIZED VIEW {r['view']};  -- or: golive maintenance refresh-views"))
        else:
            out.append(ctx.finding("info", r["view"], f"{human_bytes(r['bytes'])}; golive maintenance refresh-views "
                                   f"refreshes it {how}", r,
                                   fix=f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if r['concurrent_ok'] else ''}{r['view']};"))
    return out


MATVIEWS_SQL = f"""
SELECT format('%%I.%%I', n.nspname, c.relname) AS view, c.relispopulated AS ispopulated, pg_total_relation_size(c.oid) AS bytes,
       EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisunique AND x.indisvalid
                 AND x.indpred IS NULL AND x.indexprs IS NULL) AS concurrent_ok
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND {USER}
ORDER BY 1
"""

_VACUUM_FIX = "VACUUM (ANALYZE) {table};  -- or: golive maintenance vacuum-analyze"

CHECKS: list[Check] = [
    Check("long-running-queries", "postgresql", "Long-running queries", """
SELECT pid, usename AS "user", application_name, client_addr::text AS client, state, wait_event_type, wait_event,
       extract(epoch FROM now() - query_start)::float8 AS seconds, left(query, 500) AS query
FROM pg_stat_activity
WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND query_start < now() - make_interval(secs => %(long_query_seconds)s)
ORDER BY query_start LIMIT 50""", _read_long_queries,
          fix="SELECT pg_cancel_backend({pid});  -- or pg_terminate_backend({pid}) to end the session",
          doc="Queries running longer than long_query_seconds hold locks and snapshots.", ok="no long query"),
    Check("idle-in-transaction", "postgresql", "Sessions idle in a transaction", """
SELECT pid, usename AS "user", application_name, client_addr::text AS client, state,
       extract(epoch FROM now() - state_change)::float8 AS idle_seconds,
       extract(epoch FROM now() - xact_start)::float8 AS transaction_seconds, age(backend_xmin) AS xmin_age,
       left(query, 500) AS last_query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid()
  AND state_change < now() - make_interval(secs => %(idle_in_transaction_seconds)s)
ORDER BY state_change LIMIT 50""", _read_idle_in_transaction,
          fix="SELECT pg_terminate_backend({pid});\n-- and end such sessions automatically:\n"
              "ALTER DATABASE {db} SET idle_in_transaction_session_timeout = '10min';",
          doc="An open, idle transaction keeps its locks and stops VACUUM from removing dead rows.",
          ok="no session idle in a transaction"),
    Check("connections", "postgresql", "Connections", """
SELECT count(*) AS total, count(*) FILTER (WHERE state = 'active') AS active, count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_transaction,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
FROM pg_stat_activity WHERE backend_type = 'client backend'""", _read_connections,
          fix="-- put a pooler (PgBouncer) in front of the app, or raise the limit (restart needed):\n"
              "ALTER SYSTEM SET max_connections = {suggested};",
          doc="Connections in use against max_connections (minus the superuser reserve)."),
    Check("transaction-id-wraparound", "postgresql", "Transaction ID wraparound", """
SELECT format('%%I.%%I', n.nspname, c.relname) AS "table",
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
       2146483648 - greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xids_left,
       current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY xid_age DESC LIMIT 20""", _read_wraparound, fix="VACUUM (FREEZE, VERBOSE) {table};",
          doc="Tables must be frozen before 2^31 transactions pass, or PostgreSQL stops accepting writes."),
    Check("autovacuum", "postgresql", "Autovacuum", f"""
SELECT current_setting('autovacuum') AS autovacuum, current_setting('track_counts') AS track_counts,
       (SELECT array_agg(format('%%I.%%I', n.nspname, c.relname) ORDER BY 1) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND {USER} AND EXISTS (SELECT 1 FROM unnest(c.reloptions) o
              WHERE lower(o) IN ('autovacuum_enabled=false', 'autovacuum_enabled=off', 'autovacuum_enabled=0'))
       ) AS disabled_tables""", _read_autovacuum, doc="Autovacuum on, and not disabled table by table."),
    Check("vacuum-needed", "postgresql", "Tables needing VACUUM", TABLE_ACTIVITY_SQL, _read_vacuum, fix=_VACUUM_FIX,
          doc="Dead tuples over min_dead_tuples and dead_ratio: the same rule as golive maintenance vacuum-analyze.",
          ok="no table over the dead-tuple thresholds"),
    Check("analyze-needed", "postgresql", "Tables needing ANALYZE", TABLE_ACTIVITY_SQL, _read_analyze,
          fix="ANALYZE {table};  -- or: golive maintenance analyze",
          doc="Rows changed since the last ANALYZE over min_changes and analyze_ratio.", ok="statistics are fresh"),
    Check("table-sizes", "postgresql", "Largest tables", None, read_table_sizes,
          doc="Size of the largest tables (with their indexes and TOAST) and growth since the previous report."),
    Check("index-sizes", "postgresql", "Largest indexes", None, read_index_sizes,
          doc="Size of the largest indexes and growth since the previous report.", ok="no index"),
    Check("table-bloat", "postgresql", "Table bloat (estimate)", None, read_table_bloat,
          fix="-- VACUUM makes the space reusable (the file does not shrink):\nVACUUM (ANALYZE) {table};\n"
              "-- to give it back to the OS without blocking writes use pg_repack; VACUUM FULL rewrites the table "
              "under an ACCESS EXCLUSIVE lock (golive maintenance vacuum-full):\n-- VACUUM (FULL, ANALYZE) {table};",
          doc="Wasted space estimated from column statistics (" + "table_bloat_ratio, min_table_bloat_bytes).",
          ok="no table over the bloat thresholds"),
    Check("index-bloat", "postgresql", "Index bloat (estimate)", None, read_index_bloat,
          doc="B-tree indexes whose estimated waste is over bloat_ratio and min_bloat_bytes: the same rule as "
              "golive maintenance reindex.", ok="no index over the bloat thresholds"),
    Check("unused-indexes", "postgresql", "Unused indexes", """
SELECT format('%%I.%%I', s.schemaname, s.indexrelname) AS "index", format('%%I.%%I', s.schemaname, s.relname) AS "table",
       s.idx_scan, pg_relation_size(s.indexrelid) AS bytes, pg_get_indexdef(s.indexrelid) AS definition,
       coalesce(d.stats_reset, pg_postmaster_start_time()) AS stats_since,
       (extract(epoch FROM now() - coalesce(d.stats_reset, pg_postmaster_start_time())) / 86400)::float8 AS stats_days
FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
CROSS JOIN (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) d
WHERE NOT x.indisunique AND NOT x.indisprimary AND x.indisvalid AND s.idx_scan <= %(unused_max_scans)s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid) AND s.schemaname <> '_golive'
ORDER BY bytes DESC, 1""", _read_unused, fix="DROP INDEX CONCURRENTLY {index};\n-- to put it back: {recreate};",
          doc="Indexes scanned at most unused_max_scans times since the statistics were reset.", ok="every index is used"),
    Check("duplicate-indexes", "postgresql", "Duplicate indexes", INDEX_LIST_SQL, _read_duplicates,
          fix="DROP INDEX CONCURRENTLY {index};", min_version=110000,
          doc="Indexes whose columns lead another index of the same table (PgHero's rule).", ok="no duplicate index"),
    Check("invalid-indexes", "postgresql", "Invalid indexes", f"""
SELECT format('%%I.%%I', n.nspname, ci.relname) AS "index", ci.relname AS name, format('%%I.%%I', n.nspname, ct.relname) AS "table",
       pg_relation_size(ci.oid) AS bytes, pg_get_indexdef(ci.oid) AS definition
FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE NOT x.indisvalid AND {USER}
ORDER BY 1""", _read_invalid_indexes, doc="Indexes left invalid by a failed CREATE/REINDEX ... CONCURRENTLY.",
          ok="no invalid index"),
    Check("invalid-constraints", "postgresql", "Constraints not validated", f"""
SELECT format('%%I.%%I', n.nspname, t.relname) AS "table", c.conname AS constraint_name, quote_ident(c.conname) AS qname,
       CASE c.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' ELSE c.contype::text END AS kind,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE NOT c.convalidated AND {USER}
ORDER BY 1, 2""", _read_invalid_constraints,
          fix="ALTER TABLE {table} VALIDATE CONSTRAINT {qname};  -- SHARE UPDATE EXCLUSIVE lock: writes go on",
          doc="Constraints added NOT VALID and never validated.", ok="every constraint is validated"),
    Check("foreign-keys-without-index", "postgresql", "Foreign keys without an index", f"""
SELECT format('%%I.%%I', n.nspname, t.relname) AS "table", quote_ident(c.conname) AS constraint_name,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, i)
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns,
       c.confrelid::regclass::text AS referenced, coalesce(s.n_live_tup, 0) AS rows
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid
WHERE c.contype = 'f' AND {USER} AND NOT EXISTS (
  SELECT 1 FROM pg_index x WHERE x.indrelid = c.conrelid AND x.indisvalid AND x.indpred IS NULL
     AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] @> c.conkey
     AND (string_to_array(x.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)] <@ c.conkey)
ORDER BY 1, 2""", _read_fk_without_index, fix="CREATE INDEX CONCURRENTLY ON {table} ({columns});",
          doc="A foreign key without an index on its columns makes every delete of a parent row scan the child.",
          ok="every foreign key has an index"),
    Check("no-primary-key", "postgresql", "Tables without a primary key", f"""
SELECT format('%%I.%%I', n.nspname, c.relname) AS "table", coalesce(s.n_live_tup, 0) AS rows
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {USER}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
ORDER BY 1""", _read_no_pk,
          fix="-- when a unique NOT NULL column set exists: ALTER TABLE {table} ADD PRIMARY KEY (<columns>);\n"
              "ALTER TABLE {table} ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;  -- rewrites the table",
          doc="Tables without a primary key.", ok="every table has a primary key"),
    Check("sequence-overflow", "postgresql", "Sequences near overflow", """
SELECT format('%%I.%%I', s.schemaname, s.sequencename) AS sequence, s.data_type::text AS sequence_type,
       s.last_value, s.max_value, s.min_value, s.increment_by, col."table", col."column", col.column_type
FROM pg_sequences s
LEFT JOIN LATERAL (
  SELECT format('%%I.%%I', tn.nspname, t.relname) AS "table", quote_ident(a.attname) AS "column",
         format_type(a.atttypid, NULL) AS column_type
  FROM pg_class sc JOIN pg_namespace sn ON sn.oid = sc.relnamespace
  JOIN pg_depend d ON d.objid = sc.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                   AND d.deptype IN ('a', 'i')
  JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
  WHERE sn.nspname = s.schemaname AND sc.relname = s.sequencename LIMIT 1) col ON true
WHERE s.schemaname NOT IN ('_golive', 'pg_catalog') AND s.last_value IS NOT NULL
ORDER BY 1""", _read_sequences, min_version=100000,
          doc="Sequences whose last value is over overflow_warning / overflow_critical of what they (or the column "
              "they feed) can hold.", ok="no sequence near its limit"),
    Check("integer-column-overflow", "postgresql", "Integer key columns near overflow", INT_KEY_COLUMNS_SQL,
          _read_int_columns,
          fix="-- rewrites {table} under an ACCESS EXCLUSIVE lock; on a big table add a bigint column and backfill it\n"
              "ALTER TABLE {table} ALTER COLUMN {column} TYPE bigint;",
          doc="Indexed smallint/integer columns (not fed by a sequence) whose largest value nears the type's limit.",
          ok="no integer key near its limit"),
    Check("cache-hit-rate", "postgresql", "Cache hit rate", """
SELECT (SELECT sum(heap_blks_hit)::float8 FROM pg_statio_user_tables) AS table_hit,
       (SELECT sum(heap_blks_read)::float8 FROM pg_statio_user_tables) AS table_read,
       (SELECT sum(idx_blks_hit)::float8 FROM pg_statio_user_indexes) AS index_hit,
       (SELECT sum(idx_blks_read)::float8 FROM pg_statio_user_indexes) AS index_read,
       current_setting('shared_buffers') AS shared_buffers""", _read_cache,
          fix="-- more memory for PostgreSQL's cache (about 25 % of RAM), then restart:\n"
              "ALTER SYSTEM SET shared_buffers = '<25 % of RAM>';",
          doc="Share of table and index blocks found in shared_buffers (PgHero: 99 %)."),
    Check("slow-queries", "postgresql", "Slow queries (pg_stat_statements)", None, _read_slow_queries,
          fix="EXPLAIN (ANALYZE, BUFFERS) <the query, with real values>;  -- then index what it filters on",
          doc="Queries with mean time over slow_query_ms among those called slow_query_min_calls times.",
          ok="no slow query"),
    Check("replication", "postgresql", "Replication lag and slots", None, _read_replication,
          doc="Replica lag (on a replica or seen from the primary) and replication slots that hold WAL."),
    Check("sequential-scans", "postgresql", "Tables read by sequential scans", """
SELECT format('%%I.%%I', schemaname, relname) AS "table", seq_scan, coalesce(idx_scan, 0) AS idx_scan, n_live_tup, seq_tup_read
FROM pg_stat_user_tables
WHERE n_live_tup >= %(seq_scan_min_rows)s AND seq_scan > 0 AND schemaname <> '_golive'
  AND coalesce(idx_scan, 0) * 100 < 95 * (seq_scan + coalesce(idx_scan, 0))
ORDER BY seq_tup_read DESC LIMIT 20""", _read_seq_scans,
          fix="-- find the queries that scan it (pg_stat_statements, EXPLAIN) and index the columns they filter on:\n"
              "CREATE INDEX CONCURRENTLY ON {table} (<columns>);",
          doc="Big tables read mostly by sequential scans (PgHero's missing indexes).", ok="no such table"),
    Check("soft-deleted-rows", "postgresql", "Soft-deleted rows waiting for purge", f"""
SELECT format('%%I.%%I', n.nspname, c.relname) AS "table", quote_ident(a.attname) AS "column", a.attname AS column_name
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped AND {USER}
  AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)
  AND a.attname ~* '{SOFT_DELETE_RE}'
ORDER BY 1, 2 LIMIT 50""", _read_soft_deleted,
          doc="Date/time columns named like deleted_at, archived_at, ...: rows marked longer ago than soft_delete_days.",
          ok="no soft-deleted rows waiting"),
    Check("materialized-views", "postgresql", "Materialized views", MATVIEWS_SQL, _read_matviews,
          doc="Materialized views: populated or not, and whether they can be refreshed CONCURRENTLY.",
          ok="no materialized view"),
]


#: sizes over time, in the schema golive's migration bookkeeping also uses
HISTORY_TABLE = "_golive.report_history"
HISTORY_DDL = f"""
CREATE SCHEMA IF NOT EXISTS _golive;
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
  taken_at timestamptz NOT NULL,
  kind text NOT NULL,
  name text NOT NULL,
  bytes bigint NOT NULL,
  row_count bigint,
  PRIMARY KEY (kind, name, taken_at)
)"""


class PostgresHealth(Health):
    history_table = HISTORY_TABLE
    history_ddl = HISTORY_DDL

    def facts(self, conn) -> ServerFacts:
        r = query(conn, "SELECT current_database() AS db, current_setting('server_version') AS version, "
                        "current_setting('server_version_num')::int AS num")[0]
        return ServerFacts(r["db"], r["version"], r["num"])

    def checks(self) -> list[Check]:
        return CHECKS

    def collect_sizes(self, conn) -> tuple[int, list[TableSize]]:
        return collect_sizes(conn)

    def history_exists(self, conn) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,))
            return bool(cur.fetchone()[0])

    def missing_privilege(self, exc: BaseException, conn) -> str | None:
        """SQLSTATE 42501: the predefined role the server names (pg_read_all_settings for a superuser-only setting,
        https://www.postgresql.org/docs/current/predefined-roles.html), pg_read_all_data for a table, else
        pg_monitor (which holds the settings, statistics and scan roles a report reads)."""
        diag = getattr(exc, "diag", None)
        if (getattr(diag, "sqlstate", None) or getattr(exc, "sqlstate", None)) != "42501":
            return None
        text = f"{exc} {getattr(diag, 'message_detail', None) or ''}"
        named = PREDEFINED_ROLE.search(text)
        role = named.group(0) if named else (
            "pg_read_all_data" if re.search(r"permission denied for (table|relation|view|schema)", text) else "pg_monitor")
        user = conn.info.user
        return f"GRANT {role} TO {user if re.fullmatch(r'[a-z_][a-z0-9_]*', user) else qi(user)}"

"""MySQL / MariaDB's side of ``golive report db``: its checks, as data (``golive.model.health.Check``), sizes, and
the history table.

They read ``information_schema`` and the server status only. Table names are the database's own (the
URL names the database); fixes quote them with backticks. InnoDB's figures in ``information_schema.tables``
(rows, data_free) are estimates refreshed by ``ANALYZE TABLE``; on MySQL 8 the session reads them fresh
(``information_schema_stats_expiry = 0``).
"""

from __future__ import annotations

import re

import datetime as dt

from golive.dialects.base import Health
from golive.dialects.mysql.session import qi
from golive.model.health import (SOFT_DELETE_CAP, Check, Context, Finding, ServerFacts, TableSize, esc, pct, query,
                                 read_index_sizes, soft_delete_finding)
from golive.units import human_bytes, human_count, human_duration

#: (signed, unsigned) maximum of each integer type
INT_RANGE = {"tinyint": (127, 255), "smallint": (32767, 65535), "mediumint": (8388607, 16777215),
             "int": (2147483647, 4294967295), "integer": (2147483647, 4294967295),
             "bigint": (9223372036854775807, 18446744073709551615)}

OWN_TABLES = "table_name NOT LIKE '\\_golive%%'"

TABLES_SQL = f"""
SELECT table_name AS name, engine, table_rows AS row_count, data_length, index_length, data_free, auto_increment
FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND {OWN_TABLES}
ORDER BY data_length + index_length DESC
"""


def version_num(version: str) -> int:
    """``10.11.19-MariaDB`` -> 101119, ``8.0.36`` -> 80036."""
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version or "")
    return int(m.group(1)) * 10000 + int(m.group(2)) * 100 + int(m.group(3)) if m else 0


def collect_sizes(conn) -> tuple[int, list[TableSize]]:
    """The database's size and that of every table (and index, when ``mysql.innodb_index_stats`` is readable)."""
    sizes = [TableSize(name=r["name"], kind="table", bytes=int((r["data_length"] or 0) + (r["index_length"] or 0)),
                       table_bytes=int(r["data_length"] or 0), index_bytes=int(r["index_length"] or 0),
                       row_count=int(r["row_count"] or 0)) for r in query(conn, TABLES_SQL)]
    try:
        for r in query(conn, f"SELECT table_name AS table_name, index_name AS index_name, stat_value * @@innodb_page_size AS bytes "
                             f"FROM mysql.innodb_index_stats WHERE database_name = DATABASE() AND stat_name = 'size' "
                             f"AND {OWN_TABLES}"):
            sizes.append(TableSize(name=f"{r['table_name']}.{r['index_name']}", kind="index", table=r["table_name"],
                                   bytes=int(r["bytes"] or 0)))
    except Exception:  # no privilege on the mysql schema: tables only
        pass
    return sum(s.bytes for s in sizes if s.kind == "table"), sizes


def _read_table_sizes(rows, ctx: Context) -> list[Finding]:
    out = []
    for s in sorted((s for s in ctx.sizes if s.kind == "table"), key=lambda s: -s.bytes)[: ctx.facts.get("top", 10)]:
        growth = s.growth
        grew = "" if growth is None else f", {'+' if growth >= 0 else '-'}{human_bytes(abs(growth))} since {s.previous_at}"
        out.append(ctx.finding("info", s.name, f"{human_bytes(s.bytes)} (data {human_bytes(s.table_bytes)}, indexes "
                               f"{human_bytes(s.index_bytes)}), ~{human_count(s.row_count or 0)} rows{grew}",
                               {**s.model_dump(), "growth_bytes": growth}))
    return out


def needs_optimize(row: dict, t) -> str | None:
    """Why a table (a row of ``TABLES_SQL``) is fragmented enough to rebuild under thresholds ``t``, or None."""
    free = int(row["data_free"] or 0)
    whole = int((row["data_length"] or 0) + (row["index_length"] or 0)) + free
    ratio = free / whole if whole else 0.0
    if free >= t.min_free_bytes and ratio >= t.fragmentation_ratio:
        return (f"{human_bytes(free)} free inside its {human_bytes(whole)} ({pct(ratio)}; thresholds "
                f"{human_bytes(t.min_free_bytes)} and {pct(t.fragmentation_ratio)})")
    return None


def _read_fragmentation(rows, ctx: Context) -> list[Finding]:
    shared = ctx.query("SELECT @@innodb_file_per_table AS f")[0]["f"] in (0, "0", "OFF")
    if shared:
        return [ctx.finding("info", "innodb_file_per_table", "innodb_file_per_table is OFF: data_free is the shared "
                            "tablespace's, not a table's, and rebuilding a table does not give space back", {},
                            fix="SET GLOBAL innodb_file_per_table = ON;  -- tables move out when rebuilt")]
    out = []
    for r in rows:
        why = needs_optimize(r, ctx.thresholds)
        if why and (r["engine"] or "").lower() == "innodb":
            out.append(ctx.finding("warning", r["name"], why, {**r, "qname": qi(r["name"])}))
    return out


def _read_no_pk(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("warning", r["name"], f"no primary key (~{human_count(r['row_count'] or 0)} rows): InnoDB "
                        "clusters it on a hidden row id, row-based replication scans the table for every changed row, "
                        "and Galera/group replication refuse writes to it", {**r, "qname": qi(r["name"])},
                        fix=(f"ALTER TABLE {qi(r['name'])} ADD PRIMARY KEY ({r['unique_columns']});  -- its unique key"
                             if r["unique_columns"] else
                             f"ALTER TABLE {qi(r['name'])} ADD COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT "
                             "PRIMARY KEY FIRST;  -- rebuilds the table")) for r in rows]


def redundant_indexes(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(redundant, covering) pairs among the indexes of ``information_schema.statistics`` rows: an index
    whose columns are the leading columns of another B-tree index of the same table, or exactly the
    columns of another index (a unique index only when the other is unique too)."""
    indexes: dict[tuple[str, str], dict] = {}
    for r in rows:
        ix = indexes.setdefault((r["table_name"], r["index_name"]), {
            "table": r["table_name"], "name": r["index_name"], "unique": not int(r["non_unique"]),
            "primary": r["index_name"] == "PRIMARY", "type": r["index_type"], "cols": []})
        ix["cols"].append((r["column_name"], r["sub_part"]))
    out = []
    for a in indexes.values():
        if a["primary"]:
            continue
        for b in indexes.values():
            if b is a or b["table"] != a["table"] or b["type"] != a["type"]:
                continue
            same = a["cols"] == b["cols"]
            prefix = a["type"] == "BTREE" and len(a["cols"]) < len(b["cols"]) and b["cols"][: len(a["cols"])] == a["cols"]
            if a["unique"]:
                if not (same and b["unique"] and (b["primary"] or a["name"] > b["name"])):
                    continue
            elif not (prefix or (same and (b["unique"] or a["name"] > b["name"]))):
                continue
            out.append((a, b))
            break
    return out


def _cols(ix: dict) -> str:
    return ", ".join(c + (f"({n})" if n else "") for c, n in ix["cols"])


def _read_duplicates(rows, ctx: Context) -> list[Finding]:
    return [ctx.finding("warning", f"{a['table']}.{a['name']}",
                        f"({_cols(a)}) {'duplicates' if a['cols'] == b['cols'] else 'is a left prefix of'} "
                        f"{b['name']} ({_cols(b)}): written on every change for nothing",
                        {"table": a["table"], "index": a["name"], "columns": _cols(a), "covered_by": b["name"],
                         "covering_columns": _cols(b), "qtable": qi(a["table"]), "qindex": qi(a["name"])})
            for a, b in redundant_indexes(rows)]


def _read_auto_increment(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    out = []
    for r in rows:
        signed_max, unsigned_max = INT_RANGE.get((r["data_type"] or "").lower(), (None, None))
        if signed_max is None or r["auto_increment"] is None:
            continue
        unsigned = "unsigned" in (r["column_type"] or "").lower()
        cap = unsigned_max if unsigned else signed_max
        used = int(r["auto_increment"]) - 1
        share = used / cap
        sev = "critical" if share >= t.overflow_critical else "warning" if share >= t.overflow_warning else None
        if sev:
            out.append(ctx.finding(sev, f"{r['name']}.{r['column_name']}", f"AUTO_INCREMENT at {human_count(used)} of "
                                   f"{human_count(cap)} ({pct(share)}) for {r['column_type']}",
                                   {**r, "capacity": cap, "share": round(share, 4), "qtable": qi(r["name"]),
                                    "qcolumn": qi(r["column_name"]), "unsigned": " UNSIGNED" if unsigned else ""}))
    return out


def _status(ctx: Context, *names: str) -> dict[str, int]:
    quoted = ", ".join(f"'{n}'" for n in names)
    got = ctx.query(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({quoted})")
    return {str(r["Variable_name"]): int(r["Value"]) for r in got}


def _one_line(text: str | None, n: int = 200) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _read_buffer_pool(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    s = _status(ctx, "Innodb_buffer_pool_read_requests", "Innodb_buffer_pool_reads")
    size = ctx.query("SELECT @@innodb_buffer_pool_size AS b")[0]["b"]
    requests, reads = s.get("Innodb_buffer_pool_read_requests", 0), s.get("Innodb_buffer_pool_reads", 0)
    ev = {"read_requests": requests, "disk_reads": reads, "innodb_buffer_pool_size": int(size)}
    if requests < t.cache_min_reads:
        return [ctx.finding("ok", "buffer pool", f"only {human_count(requests)} page requests so far, too few to judge",
                            ev, fix="")]
    rate = 1 - reads / requests
    return [ctx.finding("warning" if rate < t.cache_hit_rate else "ok", "buffer pool",
                        f"InnoDB buffer pool hit rate {rate * 100:.2f} % (threshold {t.cache_hit_rate * 100:.0f} %; "
                        f"innodb_buffer_pool_size = {human_bytes(int(size))})", {**ev, "rate": round(rate, 5)},
                        fix=None if rate < t.cache_hit_rate else "")]


def _read_long_queries(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    return [ctx.finding("critical" if r["time"] >= t.long_query_critical_seconds else "warning", f"connection {r['id']}",
                        f"running for {human_duration(r['time'])} ({r['user']}, {r['state'] or r['command']}): "
                        f"{_one_line(r['query'])}", r) for r in rows]


def _read_long_transactions(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    return [ctx.finding("critical" if r["seconds"] >= t.long_query_critical_seconds else "warning",
                        f"connection {r['id']}", f"transaction open for {human_duration(r['seconds'])} "
                        f"({r['trx_state']}, {human_count(r['trx_rows_locked'] or 0)} rows locked, "
                        f"{human_count(r['trx_rows_modified'] or 0)} modified): it holds its locks and keeps purge "
                        "from removing old row versions", r) for r in rows]


def _read_connections(rows, ctx: Context) -> list[Finding]:
    t = ctx.thresholds
    s = _status(ctx, "Threads_connected", "Max_used_connections")
    limit = int(ctx.query("SELECT @@max_connections AS m")[0]["m"])
    used = s.get("Threads_connected", 0)
    share = used / limit if limit else 0
    sev = "critical" if share >= t.connections_critical else "warning" if share >= t.connections_warning else "ok"
    return [ctx.finding(sev, "max_connections", f"{used} of {limit} connections in use ({pct(share)}; at most "
                        f"{s.get('Max_used_connections', 0)} since the server started)",
                        {"connected": used, "max_connections": limit, "max_used": s.get("Max_used_connections", 0),
                         "suggested": max(limit * 2, 200)},
                        fix=None if sev != "ok" else "")]


def _read_soft_deleted(rows, ctx: Context) -> list[Finding]:
    out = []
    secs = int(ctx.thresholds.soft_delete_days * 86400)
    for r in rows:
        t, c = qi(r["table_name"]), qi(r["column_name"])
        old = ctx.query(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {esc(t)} WHERE {esc(c)} < NOW() - INTERVAL %(secs)s SECOND "
                        f"LIMIT {SOFT_DELETE_CAP + 1}) x", {"secs": secs})[0]["n"]
        if old:
            r = {**r, "table": r["table_name"]}
            out.append(soft_delete_finding(ctx, r, int(old), f"DELETE FROM {t} WHERE {c} < NOW() - INTERVAL "
                                           f"{ctx.thresholds.soft_delete_days:g} DAY;  -- all at once"))
    return out


CHECKS: list[Check] = [
    Check("table-sizes", "mysql", "Largest tables", None, _read_table_sizes,
          doc="Data and index size of the largest tables, and growth since the previous report."),
    Check("index-sizes", "mysql", "Largest indexes", None, read_index_sizes,
          doc="Size of the largest indexes (from mysql.innodb_index_stats when readable) and growth since the "
              "previous report.", ok="no index size readable"),
    Check("fragmentation", "mysql", "Fragmented tables (data_free)", TABLES_SQL, _read_fragmentation,
          fix="ALTER TABLE {qname} FORCE, ALGORITHM=INPLACE, LOCK=NONE;  -- OPTIMIZE TABLE's online equivalent "
              "(or: golive maintenance optimize)",
          doc="InnoDB tables whose free space (data_free) is over fragmentation_ratio and min_free_bytes: the "
              "same rule as golive maintenance optimize.", ok="no fragmented table"),
    Check("no-primary-key", "mysql", "Tables without a primary key", f"""
SELECT t.table_name AS name, t.table_rows AS row_count, t.engine,
       (SELECT GROUP_CONCAT(CONCAT('`', REPLACE(s.column_name, '`', '``'), '`') ORDER BY s.seq_in_index)
          FROM information_schema.statistics s
         WHERE s.table_schema = t.table_schema AND s.table_name = t.table_name AND s.non_unique = 0
           AND s.index_name = (SELECT MIN(u.index_name) FROM information_schema.statistics u
                                WHERE u.table_schema = t.table_schema AND u.table_name = t.table_name AND u.non_unique = 0
                                  AND NOT EXISTS (SELECT 1 FROM information_schema.statistics v
                                                   WHERE v.table_schema = u.table_schema AND v.table_name = u.table_name
                                                     AND v.index_name = u.index_name AND v.nullable = 'YES'))
       ) AS unique_columns
FROM information_schema.tables t
WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' AND t.{OWN_TABLES}
  AND NOT EXISTS (SELECT 1 FROM information_schema.table_constraints c WHERE c.table_schema = t.table_schema
                  AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY')
ORDER BY 1""", _read_no_pk, doc="Tables without a primary key.", ok="every table has a primary key"),
    Check("duplicate-indexes", "mysql", "Duplicate and left-prefix indexes", f"""
SELECT table_name AS table_name, index_name AS index_name, non_unique AS non_unique, index_type AS index_type,
       seq_in_index AS seq_in_index, column_name AS column_name, sub_part AS sub_part
FROM information_schema.statistics WHERE table_schema = DATABASE() AND {OWN_TABLES}
ORDER BY table_name, index_name, seq_in_index""", _read_duplicates,
          fix="ALTER TABLE {qtable} DROP INDEX {qindex}, ALGORITHM=INPLACE, LOCK=NONE;",
          doc="Indexes whose columns duplicate, or are the leading columns of, another index.", ok="no redundant index"),
    Check("auto-increment-overflow", "mysql", "AUTO_INCREMENT near the type's maximum", f"""
SELECT t.table_name AS name, t.auto_increment AS auto_increment, c.column_name AS column_name,
       c.data_type AS data_type, c.column_type AS column_type
FROM information_schema.tables t
JOIN information_schema.columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name
     AND c.extra LIKE '%%auto_increment%%'
WHERE t.table_schema = DATABASE() AND t.auto_increment IS NOT NULL AND t.{OWN_TABLES}
ORDER BY 1""", _read_auto_increment,
          fix="ALTER TABLE {qtable} MODIFY {qcolumn} BIGINT{unsigned} NOT NULL AUTO_INCREMENT;  -- copies the table "
              "and blocks writes meanwhile: on a big table use pt-online-schema-change or gh-ost",
          doc="AUTO_INCREMENT counters over overflow_warning / overflow_critical of their column type.",
          ok="no counter near its limit"),
    Check("soft-deleted-rows", "mysql", "Soft-deleted rows waiting for purge", f"""
SELECT table_name AS table_name, column_name AS column_name FROM information_schema.columns
WHERE table_schema = DATABASE() AND {OWN_TABLES} AND data_type IN ('date', 'datetime', 'timestamp')
  AND LOWER(column_name) REGEXP '^(deleted|removed|archived|discarded|trashed)_(at|on|date|time)$'
ORDER BY 1, 2 LIMIT 50""", _read_soft_deleted,
          doc="Date/time columns named like deleted_at, archived_at, ...: rows marked longer ago than soft_delete_days.",
          ok="no soft-deleted rows waiting"),
    Check("buffer-pool-hit-rate", "mysql", "InnoDB buffer pool hit rate", None, _read_buffer_pool,
          fix="SET GLOBAL innodb_buffer_pool_size = <about 70 % of RAM>;  -- resizable online",
          doc="Share of page requests served from the buffer pool."),
    Check("long-queries", "mysql", "Long-running queries", """
SELECT id AS id, user AS user, host AS host, db AS db, command AS command, time AS time, state AS state,
       LEFT(info, 500) AS query
FROM information_schema.processlist
WHERE command NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Killed') AND info IS NOT NULL
  AND time >= %(long_query_seconds)s AND id <> CONNECTION_ID()
ORDER BY time DESC LIMIT 50""", _read_long_queries, fix="KILL QUERY {id};",
          doc="Statements running longer than long_query_seconds.", ok="no long query"),
    Check("long-transactions", "mysql", "Long open transactions", """
SELECT trx_mysql_thread_id AS id, trx_state AS trx_state, trx_started AS trx_started,
       TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS seconds, trx_rows_locked AS trx_rows_locked,
       trx_rows_modified AS trx_rows_modified, LEFT(trx_query, 300) AS query
FROM information_schema.innodb_trx
WHERE trx_started < NOW() - INTERVAL %(idle_in_transaction_seconds)s SECOND AND trx_mysql_thread_id <> CONNECTION_ID()
ORDER BY trx_started LIMIT 50""", _read_long_transactions, fix="KILL {id};  -- ends the session and rolls back",
          doc="InnoDB transactions open longer than idle_in_transaction_seconds.", ok="no long transaction"),
    Check("connections", "mysql", "Connections", None, _read_connections,
          fix="-- a connection pool in the app (or ProxySQL), or a higher limit:\nSET GLOBAL max_connections = {suggested};",
          doc="Threads connected against max_connections."),
]


#: sizes over time, in the database itself (MySQL has no schemas inside a database)
HISTORY_TABLE = "_golive_report_history"
HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
  taken_at DATETIME(6) NOT NULL COMMENT 'UTC',
  kind VARCHAR(16) NOT NULL,
  name VARCHAR(255) NOT NULL,
  bytes BIGINT NOT NULL,
  row_count BIGINT NULL,
  PRIMARY KEY (kind, name, taken_at)
) ENGINE=InnoDB COMMENT='golive report db: sizes over time'"""


class MySQLHealth(Health):
    history_table = HISTORY_TABLE
    history_ddl = HISTORY_DDL

    def facts(self, conn) -> ServerFacts:
        r = query(conn, "SELECT DATABASE() AS db, VERSION() AS version")[0]
        return ServerFacts(r["db"], r["version"], version_num(r["version"]))

    def checks(self) -> list[Check]:
        return CHECKS

    def collect_sizes(self, conn) -> tuple[int, list[TableSize]]:
        return collect_sizes(conn)

    def history_exists(self, conn) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                        "AND table_name = %s", (HISTORY_TABLE,))
            return bool(cur.fetchone()[0])

    def missing_privilege(self, exc: BaseException, conn) -> str | None:
        """Error 1227 ("you need (at least one of) the PROCESS privilege(s)"): that privilege on ``*.*``; 1142 ("SELECT
        command denied … for table t"): that command on the table."""
        args = getattr(exc, "args", ())
        code, text = (args[0], str(args[1])) if len(args) > 1 and isinstance(args[0], int) else (0, str(exc))
        if code == 1227:
            m = re.search(r"need (?:at least one of )?the ([A-Z_ ]+?)(?:,| privilege)", text)
            grant = f"GRANT {m.group(1).strip() if m else 'PROCESS'} ON *.*"
        elif code == 1142:
            m = re.match(r"(\w+) command denied .* for table (.+?)\s*$", text)
            table = m.group(2).replace("'", "`") if m else ""
            grant = f"GRANT {m.group(1)} ON {table}" if m else "GRANT SELECT"
        else:
            return None
        try:
            user, _, host = query(conn, "SELECT CURRENT_USER() AS u")[0]["u"].rpartition("@")
        except Exception:  # noqa: BLE001 - the grant still says what is needed
            return f"{grant} TO the report's user"
        return f"{grant} TO '{user}'@'{host}'"

    def history_stamp(self, moment: dt.datetime) -> dt.datetime:
        # DATETIME has no time zone: the table holds UTC (its column comment says so)
        return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)

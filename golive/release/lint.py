"""Lint the pending SQL for operations that lock tables or lose data, sized by the live database.

The rules are data (``RULES``: an ID for ``--allow``, the engines, how size decides, the message and the
fix); small detector functions find them in each statement. Sizing, from the live catalog:

* ``size``: a lock whose length grows with the table: an **error** (blocks the release) on a table of at
  least ``large_table`` bytes, a warning on a smaller one, nothing on a table the release creates itself.
* ``rows``: data loss: an error when the table has rows, a warning when it is empty.
* ``dml``: an UPDATE/DELETE: an error when the server estimates (``EXPLAIN``, nothing runs) 10,000 rows or
  more, or cannot estimate and the table is large; a warning from 1,000 rows; nothing below.
* ``always``: an error (renames break the running app whatever the size); ``advice``: a warning.

``--allow RULE`` turns that rule's errors into allowed findings (still reported).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from golive.errors import ConfigError
from golive.release import db
from golive.release.model import Finding, Migration
from golive.release.sqltext import QUALIFIED, Statement, parse_name, split, split_top_level
from golive.units import human_bytes, human_count

DML_ROWS = 10_000
BOTH = ("postgresql", "mysql")


@dataclass(frozen=True)
class Rule:
    id: str
    engines: tuple[str, ...]
    sizing: str  # size | rows | dml | always | advice
    message: str
    fix: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("index-not-concurrent", ("postgresql",), "size",
         "CREATE INDEX without CONCURRENTLY blocks every write to {table} for the whole build",
         "CREATE INDEX CONCURRENTLY (golive runs a migration holding it outside a transaction)"),
    Rule("volatile-default", ("postgresql",), "size",
         "ADD COLUMN {detail} rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock",
         "add the column without a default (or with a constant one), backfill in batches, then SET DEFAULT"),
    Rule("set-not-null", ("postgresql",), "size",
         "SET NOT NULL on {detail} reads every row of {table} under an ACCESS EXCLUSIVE lock",
         "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT; then SET NOT NULL "
         "(PostgreSQL 12+ skips the scan)"),
    Rule("alter-type-rewrite", ("postgresql",), "size",
         "ALTER COLUMN {detail} rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock",
         "add a new column, backfill it in batches, switch the app over, drop the old column later"),
    Rule("constraint-not-valid", ("postgresql",), "size",
         "ADD {detail} without NOT VALID checks every row of {table} while holding its lock",
         "ADD … NOT VALID now, VALIDATE CONSTRAINT in a later step (it does not block writes)"),
    Rule("unique-constraint-index", ("postgresql",), "size",
         "ADD {detail} builds its index under an ACCESS EXCLUSIVE lock on {table}",
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX"),
    Rule("drop-table", BOTH, "rows",
         "DROP TABLE {table} deletes its {rows} rows, and the running app's queries on it fail",
         "stop using it in the app first; drop it in a later release (keep the backup)"),
    Rule("drop-column", BOTH, "rows",
         "DROP COLUMN {detail} deletes its values in {rows} rows of {table}; the running app's queries naming it fail",
         "release the app version that no longer uses the column first, then drop it"),
    Rule("truncate", BOTH, "rows", "TRUNCATE deletes all {rows} rows of {table}",
         "delete what must go in batches, or keep the data (a backup is not an undo for the app's users)"),
    Rule("rename", BOTH, "always", "RENAME {detail}: the app that is running now still uses the old name",
         "add the new name beside the old one (a view, a column kept in sync), switch the app, drop the old later"),
    Rule("unbatched-dml", BOTH, "dml",
         "{detail} touches about {estimate} rows of {table} in one statement: long row locks and one big transaction",
         "update/delete in batches (key ranges of a few thousand rows) outside the schema migration"),
    Rule("no-lock-timeout", BOTH, "advice",
         "the migration takes locks but sets no lock timeout: run elsewhere (psql, its tool's CLI) it would wait for "
         "locks forever while the app's queries queue behind it; golive sets {lock_timeout} for the release",
         "SET lock_timeout = '5s'; at its top (MySQL: SET SESSION lock_wait_timeout = 5;)"),
    Rule("mysql-copy-alter", ("mysql",), "size",
         "{detail}: not possible INSTANT or INPLACE, so ALGORITHM=COPY rebuilds {table} and blocks its writes",
         "add ALGORITHM=INPLACE, LOCK=NONE (the server then refuses instead of copying), or use an online schema "
         "change tool (gh-ost, pt-online-schema-change)"),
    Rule("mysql-enum-reorder", ("mysql",), "rows",
         "{detail}: an ENUM changed other than by appending values rebuilds {table} (COPY), and values removed from "
         "the list turn stored ones into ''",
         "only append new values at the end of the list"),
]}


def check_allowed(allow: list[str]) -> set[str]:
    """The rule IDs of ``--allow``; an unknown one is refused with the closest ID."""
    import difflib

    out = set()
    for a in allow:
        a = a.strip()
        if a not in RULES:
            close = difflib.get_close_matches(a, RULES, n=1)
            raise ConfigError(f"--allow {a!r}: no such lint rule" + (f" (did you mean {close[0]}?)" if close else "")
                              + f"; rules: {', '.join(RULES)}")
        out.add(a)
    return out


@dataclass
class Hit:
    rule: str
    table: tuple[str | None, str] | None
    detail: str = ""


@dataclass
class LintContext:
    """What the rules need from the live database (and the release's options)."""

    dialect: str
    conn: object | None = None
    default_schema: str | None = None
    version_num: int = 0
    large_bytes: int = 10_000_000
    lock_timeout_s: float = 5.0
    allow: set[str] = field(default_factory=set)
    created: set = field(default_factory=set)
    _info: dict = field(default_factory=dict)

    def key(self, text: str) -> tuple[str | None, str]:
        return parse_name(text, self.dialect, self.default_schema)

    def info(self, key) -> db.TableInfo | None:
        if key not in self._info:
            self._info[key] = db.table_info(self.conn, self.dialect, [key]).get(key) if self.conn is not None else None
        return self._info[key]

    def coltype(self, table, column: str) -> str | None:
        if self.conn is None or table in self.created:
            return None
        try:
            return db.column_type(self.conn, self.dialect, table[0], table[1], column)
        except Exception:  # noqa: BLE001
            db._rollback(self.conn)
            return None

    def estimate(self, sql: str) -> int | None:
        """Rows the server expects ``sql`` (an UPDATE/DELETE) to touch, from EXPLAIN (nothing is run)."""
        if self.conn is None:
            return None
        try:
            with self.conn.cursor() as cur:
                if self.dialect == "postgresql":
                    cur.execute("EXPLAIN (FORMAT JSON) " + sql)
                    plan = cur.fetchone()[0]
                    plan = json.loads(plan) if isinstance(plan, str) else plan
                    return _max_rows(plan[0]["Plan"])
                cur.execute("EXPLAIN " + sql)
                cols = [c[0].lower() for c in cur.description]
                return max(int(r[cols.index("rows")] or 0) for r in cur.fetchall())
        except Exception:  # noqa: BLE001 - a column or table a pending migration creates first
            db._rollback(self.conn)
            return None


def _max_rows(node: dict) -> int:
    return max([int(node.get("Plan Rows", 0))] + [_max_rows(c) for c in node.get("Plans", [])])


# ---------------------------------------------------------------- detectors

_Q = rf"({QUALIFIED})"
_CREATE_INDEX = re.compile(rf"^CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{QUALIFIED}\s+)?"
                           rf"ON\s+(?:ONLY\s+)?{_Q}", re.I)
_ALTER = re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_Q}\s*(.*)$", re.I | re.S)
_CREATE_TABLE = re.compile(rf"^CREATE\s+(?:(?:GLOBAL\s+|LOCAL\s+)?(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\s+"
                           rf"(?:IF\s+NOT\s+EXISTS\s+)?{_Q}", re.I)
_DROP_TABLE = re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(.+?)(?:\s+(?:CASCADE|RESTRICT))?$", re.I | re.S)
_TRUNCATE = re.compile(r"^TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?(.+?)(?:\s+(?:RESTART|CONTINUE|CASCADE|RESTRICT)\b.*)?$",
                       re.I | re.S)
_UPDATE = re.compile(rf"^UPDATE\s+(?:ONLY\s+)?{_Q}", re.I)
_DELETE = re.compile(rf"^DELETE\s+FROM\s+(?:ONLY\s+)?{_Q}", re.I)
_INSERT = re.compile(rf"^(?:INSERT|REPLACE)\s+(?:IGNORE\s+)?INTO\s+{_Q}", re.I)
_RENAME_TABLE = re.compile(rf"^RENAME\s+TABLES?\s+{_Q}\s+TO\s+{_Q}", re.I)
_VOLATILE = re.compile(r"\b(random|gen_random_uuid|uuid_generate_v[14]m?c?|clock_timestamp|timeofday|nextval|"
                       r"txid_current|gen_random_bytes|uuid)\s*\(", re.I)
_SERIAL = re.compile(r"^\s*(small|big)?serial\b", re.I)
_LOCKING = re.compile(r"^(ALTER\s+TABLE|CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)|DROP\s+TABLE|TRUNCATE|"
                      r"RENAME\s+TABLE|LOCK\s+TABLE)", re.I)
_SETS_TIMEOUT = re.compile(r"^SET\s+(LOCAL\s+|SESSION\s+)?(lock_timeout|lock_wait_timeout)\b|"
                           r"set_config\s*\(\s*'lock_timeout'", re.I)
_CONSTRAINT_KINDS = ("FOREIGN", "CHECK", "UNIQUE", "PRIMARY", "EXCLUDE", "CONSTRAINT", "INDEX", "KEY", "FULLTEXT",
                     "SPATIAL")
_MY_COL_END = re.compile(r"\s+(NOT|NULL|DEFAULT|AUTO_INCREMENT|COMMENT|COLLATE|CHARACTER|CHARSET|FIRST|AFTER|PRIMARY|"
                         r"UNIQUE|KEY|ON|GENERATED|AS|REFERENCES|CHECK|INVISIBLE|VISIBLE|UNSIGNED|ZEROFILL|SIGNED)\b.*$",
                         re.I | re.S)
_PG_ALIASES = {"int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "bool": "boolean",
               "float8": "double precision", "float4": "real", "timestamptz": "timestamp with time zone",
               "timestamp": "timestamp without time zone", "varchar": "character varying", "char": "character",
               "decimal": "numeric", "time": "time without time zone", "timetz": "time with time zone"}


def _names(text: str) -> list[str]:
    return [p for p in split_top_level(text) if p]


def detect(st: Statement, ctx: LintContext) -> list[Hit]:
    """The rule hits of one statement."""
    s = st.clean
    hits: list[Hit] = []
    m = _CREATE_INDEX.match(s)
    if m:
        if ctx.dialect == "postgresql" and not m.group(2):
            hits.append(Hit("index-not-concurrent", ctx.key(m.group(3))))
        return hits
    m = _ALTER.match(s)
    if m:
        table = ctx.key(m.group(1))
        for action in split_top_level(m.group(2)):
            hits += (_pg_action if ctx.dialect == "postgresql" else _my_action)(action, table, ctx, s)
        return hits
    m = _DROP_TABLE.match(s)
    if m:
        return [Hit("drop-table", ctx.key(n)) for n in _names(m.group(1))]
    m = _TRUNCATE.match(s)
    if m:
        return [Hit("truncate", ctx.key(n)) for n in _names(m.group(1))]
    m = _RENAME_TABLE.match(s)
    if m:
        return [Hit("rename", ctx.key(m.group(1)), f"TABLE {m.group(1)} TO {m.group(2)}")]
    m = _UPDATE.match(s) or _DELETE.match(s)
    if m:
        return [Hit("unbatched-dml", ctx.key(m.group(1)), s.split(None, 1)[0].upper())]
    return hits


def _pg_action(action: str, table, ctx: LintContext, stmt: str) -> list[Hit]:
    a = action.strip()
    up = a.upper()
    if re.match(r"^RENAME\s+TO\s+", up):
        return [Hit("rename", table, f"TABLE {table[1]} TO {a.split(None, 2)[2]}")]
    m = re.match(r"^RENAME\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)(\S+)\s+TO\s+(\S+)", a, re.I)
    if m:
        return [Hit("rename", table, f"COLUMN {m.group(1)} TO {m.group(2)}")]
    m = re.match(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?(FOREIGN\s+KEY|CHECK|UNIQUE|PRIMARY\s+KEY|EXCLUDE)\b", up)
    if m:
        kind = re.sub(r"\s+", " ", m.group(1))
        if kind in ("FOREIGN KEY", "CHECK") and "NOT VALID" not in up:
            return [Hit("constraint-not-valid", table, kind)]
        if kind in ("UNIQUE", "PRIMARY KEY", "EXCLUDE") and "USING INDEX" not in up:
            return [Hit("unique-constraint-index", table, kind)]
        return []
    m = re.match(r"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s+(.*)$", a, re.I | re.S)
    if m and m.group(1).upper() not in _CONSTRAINT_KINDS:
        rest = m.group(2)
        dm = re.search(r"\bDEFAULT\s+(.+?)(?:\s+(?:NOT\s+NULL|NULL|CONSTRAINT|CHECK|REFERENCES|UNIQUE|PRIMARY|GENERATED|"
                       r"COLLATE)\b.*)?$", rest, re.I | re.S)
        if _SERIAL.match(rest):
            return [Hit("volatile-default", table, f"{m.group(1)} {rest.split()[0]} (a sequence default)")]
        if dm and _VOLATILE.search(dm.group(1)):
            return [Hit("volatile-default", table, f"{m.group(1)} with the volatile default {dm.group(1).strip()}")]
        if dm and ctx.version_num and ctx.version_num < 110000:
            return [Hit("volatile-default", table, f"{m.group(1)} with a default (before PostgreSQL 11 any default)")]
        if re.search(r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*STORED", rest, re.I | re.S):
            return [Hit("volatile-default", table, f"{m.group(1)} as a stored generated column")]
        return []
    m = re.match(r"^ALTER\s+(?:COLUMN\s+)?(\S+)\s+SET\s+NOT\s+NULL", a, re.I)
    if m:
        return [Hit("set-not-null", table, m.group(1))]
    m = re.match(r"^ALTER\s+(?:COLUMN\s+)?(\S+)\s+(?:SET\s+DATA\s+)?TYPE\s+(.+?)(?:\s+(?:USING|COLLATE)\b.*)?$", a,
                 re.I | re.S)
    if m:
        col = parse_name(m.group(1), "postgresql")[1]
        old = ctx.coltype(table, col)
        new = m.group(2).strip()
        if old is not None and _pg_safe_type_change(old, new):
            return []
        return [Hit("alter-type-rewrite", table, f"{m.group(1)} TYPE {new}" + (f" (now {old})" if old else ""))]
    m = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)", a, re.I)
    if m and m.group(1).upper() not in ("CONSTRAINT", "DEFAULT", "NOT", "IDENTITY", "EXPRESSION"):
        return [Hit("drop-column", table, m.group(1))]
    return []


def _pg_norm(t: str) -> tuple[str, list[int]]:
    t = re.sub(r"\s+", " ", t.strip().lower().strip('"'))
    m = re.match(r"^([a-z ]+?)\s*(?:\(([\d ,]+)\))?(\s*\[\])?$", t)
    if not m:
        return t, []
    base = _PG_ALIASES.get(m.group(1).strip(), m.group(1).strip())
    args = [int(x) for x in (m.group(2) or "").replace(" ", "").split(",") if x]
    return base + (m.group(3) or ""), args


def _pg_safe_type_change(old: str, new: str) -> bool:
    """Changes PostgreSQL makes without rewriting the table (binary-coercible or wider limits)."""
    (ob, oa), (nb, na) = _pg_norm(old), _pg_norm(new)
    if (ob, oa) == (nb, na):
        return True
    if ob == "character varying" and nb == "text":
        return True
    if ob in ("character varying", "text") and nb == "character varying" and not na:
        return True
    if ob == nb == "character varying" and oa and na and na[0] >= oa[0]:
        return True
    if ob == nb == "numeric" and (not na or (oa and na[0] >= oa[0] and (na[1:] or [0]) == (oa[1:] or [0]))):
        return True
    return ob == "cidr" and nb == "inet"


def _my_action(action: str, table, ctx: LintContext, stmt: str) -> list[Hit]:
    a = action.strip()
    up = a.upper()
    online = re.search(r"\bALGORITHM\s*=?\s*(INSTANT|INPLACE|NOCOPY)\b", stmt, re.I) is not None
    hits: list[Hit] = []
    m = re.match(r"^RENAME\s+(?:TO|AS)\s+(\S+)", a, re.I)
    if m:
        return [Hit("rename", table, f"TABLE {table[1]} TO {m.group(1)}")]
    m = re.match(r"^RENAME\s+COLUMN\s+(\S+)\s+TO\s+(\S+)", a, re.I)
    if m:
        return [Hit("rename", table, f"COLUMN {m.group(1)} TO {m.group(2)}")]
    m = re.match(r"^(MODIFY|CHANGE)\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)\s+(?:(\S+)\s+)?(.*)$", a, re.I | re.S)
    if m:
        kind, col = m.group(1).upper(), parse_name(m.group(2), "mysql")[1]
        if kind == "CHANGE":
            new_name = parse_name(m.group(3) or "", "mysql")[1]
            newdef = m.group(4)
            if new_name and new_name != col:
                hits.append(Hit("rename", table, f"COLUMN {col} TO {new_name}"))
        else:
            newdef = ((m.group(3) or "") + " " + m.group(4)).strip()
        new_type = _MY_COL_END.sub("", newdef.strip()).strip()
        old = ctx.coltype(table, col)
        if old is None or not new_type:
            return hits
        o, n = _my_norm(old), _my_norm(new_type)
        if o.startswith(("enum(", "set(")) and n.startswith(("enum(", "set(")):
            if not _appended(o, n):
                hits.append(Hit("mysql-enum-reorder", table, f"{col} {old} -> {new_type}"))
            return hits
        if o != n and not _my_varchar_extension(o, n) and not online:
            hits.append(Hit("mysql-copy-alter", table, f"{kind} {col} {old} -> {new_type}"))
        return hits
    if re.match(r"^CONVERT\s+TO\s+(CHARACTER\s+SET|CHARSET)\b", up) and not online:
        return [Hit("mysql-copy-alter", table, "CONVERT TO CHARACTER SET")]
    if re.match(r"^ENGINE\s*=", up) and not online:
        return [Hit("mysql-copy-alter", table, a)]
    if re.match(r"^DROP\s+PRIMARY\s+KEY", up) and "ADD PRIMARY KEY" not in stmt.upper() and not online:
        return [Hit("mysql-copy-alter", table, "DROP PRIMARY KEY")]
    if re.match(r"^ADD\s+(?:CONSTRAINT\s+\S+\s+)?FOREIGN\s+KEY", up) and not online:
        return [Hit("mysql-copy-alter", table, "ADD FOREIGN KEY (with foreign_key_checks on)")]
    if re.match(r"^ADD\s+(FULLTEXT|SPATIAL)\b", up) and not online:
        return [Hit("mysql-copy-alter", table, f"ADD {up.split()[1]} INDEX (blocks writes: LOCK=SHARED)")]
    if re.match(r"^ORDER\s+BY\b", up):
        return [Hit("mysql-copy-alter", table, "ORDER BY")]
    m = re.match(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)", a, re.I)
    if m and m.group(1).upper() not in ("INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION",
                                        "DEFAULT"):
        return [Hit("drop-column", table, m.group(1))]
    return []


def _my_norm(t: str) -> str:
    t = re.sub(r"\s+", "", t.strip().lower())
    t = re.sub(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)", r"\1", t)  # display widths mean nothing
    return {"integer": "int", "bool": "tinyint(1)", "boolean": "tinyint(1)"}.get(t, t)


def _appended(old: str, new: str) -> bool:
    ov = re.findall(r"'((?:[^']|'')*)'", old)
    nv = re.findall(r"'((?:[^']|'')*)'", new)
    return old.split("(")[0] == new.split("(")[0] and nv[: len(ov)] == ov and len(nv) <= 255


def _my_varchar_extension(old: str, new: str) -> bool:
    """VARCHAR(n) -> VARCHAR(m >= n) within the same length-prefix size is INPLACE (utf8mb4: 4 bytes a character)."""
    mo, mn = re.match(r"^varchar\((\d+)\)", old), re.match(r"^varchar\((\d+)\)", new)
    if not (mo and mn and old[mo.end():] == new[mn.end():]):
        return False
    o, n = int(mo.group(1)), int(mn.group(1))
    return n >= o and (o * 4 <= 255) == (n * 4 <= 255)


# ---------------------------------------------------------------- tables a statement touches

@dataclass
class Touch:
    """How the pending SQL touches the tables: the ones it changes, creates, drops, renames, and whose row
    counts it changes on purpose (INSERT/DELETE/TRUNCATE)."""

    changed: dict = field(default_factory=dict)  # key -> migration label (first)
    created: set = field(default_factory=set)
    dropped: set = field(default_factory=set)
    renamed: dict = field(default_factory=dict)  # old key -> new key
    rows_change: set = field(default_factory=set)
    extensions: list[str] = field(default_factory=list)


def touches(migrations: list[Migration], dialect: str, default_schema: str | None) -> Touch:
    t = Touch()
    key = lambda text: parse_name(text, dialect, default_schema)  # noqa: E731
    for m in migrations:
        for st in statements(m, dialect):
            s = st.clean
            for pattern in (_CREATE_INDEX, _ALTER, _UPDATE, _DELETE, _INSERT):
                mm = pattern.match(s)
                if mm:
                    k = key(mm.group(3) if pattern is _CREATE_INDEX else mm.group(1))
                    t.changed.setdefault(k, m.label)
                    if pattern in (_DELETE, _INSERT):
                        t.rows_change.add(k)
                    if pattern is _ALTER:
                        rn = re.search(rf"\bRENAME\s+(?:TO|AS)\s+{_Q}", mm.group(2), re.I)
                        if rn:
                            t.renamed[k] = key(rn.group(1)) if "." in rn.group(1) else (k[0], key(rn.group(1))[1])
                    break
            mm = _CREATE_TABLE.match(s)
            if mm:
                t.created.add(key(mm.group(1)))
            mm = _DROP_TABLE.match(s)
            if mm:
                t.dropped.update(key(n) for n in _names(mm.group(1)))
            mm = _TRUNCATE.match(s)
            if mm:
                for n in _names(mm.group(1)):
                    t.changed.setdefault(key(n), m.label)
                    t.rows_change.add(key(n))
            mm = _RENAME_TABLE.match(s)
            if mm:
                t.renamed[key(mm.group(1))] = key(mm.group(2))
                t.changed.setdefault(key(mm.group(1)), m.label)
            mm = re.match(r'^CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?("?[\w-]+"?)', s, re.I)
            if mm:
                t.extensions.append(mm.group(1).strip('"').lower())
    return t


def statements(m: Migration, dialect: str) -> list[Statement]:
    """The statements of ``m`` that are the app's (not the tool's bookkeeping or transaction control)."""
    out = []
    for st in split(m.sql or "", dialect):
        u = st.upper
        if re.match(r"^(BEGIN|COMMIT|START TRANSACTION|END|ROLLBACK)\s*;?$", u) or "ALEMBIC_VERSION" in u:
            continue
        out.append(st)
    return out


# ---------------------------------------------------------------- the lint

def lint(migrations: list[Migration], ctx: LintContext) -> list[Finding]:
    """Findings for the pending ``migrations``, in order."""
    out: list[Finding] = []
    for m in migrations:
        locking, has_timeout, first_lock = False, False, None
        for st in statements(m, ctx.dialect):
            if _SETS_TIMEOUT.search(st.clean):
                has_timeout = True
            if _LOCKING.match(st.clean):
                locking = True
                first_lock = first_lock or st
            for hit in detect(st, ctx):
                f = _finding(hit, st, m, ctx)
                if f is not None:
                    out.append(f)
            mm = _CREATE_TABLE.match(st.clean)
            if mm:
                ctx.created.add(ctx.key(mm.group(1)))
        if locking and not has_timeout:
            rule = RULES["no-lock-timeout"]
            lt = (f"lock_timeout = {ctx.lock_timeout_s:g} s" if ctx.dialect == "postgresql" else
                  f"lock_wait_timeout = {max(1, int(-(-ctx.lock_timeout_s // 1)))} s") if ctx.lock_timeout_s else "none"
            sev = "warning" if ctx.lock_timeout_s else "error"
            out.append(Finding(rule=rule.id, severity=sev, migration=m.label, statement=first_lock.index,
                               line=first_lock.line, sql=first_lock.short(), message=rule.message.format(lock_timeout=lt),
                               fix=rule.fix, allowed=rule.id in ctx.allow))
    return out


def _finding(hit: Hit, st: Statement, m: Migration, ctx: LintContext) -> Finding | None:
    rule = RULES[hit.rule]
    if ctx.dialect not in rule.engines:
        return None
    info = None
    if hit.table is not None:
        if hit.table in ctx.created:
            return None  # a table this release creates: nobody waits for it, nothing is lost
        info = ctx.info(hit.table)
        if info is None and rule.sizing in ("size", "rows", "dml"):
            return None  # not there (yet): nothing to lock or lose
    estimate = None
    if rule.sizing == "size":
        severity = "error" if info.bytes >= ctx.large_bytes else "warning"
    elif rule.sizing == "rows":
        severity = "error" if info.has_rows else "warning"
    elif rule.sizing == "dml":
        if not info.has_rows:
            return None
        estimate = ctx.estimate(st.text)
        if estimate is not None and estimate < DML_ROWS // 10:
            return None  # a few rows: a short transaction
        severity = "error" if (estimate if estimate is not None else (info.rows if info.bytes >= ctx.large_bytes else 0)
                               ) >= DML_ROWS else "warning"
    elif rule.sizing == "always":
        severity = "error"
    else:
        severity = "warning"
    label = info.label if info else (f"{hit.table[0]}.{hit.table[1]}" if hit.table and hit.table[0] else
                                     (hit.table[1] if hit.table else ""))
    size = f" ({human_bytes(info.bytes)}, ~{human_count(info.rows)} rows)" if info else ""
    msg = rule.message.format(table=label + size, detail=hit.detail, rows=human_count(info.rows) if info else "?",
                              estimate=human_count(estimate if estimate is not None else (info.rows if info else 0)),
                              lock_timeout="")
    if rule.sizing == "size" and severity == "warning":
        msg += f"; below --large-table ({human_bytes(ctx.large_bytes)}), so it only warns"
    return Finding(rule=rule.id, severity=severity, migration=m.label, statement=st.index, line=st.line, sql=st.short(),
                   message=msg, fix=rule.fix, table=label or None, table_bytes=info.bytes if info else None,
                   table_rows=info.rows if info else None, allowed=rule.id in ctx.allow)

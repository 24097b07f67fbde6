"""Lint the pending SQL for operations that lock tables or lose data, sized by the live database.

The rules are data (``Rule``: an ID for ``--allow``, how size decides, the message and the fix): the ones every
engine shares are here (``RULES``), the ones that know which DDL locks or rewrites a table on one engine are that
dialect's (``Release.lint_rules``, found by its ``index_hits`` and ``alter_hits``). Small detector functions find
them in each statement. Sizing, from the live catalog:

* ``size``: a lock whose length grows with the table: an **error** (blocks the release) on a table of at
  least ``large_table`` bytes, a warning on a smaller one, nothing on a table the release creates itself.
* ``rows``: data loss: an error when the table has rows, a warning when it is empty.
* ``dml``: an UPDATE/DELETE: an error when the server estimates (``EXPLAIN``, nothing runs) 10,000 rows or
  more, or cannot estimate and the table is large; a warning from 1,000 rows; nothing below.
* ``always``: an error (renames break the running app whatever the size); ``advice``: a warning.

``--allow RULE`` turns that rule's errors into allowed findings (still reported).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from golive.dialects import all_dialects
from golive.dialects.base import Dialect
from golive.errors import ConfigError
from golive.model.release import Hit, Rule, TableInfo, TableKey
from golive.release import db
from golive.release.model import Finding, Migration, Touch
from golive.release.sqltext import QUALIFIED, Statement, parse_name, split, split_top_level
from golive.units import human_bytes, human_count

DML_ROWS = 10_000

#: the rules of every engine
RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("drop-table", "rows",
         "DROP TABLE {table} deletes its {rows} rows, and the running app's queries on it fail",
         "stop using it in the app first; drop it in a later release (keep the backup)"),
    Rule("drop-column", "rows",
         "DROP COLUMN {detail} deletes its values in {rows} rows of {table}; the running app's queries naming it fail",
         "release the app version that no longer uses the column first, then drop it"),
    Rule("truncate", "rows", "TRUNCATE deletes all {rows} rows of {table}",
         "delete what must go in batches, or keep the data (a backup is not an undo for the app's users)"),
    Rule("rename", "always", "RENAME {detail}: the app that is running now still uses the old name",
         "add the new name beside the old one (a view, a column kept in sync), switch the app, drop the old later"),
    Rule("unbatched-dml", "dml",
         "{detail} touches about {estimate} rows of {table} in one statement: long row locks and one big transaction",
         "update/delete in batches (key ranges of a few thousand rows) outside the schema migration"),
    Rule("no-lock-timeout", "advice",
         "the migration takes locks but sets no lock timeout: run elsewhere (psql, its tool's CLI) it would wait for "
         "locks forever while the app's queries queue behind it; golive sets {lock_timeout} for the release",
         "SET lock_timeout = '5s'; at its top (MySQL: SET SESSION lock_wait_timeout = 5;)"),
]}


@lru_cache(maxsize=None)
def all_rules() -> dict[str, Rule]:
    """Every rule ``--allow`` may name: the shared ones, then each engine's."""
    out = dict(RULES)
    for d in all_dialects():
        if d.supports("release"):
            out.update((r.id, r) for r in d.release.lint_rules)
    return out


def check_allowed(allow: list[str]) -> set[str]:
    """The rule IDs of ``--allow``; an unknown one is refused with the closest ID."""
    import difflib

    out = set()
    for a in allow:
        a = a.strip()
        rules = all_rules()
        if a not in rules:
            close = difflib.get_close_matches(a, rules, n=1)
            raise ConfigError(f"--allow {a!r}: no such lint rule" + (f" (did you mean {close[0]}?)" if close else "")
                              + f"; rules: {', '.join(rules)}")
        out.add(a)
    return out


@dataclass
class LintContext:
    """What the rules need from the live database (and the release's options); the engine's rules read it as
    ``golive.model.release.LintFacts``."""

    dialect: Dialect
    conn: object | None = None
    default_schema: str | None = None
    version_num: int = 0
    large_bytes: int = 10_000_000
    lock_timeout_s: float = 5.0
    allow: set[str] = field(default_factory=set)
    created: set = field(default_factory=set)
    _info: dict = field(default_factory=dict)

    def key(self, text: str) -> TableKey:
        return parse_name(text, self.dialect, self.default_schema)

    def column(self, text: str) -> str:
        return parse_name(text, self.dialect)[1]

    def info(self, key) -> TableInfo | None:
        if key not in self._info:
            self._info[key] = (self.dialect.release.table_info(self.conn, [key]).get(key) if self.conn is not None
                               else None)
        return self._info[key]

    def coltype(self, table, column: str) -> str | None:
        if self.conn is None or table in self.created:
            return None
        try:
            return self.dialect.release.column_type(self.conn, table[0], table[1], column)
        except Exception:  # noqa: BLE001
            db.rollback(self.conn)
            return None

    def estimate(self, sql: str) -> int | None:
        """Rows the server expects ``sql`` (an UPDATE/DELETE) to touch, from its plan (nothing is run)."""
        if self.conn is None:
            return None
        return self.dialect.release.estimate_rows(self.conn, sql)


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
_LOCKING = re.compile(r"^(ALTER\s+TABLE|CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)|DROP\s+TABLE|TRUNCATE|"
                      r"RENAME\s+TABLE|LOCK\s+TABLE)", re.I)
_SETS_TIMEOUT = re.compile(r"^SET\s+(LOCAL\s+|SESSION\s+)?(lock_timeout|lock_wait_timeout)\b|"
                           r"set_config\s*\(\s*'lock_timeout'", re.I)

def _names(text: str) -> list[str]:
    return [p for p in split_top_level(text) if p]


def detect(st: Statement, ctx: LintContext) -> list[Hit]:
    """The rule hits of one statement."""
    s = st.clean
    hits: list[Hit] = []
    m = _CREATE_INDEX.match(s)
    if m:
        return ctx.dialect.release.index_hits(ctx.key(m.group(3)), concurrently=bool(m.group(2)))
    m = _ALTER.match(s)
    if m:
        table = ctx.key(m.group(1))
        for action in split_top_level(m.group(2)):
            hits += ctx.dialect.release.alter_hits(action, table, s, ctx)
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


# ---------------------------------------------------------------- tables a statement touches

def touches(migrations: list[Migration], dialect: Dialect, default_schema: str | None) -> Touch:
    """How the pending SQL touches the tables (``Touch``)."""
    t = Touch()
    key = lambda text: parse_name(text, dialect, default_schema)  # noqa: E731
    for m in migrations:
        for st in statements(m, dialect):
            s = st.clean
            for pattern in (_CREATE_INDEX, _ALTER, _UPDATE, _DELETE, _INSERT):
                mm = pattern.match(s)
                if mm:
                    k = key(mm.group(3) if pattern is _CREATE_INDEX else mm.group(1))
                    t.change(k)
                    if pattern in (_DELETE, _INSERT):
                        t.rows_change.add(k)
                    if pattern is _ALTER:
                        rn = re.search(rf"\bRENAME\s+(?:TO|AS)\s+{_Q}", mm.group(2), re.I)
                        if rn:
                            t.rename(k, key(rn.group(1)) if "." in rn.group(1) else (k[0], key(rn.group(1))[1]))
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
                    t.change(key(n))
                    t.rows_change.add(key(n))
            mm = _RENAME_TABLE.match(s)
            if mm:
                t.rename(key(mm.group(1)), key(mm.group(2)))
                t.change(key(mm.group(1)))
            mm = re.match(r'^CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?("?[\w-]+"?)', s, re.I)
            if mm:
                t.extensions.append(mm.group(1).strip('"').lower())
    return t


def statements(m: Migration, dialect: Dialect) -> list[Statement]:
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
            lt = ctx.dialect.release.lock_timeout_setting(ctx.lock_timeout_s) if ctx.lock_timeout_s else "none"
            sev = "warning" if ctx.lock_timeout_s else "error"
            out.append(Finding(rule=rule.id, severity=sev, migration=m.label, statement=first_lock.index,
                               line=first_lock.line, sql=first_lock.short(), message=rule.message.format(lock_timeout=lt),
                               fix=rule.fix, allowed=rule.id in ctx.allow))
    return out


def _finding(hit: Hit, st: Statement, m: Migration, ctx: LintContext) -> Finding | None:
    rule = all_rules()[hit.rule]
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

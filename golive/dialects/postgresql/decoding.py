"""Reading ``test_decoding``'s text output: which rows of which tables each transaction changed.

A slot read with ``pg_logical_slot_peek_changes(…, 'include-xids', '0', 'include-timestamp', '1',
'skip-empty-xacts', '1')`` gives one row per line, with the LSN it stands at (golive leaves the BEGIN rows out: a
transaction's changes are the rows up to its COMMIT)::

    BEGIN
    table public.t: INSERT: id[integer]:2 v[text]:'it''s'
    table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:10 v[text]:'a'
    table public."My T": DELETE: "K"[text]:'a b'
    table public.a, public.b: TRUNCATE: (no-flags)
    COMMIT (at 2026-12-07 03:02:03.288124+00)

(``test_decoding.c``: names are ``quote_identifier``'s, values their type's output text, quoted with ``'`` doubled
unless numeric, boolean or bit; ``null``; ``unchanged-toast-datum`` for a TOASTed value an UPDATE left alone.
``old-key`` is the replica identity's columns, present when an UPDATE changed the key or the identity is FULL.)
The position of a transaction is its COMMIT row's LSN: the end of its commit record, where the slot may advance.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

_IDENT = r'(?:"[^"]*(?:""[^"]*)*"|[^\s".,:\[]+)'
_REL = rf"({_IDENT})\.({_IDENT})"
HEADER = re.compile(rf"table {_REL}: (INSERT|UPDATE|DELETE):")
TRUNCATE = re.compile(rf"table ({_REL}(?:, {_REL})*): TRUNCATE:")
_REL_ONLY = re.compile(_REL)
#: one column: name[type]:value (the type ends at the first "]:"; a value is quoted or runs to the next space)
COLUMN = re.compile(rf" ({_IDENT})\[([^\]]*(?:\](?!:)[^\]]*)*)\]:('[^']*(?:''[^']*)*'|\S+)")

UNCHANGED = object()  # a TOASTed value an UPDATE did not change (not in the WAL)
_INTEGERS = ("smallint", "integer", "bigint", "oid")


class Unparsable(ValueError):
    """A line of test_decoding's output golive cannot read (never skipped: a change would be lost)."""


def unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def lsn(text: str | None) -> int:
    """An LSN (``16/B374D848``) as a number, to compare."""
    if not text:
        return 0
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def value(typ: str, raw: str):
    """A key value as golive hands it on: integers as int, booleans as bool, NULL as None, the rest as the text
    PostgreSQL wrote (a timestamptz in UTC without its ``+00``, which both targets read as that instant)."""
    if raw.startswith("'"):
        text = raw[1:-1].replace("''", "'")
        if typ == "timestamp with time zone" and text.endswith("+00"):
            return text[:-3]
        return text
    if raw == "null":
        return None
    if raw == "unchanged-toast-datum":
        return UNCHANGED
    if typ in _INTEGERS:
        return int(raw)
    if typ == "boolean":
        return raw == "true"
    return raw


def columns(text: str, start: int) -> tuple[dict, int]:
    """The ``name[type]:value`` columns from ``start``, as ``{name: (type, raw)}``, and where they end."""
    out = {}
    pos = start
    while True:
        m = COLUMN.match(text, pos)
        if m is None:
            return out, pos
        out[unquote(m.group(1))] = (m.group(2), m.group(3))
        pos = m.end()


@dataclass
class RowChange:
    """One change line: the relation, the operation and its columns (old: the identity's, new: the row's)."""

    schema: str
    table: str
    op: str
    old: dict = field(default_factory=dict)
    new: dict = field(default_factory=dict)
    truncated: list = field(default_factory=list)  # (schema, table) of a TRUNCATE


def parse_change(line: str) -> RowChange:
    m = HEADER.match(line)
    if m is None:
        t = TRUNCATE.match(line)
        if t is None:
            raise Unparsable(line[:200])
        rels = [(unquote(a), unquote(b)) for a, b in _REL_ONLY.findall(t.group(1))]
        return RowChange(schema=rels[0][0], table=rels[0][1], op="TRUNCATE", truncated=rels)
    ch = RowChange(schema=unquote(m.group(1)), table=unquote(m.group(2)), op=m.group(3))
    pos = m.end()
    rest = line[pos:]
    if rest in (" (no-tuple-data)", ""):
        return ch
    if line.startswith(" old-key:", pos):
        ch.old, pos = columns(line, pos + len(" old-key:"))
        if not line.startswith(" new-tuple:", pos):
            raise Unparsable(line[:200])
        pos += len(" new-tuple:")
    cols, pos = columns(line, pos)
    if pos != len(line):
        raise Unparsable(line[:200])
    if ch.op == "DELETE":
        ch.old = cols
    else:
        ch.new = cols
    return ch


class ColumnsChanged(ValueError):
    """A decoded row's columns are not the table's recorded ones: its definition changed (DDL)."""

    def __init__(self, source: str, added: list[str], dropped: list[str]):
        super().__init__(source)
        self.source, self.added, self.dropped = source, added, dropped


class TruncatedTable(ValueError):
    """A copied table was emptied with TRUNCATE."""

    def __init__(self, sources: list[str]):
        super().__init__(", ".join(sources))
        self.sources = sources


class MissingKey(ValueError):
    """A change whose key is not in the WAL (a DELETE under REPLICA IDENTITY NOTHING)."""


_VALUE = r"('[^']*(?:''[^']*)*'|\S+)"
_ANY_VALUE = r"(?:'[^']*(?:''[^']*)*'|\S+)"


class Reader:
    """The keys of the rows a change line touched, for the copied tables only.

    ``tables`` maps ``(schema, table)`` as PostgreSQL logs it (a copied table or one of its partitions) to
    ``(source name, key columns, column names)``. The first line of a table and kind is read column by column; its
    shape (the columns' names and types in order) becomes one compiled pattern for the next ones, which then cost one
    regular-expression match (a row whose columns differ falls back to the careful reading, which names the
    difference)."""

    def __init__(self, tables: dict):
        self.tables = tables
        self.shapes: dict = {}

    def keys(self, line: str) -> list[tuple[str, tuple, bool]]:
        """``(source table, key, deleted)`` of each row the line changed: an UPDATE of the key gives two."""
        m = HEADER.match(line)
        if m is None:
            if TRUNCATE.match(line) is None:
                raise Unparsable(line[:200])
            hit = [self.tables[r][0] for r in parse_change(line).truncated if r in self.tables]
            if hit:
                raise TruncatedTable(hit)
            return []
        schema, table, op = m.groups()
        rel = (unquote(schema), unquote(table))
        info = self.tables.get(rel)
        if info is None:  # a table the plan does not copy
            return []
        shape = self.shapes.get((rel, op))
        if shape is not None:
            sm = shape[0].fullmatch(line, m.end())
            if sm is not None:
                key = tuple([value(t, raw) for t, raw in zip(shape[1], sm.groups())])
                if UNCHANGED not in key:
                    return [(info[0], key, op == "DELETE")]
        return self._careful(line, rel, info)

    def _careful(self, line: str, rel, info) -> list[tuple[str, tuple, bool]]:
        source, key, names = info
        ch = parse_change(line)
        if ch.new and names.symmetric_difference(ch.new):
            raise ColumnsChanged(source, sorted(set(ch.new) - names), sorted(names - set(ch.new)))
        old, new = _key(ch.old, key), _key(ch.new, key)
        if ch.op == "DELETE":
            if old is None:
                raise MissingKey(source)
            self._learn(line, rel, ch.op, ch.old, key)
            return [(source, old, True)]
        if new is not None and UNCHANGED in new:  # a TOASTed key the UPDATE left alone: logged in old-key
            new = old
        if new is None:
            raise MissingKey(source)
        if not ch.old:
            self._learn(line, rel, ch.op, ch.new, key)
        if ch.op == "UPDATE" and old is not None and old != new:  # the key changed: the old row is gone
            return [(source, old, True), (source, new, False)]
        return [(source, new, False)]

    def _learn(self, line: str, rel, op: str, cols: dict, key: list[str]) -> None:
        if (rel, op) in self.shapes or not cols or any(k not in cols for k in key):
            return
        spelled = COLUMN.findall(line)[-len(cols):]  # the names as logged (quoted when PostgreSQL quotes them)
        parts = []
        for (logged, typ, _), name in zip(spelled, cols):
            value_re = _VALUE if name in key else _ANY_VALUE
            parts.append(f" {re.escape(logged)}\\[{re.escape(typ)}\\]:{value_re}")
        order = [n for n in cols if n in key]
        types = tuple(cols[k][0] for k in order)
        if order != list(key):  # key columns in another order than the table's: not worth a pattern
            return
        self.shapes[(rel, op)] = (re.compile("".join(parts)), types)


def _key(cols: dict, key: list[str]):
    """The key's values out of a decoded tuple (None: a key column is missing from it)."""
    if not cols:
        return None
    out = []
    for k in key:
        got = cols.get(k)
        if got is None:
            return None
        out.append(value(*got))
    return tuple(out)


_COMMIT_AT = re.compile(r"COMMIT(?: \d+)? \(at (.+)\)$")


def _commit_time(data: str) -> float | None:
    m = _COMMIT_AT.match(data)
    return dt.datetime.fromisoformat(m.group(1)).timestamp() if m else None


@dataclass
class Window:
    """What one peek at the slot holds for golive: whole transactions after a position, up to a number of changes
    of the copied tables, and what is known to follow."""

    changes: list = field(default_factory=list)  # (source table, key, deleted), in commit order
    position: str = ""  # the COMMIT row's LSN of the last transaction taken
    rows: int = 0  # rows of the peek up to that position (COMMIT rows count, and BEGIN rows when kept)
    pending: int = 0  # changes of copied tables seen after it
    first_at: float | None = None  # commit time of the first transaction taken with changes
    oldest_at: float | None = None  # commit time of the first transaction left


def window(rows, reader: Reader, after: str, limit: int, *, count_rest: bool = True) -> Window:
    """Read peeked ``(lsn, data)`` rows: whole transactions committed after ``after``, until ``limit`` changes.
    ``count_rest``: count the copied tables' changes in the rows after them (``pending``); else stop at the next
    commit (its time is ``oldest_at``)."""
    out = Window(position=after)
    after_n = lsn(after)
    found, done = [], False
    for i, (pos, data) in enumerate(rows):
        head = data[:1]
        if head == "t":
            if done:
                m = HEADER.match(data)
                if m is not None and (unquote(m.group(1)), unquote(m.group(2))) in reader.tables:
                    out.pending += 1
            else:
                found += reader.keys(data)
        elif head == "C":  # the end of a transaction: the rows since the previous COMMIT are its changes
            if done:
                if out.oldest_at is None:
                    out.oldest_at = _commit_time(data)
                if not count_rest:
                    break
                continue
            if lsn(pos) <= after_n:  # already applied (the slot had not been advanced yet)
                found = []
                continue
            if found and out.first_at is None:
                out.first_at = _commit_time(data)
            out.changes += found
            found = []
            out.position, out.rows = str(pos), i + 1
            done = len(out.changes) >= limit
        elif head == "B":  # BEGIN (when the peek keeps them)
            found = []
        elif not data.startswith("message:"):  # pg_logical_emit_message: not a row
            raise Unparsable(data[:200])
    return out

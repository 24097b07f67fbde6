"""Content checksums: prove that every row arrived with every value, chunk by chunk, and name the rows that did not.

A comparison holds two sides, one per database, each from its engine's ``Checksums`` (``golive.dialects``): a
source and a target of any engines. For each key range, both sides render their rows as canonical text in key
order and hash it (``Checksums.Side.checksum``): a side whose server can hash (PostgreSQL's
``sha256(string_agg(...))``) sends only digests, others send the value streams and Python hashes them. JSON is
hashed as the target normalises it: where both sides print the same normal form the servers hash it, otherwise
the source's JSON lines are normalised by the target side (PostgreSQL prints them through ``jsonb``).

A range whose row count or digests differ is narrowed down by bisection (the idea of data-diff): halve
the key range, compare both halves, recurse into the halves that differ, until a range holds few rows.
Those rows are then compared one by one; a value whose canonical texts differ is finally judged by the
target side reading the text the copy sent (``same_after_parsing``), so a canonicalisation gap never produces
a false report. The first ``limit`` differing keys per range are reported.

Rows the copy rejected (recorded with their keys in the target's bookkeeping) are expected to be missing:
they are left out on the source side (``specs.exclusion``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from typing import NamedTuple

from golive.dialects import dialect_of
from golive.model.types import CT, TEXT_TYPES
from golive.model.validation import (FIELD_SEP, CheckColumn, Difference, RangeCheck, TableSpec, TooBig, as_bytes,
                                     as_text, plain)
from golive.urls import DatabaseURL
from golive.validation.specs import INT_MAX, INT_MIN, exclusion, keys_where, where

log = logging.getLogger(__name__)

#: a range holding at most this many rows (per side) is compared row by row
LEAF_ROWS = 2000
#: rows per checksum query (a chunk is split into sub-ranges of about this many rows)
SUB_RANGE_ROWS = 60_000
#: tables without an integer key are narrowed in memory up to this many rows
MAX_UNKEYED_ROWS = 1_000_000
NO_EXCLUSION: tuple[str, list] = ("", [])


class _Sums(NamedTuple):
    """One side's row count and digests of a range."""

    rows: int
    row_digest: str | None
    json_digest: str | None
    lo: int | None
    hi: int | None

    def same(self, other: "_Sums") -> bool:
        return (self.rows, self.row_digest, self.json_digest) == (other.rows, other.row_digest, other.json_digest)


class Comparer:
    """Compares ranges of one table: a source side and a target side, each holding one connection."""

    def __init__(self, source: DatabaseURL, target: DatabaseURL, spec: TableSpec, *, limit: int = 10):
        self.spec, self.limit = spec, limit
        src_ck, tgt_ck = dialect_of(source).checksums, dialect_of(target).checksums
        # the servers hash JSON where both print the same normal form; otherwise the target side normalises it
        same_json = src_ck.json_form is not None and src_ck.json_form == tgt_ck.json_form
        self.src = src_ck.side(source, spec, "source", json_in_sql=same_json)
        try:
            self.tgt = tgt_ck.side(target, spec, "target", json_in_sql=tgt_ck.json_form is not None)
        except Exception:
            self.src.close()
            raise
        try:
            self.exclusion = exclusion(spec, self.src)
        except Exception:
            self.close()
            raise
        #: a query either side can answer in one go
        self.sub_range_rows = min(self.src.sub_range_rows, self.tgt.sub_range_rows)
        self.narrowed = 0

    def close(self) -> None:
        self.src.close()
        self.tgt.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- one range

    def check(self, range_no: int) -> RangeCheck:
        """Compare range ``range_no`` of the spec (the whole table for unkeyed kinds)."""
        t0 = time.perf_counter()
        spec = self.spec
        out = RangeCheck(table=spec.source, range_no=range_no)
        if spec.kind in ("rowid", "intkey"):
            lo, hi, rows = spec.ranges[range_no]
            parts = _split(lo, hi, rows, self.sub_range_rows)
            first, last = range_no == 0, range_no == len(spec.ranges) - 1
            out.lo, out.hi = (INT_MIN if first else lo), (INT_MAX if last else hi)
            for i, (a, b) in enumerate(parts):
                a = INT_MIN if first and i == 0 else a
                b = INT_MAX if last and i == len(parts) - 1 else b
                self._compare(a, b, out)
                if len(out.differences) >= self.limit:
                    break
        else:
            self._compare(None, None, out)
        out.match = not out.differences
        out.narrowed = self.narrowed
        out.seconds = round(time.perf_counter() - t0, 3)
        return out

    def _compare(self, lo, hi, out: RangeCheck) -> None:
        sides = self._sides_or_none(lo, hi)
        if sides is None and lo is not None and lo < hi:  # too big for one query: halves
            mid = _mid(lo, hi)
            self._compare(lo, mid, out)
            if len(out.differences) < self.limit:
                self._compare(mid + 1, hi, out)
            return
        if sides is not None:
            src, tgt = sides
            out.source_rows += src.rows
            out.target_rows += tgt.rows
            if src.same(tgt):
                return
        else:
            src = tgt = None
        self._narrow(lo, hi, src, tgt, out.differences)

    def _sides_or_none(self, lo, hi) -> tuple[_Sums, _Sums] | None:
        try:
            return self.sides(lo, hi)
        except TooBig:
            return None

    def sides(self, lo, hi) -> tuple[_Sums, _Sums]:
        """Row count and digests of the range on both sides."""
        return self._sums(self.src, lo, hi, self.exclusion), self._sums(self.tgt, lo, hi, NO_EXCLUSION)

    def _sums(self, side, lo, hi, excluded) -> _Sums:
        c = side.checksum(*where(side, lo, hi, excluded))
        json_digest = c.json
        if json_digest is not None and not side.json_in_sql:  # JSON as stored: normalised as the target does
            json_digest = self.tgt.json_digest(as_bytes(json_digest))
        return _Sums(c.rows, _combine(c.digests), json_digest, c.lo, c.hi)

    # --- narrowing down

    def _narrow(self, lo, hi, src: _Sums | None, tgt: _Sums | None, found: list[Difference]) -> None:
        """Bisect a differing range until it is small, then compare its rows one by one."""
        self.narrowed += 1
        small = src is not None and src.rows <= LEAF_ROWS and tgt.rows <= LEAF_ROWS
        if lo is None or small or lo >= hi:
            found.extend(self.leaf(lo, hi)[: self.limit - len(found)])
            return
        a, b = lo, hi
        if src is not None:  # bisect the span the rows occupy on either side
            lows = [int(x) for x in (src.lo, tgt.lo) if x is not None]
            highs = [int(x) for x in (src.hi, tgt.hi) if x is not None]
            a = max(lo, min(lows)) if lows else lo
            b = min(hi, max(highs)) if highs else hi
        if a >= b:
            found.extend(self.leaf(lo, hi)[: self.limit - len(found)])
            return
        mid = _mid(a, b)
        for x, y in ((lo, mid), (mid + 1, hi)):
            sides = self._sides_or_none(x, y)
            if sides is None:
                self._narrow(x, y, None, None, found)
            elif not sides[0].same(sides[1]):
                self._narrow(x, y, sides[0], sides[1], found)
            if len(found) >= self.limit:
                return

    # --- row by row

    def leaf(self, lo, hi) -> list[Difference]:
        """Compare the rows of a (small) range one by one."""
        if self.spec.kind == "bag":
            return self._bag_leaf()
        return self._rows(where(self.src, lo, hi, self.exclusion), where(self.tgt, lo, hi))

    def keys(self, keys: list[tuple]) -> list[Difference]:
        """Compare the rows of these keys (source key values, at most a few hundred) one by one: the rows an online
        migration's catch-up applied. A key on neither side is no difference (deleted on both)."""
        return self._rows(keys_where(self.src, self.spec, keys, self.exclusion), keys_where(self.tgt, self.spec, keys))

    def _rows(self, swhere_args: tuple[str, list], twhere_args: tuple[str, list]) -> list[Difference]:
        spec, src, tgt = self.spec, self.src, self.tgt
        ncol = len(spec.columns)
        nkey = len(spec.key)
        swhere, sargs = swhere_args
        q = (f"SELECT {src.keytext()}, {', '.join(src.key_expr(k) for k in spec.key)}, "
             f"{', '.join(src.canonical(c) for c in spec.columns)}, {', '.join(src.rendered(c) for c in spec.columns)} "
             f"FROM {src.table} {swhere} ORDER BY {src.order()}")
        src_rows = {}
        for row in src.run(q, sargs):
            src_rows[as_text(row[0])] = (row[1:1 + nkey], [plain(v) for v in row[1 + nkey:1 + nkey + ncol]],
                                         [plain(v) for v in row[1 + nkey + ncol:]])
        twhere, targs = twhere_args
        tq = (f"SELECT {tgt.keytext()}, {', '.join(tgt.key_expr(k) for k in spec.key)}, "
              f"{', '.join(tgt.canonical(c) for c in spec.columns)} FROM {tgt.table} {twhere}")
        tgt_rows = {as_text(r[0]): (r[1:1 + nkey], [plain(v) for v in r[1 + nkey:]]) for r in tgt.run(tq, targs)}
        out: list[Difference] = []
        judge: dict[int, list] = {}  # column -> (key, rendered, target value) the target's parser must judge
        for kt, (kraw, canon, rend) in src_rows.items():
            if kt not in tgt_rows:
                out.append(Difference(table=spec.source, kind="missing", key=self._key(kraw)))
                continue
            tcanon = tgt_rows.pop(kt)[1]
            for i, c in enumerate(spec.columns):
                s, t = canon[i], tcanon[i]
                if s == t or (s is not None and t is not None and str(s) == str(t)):
                    continue
                judge.setdefault(i, []).append((kraw, rend[i], t))
        for i, cases in judge.items():  # once per column for all its rows (a round trip per value was most of it)
            c = spec.columns[i]
            for (kraw, r, t), same in zip(cases, self._same_after_parsing_many(c, [(r, t) for _, r, t in cases])):
                if not same:
                    out.append(Difference(table=spec.source, kind="value", key=self._key(kraw), column=c.source,
                                          source=_show(r), target=_show(t)))
        for kt, (kraw, _) in tgt_rows.items():
            out.append(Difference(table=spec.source, kind="extra", key=self._key(kraw)))
        return out

    def _same_after_parsing_many(self, c: CheckColumn, pairs: list) -> list[bool]:
        """Does the target read each text the copy sent as exactly the value it holds?"""
        out: list = [None] * len(pairs)
        ask = []
        for n, (rendered, target) in enumerate(pairs):
            if rendered is None or target is None:
                out[n] = rendered is None and target is None
            elif c.type.ct in TEXT_TYPES or c.type.ct == CT.NATIVE:
                out[n] = str(rendered) == str(target)
            else:
                ask.append(n)
        for n, same in zip(ask, self.tgt.same_after_parsing_many(c, [(str(pairs[n][0]), pairs[n][1]) for n in ask])):
            out[n] = same
        return out

    def _key(self, raw) -> dict:
        names = [k.source for k in self.spec.key]
        return {n: _jsonable(v) for n, v in zip(names, raw)}

    def _bag_leaf(self) -> list[Difference]:
        """A table without a key: compare the rows as multisets (JSON in the target's normal form)."""
        spec, src, tgt = self.spec, self.src, self.tgt
        swhere, sargs = where(src, None, None, self.exclusion)
        jcols = [c for c in spec.columns if c.type.ct == CT.JSON]
        n = src.run(f"SELECT count(*) FROM {src.table} {swhere}", sargs)[0][0]
        if n > MAX_UNKEYED_ROWS:
            return [Difference(table=spec.source, kind="uncomparable", detail=(
                f"the checksums differ, and the table has no key and {n} rows, too many to list the differing "
                "rows; compare it with a key"))]
        ours = [(r[0], as_text(r[1]), [plain(x) for x in r[2:]]) for r in src.run(
            f"SELECT {src.rowid or 'NULL'}, {src.rowtext()}{''.join(', ' + src.json_text(c) for c in jcols)} "
            f"FROM {src.table} {swhere}", sargs)]
        theirs = [(as_text(r[0]), [plain(x) for x in r[1:]]) for r in tgt.run(
            f"SELECT {tgt.rowtext()}{''.join(', ' + tgt.json_text(c) for c in jcols)} FROM {tgt.table}", [])]
        if jcols:  # the source's JSON, and the target's unless it printed it normalised, in the target's form
            normal = iter(tgt.normalise_json([v for _, _, js in ours for v in js]))
            ours = [(rid, r, [next(normal) for _ in js]) for rid, r, js in ours]
            if not tgt.json_in_sql:
                normal = iter(tgt.normalise_json([v for _, js in theirs for v in js]))
                theirs = [(r, [next(normal) for _ in js]) for r, js in theirs]
        have = Counter((r, tuple(js)) for r, js in theirs)
        out: list[Difference] = []
        for rid, r, js in ours:
            k = (r, tuple(js))
            if have[k]:
                have[k] -= 1
            else:
                out.append(Difference(table=spec.source, kind="missing", key={"rowid": rid},
                                      detail=_show(r.replace(FIELD_SEP, " | ").strip())))
        for (r, js), cnt in have.items():
            for _ in range(cnt):
                out.append(Difference(table=spec.source, kind="extra", key={},
                                      detail=_show(r.replace(FIELD_SEP, " | ").strip())))
        return out


# ---------------------------------------------------------------------- helpers


def _split(lo: int, hi: int, rows: int, per: int = SUB_RANGE_ROWS) -> list[tuple[int, int]]:
    n = max(1, min(hi - lo + 1, -(-max(rows, 1) // per)))
    step = -(-(hi - lo + 1) // n)
    out, a = [], lo
    while a <= hi:
        b = min(hi, a + step - 1)
        out.append((a, b))
        a = b + 1
    return out


def _combine(digests: list) -> str:
    return hashlib.md5("|".join(d or "-" for d in digests).encode()).hexdigest()


def _mid(lo: int, hi: int) -> int:
    return lo + (hi - lo) // 2


def _jsonable(v):
    if v is None or isinstance(v, (int, float, str, bool)):
        return v
    if isinstance(v, bytes):
        return plain(v)
    return str(v)


def _show(v, limit: int = 120) -> str | None:
    if v is None:
        return None
    s = str(v)
    s = "".join(ch if ch >= " " or ch in "\t" else f"\\x{ord(ch):02x}" for ch in s)
    return s if len(s) <= limit else s[:limit] + "…"


def compare_keys(source: DatabaseURL, target: DatabaseURL, spec: TableSpec, keys: list[tuple], *,
                 limit: int = 10, per: int = 300) -> list[Difference]:
    """The rows of ``keys`` compared value by value on both sides (the first ``limit`` differences): an online
    migration's cut-over checks the rows changed since its copy began, before the app switches."""
    found: list[Difference] = []
    with Comparer(source, target, spec, limit=limit) as cmp:
        for i in range(0, len(keys), per):
            found += cmp.keys(keys[i:i + per])
            if len(found) >= limit:
                break
    return found[:limit]

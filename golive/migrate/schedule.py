"""In what order the copy's steps run: chunks, each table's keys, each child table's foreign keys.

The policy is plain Python over abstract futures, so the Prefect flow (task futures) and the benchmark's
engine-only probe (a thread pool) run exactly the same schedule:

* at most ``workers`` steps in flight;
* small (single-chunk) tables first, in foreign-key order, so the parents' keys are ready early; then
  the big tables, the one whose keys and foreign keys cost most first, so that what runs after the last
  chunk (the last table's keys and foreign keys, which cannot overlap the copy) is the cheapest;
* a table's keys and indexes as soon as its last chunk is in (while other tables still copy);
* a child table's foreign keys as soon as it and all its parents have their keys;
* with ``group`` given, many small tables (one chunk or none, few rows) go as one step: their chunks and then
  each one's keys, one after the other (``group_tables``). 10,000 tables of 10 rows were 20,000 task runs, and
  Prefect keeps a state per task run until the flow ends (10,000 tables into PostgreSQL peaked at 507 MB).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable

from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan


def copy_order(plan: MigrationPlan, *, interleave: bool = False) -> list[tuple[TablePlan, ChunkPlan]]:
    """The order chunk copies are handed out in: single-chunk tables first (the plan's FK order), then the
    big tables, the one whose keys and foreign keys will cost most first (rows × (indexes + foreign keys)),
    so its tail overlaps the rest of the copy. ``interleave``: the big tables' chunks round-robin."""
    def tail_cost(t: TablePlan) -> int:
        return t.rows * (len(t.indexes) + len(t.foreign_keys))

    small = [t for t in plan.tables if len(t.chunks) <= 1]
    big = sorted((t for t in plan.tables if len(t.chunks) > 1), key=tail_cost, reverse=True)
    tables = small + big
    if not interleave:
        return [(tp, ch) for tp in tables for ch in tp.chunks]
    lanes = [[(tp, ch) for ch in tp.chunks] for tp in big]
    return [(tp, ch) for tp in small for ch in tp.chunks] + [
        lane[i] for i in range(max((len(x) for x in lanes), default=0)) for lane in lanes if i < len(lane)]


#: a group holds at most this many tables, and tables of at most GROUP_TABLE_ROWS estimated rows each
GROUP_TABLES = 50
GROUP_TABLE_ROWS = 10_000
#: groups only form when there are at least this many steps of small tables per worker to save (the bench app's
#: handful of tables keeps one step per chunk and table, as before)
GROUP_MIN_PER_WORKER = 4


def groupable(tp: TablePlan) -> bool:
    """A table whose copy and keys are cheap next to a task run of their own: one chunk or none, few rows."""
    return len(tp.chunks) <= 1 and tp.rows <= GROUP_TABLE_ROWS


def group_size(plan: MigrationPlan, workers: int) -> int:
    """Tables per group: 1 (no groups) unless the small tables are many; then enough groups to keep
    ``GROUP_MIN_PER_WORKER`` steps per worker, at most ``GROUP_TABLES`` tables each."""
    small = sum(1 for tp in plan.tables if groupable(tp))
    if small < 2 * GROUP_MIN_PER_WORKER * max(1, workers):
        return 1
    return max(1, min(GROUP_TABLES, math.ceil(small / (GROUP_MIN_PER_WORKER * max(1, workers)))))


def group_tables(plan: MigrationPlan, workers: int) -> list[list[TablePlan]]:
    """The groups of small tables, in the plan's (foreign-key) order; [] when ``group_size`` is 1."""
    size = group_size(plan, workers)
    if size <= 1:
        return []
    small = [tp for tp in plan.tables if groupable(tp)]
    return [small[i:i + size] for i in range(0, len(small), size)]


def run_schedule(plan: MigrationPlan, workers: int, *,
                 copy: Callable[[TablePlan, ChunkPlan], Any],
                 keys: Callable[[TablePlan], Any],
                 link: Callable[[TablePlan], Any],
                 first_done: Callable[[list], Any],
                 result: Callable[[Any], Any] = lambda f: f.result(),
                 on_chunk: Callable[[TablePlan, Any, int, int], None] | None = None,
                 interleave: bool = False,
                 group: Callable[[list[TablePlan]], Any] | None = None) -> tuple[list, list]:
    """Run every chunk copy, key build and foreign-key step of ``plan``; return ``(chunk_results, step_results)``.

    Args:
        copy, keys, link: submit one step and return its future.
        first_done: block until one of the given futures is done and return it.
        result: the value of a done future (raises if the step failed: the run stops, and can be resumed).
        on_chunk: called after each chunk with ``(table, result, chunks_done, chunks_total)``.
        interleave: hand out the big tables' chunks round-robin instead of table by table.
        group: submit one step copying a group of small tables (``group_tables``) and building their keys; its
            value has ``chunks`` (the chunk results) and ``steps`` (one key build's result per table). None: every
            chunk and every table's keys are steps of their own.
    """
    groups = group_tables(plan, workers) if group is not None else []
    grouped = {tp.source for g in groups for tp in g}
    queue: deque = deque(("group", g, None) for g in groups)
    queue.extend(("copy", tp, ch) for tp, ch in copy_order(plan, interleave=interleave) if tp.source not in grouped)
    total = sum(len(tp.chunks) for tp in plan.tables)
    remaining = {tp.source: len(tp.chunks) for tp in plan.tables}
    parents = {tp.source: {fk.source_ref_table for fk in tp.foreign_keys} for tp in plan.tables}
    # a table's key build looks only at its own child tables (and itself), not at every table: with 10,000
    # tables, scanning them all after each key build cost 10,000 x 10,000 steps
    children: dict[str, list[TablePlan]] = {}
    for tp in plan.tables:
        for parent in {*parents[tp.source], tp.source} if tp.foreign_keys else ():
            children.setdefault(parent, []).append(tp)
    keyed: set[str] = set()
    linked: set[str] = set()
    running: dict = {}
    chunks: list = []
    steps: list = []

    def keyed_now(tp: TablePlan) -> None:  # link the children whose parents all have their keys now
        keyed.add(tp.source)
        for child in children.get(tp.source, ()):
            if child.source not in linked and child.source in keyed and parents[child.source] <= keyed:
                linked.add(child.source)
                running[link(child)] = ("link", child)

    for tp in plan.tables:  # tables without rows still get their keys
        if not tp.chunks and tp.source not in grouped:
            running[keys(tp)] = ("keys", tp)
    while queue or running:
        while queue and len(running) < workers:
            kind, what, ch = queue.popleft()
            running[copy(what, ch) if kind == "copy" else group(what)] = (kind, what)
        fut = first_done(list(running))
        kind, tp = running.pop(fut)
        value = result(fut)
        if kind == "group":
            by_table = {t.source: t for t in tp}
            for one in value.chunks:
                chunks.append(one)
                if on_chunk is not None:
                    on_chunk(by_table[one.table], one, len(chunks), total)
            steps.extend(value.steps)
            for t in tp:
                keyed_now(t)
            continue
        if kind == "copy":
            chunks.append(value)
            remaining[tp.source] -= 1
            if on_chunk is not None:
                on_chunk(tp, value, len(chunks), total)
            if remaining[tp.source] == 0:
                running[keys(tp)] = ("keys", tp)
            continue
        steps.append(value)
        if kind == "keys":
            keyed_now(tp)
    return chunks, steps

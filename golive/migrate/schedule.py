"""In what order the copy's steps run: chunks, each table's keys, each child table's foreign keys.

The policy is plain Python over abstract futures, so the Prefect flow (task futures) and the benchmark's
engine-only probe (a thread pool) run exactly the same schedule:

* at most ``workers`` steps in flight;
* small (single-chunk) tables first, in foreign-key order, so the parents' keys are ready early; then
  the big tables, the one whose keys and foreign keys cost most first, so that what runs after the last
  chunk (the last table's keys and foreign keys, which cannot overlap the copy) is the cheapest;
* a table's keys and indexes as soon as its last chunk is in (while other tables still copy);
* a child table's foreign keys as soon as it and all its parents have their keys.
"""

from __future__ import annotations

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


def run_schedule(plan: MigrationPlan, workers: int, *,
                 copy: Callable[[TablePlan, ChunkPlan], Any],
                 keys: Callable[[TablePlan], Any],
                 link: Callable[[TablePlan], Any],
                 first_done: Callable[[list], Any],
                 result: Callable[[Any], Any] = lambda f: f.result(),
                 on_chunk: Callable[[TablePlan, Any, int, int], None] | None = None,
                 interleave: bool = False) -> tuple[list, list]:
    """Run every chunk copy, key build and foreign-key step of ``plan``; return ``(chunk_results, step_results)``.

    Args:
        copy, keys, link: submit one step and return its future.
        first_done: block until one of the given futures is done and return it.
        result: the value of a done future (raises if the step failed: the run stops, and can be resumed).
        on_chunk: called after each chunk with ``(table, result, chunks_done, chunks_total)``.
        interleave: hand out the big tables' chunks round-robin instead of table by table.
    """
    queue = deque(copy_order(plan, interleave=interleave))
    total = len(queue)
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
    for tp in plan.tables:  # tables without rows still get their keys
        if not tp.chunks:
            running[keys(tp)] = ("keys", tp)
    while queue or running:
        while queue and len(running) < workers:
            tp, ch = queue.popleft()
            running[copy(tp, ch)] = ("copy", tp)
        fut = first_done(list(running))
        kind, tp = running.pop(fut)
        value = result(fut)
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
            keyed.add(tp.source)
            for child in children.get(tp.source, ()):
                if child.source not in linked and child.source in keyed and parents[child.source] <= keyed:
                    linked.add(child.source)
                    running[link(child)] = ("link", child)
    return chunks, steps

"""Online migration: copy while the app keeps writing, catch up, then cut over in seconds.

The engine of it, with no Prefect (the flow ``flows/migrate_online.py`` drives these steps as tasks):

1. ``check``: what the source's change capture needs (settings, privileges, keys), each a one-line refusal.
2. ``Capture.begin`` starts capturing at a moment the copy's snapshot is consistent with; the copy (chunks, keys,
   foreign keys) runs as an offline one does, inside that snapshot.
3. ``catch_up``: the changed rows, in the source's commit order, in batches: each row is re-read from the source
   with the copy's own rendering and upserted (or deleted) in the target, in one transaction that also records the
   position, so a crash never applies a batch twice or skips one.
4. ``cut_over``: fence the source (every later write fails loudly), drain what was captured before the fence, set
   identities above the highest value, compare the rows changed since the copy began, run the cut-over command
   (the app switches), and record the write freeze (fence to command done) in seconds.

Nothing here knows an engine: the source's ``Capture`` and ``Source.read_keys``, the target's ``apply_changes``.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import shlex
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from golive.dialects import dialect_of
from golive.errors import ConfigError, TerminalError
from golive.model.capture import CaptureNotReady, CaptureState, Lag
from golive.model.plan import MigrationPlan
from golive.model.results import ChunkResult, Refused
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

#: changes per applied batch (one transaction in the target)
BATCH = 5_000
#: keys remembered for the cut-over's check, per run (beyond this the full validation after the switch checks)
MAX_TRACKED = 2_000_000

#: run_key -> {table: {key: batch number}}: the rows this process's catch-up applied (the cut-over compares them),
#: with the batch that applied each last; run_key -> position tracking began at, when it began after the copy (a
#: resumed run: the rest is checked after)
_CHANGED: dict[str, dict[str, dict]] = {}
_TRACKED_FROM: dict[str, str] = {}
#: run_key -> batches applied in this process; run_key -> {table: {key: batch number}}: rows found equal before the
#: fence, as that batch left them (``check_ahead``): the cut-over compares them again only if applied again since
_BATCHES: dict[str, int] = {}
_EQUAL: dict[str, dict[str, dict]] = {}


#: "target|schema" -> what runs inside the freeze, after the check and before the cut-over command (the go-live's
#: last uploads and path rewrite); registered in this process by whoever drives the run (``before_switch``)
_BEFORE_SWITCH: dict[str, object] = {}

_STOPPED = ("the source is fenced: `golive migrate abort` lets it take writes again (the app stays on it), or fix "
            "the cause and run the same command")


@contextmanager
def before_switch(target: DatabaseURL, schema: str, fn):
    """Run ``fn()`` (returning a summary dict) inside the freeze of the online migration into ``target``/``schema``
    that runs in this process while the block is open: after the check, before the cut-over command."""
    key = f"{target.masked}|{schema}"
    _BEFORE_SWITCH[key] = fn
    try:
        yield
    finally:
        _BEFORE_SWITCH.pop(key, None)


class CutoverCheckFailed(TerminalError):
    """After the drain, rows changed since the copy began differ between source and target: the app is not
    switched (the source stays fenced)."""


def check(source: DatabaseURL, plan: MigrationPlan, *, keyless: bool = False) -> None:
    """Refuse, before anything is written, a source whose capture cannot work: every problem, one line each."""
    problems = dialect_of(source).capture.check(source, plan, keyless=keyless)
    if problems:
        raise CaptureNotReady("online migration cannot start: " + "; ".join(problems))


@contextmanager
def begin(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, *, workers: int):
    """Start capturing (``Capture.begin``) and record the run in the target; yields ``(snapshot, state)`` for the
    copy, which runs inside the block (the snapshot is released when it ends; capture goes on)."""
    clear_request(target, plan.run_key)
    with dialect_of(source).capture.begin(source, plan, workers=workers) as (snapshot, state):
        state.source, state.tables = source.masked, len(plan.tables)
        save_state(target, state)
        _CHANGED[state.run_key] = {}  # every change of this run passes through this process: all are checked
        _EQUAL.pop(state.run_key, None)
        _TRACKED_FROM.pop(state.run_key, None)
        yield snapshot, state


def start_over(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, options) -> CaptureState | None:
    """Where an earlier run of this migration stands; with ``--drop-existing`` its capture is removed first (a new
    run starts), and a run that already cut over is refused unless the user starts over."""
    state = load_state(target, plan.run_key)
    if state is None or state.status == "aborted":
        return None
    if options.drop_existing and not plan.resumed:
        abort(source, target, state)
        return None
    if state.status == "cut-over" and not plan.resumed:
        raise ConfigError(f"this online migration already cut over ({state.fenced_at}); the source is fenced. "
                          "To move it again: `golive migrate abort` (the source takes writes again), then "
                          "--drop-existing")
    return state


def load_state(target: DatabaseURL, run_key: str) -> CaptureState | None:
    return dialect_of(target).target.capture_state(target, run_key)


def save_state(target: DatabaseURL, state: CaptureState) -> None:
    dialect_of(target).target.save_capture_state(target, state)


def runs(target: DatabaseURL, source: DatabaseURL | None = None) -> list[CaptureState]:
    """The online runs recorded in ``target`` (of ``source``, when given), oldest first; a cut-over request is not
    a run."""
    found = [s for s in dialect_of(target).target.capture_states(target) if not s.run_key.endswith(_REQUEST)]
    return [s for s in found if source is None or s.source == source.masked]


def active_run(target: DatabaseURL, source: DatabaseURL, run_key: str | None = None) -> CaptureState:
    """The one online run of ``source`` into ``target`` still going (or ``run_key``): refused by name otherwise."""
    found = runs(target, source)
    if run_key:
        found = [s for s in found if s.run_key == run_key]
    else:
        found = [s for s in found if s.status not in ("cut-over", "aborted")]
    if not found:
        raise ConfigError(f"no online migration of {source.masked} into {target.masked} is running"
                          + (f" with run {run_key}" if run_key else "") + ": `golive migrate status` lists them")
    if len(found) > 1:
        raise ConfigError(f"{len(found)} online migrations of {source.masked} are running into {target.masked} "
                          f"({', '.join(s.run_key for s in found)}): name one with --run")
    return found[0]


#: the cut-over request is recorded beside the run's state, never inside it (a batch saving the state would
#: overwrite a flag set from another terminal)
_REQUEST = "/cutover"


def request_cutover(target: DatabaseURL, state: CaptureState) -> None:
    """Ask the running ``--cutover manual`` migration to cut over (from another terminal, CI, or a flow)."""
    save_state(target, CaptureState(run_key=state.run_key + _REQUEST, engine=state.engine, status="requested",
                                    started_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))


def cutover_requested(target: DatabaseURL, run_key: str) -> bool:
    got = load_state(target, run_key + _REQUEST)
    return got is not None and got.status == "requested"


def clear_request(target: DatabaseURL, run_key: str) -> None:
    """A request is answered (the cut-over began) or stale (a new run of the same migration starts)."""
    got = load_state(target, run_key + _REQUEST)
    if got is not None and got.status == "requested":
        got.status = "answered"
        save_state(target, got)


def copied_chunks(target: DatabaseURL, plan: MigrationPlan) -> list[dict]:
    """The copy's chunks as the target recorded them (a run resumed after the copy reports them as they were)."""
    done = dialect_of(target).target.chunks_of_run(target, plan.run_key)
    return [ChunkResult(table=table, chunk=no, resumed=True, **{k: v for k, v in c.items() if k != "digest"}
                        ).model_dump() for (table, no), c in sorted(done.items())]


def read_batch(source: DatabaseURL, plan: MigrationPlan, batch) -> list:
    """The source's half of applying a batch: each changed row as the source has it now (a key not found was
    deleted), per table, parents before children: ``[(table plan, [(key, line)], keys gone, keys)]``."""
    src = dialect_of(source).source
    by_table: dict[str, dict[tuple, None]] = {}
    for ch in batch.changes:
        by_table.setdefault(ch.table, {})[ch.key] = None  # in order, once per key: the latest state wins
    tables = []
    for tp in plan.tables:  # parents before children
        keys = list(by_table.pop(tp.source, {}))
        if not keys:
            continue
        found = src.read_keys(source, plan, tp, keys)
        present = {k for k, _ in found}
        gone = [k for k in keys if k not in present]
        if gone:  # compared as text too: an engine may hand back a key in another type than its capture's
            as_text = {tuple(map(str, k)) for k, _ in found}
            gone = [k for k in gone if tuple(map(str, k)) not in as_text]
        tables.append((tp, found, gone, keys))
    if by_table:  # a table the plan does not copy: its changes are not this run's
        log.debug("changes of tables not copied: %s", ", ".join(sorted(by_table)))
    return tables


def apply_batch(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, state: CaptureState, batch,
                read=None) -> int:
    """Apply one batch: each changed row as the source has it now (a row not found was deleted), all tables in one
    target transaction that also records the batch's position. A row the target refuses (as the copy would have
    rejected it) is recorded as a reject with its key and reason, never dropped silently. ``read``: the batch's
    rows as ``read_batch`` returned them (read ahead), else read now. Returns the rows applied."""
    dst = dialect_of(target).target
    tables = read_batch(source, plan, batch) if read is None else read
    _BATCHES[state.run_key] = _BATCHES.get(state.run_key, 0) + 1  # each attempt its own number (``check_ahead``)
    applied = 0
    for tp, _, _, keys in tables:
        applied += len(keys)
        _track(state, tp.source, keys)
    tables = [(tp, found, gone) for tp, found, gone, _ in tables]
    # the state as it is once this batch is in: recorded by the transaction that applies the batch, and only then
    # taken as this run's state (a failure leaves the state as the target has it)
    after = state.model_copy(deep=True)
    after.applied = batch.position
    after.meta["changes_applied"] = state.meta.get("changes_applied", 0) + applied
    try:
        dst.apply_changes(target, plan, [(tp, b"".join(line for _, line in found), gone)
                                         for tp, found, gone in tables], after)
    except Refused:  # one row at a time, to name the ones refused; the position moves only at the end, so a
        # crash in between applies the whole batch again (each row is an upsert: harmless)
        for tp, found, gone in tables:
            for key, line in found:
                try:
                    dst.apply_changes(target, plan, [(tp, line, [])], state)
                except Refused as exc:  # as a rejected row of the copy: named, and not in the target (never
                    # an older version of it standing there as if it were current)
                    after.meta.setdefault("rejects", []).append(
                        {"table": tp.source, "key": dict(zip(tp.key, map(_jsonable, key))), "reason": exc.reason})
                    dst.apply_changes(target, plan, [(tp, b"", [key])], state)
            if gone:
                dst.apply_changes(target, plan, [(tp, b"", gone)], state)
        dst.apply_changes(target, plan, [], after)  # the position, and the rejects, recorded
    if after.meta.get("rejects") and len(after.meta["rejects"]) == len(state.meta.get("rejects", [])):
        _forget_applied(after, tables)  # no new refusal: a row refused earlier and applied now is no reject
        if len(after.meta["rejects"]) != len(state.meta.get("rejects", [])):
            dst.apply_changes(target, plan, [], after)
    state.applied, state.meta = after.applied, after.meta
    return applied


def _forget_applied(state: CaptureState, tables) -> None:
    """Drop the rejects of rows this batch applied after all (the app fixed the value)."""
    done = {(tp.source, tuple(map(str, k))) for tp, found, _ in tables for k, _ in found}
    state.meta["rejects"] = [r for r in state.meta["rejects"]
                             if (r["table"], tuple(str(v) for v in r["key"].values())) not in done]


def refused_keys(target: DatabaseURL, plan: MigrationPlan, state: CaptureState) -> dict[str, list[dict]]:
    """Per table, the key columns of the rows the copy rejected and the catch-up refused: expected missing."""
    changed, _ = changed_keys(state.run_key)  # a row the copy rejected and the catch-up applied since is there
    applied = {(t, tuple(map(str, k))) for t, keys in changed.items() for k in keys}
    out: dict[str, list[dict]] = {}
    for (table, _), c in sorted(dialect_of(target).target.chunks_of_run(target, plan.run_key).items()):
        for r in c.get("rejects") or []:
            key = r.get("key") or {}
            if (table, tuple(str(v) for v in key.values())) not in applied:
                out.setdefault(table, []).append(key)
    for r in state.meta.get("rejects", []):  # refused by the catch-up (its latest attempt)
        out.setdefault(r["table"], []).append(r["key"])
    return out


def _track(state: CaptureState, table: str, keys: list[tuple]) -> None:
    if state.run_key not in _CHANGED:  # resumed in a new process: changes before this are checked after the switch
        _CHANGED[state.run_key] = {}
        _TRACKED_FROM[state.run_key] = state.applied
    tracked = _CHANGED[state.run_key]
    if sum(len(v) for v in tracked.values()) < MAX_TRACKED:
        tracked.setdefault(table, {}).update(dict.fromkeys(keys, _BATCHES.get(state.run_key, 0)))
    else:
        _TRACKED_FROM[state.run_key] = "*"


def changed_keys(run_key: str, *, unchecked: bool = False) -> tuple[dict[str, list[tuple]], str | None]:
    """The keys the catch-up applied in this process, per table, and where tracking began when it did not from
    the copy's start (None: all of them). ``unchecked``: only those not found equal (``check_ahead``) since they
    were last applied."""
    keys = _unchecked(run_key) if unchecked else _CHANGED.get(run_key, {})
    return ({t: list(k) for t, k in keys.items() if k}, _TRACKED_FROM.get(run_key))


def _unchecked(run_key: str) -> dict[str, dict]:
    equal = _EQUAL.get(run_key, {})
    return {t: {k: n for k, n in ks.items() if equal.get(t, {}).get(k, -1) < n}
            for t, ks in _CHANGED.get(run_key, {}).items()}


def check_ahead(run_key: str, differing) -> tuple[int, int]:
    """Before the fence, while the app writes: compare the rows applied since they were last found equal, so the
    cut-over compares only what changed after (its check is inside the write freeze). The target changes only
    through the catch-up, so a row found equal stays equal until a later batch applies it again, and that batch
    puts it back in the cut-over's check.

    ``differing(keys) -> {(table, key as text)}`` compares them; a row the app changed after its last batch
    differs (lag, not an error): it is compared again at the cut-over. Returns ``(rows compared, rows left for the
    cut-over)``."""
    todo = {t: ks for t, ks in _unchecked(run_key).items() if ks}
    if not todo:
        return 0, 0
    bad = differing({t: list(ks) for t, ks in todo.items()})
    equal = _EQUAL.setdefault(run_key, {})
    for t, ks in todo.items():
        for k, n in ks.items():
            if (t, tuple(map(str, k))) not in bad:
                equal.setdefault(t, {})[k] = n
    return sum(map(len, todo.values())), sum(map(len, _unchecked(run_key).values()))


def _jsonable(v):
    return v if v is None or isinstance(v, (int, float, str, bool)) else str(v)


def catch_up(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, state: CaptureState, *,
             seconds: float | None = None, batch: int = BATCH, on_batch=None, wait: bool = False,
             drain: bool = False) -> Lag:
    """Apply captured changes until caught up, or for ``seconds`` at most. Returns the lag left.

    Caught up: a batch comes back empty, or the source's position when the call began is applied, so an app that
    keeps writing cannot keep it going until ``seconds`` (what it wrote meanwhile is the lag returned, which the
    next round or the cut-over's drain applies). ``on_batch(lag, applied)`` is told after each
    batch (progress, the UI). ``wait``: caught up, keep polling (every 0.2 s) until ``seconds`` pass (a manual
    cut-over waiting to be asked). ``drain``: until a batch comes back empty, whatever the source's position (behind
    the fence: a transaction open at the fence may still commit).

    Three stages overlap: while a batch is applied to the target, the next batch's rows are read from the source
    and the changes after it are read from the capture (a feed thread reading changes ahead, at most ``AHEAD``
    batches, and a reader thread reading their rows). They only read: the position moves (and the source lets go
    of what was applied) only once the target committed the batch that holds it.
    """
    cap = dialect_of(source).capture
    t_end = None if seconds is None else time.monotonic() + seconds
    # caught up: the source's head when the call began is applied (a drain goes on to an empty batch; a manual
    # cut-over waiting to be asked polls until ``seconds`` pass)
    goal = cap.head(source, state) if not drain and not wait else None

    def is_last(b) -> bool:
        return (t_end is not None and time.monotonic() >= t_end) or (
            goal is not None and cap.position_key(b.position) >= cap.position_key(goal))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="golive-catch-up-rows") as rows:
        feed = _Feed(lambda after: cap.changes(source, state, after, limit=batch),
                     lambda b: rows.submit(read_batch, source, plan, b), is_last)
        feed.start(state.applied)
        try:
            while True:
                b, read, last = feed.next()
                if not b.changes:
                    if b.position and b.position != state.applied:
                        state.applied = b.position
                        save_state(target, state)
                    if wait and t_end is not None and time.monotonic() < t_end:
                        time.sleep(0.2)
                        feed.start(state.applied)
                        continue
                    return Lag(pending=0, seconds=0.0, position=state.applied)
                n = apply_batch(source, target, plan, state, b, read.result())
                lag = Lag(pending=b.pending, position=state.applied,
                          seconds=max(0.0, time.time() - b.oldest_at) if b.oldest_at and b.pending else 0.0)
                if on_batch is not None:
                    on_batch(lag, n)
                if last or (t_end is not None and time.monotonic() >= t_end):
                    return lag
        finally:
            feed.stop()


#: batches whose changes are read ahead of the one being applied
AHEAD = 2


class _Feed:
    """The capture's changes read ahead in a thread, in order, each batch's rows handed to the reader as soon as
    its changes are known: ``next()`` gives ``(batch, rows future, last)``. It stops after an empty batch, after
    the last one (``is_last``), on an error (raised by ``next``), or when ``stop()`` is called."""

    def __init__(self, changes, read, is_last):
        self.changes, self.read, self.is_last = changes, read, is_last
        self.queue, self.thread, self.halt = None, None, None

    def start(self, after: str) -> None:
        self.stop()
        self.queue, self.halt = queue.Queue(maxsize=AHEAD), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(after, self.queue, self.halt),
                                       name="golive-catch-up-feed", daemon=True)
        self.thread.start()

    def _run(self, after: str, out, halt) -> None:
        try:
            while not halt.is_set():
                b = self.changes(after)
                if not b.changes:
                    self._put(out, halt, (b, None, True))
                    return
                last = self.is_last(b)
                self._put(out, halt, (b, self.read(b), last))
                if last:
                    return
                after = b.position
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(out, halt, exc)

    @staticmethod
    def _put(out, halt, item) -> None:
        while not halt.is_set():
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def next(self):
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """End the feed; what it read ahead and nobody will apply is dropped (its errors are not this run's)."""
        if self.thread is None:
            return
        self.halt.set()
        while self.thread.is_alive():
            self.thread.join(timeout=0.2)
            self._drain()
        self._drain()
        self.thread = None

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple) and item[1] is not None:
                item[1].cancel() or _quietly(item[1].result)


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - a read ahead nobody will apply: its error is not this run's
        log.debug("a batch read ahead and not applied failed", exc_info=True)


def record_lag(target: DatabaseURL, state: CaptureState, lag: Lag) -> None:
    """Keep the lag with the run's state (``golive migrate status`` shows it, with when it was measured)."""
    state.meta["lag"] = {"pending": lag.pending, "seconds": round(lag.seconds, 1),
                         "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    save_state(target, state)


def fence(source: DatabaseURL, target: DatabaseURL, state: CaptureState) -> float:
    """Fence the source; returns the moment (``time.monotonic()``) writes stopped."""
    dialect_of(source).capture.fence(source, state)
    at = time.monotonic()
    state.status = "fenced"
    state.fenced_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    save_state(target, state)
    return at


def run_command(command: str, *, timeout: float = 300) -> None:
    """The cut-over command (the app switches to the target); a failure is one line with its output."""
    if not command:
        return
    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise ConfigError(f"--cutover-command: {exc.filename}: no such program") from None
    except subprocess.TimeoutExpired:
        raise TerminalError(f"the cut-over command did not finish within {timeout:g} s: {command}") from None
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise TerminalError(f"the cut-over command failed (exit {proc.returncode}): {tail[0][:200]}")


def cut_over(source: DatabaseURL, target: DatabaseURL, plan: MigrationPlan, state: CaptureState, *,
             command: str = "", on_batch=None, check=None) -> dict:
    """Fence, drain, identities, check the changed rows, the cut-over command; returns what happened, with the
    write freeze in seconds.

    ``check(keys) -> (rows checked, differences)`` compares the rows the catch-up applied (per table) on both
    sides; a difference stops the cut-over before the command: the app is not switched, the source stays fenced,
    and the message says what to do. Any failure after the fence leaves the source fenced and says so (the same
    command goes on; ``golive migrate abort`` lets the source take writes again)."""
    t_fence = fence(source, target, state)
    steps: dict[str, float] = {}
    mark = [t_fence]

    def took(name: str) -> None:
        now = time.monotonic()
        steps[name] = round(now - mark[0], 3)
        mark[0] = now

    drained = catch_up(source, target, plan, state, on_batch=on_batch, drain=True)
    took("drain")
    identities = dialect_of(target).target.reset_identities(target, plan)
    took("identities")
    checked, partial = 0, None
    if check is not None:
        keys, partial = changed_keys(state.run_key, unchecked=True)
        checked, differences = check(keys)
        took("check")
        if differences:
            raise CutoverCheckFailed(
                f"the cut-over stopped before the app switched: {len(differences)}+ rows differ after the drain "
                f"({differences[0]}); {_STOPPED}")
    before = None
    hook = _BEFORE_SWITCH.get(f"{target.masked}|{plan.target_schema}")
    if hook is not None:
        try:
            before = hook()
        except Exception as exc:  # noqa: BLE001 - the app has not switched: say so with the cause
            raise TerminalError(f"the cut-over stopped before the app switched: {exc}; {_STOPPED}") from None
        took("before_switch")
    try:
        run_command(command)
    except TerminalError as exc:
        raise TerminalError(f"{exc}; {_STOPPED}") from None
    took("command")
    freeze = round(time.monotonic() - t_fence, 3)
    state.status = "cut-over"
    state.freeze_seconds = freeze
    save_state(target, state)
    return {"freeze_seconds": freeze, "freeze_steps": steps, "drained_to": drained.position,
            "identities": identities, "checked_rows": checked, "checked_from": partial or state.started_at,
            "before_switch": before}


def end(source: DatabaseURL, target: DatabaseURL, state: CaptureState, *, keep_fence: bool = True) -> list[str]:
    """After the cut-over: remove the capture's objects (slot, triggers, change table); the fence stays (the app
    moved: a write to the old database must still fail) unless ``keep_fence`` is False."""
    removed = dialect_of(source).capture.end(source, state, keep_fence=keep_fence)
    state.meta["removed"] = removed
    save_state(target, state)
    return removed


def leftovers(source: DatabaseURL) -> list[str]:
    """Capture objects any golive run left in ``source`` (slot, triggers, change table, fence), named."""
    return dialect_of(source).capture.leftovers(source)


def remove_leftovers(source: DatabaseURL) -> list[str]:
    """Remove every capture object golive left in ``source`` (``golive migrate abort`` with no run recorded)."""
    if not leftovers(source):
        return []
    return dialect_of(source).capture.end(source, CaptureState(run_key="", engine=dialect_of(source).name))


def abort(source: DatabaseURL, target: DatabaseURL | None, state: CaptureState) -> list[str]:
    """Remove everything golive added to the source for this run (slot, triggers, change table, fence)."""
    removed = dialect_of(source).capture.end(source, state)
    state.status = "aborted"
    if target is not None:
        save_state(target, state)
    return removed

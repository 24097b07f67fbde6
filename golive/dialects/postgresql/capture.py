"""PostgreSQL change capture: logical decoding, through a replication slot golive creates for the run.

* **The boundary with the copy is exact.** ``begin`` opens a replication connection (``replication=database``) and
  runs ``CREATE_REPLICATION_SLOT golive_<run> LOGICAL test_decoding (SNAPSHOT 'export')``: PostgreSQL returns the
  slot's consistent point and a snapshot of exactly that moment. The copy's chunk readers start their transactions
  in that snapshot (``SET TRANSACTION SNAPSHOT``), and the replication connection stays open, idle, until the copy
  is done. A transaction committed before the point is in the copy, one committed after it is decoded from the slot:
  none is in neither.
* **Why test_decoding.** It ships with PostgreSQL (contrib; available on RDS/Aurora, Cloud SQL and Azure), needs no
  publication (nothing owned to create, nothing more to clean up), is read through SQL functions (psycopg 3 has no
  streaming replication protocol) and prints each row's key as text, ready to re-read the row. pgoutput would add a
  publication (``FOR ALL TABLES`` needs a superuser, per table the tables' owner) and a binary protocol to parse,
  for nothing the catch-up uses: it needs keys, not values.
* **Not TEMPORARY.** The slot survives a crash of golive, so the catch-up resumes where the target says it is;
  ``end`` (``--abort``, and the end of a run) drops it, and ``leftovers`` names every golive slot on the server with
  the WAL it holds back (a forgotten slot fills the disk).
* **Reading.** ``pg_logical_slot_peek_changes`` (reads without consuming) on an ordinary connection; the slot is
  advanced (``pg_replication_slot_advance``) only up to the position the target has recorded (``after``), at the
  next call: nothing is consumed before the target committed it, so a crash re-reads from there. A position is the
  LSN at the end of a transaction's commit record. A slot found *past* the target's position (read outside golive)
  stops the run: the changes in between cannot be read again. A peek decodes from the slot's restart point (moved
  by PostgreSQL only every 15 s or so), so one peek reads several batches ahead and the batches after it are served
  from its rows (``_ahead``): a backlog is decoded about once, not once per batch.
* **DDL.** test_decoding emits none. Each copied table's columns (name, type, NOT NULL), primary key, replica
  identity and partitions are recorded at ``begin`` (by oid) and compared at every ``changes``; the columns of each
  decoded row are compared too (a row written after an ALTER shows its new columns). Any difference stops the run,
  naming the table and what changed. A TRUNCATE of a copied table stops it too (its rows cannot be found by key).
* **Fence.** In one transaction, a trigger on each copied table, BEFORE INSERT, UPDATE, DELETE and TRUNCATE, raising
  golive's message (SQLSTATE 25006, read-only transaction). It holds in every session from its commit on: the
  app's pooled connections stay connected and keep reading; the app's transactions writing a table are waited for
  (each lock at most 100 ms, all released and taken again rather than deadlock with an app transaction holding one
  table and waiting for another), so their changes come before the fence in the WAL and the drain reads them. Only a
  superuser's ``session_replication_role = replica`` skips triggers. Chosen over ``ALTER DATABASE …
  default_transaction_read_only``, which reaches new sessions only (the app's sessions would have to be killed),
  which any session may turn off, and whose refusal is PostgreSQL's message, not golive's. The fence also records
  the source's sequence values (``meta['sequences']``): the cut-over sets the target's at least as high.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
from dataclasses import dataclass

from golive.dialects.base import Capture
from golive.dialects.postgresql import decoding
from golive.dialects.postgresql.session import (_lit, connect, connection_error, kept, libpq, qi, qn, release,
                                               translate_error)
from golive.errors import GoliveError, SourceError, TerminalError
from golive.model.capture import CaptureNotReady, CaptureState, Change, ChangeBatch, SchemaChanged
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)

PLUGIN = "test_decoding"
SLOT_PREFIX = "golive_"
#: the fence: a trigger of this name on each copied table (and ``…_truncate``), its function in each copied schema
FENCE = "_golive_fence"
MESSAGE = "golive: this database has moved; writes are refused here (golive migrate db --online cut over)"
#: (BEGIN rows say nothing a COMMIT row does not: left on the server)
PEEK = ("SELECT lsn::text, data FROM pg_logical_slot_peek_changes(%s, NULL, %s, 'include-xids', '0', "
        "'include-timestamp', '1', 'skip-empty-xacts', '1') WHERE data <> 'BEGIN'")
#: the text forms keys are printed in (the decoding session's), and read back by read_keys
SETTINGS = {"TimeZone": "UTC", "DateStyle": "ISO, YMD", "extra_float_digits": "1", "IntervalStyle": "postgres",
            "statement_timeout": "0", "application_name": "golive capture"}
RESTART = ("run the same command with --drop-existing to copy again (or golive migrate abort to remove what golive "
           "added)")


def slot_name(run_key: str) -> str:
    return SLOT_PREFIX + re.sub(r"[^a-z0-9_]", "_", run_key.lower())[:50]


def _open(url: DatabaseURL):
    return connect(url, autocommit=True, settings=SETTINGS, role="source")


def _replication(url: DatabaseURL):
    """A replication connection (logical: ``replication=database``) to run replication commands as queries."""
    import psycopg

    kwargs = {"autocommit": True, "replication": "database", "application_name": "golive capture"}
    if "connect_timeout" not in url.query:
        kwargs["connect_timeout"] = 10
    try:
        return psycopg.connect(libpq(url), **kwargs)
    except psycopg.OperationalError as exc:
        if "max_wal_senders" in str(exc) or "WAL sender" in str(exc):
            raise CaptureNotReady("every WAL sender is in use: raise max_wal_senders in postgresql.conf and restart "
                                  "PostgreSQL") from None
        raise connection_error(exc, url, "source") from None


def _relations(plan) -> dict[str, tuple[str, str]]:
    return {tp.source: (tp.source_schema or "public", tp.source_name or tp.source) for tp in plan.tables}


_DESCRIBE = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind, c.relreplident,
  coalesce((SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull)
                            ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json),
  coalesce((SELECT json_agg(a.attname ORDER BY k.o) FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey)
            WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
            WHERE x.indrelid = c.oid AND x.indisprimary), '[]'::json),
  CASE WHEN c.relkind = 'p' THEN coalesce((SELECT json_agg(json_build_array(pn.nspname, pc.relname) ORDER BY pc.oid)
            FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid
            JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE t.relid <> c.oid), '[]'::json) ELSE '[]'::json END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(%s::oid[])
"""


def _describe(conn, oids: list[int]) -> dict[int, dict]:
    """Each table's definition as capture depends on it: columns, primary key, replica identity, partitions."""
    out = {}
    for oid, nsp, name, kind, ident, cols, pk, parts in conn.execute(_DESCRIBE, (oids,)).fetchall():
        out[int(oid)] = {"oid": int(oid), "rel": [nsp, name], "kind": kind, "identity": ident, "columns": cols,
                         "pk": pk, "parts": parts}
    return out


_IDENTITY = {"d": "DEFAULT", "f": "FULL", "i": "USING INDEX", "n": "NOTHING"}


def _what_changed(was: dict, now: dict | None) -> str:
    if now is None:
        return "dropped"
    out = []
    if now["rel"] != was["rel"]:
        out.append(f"renamed to {'.'.join(now['rel'])}")
    old_cols, new_cols = {c[0]: c for c in was["columns"]}, {c[0]: c for c in now["columns"]}
    added = [n for n in new_cols if n not in old_cols]
    dropped = [n for n in old_cols if n not in new_cols]
    if added:
        out.append(f"column {', '.join(added)} added")
    if dropped:
        out.append(f"column {', '.join(dropped)} dropped")
    for n, c in old_cols.items():
        if n in new_cols and new_cols[n][1] != c[1]:
            out.append(f"column {n} changed type from {c[1]} to {new_cols[n][1]}")
        elif n in new_cols and new_cols[n][2] != c[2]:
            out.append(f"column {n} became {'NOT NULL' if new_cols[n][2] else 'nullable'}")
    if now["pk"] != was["pk"]:
        out.append(f"primary key ({', '.join(was['pk'])}) became ({', '.join(now['pk'])})")
    if now["identity"] != was["identity"]:
        out.append(f"replica identity {_IDENTITY.get(was['identity'])} became {_IDENTITY.get(now['identity'])}")
    if now["parts"] != was["parts"]:
        out.append("its partitions changed")
    return ", ".join(out)


def _schema_changed(changed: list[str]) -> SchemaChanged:
    return SchemaChanged(f"the source's schema changed during capture: table {'; '.join(changed)}; golive does not "
                         f"apply DDL: stop the app's schema change, then {RESTART}")


# ---------------------------------------------------------------------- what check asks of each table


def _identity_problem(name: str, key: list[str], row, keyless: bool) -> tuple[str | None, bool]:
    """``(problem or None, is keyless)`` for one table (or leaf partition) whose replica identity must give the
    plan's key of every deleted or re-keyed row."""
    rel, ident, pk, ri_cols, uniques = row
    want = sorted(key)
    if pk and sorted(pk) == want:
        if ident == "n":
            return (f"{name} has REPLICA IDENTITY NOTHING (its deleted rows' keys are not logged): ALTER TABLE "
                    f"{rel} REPLICA IDENTITY DEFAULT"), False
        if ident == "i" and sorted(ri_cols or []) != want:
            return (f"{name}'s replica identity is an index other than its primary key: ALTER TABLE {rel} "
                    "REPLICA IDENTITY DEFAULT"), False
        return None, False
    for ix_name, cols in uniques or []:
        if sorted(cols) == want:  # the plan's key is a unique NOT NULL index, not a primary key
            if ident == "f" or (ident == "i" and sorted(ri_cols or []) == want):
                return None, False
            return (f"{name} has no primary key and PostgreSQL logs deleted rows' keys only for the replica identity: "
                    f"ALTER TABLE {rel} REPLICA IDENTITY USING INDEX {qi(ix_name)} (or add a primary key)"), False
    if not keyless:
        return None, True
    if ident != "f":
        return (f"{name} has no key: its rows are identified by all their columns, which PostgreSQL logs only with "
                f"ALTER TABLE {rel} REPLICA IDENTITY FULL"), True
    return None, True


_TABLE_FACTS = """
SELECT c.oid::regclass::text, c.relreplident,
  ARRAY(SELECT a.attname::text FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid
        AND a.attnum = ANY(x.indkey) WHERE x.indrelid = c.oid AND x.indisprimary),
  ARRAY(SELECT a.attname::text FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid
        AND a.attnum = ANY(x.indkey) WHERE x.indrelid = c.oid AND x.indisreplident),
  (SELECT json_agg(json_build_array(ic.relname, (SELECT json_agg(a.attname) FROM pg_attribute a
          WHERE a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey))))
     FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid WHERE x.indrelid = c.oid AND x.indisunique
     AND x.indpred IS NULL AND x.indexprs IS NULL
     AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)
                     AND NOT a.attnotnull)),
  c.relkind, has_table_privilege(c.oid, 'TRIGGER'), has_schema_privilege(c.relnamespace, 'CREATE'),
  n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)
"""


class PostgresCapture(Capture):
    method = ("logical decoding: a replication slot per run (test_decoding), created with the snapshot the copy "
              "reads; changes read with pg_logical_slot_peek_changes, the slot advanced as the target commits")
    fence_method = "BEFORE INSERT/UPDATE/DELETE/TRUNCATE triggers on each copied table that raise golive's message"

    # ------------------------------------------------------------------ check

    def check(self, url: DatabaseURL, plan, *, keyless: bool = False) -> list[str]:
        problems = []
        slot = slot_name(plan.run_key)
        with _open(url) as conn:
            level = conn.execute("SHOW wal_level").fetchone()[0]
            if level != "logical":
                problems.append(f"wal_level is {level}, change capture needs logical: set wal_level = logical in "
                                "postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL")
            most, used, ours = conn.execute(
                "SELECT current_setting('max_replication_slots')::int, count(*), "
                "count(*) FILTER (WHERE slot_name = %s) FROM pg_replication_slots", (slot,)).fetchone()
            if used - ours >= most:
                problems.append(f"all {most} replication slots are in use: raise max_replication_slots in "
                                "postgresql.conf and restart PostgreSQL, or drop a slot no longer needed "
                                "(SELECT pg_drop_replication_slot(name))")
            senders, busy = conn.execute(
                "SELECT current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'walsender')").fetchone()
            if busy >= senders:
                problems.append(f"all {senders} WAL senders are in use (golive needs one while the copy starts): "
                                "raise max_wal_senders in postgresql.conf and restart PostgreSQL")
            user, allowed = conn.execute(
                "SELECT current_user, r.rolsuper OR r.rolreplication OR CASE WHEN EXISTS (SELECT 1 FROM pg_roles "
                "WHERE rolname = 'rds_replication') THEN pg_has_role(current_user, 'rds_replication', 'member') "
                "ELSE false END FROM pg_roles r WHERE r.rolname = current_user").fetchone()
            if not allowed:
                problems.append(f"role {user} may not use replication slots: ALTER ROLE {qi(user)} REPLICATION (as a "
                                f"superuser; on Amazon RDS: GRANT rds_replication TO {qi(user)})")
            problems += self._check_tables(conn, plan, user, keyless)
        return problems

    def _check_tables(self, conn, plan, user: str, keyless: bool) -> list[str]:
        problems, without_key, no_trigger, no_create = [], [], [], set()
        for tp in plan.tables:
            rel = qn(*_relations(plan)[tp.source])
            row = conn.execute(_TABLE_FACTS, (rel,)).fetchone()
            if row is None:
                problems.append(f"table {tp.source} is not in the source any more: plan again")
                continue
            name, ident, pk, ri_cols, uniques, kind, may_trigger, may_create, nsp = row
            uniques = [(u[0], u[1]) for u in uniques or []]
            checked = [(tp.source, (name, ident, pk, ri_cols, uniques))]
            if kind == "p":  # rows are logged by the leaf partitions, with their own replica identity
                checked = []
                for (leaf,) in conn.execute("SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) "
                                            "WHERE isleaf", (rel,)).fetchall():
                    lr = conn.execute(_TABLE_FACTS, (leaf,)).fetchone()
                    checked.append((f"{tp.source} (partition {leaf})", (lr[0], lr[1], lr[2], lr[3],
                                                                       [(u[0], u[1]) for u in lr[4] or []])))
            for label, facts in checked:
                problem, is_keyless = _identity_problem(label, tp.key, facts, keyless)
                if problem:
                    problems.append(problem)
                if is_keyless and not keyless and tp.source not in without_key:
                    without_key.append(tp.source)
            if not may_trigger:
                no_trigger.append(name)
            if not may_create:
                no_create.add(nsp)
        if without_key:
            problems.append(f"tables without a primary key: {', '.join(without_key)} (a changed row cannot be found "
                            "again in the target): add a primary key, or --exclude them (or capture them by their "
                            "whole row: --keyless, and ALTER TABLE … REPLICA IDENTITY FULL on each)")
        if no_trigger:
            problems.append(f"role {user} may not add the cut-over's fence trigger to {', '.join(no_trigger)}: run "
                            f"golive as the tables' owner, or GRANT TRIGGER ON {', '.join(no_trigger)} TO {qi(user)}")
        if no_create:
            schemas = sorted(no_create)
            problems.append(f"role {user} may not create the fence's trigger function in schema {', '.join(schemas)}: "
                            f"GRANT CREATE ON SCHEMA {', '.join(map(qi, schemas))} TO {qi(user)}")
        return problems

    # ------------------------------------------------------------------ begin

    @contextlib.contextmanager
    def begin(self, url: DatabaseURL, plan, *, workers: int):
        import psycopg

        slot = slot_name(plan.run_key)
        rels = _relations(plan)
        with _open(url) as conn:
            oids = {}
            for source, rel in rels.items():
                oid = conn.execute("SELECT to_regclass(%s)::oid::bigint", (qn(*rel),)).fetchone()[0]
                if oid is None:
                    raise _schema_changed([f"{source} (dropped)"])
                oids[source] = int(oid)
            described = _describe(conn, list(oids.values()))
            tables = {}
            for tp in plan.tables:
                d = described[oids[tp.source]]
                planned = {c.source for c in tp.columns}
                now = {c[0] for c in d["columns"]}
                if planned - now or now - planned:  # changed since the plan was made
                    what = [f"column {', '.join(sorted(now - planned))} added"] if now - planned else []
                    what += [f"column {', '.join(sorted(planned - now))} dropped"] if planned - now else []
                    raise _schema_changed([f"{tp.source} ({', '.join(what)})"])
                tables[tp.source] = {**d, "key": list(tp.key)}
            database = conn.execute("SELECT current_database()").fetchone()[0]
            version = conn.info.server_version
            earlier = conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                                   (slot,)).fetchone()
        meta = {"slot": slot, "database": database, "tables": tables}
        if earlier is not None:  # an earlier attempt of this run (killed): its slot still holds every change since
            yield from _resume(url, plan, slot, earlier[0], meta)
            return
        repl = _replication(url)
        try:
            export = "(SNAPSHOT 'export')" if version >= 150000 else "EXPORT_SNAPSHOT"
            try:
                _, start, snapshot, _ = repl.execute(
                    f"CREATE_REPLICATION_SLOT {slot} LOGICAL {PLUGIN} {export}").fetchone()
            except psycopg.Error as exc:
                raise _slot_error(exc, slot) from None
            state = CaptureState(run_key=plan.run_key, engine="postgresql", started_at=start, applied=start,
                                 objects=[f"replication slot {slot}"], meta=meta)
            log.info("capture: slot %s created at %s (snapshot %s)", slot, start, snapshot)
            yield snapshot, state  # held (the connection idle) while the copy reads in the snapshot
        finally:
            repl.close()

    # ------------------------------------------------------------------ changes

    def changes(self, url: DatabaseURL, state: CaptureState, after: str, *, limit: int) -> ChangeBatch:
        import psycopg

        slot = state.meta["slot"]
        after = after or state.started_at
        tables = {}  # as PostgreSQL logs them: (schema, table) of each copied table and partition
        for source, d in state.meta["tables"].items():
            info = (source, list(d["key"]), frozenset(c[0] for c in d["columns"]))
            for rel in [d["rel"], *d.get("parts", [])]:
                tables[tuple(rel)] = info
        try:
            conn = kept(url, SETTINGS)
            at = _slot_position(conn, slot)
            if at is None:
                raise TerminalError(f"replication slot {slot} is gone (dropped outside golive): the changes since "
                                    f"{after} cannot be read again; {RESTART}")
            if decoding.lsn(at) > decoding.lsn(after):
                raise TerminalError(f"replication slot {slot} is at {at}, past what the target applied ({after}): "
                                    f"the changes in between were read outside golive and cannot be read again; "
                                    f"{RESTART}")
            batch = _ahead(slot, tables, after, limit)
            if batch is None:
                done = min(after, state.applied or after, key=decoding.lsn)  # ``after`` may be read, not yet applied
                if decoding.lsn(done) > decoding.lsn(at):  # the target has committed up to here: the slot lets go
                    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, done))
                batch = _read(conn, slot, tables, after, limit)
            self._schema_unchanged(conn, state)
        except psycopg.Error as exc:
            raise translate_error(exc, f"reading the source's changes (replication slot {slot})") from None
        return batch

    def head(self, url: DatabaseURL, state: CaptureState) -> str | None:
        import psycopg

        try:
            return str(kept(url, SETTINGS).execute("SELECT pg_current_wal_lsn()").fetchone()[0])
        except psycopg.Error as exc:
            raise translate_error(exc, "reading the source's WAL position") from None

    def position_key(self, position: str) -> int:
        return decoding.lsn(position)

    def _schema_unchanged(self, conn, state: CaptureState) -> None:
        tables = state.meta["tables"]
        now = _describe(conn, [d["oid"] for d in tables.values()])
        changed = []
        for source, d in tables.items():
            what = _what_changed(d, now.get(d["oid"]))
            if what:
                changed.append(f"{source} ({what})")
        if changed:
            raise _schema_changed(changed)

    # ------------------------------------------------------------------ fence

    def fence(self, url: DatabaseURL, state: CaptureState) -> None:
        import psycopg

        tables = state.meta["tables"]
        schemas = sorted({d["rel"][0] for d in tables.values()})

        def build(conn) -> None:
            conn.execute("SET LOCAL synchronous_commit = on")  # the app's last commits are flushed with it
            for schema in schemas:
                conn.execute(f"CREATE OR REPLACE FUNCTION {qn(schema, FENCE)}() RETURNS trigger LANGUAGE plpgsql "
                             f"AS $golive$ BEGIN RAISE EXCEPTION USING MESSAGE = {_lit(MESSAGE)}, "
                             "ERRCODE = 'read_only_sql_transaction'; END $golive$")
            for d in tables.values():
                rel, fn = qn(*d["rel"]), qn(d["rel"][0], FENCE)
                each = "ROW" if d["kind"] == "p" else "STATEMENT"  # row triggers reach the partitions
                for name in (FENCE, FENCE + "_truncate"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {qi(name)} ON {rel}")
                conn.execute(f"CREATE TRIGGER {qi(FENCE)} BEFORE INSERT OR UPDATE OR DELETE ON {rel} "
                             f"FOR EACH {each} EXECUTE PROCEDURE {fn}()")
                conn.execute(f"CREATE TRIGGER {qi(FENCE + '_truncate')} BEFORE TRUNCATE ON {rel} "
                             f"FOR EACH STATEMENT EXECUTE PROCEDURE {fn}()")

        try:
            with _open(url) as conn:
                _locked(conn, [qn(*d["rel"]) for d in tables.values()], "SHARE ROW EXCLUSIVE", build, "fence")
                state.meta["sequences"] = {
                    qn(s, n): int(v) for s, n, v in conn.execute(
                        "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname = ANY(%s) "
                        "AND last_value IS NOT NULL", (schemas,)).fetchall()}
        except psycopg.Error as exc:
            raise translate_error(exc, "fencing the source (its write-refusing triggers)") from None
        state.objects = [o for o in state.objects if not o.startswith("fence")] + [
            f"fence trigger {FENCE} on {source}" for source in tables]

    def unfence(self, url: DatabaseURL, state: CaptureState) -> None:
        with _open(url) as conn:
            _unfence(conn)
        state.objects = [o for o in state.objects if not o.startswith("fence")]

    # ------------------------------------------------------------------ end, leftovers

    def end(self, url: DatabaseURL, state: CaptureState, *, keep_fence: bool = False) -> list[str]:
        removed = []
        release(url)
        with _open(url) as conn:
            if state.meta.get("slot") or state.run_key:
                slots = [state.meta.get("slot") or slot_name(state.run_key)]
            else:  # no run recorded: every golive slot of this database
                slots = [r[0] for r in conn.execute(
                    "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'golive\\_%' AND "
                    "slot_name NOT LIKE 'golive\\_archive\\_%' AND database = current_database() ORDER BY 1").fetchall()]
            for slot in slots:
                _ROWS_PER_CHANGE.pop(slot, None)
                _AHEAD.pop(slot, None)
                _READERS.pop(slot, None)
                if _drop_slot(conn, slot):
                    removed.append(f"replication slot {slot}")
            if not keep_fence:
                removed += _unfence(conn)
        state.objects = [o for o in state.objects if keep_fence and o.startswith("fence")]
        return removed

    def leftovers(self, url: DatabaseURL) -> list[str]:
        out = []
        with _open(url) as conn:
            for name, database, size in conn.execute(
                    "SELECT slot_name, database, pg_size_pretty(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN "
                    "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)) FROM pg_replication_slots "
                    "WHERE slot_name LIKE 'golive\\_%' AND slot_name NOT LIKE 'golive\\_archive\\_%' "
                    "ORDER BY 1").fetchall():  # the point-in-time archive's slot is not a leftover
                out.append(f"replication slot {name} (database {database}) holds {size or '0 bytes'} of WAL: "
                           f"golive migrate abort drops it, or SELECT pg_drop_replication_slot('{name}') in database "
                           f"{database}")
            for (rel,) in _fenced(conn):
                out.append(f"fence trigger {FENCE} on {rel} (writes to it are refused)")
        return out


# ---------------------------------------------------------------------- reading the slot


def _resume(url: DatabaseURL, plan, slot: str, at: str, meta: dict):
    """Begin again with the slot an earlier attempt made: the copy reads a snapshot exported now, later than the
    slot's position, so a change in between is both copied and captured (applied again, harmlessly) and none is
    missed."""
    with _open(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        log.info("capture: slot %s kept from an earlier attempt, at %s", slot, at)
        yield snapshot, CaptureState(run_key=plan.run_key, engine="postgresql", started_at=at, applied=at,
                                     objects=[f"replication slot {slot}"], meta=meta)


#: rows of the peek per change of a copied table, as last seen per slot (BEGIN and COMMIT rows count too)
_ROWS_PER_CHANGE: dict[str, float] = {}


#: per slot, the decoder of its rows (it learns each table's line shape once)
_READERS: dict[str, "decoding.Reader"] = {}


def _reader(slot: str, tables: dict) -> "decoding.Reader":
    got = _READERS.get(slot)
    if got is None or got.tables != tables:
        got = _READERS[slot] = decoding.Reader(tables)
    return got


#: batches one peek reads ahead (its rows kept in memory, at most ``AHEAD_ROWS``)
AHEAD, AHEAD_ROWS = 8, 200_000


@dataclass
class _Peeked:
    """The rows of the last peek not yet handed out, from the end of the transaction at ``after`` on."""

    rows: list
    after: str
    full: bool  # the peek stopped at its row limit: more WAL may follow its rows
    left: int  # changes of copied tables in ``rows``


#: per slot, what the last peek read beyond the batch it returned
_AHEAD: dict[str, _Peeked] = {}


def _ahead(slot: str, tables: dict, after: str, limit: int) -> ChangeBatch | None:
    """The next batch from the rows an earlier peek read ahead, when they hold a whole batch after ``after``
    (None: peek again). A peek decodes the WAL from the slot's restart point, which PostgreSQL moves only at its
    running-transactions records (every 15 s or so, and at checkpoints), however far the slot is advanced: one peek
    per batch decodes a backlog again at every batch (the catch-up's cost grew with the backlog's square). The WAL
    after a position never changes, so rows peeked once serve the batches that follow; the last, partial batch
    is always peeked afresh (it sees what was written since)."""
    got = _AHEAD.pop(slot, None)
    if got is None or got.after != after:
        return None
    if got.left < limit:
        return None
    reader = _reader(slot, tables)
    w = _window(got.rows, reader, after, limit, count_rest=False)
    left = got.left - len(w.changes)
    if w.rows < len(got.rows):
        _AHEAD[slot] = _Peeked(got.rows[w.rows:], w.position, got.full, left)
    pending = left or (1 if got.full else 0)
    return ChangeBatch(changes=[Change(table=t, key=k, deleted=d) for t, k, d in w.changes],
                       position=w.position, pending=pending, oldest_at=w.oldest_at or w.first_at)


def _window(rows, reader, after: str, limit: int, *, count_rest: bool = True) -> "decoding.Window":
    try:
        return decoding.window(rows, reader, after, limit, count_rest=count_rest)
    except decoding.ColumnsChanged as exc:
        what = ([f"column {', '.join(exc.added)} added"] if exc.added else []) + (
            [f"column {', '.join(exc.dropped)} dropped"] if exc.dropped else [])
        raise _schema_changed([f"{exc.source} ({', '.join(what)})"]) from None
    except decoding.TruncatedTable as exc:
        raise SchemaChanged(f"table {', '.join(exc.sources)} was emptied with TRUNCATE during capture: golive "
                            f"does not replay a TRUNCATE (its rows cannot be found by key): {RESTART}") from None
    except decoding.MissingKey as exc:
        raise TerminalError(f"{exc}: a changed row's key is not in the WAL (its replica identity was changed "
                            f"during capture?): {RESTART}") from None


def _read(conn, slot: str, tables: dict, after: str, limit: int) -> ChangeBatch:
    """Whole transactions after ``after`` until ``limit`` changes of copied tables: the batch ends at a commit.
    The peek reads up to ``AHEAD`` batches ahead (``_ahead`` serves them)."""
    reader = _reader(slot, tables)
    ratio = _ROWS_PER_CHANGE.get(slot, 3.0)
    want = min(int(limit * AHEAD * ratio * 1.1), AHEAD_ROWS) + 64  # beyond the batch: read ahead, and what is pending
    while True:
        # a flushed commit first: the peek reads to the WAL flushed when it starts, and a record only partly flushed
        # there (the WAL writer flushes whole pages) would make it wait until someone flushes the rest
        conn.execute("SELECT pg_logical_emit_message(true, 'golive', '')")
        rows = conn.execute(PEEK, (slot, want)).fetchall()
        got = _window(rows, reader, after, limit)
        # the peek stops after ``want`` rows of its own, BEGIN rows included (one per COMMIT row): fewer, and it
        # read all the WAL there was when it started
        made = len(rows) + sum(1 for _, data in rows if data[:1] == "C")
        full = made >= want  # more may follow
        if got.changes or not full:
            break
        want *= 8  # a window of other tables' changes only: look further (the slot stays where the target is)
    if got.changes:
        _ROWS_PER_CHANGE[slot] = min(max(made / (len(got.changes) + got.pending), 1.0), 20.0)
        if got.rows < len(rows):
            _AHEAD[slot] = _Peeked(rows[got.rows:], got.position, full, got.pending)
    pending = got.pending or (1 if full else 0)
    return ChangeBatch(changes=[Change(table=t, key=k, deleted=d) for t, k, d in got.changes],
                       position=got.position, pending=pending, oldest_at=got.oldest_at or got.first_at)


# ---------------------------------------------------------------------- slot and fence housekeeping


def _slot_error(exc: Exception, slot: str) -> GoliveError:
    text = (str(exc).strip().splitlines() or [""])[0]
    if "wal_level" in text:
        return CaptureNotReady("wal_level is not logical: set wal_level = logical in postgresql.conf and restart "
                               "PostgreSQL")
    if PLUGIN in text and ("could not access file" in text or "No such file" in text):
        return CaptureNotReady(f"the source lacks the {PLUGIN} output plugin: install PostgreSQL's contrib package "
                               "(postgresql-contrib) on the server")
    if "replication slots are in use" in text or "max_replication_slots" in text:
        return CaptureNotReady("all replication slots are in use: raise max_replication_slots in postgresql.conf and "
                               "restart PostgreSQL, or drop a slot no longer needed")
    if "permission denied" in text or "must be superuser or replication role" in text:
        return CaptureNotReady(f"creating replication slot {slot}: {text}: ALTER ROLE … REPLICATION (on Amazon RDS: "
                               "GRANT rds_replication TO …)")
    return translate_error(exc, f"creating replication slot {slot}")


def _slot_position(conn, slot: str) -> str | None:
    """The slot's confirmed position, once no other session reads it: a killed golive's session may still be
    finishing a read (ended when it is golive's own and lingers)."""
    for attempt in range(60):
        row = conn.execute("SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE "
                           "slot_name = %s", (slot,)).fetchone()
        if row is None or row[1] is None:
            return row[0] if row else None
        if attempt == 20:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND "
                         "application_name = %s", (row[1], SETTINGS["application_name"]))
        time.sleep(0.25)
    raise TerminalError(f"replication slot {slot} is being read by another session (pid {row[1]}): is another golive "
                        "running this migration? Stop it, then run again")


def _drop_slot(conn, slot: str) -> bool:
    """Drop golive's slot if it exists; a killed golive's session still reading it is ended first."""
    import psycopg

    for _ in range(40):
        row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        if row is None:
            return False
        if row[0] is None:
            try:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                return True
            except psycopg.errors.UndefinedObject:
                return False
            except psycopg.errors.ObjectInUse:
                pass
        else:  # only golive's own sessions (a killed run's backend not yet gone)
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND "
                         "application_name = %s", (row[0], SETTINGS["application_name"]))
        time.sleep(0.25)
    raise SourceError(f"replication slot {slot} is in use by another session: stop it, then SELECT "
                      f"pg_drop_replication_slot('{slot}')")


def _locked(conn, rels: list[str], mode: str, body, what: str, *, seconds: float = 30.0) -> None:
    """Run ``body(conn)`` in one transaction holding ``mode`` locks on ``rels``, taken without ever making the app
    wait long or deadlock: each lock is waited for 100 ms at most (an app's transactions are short); one not had in
    time releases them all, and the attempt is made again (for ``seconds``). An app transaction that holds a table
    and waits for another golive holds would otherwise deadlock with it."""
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            with conn.transaction():
                conn.execute("SET LOCAL lock_timeout = '100ms'")
                for rel in rels:
                    conn.execute(f"LOCK TABLE {rel} IN {mode} MODE")
                conn.execute("SET LOCAL lock_timeout = '0'")
                body(conn)
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if time.monotonic() > deadline:
                raise TerminalError(f"the {what} could not lock {', '.join(rels)} within {seconds:g} s: a long "
                                    "transaction holds one of them (see pg_stat_activity); nothing changed (the app "
                                    "keeps writing): end that transaction, then run again") from None
            time.sleep(random.uniform(0.02, 0.1))


def _fenced(conn) -> list[tuple[str]]:
    return conn.execute(
        "SELECT DISTINCT t.tgrelid::regclass::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = %s AND NOT c.relispartition ORDER BY 1", (FENCE,)).fetchall()


def _unfence(conn) -> list[str]:
    """Drop every fence trigger and function golive added to this database; returns what was removed."""
    removed = [f"fence trigger {FENCE} on {rel}" for (rel,) in _fenced(conn)]
    functions = [r[0] for r in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname = %s AND p.prorettype = 'trigger'::regtype",
        (FENCE,)).fetchall()]
    if not functions:
        return removed

    def drop(conn) -> None:
        for fn in functions:  # its triggers with it
            conn.execute(f"DROP FUNCTION IF EXISTS {fn} CASCADE")

    _locked(conn, [rel for (rel,) in _fenced(conn)], "ACCESS EXCLUSIVE", drop, "fence's removal")
    return removed

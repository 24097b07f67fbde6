"""Reading and writing a database for ``golive.migrate``: ``Source`` and ``Target``, and how they meet: the
neutral models (``golive.model``) and the wire format (``Wire``).

The wire format is one CSV dialect both targets' bulk loaders read: every value a single-quoted field (quotes
doubled), ``NULL`` the bare word (a quoted ``'NULL'`` stays text), one row per line; PostgreSQL reads it with
``COPY … (FORMAT csv, QUOTE '''', NULL 'NULL')``, MySQL with ``LOAD DATA … FIELDS TERMINATED BY ','
OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY ''``. What goes *inside* a field differs per target in a few ways only;
``Wire`` lists them, as data, and a source renders values by looking them up.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern
from golive.errors import TargetNotEmpty
from golive.model.types import TargetType

if TYPE_CHECKING:
    from golive.model.capture import CaptureState
    from golive.model.defaults import Default
    from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
    from golive.model.results import ChunkReader, ChunkWriter, PrepareResult, StepResult
    from golive.model.schema import Column, Index, SourceSchema, Table
    from golive.urls import DatabaseURL


log = logging.getLogger(__name__)

#: the run stops when a source connection holding its snapshot is lost (a server restart, a killed session):
#: a retry could only read a later moment, which would break "every chunk sees the same snapshot"
SNAPSHOT_LOST = ("lost the connection to the source during the copy ({why}): the run's consistent snapshot went "
                 "with it, so no chunk can be read at the same moment again; nothing half-copied is kept (each chunk "
                 "is one transaction). Run the same command again when the source is back: it resumes, and checks "
                 "the chunks already copied against the source")


@dataclass(frozen=True)
class Wire:
    """How a target's bulk loader reads values (the differences between targets, as data)."""

    #: registry name of the target dialect
    name: str
    #: booleans: PostgreSQL reads t/f/1/0/yes/no…, MySQL's TINYINT(1) only numbers
    bool_true: str = "t"
    bool_false: str = "f"
    #: binary values: 'pg-hex' (\\x0102, PostgreSQL bytea input), 'hex' (0102, the loader unhexes)
    binary: str = "pg-hex"
    #: timestamps: 'iso' (the loader parses ISO 8601 with T/Z/offsets), 'plain' ('YYYY-MM-DD HH:MM:SS[.ffffff]',
    #: in UTC for moments: MySQL DATETIME reads nothing else)
    timestamps: str = "iso"
    #: text arrays (MySQL SET, PostgreSQL text[]): 'pg-array' ({a,b}) or 'json' (["a","b"])
    arrays: str = "pg-array"
    #: can the loader read a timestamp with an offset and convert it (timestamptz)?
    zone_aware: bool = True
    #: PostgreSQL text cannot hold NUL bytes; MySQL text can
    nul_in_text: bool = False


@dataclass
class Decision:
    """A source dialect's choice for one column: the neutral type and why, with what the plan reports."""

    type: TargetType
    reason: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source_expr: str | None = None
    nullable: bool | None = None  # None: as declared (NOT NULL, or part of the primary key)


class Source(Concern):
    """An engine as a migration source: introspect, profile, decide neutral types, split into chunks, render rows
    in the target's wire format, read chunks."""

    #: has a cheap change fingerprint (SQLite: size and mtime); else a resumed run compares chunk digests
    has_fingerprint: bool = False
    #: every reader reads in one snapshot the flow holds (``snapshot``), so nothing may be read ahead of it
    shares_snapshot: bool = True

    def connect(self, url: "DatabaseURL"):
        """A read-only connection for planning (introspection, chunk boundaries)."""
        return self.dialect.connect(url, role="source")

    def introspect(self, conn, url: "DatabaseURL", options) -> "SourceSchema":
        """Tables, columns, keys, indexes, foreign keys, views, triggers; what is only reported in ``others``."""
        raise NotImplementedError

    def fingerprint(self, url: "DatabaseURL") -> str:
        """The source's cheap change fingerprint ("" when it has none: ``has_fingerprint``)."""
        return ""

    def consistency(self, url: "DatabaseURL", conn, options) -> str:
        """How every reader sees one moment of the source (or why not), for the plan."""
        raise NotImplementedError

    def copy_options(self, options, schema: "SourceSchema | None" = None) -> dict:
        """The options the copy itself needs, stored with the plan (zero dates, text fallback, the schemas read…)."""
        return {}

    def profile(self, url: "DatabaseURL", tables: list["Table"], *, deep: bool, workers: int, options=None,
                lengths: bool = False) -> tuple[dict[str, int], dict[str, dict]]:
        """Rows per table and a profile per column (``deep``: predict rejects; ``lengths``: longest values)."""
        raise NotImplementedError

    def decide(self, t: "Table", c: "Column", p, *, parent: TargetType | None, target, options,
               identity: bool) -> Decision:
        """The neutral type of one column, and why (``target``: the target's ``Dialect``)."""
        raise NotImplementedError

    def read_default(self, t: "Table", c: "Column", options=None) -> tuple["Default | None", str | None]:
        """The column's default in neutral form, or ``(None, note)`` when it has no faithful one (``options``: the
        run's ``MigrateOptions``, e.g. MySQL's ``zero_dates`` choice)."""
        return None, None

    def identity(self, t: "Table") -> tuple[str | None, int | None]:
        """The auto-incrementing column and the highest value handed out (the target's identity restarts above)."""
        col = next((c.name for c in t.columns if c.auto_increment), None)
        return col, (t.identity_next - 1 if col and t.identity_next else None)

    def index_column(self, t: "Table", name: str) -> str | None:
        """An index's column as the target has it (None: a column that does not exist there, like SQLite's rowid)."""
        return name

    def index_expressions(self, ix: "Index") -> str | None:
        """An expression index's key list in the source's SQL (None: cannot be read)."""
        return None

    def row_key(self, t: "Table") -> list[str]:
        """The columns naming a row in reject reports."""
        raise NotImplementedError

    def chunks(self, conn, t: "Table", rows: int, chunk_rows: int) -> tuple[str, list[str], list["ChunkPlan"]]:
        """``(chunking, chunk key columns, chunks)`` of one table."""
        raise NotImplementedError

    def render(self, t: "Table", tp: "TablePlan", wire: Wire, plan: "MigrationPlan") -> tuple[str, str]:
        """The source SQL rendering one row in the wire format: ``(fast path, careful path)``."""
        raise NotImplementedError

    def plan_objects(self, ctx, schema: "SourceSchema", selected: set[str]) -> None:
        """Views, and what is only reported (triggers, routines, events): translated by sqlglot, created when they
        translate, else reported with the reason."""
        plan_views_and_others(ctx, schema, selected)

    def snapshot(self, url: "DatabaseURL", plan: "MigrationPlan", *, workers: int):
        """A context manager holding one moment of the source for every chunk reader; yields a snapshot name
        for ``chunk_reader`` (or None)."""
        return contextlib.nullcontext(None)

    def final_statements(self, url: "DatabaseURL", plan: "MigrationPlan") -> list[str]:
        """What must run on the target last (PostgreSQL: sequence values, triggers, materialized views' data)."""
        return []

    def chunk_reader(self, url: "DatabaseURL", plan: "MigrationPlan", tp: "TablePlan", *,
                     snapshot: str | None = None) -> "ChunkReader":
        """One table's reader for the copy (``golive.model.results.ChunkReader``)."""
        raise NotImplementedError

    def count_tables(self, url: "DatabaseURL", plan: "MigrationPlan | None", tables: list[str]) -> dict[str, int]:
        """Rows per source table now (after the copy: did the source change?)."""
        raise NotImplementedError

    def size(self, url: "DatabaseURL") -> int:
        """About how many bytes the source holds (a hint for disk checks; 0 when unknown)."""
        return 0

    def read_keys(self, url: "DatabaseURL", plan: "MigrationPlan", tp: "TablePlan", keys: list[tuple]
                  ) -> list[tuple[tuple, bytes]]:
        """The rows of ``keys`` as the source has them now: ``(key, careful line)`` each, in the wire format the copy
        renders; a key not returned was deleted. What online migration's catch-up applies.

        ``keys`` are source values in ``tp.key``'s order."""
        raise NotImplementedError


class Target(Concern):
    """An engine as a migration target: names types, renders defaults, prepares the schema, bulk-loads chunks
    exactly once, then keys, foreign keys and views. Every step is idempotent (it checks what exists)."""

    def type_sql(self, t: TargetType) -> str:
        """The neutral type in this engine's DDL."""
        raise NotImplementedError

    def render_default(self, d: "Default", t: TargetType) -> str | None:
        """A neutral default as this engine's SQL for a column of type ``t``."""
        raise NotImplementedError

    def folds_case(self, url: "DatabaseURL") -> bool:
        """Does the server compare table names case-insensitively?"""
        return False

    def adjust_table(self, tp: "TablePlan", plan: "MigrationPlan") -> None:
        """What the engine's own limits require of a planned table (MySQL: key lengths, row size)."""

    def check_ddl(self, url: "DatabaseURL", plan: "MigrationPlan") -> None:
        """Try every planned table's DDL on the target without keeping anything (a rolled-back transaction, temporary
        tables), so nothing fails later that the plan could have known: a default the target refuses is dropped
        with a warning, a CHECK or an index it refuses is reported as skipped, a table it refuses is a
        ``PlanError`` naming the table, the statement and what to do (``fit_table_ddl``)."""

    def not_empty(self, plan: "MigrationPlan", existing: list[str], run: dict | None) -> TargetNotEmpty:
        """The refusal for planned tables that already exist, saying what to do."""
        return target_not_empty(plan, existing, run, has_schemas=self.dialect.has_schemas)

    def chunk_writer(self, url: "DatabaseURL", plan: "MigrationPlan", tp: "TablePlan", chunk: "ChunkPlan"
                     ) -> "ChunkWriter":
        """One chunk's session: bookkeeping and bulk load in one transaction."""
        raise NotImplementedError

    def find_resumable(self, url: "DatabaseURL", run_key: str) -> dict | None:
        """The stored run for ``run_key`` if it was interrupted, with its committed chunks."""
        raise NotImplementedError

    def run_of(self, url: "DatabaseURL", run_key: str) -> dict | None:
        """The stored run for ``run_key``, whatever its status."""
        raise NotImplementedError

    def check_target(self, url: "DatabaseURL", plan: "MigrationPlan", options) -> list[str]:
        """The planned tables that already exist."""
        raise NotImplementedError

    def prepare(self, url: "DatabaseURL", plan: "MigrationPlan", options) -> "PrepareResult":
        """Create the tables (or find the interrupted run to resume) and record the run."""
        raise NotImplementedError

    def finish_table(self, url: "DatabaseURL", schema: str, tp: "TablePlan") -> "StepResult":
        """Primary key, unique keys, indexes, CHECKs and the identity of one loaded table."""
        raise NotImplementedError

    def link_table(self, url: "DatabaseURL", schema: str, table: str, fks) -> "StepResult":
        """The foreign keys of one table (orphans reported)."""
        raise NotImplementedError

    def create_views(self, url: "DatabaseURL", plan: "MigrationPlan", finals: list[str] | None = None
                     ) -> "StepResult":
        """Views, then the source's final statements."""
        raise NotImplementedError

    def complete(self, url: "DatabaseURL", run_key: str, ok: bool) -> None:
        """Mark the run complete (or failed)."""
        raise NotImplementedError

    def runs_in(self, url: "DatabaseURL", schema: str) -> list[tuple[str, dict]]:
        """``(run_key, plan)`` of the runs into ``schema``, newest first."""
        raise NotImplementedError

    def chunks_of_run(self, url: "DatabaseURL", run_key: str) -> dict:
        """The committed chunks of a run, with their rejects."""
        raise NotImplementedError

    def rows_against_record(self, url: "DatabaseURL", run_key: str) -> dict[str, tuple[int, int]]:
        """Per table of a recorded run: ``(rows its committed chunks wrote, rows the table holds now)``
        ({} when the run is not recorded). How a finished copy is confirmed before it is taken as done."""
        raise NotImplementedError

    # --- online migration (golive.migrate.online)

    def apply_changes(self, url: "DatabaseURL", plan: "MigrationPlan", rows: list[tuple["TablePlan", bytes, list]],
                      state: "CaptureState") -> None:
        """Apply one batch of captured changes in one transaction that also records ``state`` (its applied
        position): per table, the rows' careful lines are upserted by key and ``deleted`` keys (source values)
        deleted. Exactly once across crashes: the position and the rows commit together."""
        raise NotImplementedError

    def capture_state(self, url: "DatabaseURL", run_key: str) -> "CaptureState | None":
        """The online run's state as the last applied batch recorded it (None: none)."""
        raise NotImplementedError

    def capture_states(self, url: "DatabaseURL") -> "list[CaptureState]":
        """Every online run recorded in this target (``golive migrate status``, ``cutover``, ``abort``)."""
        raise NotImplementedError

    def save_capture_state(self, url: "DatabaseURL", state: "CaptureState") -> None:
        """Record ``state`` (outside a batch: begin, fence, cut-over, abort)."""
        raise NotImplementedError

    def reset_identities(self, url: "DatabaseURL", plan: "MigrationPlan") -> list[str]:
        """Identities, sequences and AUTO_INCREMENT above the highest value now in each table (the cut-over:
        rows the app inserted during the catch-up); returns what was set."""
        raise NotImplementedError



# ---------------------------------------------------------------------- shared by sources and targets


def fit_table_ddl(plan: "MigrationPlan", tp: "TablePlan", *, table, column, check, index) -> None:
    """Fit one planned table to what the target accepts, by trying its DDL (``Target.check_ddl``).

    Args:
        table: ``tp -> error or None``: create the table (no keys but the primary key, no CHECKs).
        column: ``(column plan, with_default) -> error or None``: create a table of that one column.
        check: ``(tp, check plan) -> error or None``; index: ``(tp, index plan) -> error or None``: on the created
            table.
    """
    from golive.errors import PlanError
    from golive.model.plan import Skipped

    def first(err: str) -> str:
        return (err.strip().splitlines() or ["?"])[0][:200]

    err = table(tp)
    if err:
        for c in tp.columns:
            if c.default_sql is not None and not c.generated_sql and column(c, True) and not column(c, False):
                why = f"the target refuses it ({first(column(c, True))}): dropped"
                plan.warnings.append(f"{tp.source}.{c.source}: default {c.default_source} -> {c.default_sql}: {why}")
                c.default_sql, c.default_reason = None, why
        err = table(tp)
    if err and any(c.generated_sql for c in tp.columns):
        err = _plain_generated(plan, tp, table)
    if err:
        bad = next((c for c in tp.columns if not c.generated_sql and column(c, False)), None)
        what = f" (column {bad.source} as {bad.sql_type})" if bad else ""
        raise PlanError(f"table {tp.source}: the target refuses its definition{what}: {first(err)}. --exclude "
                        f"{tp.source} copies the rest; --dry-run shows the plan")
    for ck in list(tp.checks):
        err = check(tp, ck)
        if err:
            tp.checks.remove(ck)
            plan.skipped.append(Skipped(kind="check", name=ck.name, reason=(
                f"CHECK ({ck.source_sql or ck.sql}) on {tp.source}: the target refuses it ({first(err)})")))
    for ix in list(tp.indexes):
        if ix.kind == "primary":  # part of the table's own definition, tried above
            continue
        err = index(tp, ix)
        if err:
            tp.indexes.remove(ix)
            plan.skipped.append(Skipped(kind="index", name=ix.source_name or ix.name, reason=(
                f"index on {tp.source}: the target refuses it ({first(err)})")))



def _plain_generated(plan: "MigrationPlan", tp: "TablePlan", table) -> str | None:
    """A generated expression that translated but that the target refuses (MySQL's ``SHA2(json, 256)`` is
    ``sha256(jsonb)`` in PostgreSQL, which has none) makes its column a plain one, values kept, as an untranslatable
    one does; the others stay generated. None when the table is then accepted (else its error: not theirs)."""
    generated = [c for c in tp.columns if c.generated_sql]
    kept = {c.source: c.generated_sql for c in generated}
    for c in generated:
        c.generated_sql = None
    still = table(tp)
    if still:  # refused without them too: not theirs
        for c in generated:
            c.generated_sql = kept[c.source]
        return still
    for c in generated:  # each expression the target takes is put back
        c.generated_sql = kept[c.source]
        err = table(tp)
        if err:
            c.generated_sql = None
            c.notes.append("generated column in the source: copied as a plain column")
            plan.warnings.append(f"{tp.source}.{c.source}: generated column copied as a plain column (values kept): "
                                 f"the target refuses its expression ({(err.strip().splitlines() or ['?'])[0][:160]})")
    return table(tp)


def target_not_empty(plan: "MigrationPlan", existing: list[str], run: dict | None, *, has_schemas: bool
                     ) -> TargetNotEmpty:
    """The refusal for planned tables that already exist, saying what to do."""
    if run and run["status"] == "complete":
        return TargetNotEmpty(
            f"the target already holds this migration (completed {run['finished_at']:%Y-%m-%d %H:%M} UTC); "
            f"add --drop-existing to copy it again")
    shown = ", ".join(existing[:8]) + (f" and {len(existing) - 8} more" if len(existing) > 8 else "")
    where = f"target schema {plan.target_schema!r}" if has_schemas else "the target database"
    return TargetNotEmpty(
        f"{where} already has {shown}; add --drop-existing to replace "
        f"{'them' if len(existing) > 1 else 'it'}, or migrate into another "
        + ("--schema" if has_schemas else "database"))



def translate_sql(sql: str, source: str, target: str, *, kind: str = "expression") -> tuple[str | None, str]:
    """Translate SQL between dialects with sqlglot; returns ``(sql or None, reason when None)``.

    ``kind``: ``expression`` (a CHECK, a default, an index expression) or ``select`` (a view's query).
    Same dialect: returned unchanged.
    """
    if source == target:
        return sql, ""
    import sqlglot
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    try:
        tree = sqlglot.parse_one(sql, read=source)
        out = tree.sql(dialect=target, unsupported_level=ErrorLevel.RAISE)
    except (ParseError, UnsupportedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"sqlglot cannot translate it ({first[:160]})"
    except Exception as exc:  # sqlglot raises plain errors on odd input: report, never crash a plan
        return None, f"sqlglot cannot translate it ({type(exc).__name__}: {str(exc)[:160]})"
    return out, ""



def rename_sql(ctx, sql: str) -> str:
    """The target's names in a translated query: renamed tables, and snake_case identifiers in snake mode."""
    import sqlglot
    from sqlglot import exp

    from golive.model.names import snake_case

    if ctx.plan.identifiers != "snake" and all(k == v for k, v in ctx.table_names.items()):
        return sql  # nothing renamed
    tree = sqlglot.parse_one(sql, read=ctx.dst.sqlglot_name)

    def fix(node):
        if isinstance(node, exp.Table):
            qualified = f"{node.db}.{node.name}" if node.db else node.name
            if qualified in ctx.table_names:  # a schema-qualified name, maybe into a target without schemas
                node.set("this", exp.to_identifier(ctx.table_names[qualified], quoted=True))
                if not ctx.dst.has_schemas:
                    node.set("db", None)
            elif node.name in ctx.table_names:
                node.set("this", exp.to_identifier(ctx.table_names[node.name], quoted=True))
        elif isinstance(node, exp.Identifier) and ctx.plan.identifiers == "snake":
            node.set("this", snake_case(node.name))
        return node

    return tree.transform(fix).sql(dialect=ctx.dst.sqlglot_name)



def plan_views_and_others(ctx, schema: "SourceSchema", selected: set[str]) -> None:
    """Views translated into the target's SQL (created when they run there, else reported); triggers,
    routines and events reported: golive does not translate procedural code."""
    from golive.model.plan import Skipped, ViewPlan

    plan = ctx.plan
    for v in schema.views:
        if v.name in (ctx.options.exclude or []):
            plan.skipped.append(Skipped(kind="view", name=v.name, reason="excluded by --exclude"))
            continue
        sql, why = ctx.translate(v.select, kind="select")
        if sql is None:
            plan.skipped.append(Skipped(kind="view", name=v.name, reason=f"its SQL does not translate: {why}"))
            continue
        try:
            sql = rename_sql(ctx, sql)
        except Exception as exc:  # noqa: BLE001 - an odd query: created as translated, or reported by the target
            log.debug("view %s: names not rewritten: %s", v.name, exc)
        local = v.name.split(".", 1)[1] if v.schema_name and v.name.startswith(v.schema_name + ".") else None
        named = (ctx.relations(v.name, base=local, why=f"{ctx.dst.title} has no schemas")
                 if local and not ctx.dst.has_schemas else ctx.relations(v.name))
        plan.views.append(ViewPlan(source=v.name, target=named, select=sql, materialized=v.materialized))
    for tr in schema.triggers:
        if tr.table in selected:
            plan.skipped.append(Skipped(kind="trigger", name=tr.name, reason=(
                f"triggers are not translated (on {tr.table}); recreate it in the target if the app relies on it")))
    for kind, name, reason in schema.others:
        plan.skipped.append(Skipped(kind=kind, name=name, reason=reason))

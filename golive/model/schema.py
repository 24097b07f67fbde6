"""The neutral description of a source schema, filled by a source dialect's introspection."""

from __future__ import annotations

from pydantic import BaseModel, Field

#: golive's own bookkeeping in a database it wrote, released, reported on or rewrote: the ``_golive`` schema
#: (PostgreSQL) and ``_golive_*`` tables (``_golive_runs``, ``_golive_chunks``, ``_golive_source_orphans``,
#: ``_golive_path_map``, ``_golive_releases``, ``_golive_migrations``, ``_golive_report_history``…). Never the
#: app's data: every source leaves them out of a migration (``SourceSchema.without_bookkeeping``).
BOOKKEEPING_PREFIX = "_golive"
BOOKKEEPING_REASON = "golive's own bookkeeping"


def is_bookkeeping(name: str | None) -> bool:
    """Is ``name`` (a schema, or a table's name within its schema) one of golive's own?"""
    return bool(name) and (name == BOOKKEEPING_PREFIX or name.startswith(BOOKKEEPING_PREFIX + "_"))


class Column(BaseModel):
    name: str
    declared: str = Field("", description="Declared type text as written in the source (may be empty).")
    nullable: bool = True
    default: str | None = Field(None, description="Default expression as written in the source.")
    pk_position: int = Field(0, description="1-based position in the primary key, 0 if not part of it.")
    generated: bool = Field(False, description="A generated (computed) column in the source.")
    generated_sql: str | None = Field(None, description="Its expression, in the source's SQL.")
    collation: str | None = None
    native: str | None = Field(None, description="The full type as the source's catalog spells it "
                                                "(MySQL COLUMN_TYPE, PostgreSQL format_type).")
    auto_increment: bool = False
    on_update: str | None = Field(None, description="MySQL ON UPDATE expression (CURRENT_TIMESTAMP).")
    charset: str | None = None
    comment: str | None = None


class Index(BaseModel):
    name: str
    columns: list[str] = Field(default_factory=list, description="Column names; empty when expressions are used.")
    unique: bool = False
    origin: str = Field("c", description="'c' CREATE INDEX, 'u' UNIQUE constraint, 'pk' primary key.")
    where: str | None = Field(None, description="Predicate of a partial index.")
    expressions: bool = False
    descending: list[bool] = Field(default_factory=list)
    collations: list[str | None] = Field(default_factory=list)
    sql: str | None = None
    prefix_lengths: list[int | None] = Field(default_factory=list, description="MySQL key prefix lengths.")
    kind: str = Field("btree", description="btree, fulltext, spatial, hash, …")


class ForeignKey(BaseModel):
    name: str | None = Field(None, description="Constraint name, where the source has one.")
    columns: list[str]
    ref_table: str
    ref_columns: list[str] = Field(default_factory=list, description="Empty: the parent's primary key.")
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: bool = False
    definition_sql: str | None = Field(None, description="The source's own definition (PostgreSQL).")
    ref_schema: str | None = None


class Table(BaseModel):
    name: str
    columns: list[Column]
    primary_key: list[str] = Field(default_factory=list)
    indexes: list[Index] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    has_rowid: bool = True
    rowid_name: str = Field("rowid", description="How to address the rowid: rowid, _rowid_ or oid, whichever "
                                                "is not a column name (a column of that name hides the rowid).")
    rowid_alias: str | None = Field(None, description="The INTEGER PRIMARY KEY column aliasing the rowid.")
    autoincrement: bool = False
    sequence: int | None = Field(None, description="AUTOINCREMENT high-water mark (sqlite_sequence).")
    checks: list[str] = Field(default_factory=list)
    check_names: list[str | None] = Field(default_factory=list, description="Names of ``checks`` where known.")
    sql: str = ""
    schema_name: str | None = Field(None, description="PostgreSQL schema / MySQL database of the table.")
    local_name: str | None = Field(None, description="The name within its schema, when ``name`` is qualified.")
    identity_next: int | None = Field(None, description="Next value the source would hand out (MySQL AUTO_INCREMENT).")
    comment: str | None = None
    partitions: list[str] = Field(default_factory=list, description="PostgreSQL: a partitioned table's partitions "
                                                                    "(its rows are theirs; each leaf is not a table "
                                                                    "of its own in the plan).")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


class View(BaseModel):
    name: str
    select: str
    sql: str
    materialized: bool = False
    schema_name: str | None = None


class Trigger(BaseModel):
    name: str
    table: str
    sql: str


class SourceSchema(BaseModel):
    schemas: list[str] = Field(default_factory=list, description="The schemas read (PostgreSQL), in order.")
    tables: list[Table] = Field(default_factory=list)
    views: list[View] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    others: list[tuple[str, str, str]] = Field(default_factory=list, description=(
        "Objects golive reports but does not translate: (kind, name, reason): procedures, events, …"))

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def without_bookkeeping(self) -> "SourceSchema":
        """Leave golive's own tables out (``is_bookkeeping``), with the views and triggers on them, each reported
        in ``others`` as skipped: every source's introspection ends with this."""
        own = {t.name for t in self.tables if is_bookkeeping(t.local_name or t.name) or is_bookkeeping(t.schema_name)}
        own_views = {v.name for v in self.views if is_bookkeeping(_local(v.name, v.schema_name))
                     or is_bookkeeping(v.schema_name)}
        if not own and not own_views:
            return self
        self.tables = [t for t in self.tables if t.name not in own]
        self.views = [v for v in self.views if v.name not in own_views]
        self.triggers = [tr for tr in self.triggers if tr.table not in own]
        self.others += [("table", name, BOOKKEEPING_REASON) for name in sorted(own)]
        self.others += [("view", name, BOOKKEEPING_REASON) for name in sorted(own_views)]
        return self


def _local(name: str, schema: str | None) -> str:
    return name[len(schema) + 1:] if schema and name.startswith(schema + ".") else name

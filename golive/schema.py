"""The neutral description of a source schema, filled by a source dialect's introspection."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Column(BaseModel):
    name: str
    declared: str = Field("", description="Declared type text as written in the source (may be empty).")
    nullable: bool = True
    default: str | None = Field(None, description="Default expression as written in the source.")
    pk_position: int = Field(0, description="1-based position in the primary key, 0 if not part of it.")
    generated: bool = Field(False, description="A generated (computed) column in the source.")
    collation: str | None = None


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


class ForeignKey(BaseModel):
    columns: list[str]
    ref_table: str
    ref_columns: list[str] = Field(default_factory=list, description="Empty: the parent's primary key.")
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"
    deferrable: bool = False


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
    sql: str = ""

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


class View(BaseModel):
    name: str
    select: str
    sql: str


class Trigger(BaseModel):
    name: str
    table: str
    sql: str


class SourceSchema(BaseModel):
    tables: list[Table] = Field(default_factory=list)
    views: list[View] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

"""What validation asks of an engine: its side of a content comparison (``golive.validation``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern
from golive.errors import ConfigError

if TYPE_CHECKING:
    from golive.urls import DatabaseURL


#: the placeholder of the SQL a ``%s``-style side builds: a NUL, which no PostgreSQL or MySQL identifier can hold, so
#: a table named ``%s`` or ``100%`` is never read as a parameter (``format_params``)
PARAM = "\x00"


def format_params(sql: str) -> str:
    """SQL built with ``PARAM`` placeholders as a ``%s``-style driver (psycopg, PyMySQL) reads it: every ``%`` of a
    name or literal doubled, each ``PARAM`` a ``%s``. Execute it with a parameter list, even an empty one."""
    return sql.replace("%", "%%").replace(PARAM, "%s")


class Checksums(Concern):
    """Content checksums of this engine's tables, as either side of a comparison (``golive.validation``), and what
    validation asks of a target besides: Great Expectations' datasource, the suites' SQL, the source's orphans.

    Every side prints each value as the same *canonical text* (what PostgreSQL prints: ``true``, ``5.5``,
    ``2024-01-02 03:04:05+00``) and hashes it in the same *value streams* (``sqlite/checksums.py`` describes them),
    so any source meets any target. The comparer (``golive.validation.content``) holds one ``Side`` per database
    and builds its range, row and multiset queries from what each says; it never asks which engine a side is.
    """

    #: the JSON normal form this engine prints in SQL (PostgreSQL: ``jsonb``'s text). Two sides of one form compare
    #: digests the servers compute; otherwise JSON comes back as stored and the target side normalises it
    json_form: str | None = None
    #: a column holds values of any type whatever it declares (https://www.sqlite.org/datatype3.html): rows whose
    #: integer key is NULL or no integer escape the key ranges, so validation looks for them first
    loose_keys: bool = False

    class Side:
        """One database's side of one table's comparison: a connection and its engine's SQL over ``table``.

        ``role`` ("source"/"target") says which names of the ``golive.model.validation.TableSpec`` it reads
        (``CheckColumn.on(role)``); without a spec it serves the database only (``relation``, ``run``). Where a
        query is too big for the engine it raises ``golive.model.validation.TooBig`` and the comparer splits it.
        """

        #: the parameter placeholder in the SQL golive builds (``run`` turns it into the driver's)
        ph: str = "%s"
        #: the server hashes the value streams (only digests travel); else Python hashes what comes back
        hash_in_sql: bool = False
        #: rows per checksum query (a key range is split into sub-ranges of about this many rows)
        sub_range_rows: int = 60_000
        #: the engine's own row id (SQLite's ``rowid``) naming rows of tables without a key; None: none
        rowid: str | None = None
        #: a list of row values is written ``NOT IN (VALUES (…), (…))`` (SQLite), not ``NOT IN ((…), (…))``
        values_rows: bool = False

        def __init__(self, spec, role: str, *, json_in_sql: bool = False) -> None:
            self.spec, self.role = spec, role
            #: the checksum's JSON is a digest the server computed (else the JSON lines as stored)
            self.json_in_sql = json_in_sql
            #: the compared table as this side's ``FROM`` names it
            self.table = ""

        def quote(self, name: str) -> str:
            """An identifier quoted for this engine."""
            raise NotImplementedError

        def relation(self, schema: str | None, name: str) -> str:
            """A table of this side's database, as its SQL names it (``schema``: where the engine has schemas)."""
            return self.quote(name)

        def column(self, c) -> str:
            """A ``CheckColumn`` as it is read (a source: the copy's own expression)."""
            return c.source_expr if self.role == "source" and c.source_expr else self.quote(c.on(self.role))

        def key_expr(self, k) -> str:
            """A ``KeyColumn`` as it is read."""
            return self.quote(k.on(self.role))

        def keytext(self) -> str:
            """The canonical text of a row's key (matches rows across the sides)."""
            raise NotImplementedError

        def canonical(self, c) -> str:
            """The canonical text of one value."""
            raise NotImplementedError

        def rendered(self, c) -> str:
            """The text the copy sent for a value (a source): what the target judges when canonical texts differ."""
            raise NotImplementedError

        def rowtext(self) -> str:
            """One text per row of its canonical values, JSON left out (tables without a key)."""
            raise NotImplementedError

        def json_text(self, c) -> str:
            """A JSON column as the multiset comparison reads it (in the normal form when ``json_in_sql``)."""
            return self.column(c)

        def order(self) -> str:
            """``ORDER BY`` visiting rows in the same order on every engine (text by its UTF-8 bytes)."""
            raise NotImplementedError

        def range_key(self) -> str | None:
            """The integer expression key ranges are taken on (None: the table is one range)."""
            raise NotImplementedError

        def checksum(self, where: str, args: list):
            """A ``golive.model.validation.Checksum`` (rows, key span, JSON, stream digests) of the rows ``where``
            selects."""
            raise NotImplementedError

        def run(self, sql: str, args: list) -> list:
            """The rows of a query (``TooBig``, or a ``GoliveError`` saying whether a retry can help)."""
            raise NotImplementedError

        def rejected_filter(self, texts: set[str]) -> str:
            """A condition true for rows whose ``keytext`` is in ``texts`` (too many for one ``NOT IN``)."""
            from golive.errors import SourceError

            raise SourceError(f"{self.spec.source}: too many rejected rows to leave out of the comparison")

        def json_digest(self, lines: bytes) -> str:
            """The digest this side's checksum gives for JSON values, of another side's JSON lines as stored."""
            from golive.model.validation import normalise_json_lines

            return normalise_json_lines(lines)

        def normalise_json(self, values: list) -> list:
            """JSON values in this side's normal form (the one ``json_text`` prints when ``json_in_sql``)."""
            from golive.model.validation import normalise_json

            return [normalise_json(v) for v in values]

        def same_after_parsing(self, c, rendered: str, value) -> bool:
            """Does this engine read ``rendered`` (the copy's text) as the value it holds (canonical text
            ``value``)? By default Python judges the two texts."""
            from golive.model.validation import same_text_value

            return same_text_value(c.type.ct, rendered, str(value))

        def same_after_parsing_many(self, c, pairs: list[tuple[str, object]]) -> list[bool]:
            """``same_after_parsing`` of each ``(rendered, value)`` of column ``c`` (an engine that asks its server
            asks once for all of them)."""
            return [self.same_after_parsing(c, r, v) for r, v in pairs]

        def close(self) -> None:
            """Close the connection."""

    def side(self, url: "DatabaseURL", spec, role: str, *, json_in_sql: bool = False) -> "Checksums.Side":
        """A side of ``spec`` (a ``TableSpec``, or None: the database only) on ``url`` as the "source" or the
        "target"; ``json_in_sql``: the server hashes JSON (only when the other side's ``json_form`` is this one)."""
        raise NotImplementedError

    def settle(self, url: "DatabaseURL", specs: list) -> None:
        """Make a freshly loaded target quick to read in key order (PostgreSQL: VACUUM); changes no data."""

    def sqlalchemy_url(self, url: "DatabaseURL") -> str:
        """The SQLAlchemy URL of ``url``, for Great Expectations' SQL datasource (holds the password)."""
        raise NotImplementedError

    def gx_engine_kwargs(self) -> dict:
        """Keyword arguments of the SQLAlchemy engine Great Expectations opens (session settings)."""
        return {}

    def unique_query(self, schema: str, table: str, columns: list[str]) -> str:
        """A suite's query (``{batch}``: the table) listing rows sharing a value of ``columns``, NULLs left out."""
        raise ConfigError(f"golive validates no {self.dialect.title} target (it does not write one)")

    def orphan_query(self, schema: str, fk, key: list[str]) -> str:
        """A suite's query (``{batch}``: the child) listing references of ``fk`` with no parent row beyond the
        source's own (``record_source_orphans``)."""
        raise ConfigError(f"golive validates no {self.dialect.title} target (it does not write one)")

    def record_source_orphans(self, url: "DatabaseURL", schema: str, fks: list, rejects: dict, orphans_of) -> None:
        """Record in the target the dangling references the source already had, for ``orphan_query``.

        Args:
            fks: ``(TablePlan, ForeignKeyPlan)`` of the compared tables.
            rejects: source table -> keys of the rows the copy rejected (their children dangle too).
            orphans_of: ``(TablePlan, ForeignKeyPlan) -> [(referenced values, rows)]``, the source's orphans;
                called only for the keys the target cannot vouch for.
        """
        raise ConfigError(f"golive validates no {self.dialect.title} target (it does not write one)")

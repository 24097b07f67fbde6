"""What every dialect declares, and how sources and targets meet.

Differences are class attributes (alembic/dlt style), each with its source. A *source* dialect reads
(introspection, profile, type decisions, chunks, rows rendered for the target's bulk loader); a *target*
dialect writes (DDL, bulk load, keys, bookkeeping). They meet through the neutral types
(``golive.types``), the plan (``golive.migrate.plan``) and the **wire format** below, so N sources and M
targets need N + M pieces of code, not N × M.

The wire format is one CSV dialect both targets' bulk loaders read: every value a single-quoted field
(quotes doubled), ``NULL`` the bare word (a quoted ``'NULL'`` stays text), one row per line; PostgreSQL
reads it with ``COPY … (FORMAT csv, QUOTE '''', NULL 'NULL')``, MySQL with ``LOAD DATA … FIELDS
TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY ''``. What goes *inside* a field differs per
target in a few ways only; ``Wire`` lists them, as data, and a source renders values by looking them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from golive.types import TargetType


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
    default_note: str | None = None


class Dialect:
    #: registry name, as used in URLs
    name: str = ""
    #: can golive read from it / write to it
    can_read: bool = False
    can_write: bool = False
    #: longest identifier in bytes (0 = no practical limit)
    max_identifier_length: int = 0
    #: DDL runs inside transactions
    transactional_ddl: bool = False
    #: the bulk-load format this dialect reads as a target (None: not a target)
    wire: Wire | None = None
    #: sqlglot's name of this dialect (translating views, CHECKs and expressions between engines)
    sqlglot_name: str = ""
    #: as a source: its CHECK constraints / views are translated to the target (else reported)
    translates_checks: bool = False
    #: as a target: GENERATED ALWAYS AS (...) STORED columns
    supports_generated: bool = False

    def quote(self, name: str) -> str:
        raise NotImplementedError


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

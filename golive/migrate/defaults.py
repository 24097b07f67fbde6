"""A source's column default as a target's SQL, through the neutral ``golive.model.defaults.Default``.

Every default is decided in the plan, like a type, with its reason (``--dry-run`` shows both): the source reads its
own syntax into a ``Default`` (``Source.read_default``), ``coerce`` fits it to the column's neutral type, an
expression is translated between engines by sqlglot, and the target renders it (``Target.render_default``). A
default with no faithful equivalent is dropped with a warning naming the column: never a failure of the run.
"""

from __future__ import annotations

from golive.model.defaults import coerce


def plan_default(src, dst, t, c, type_, options, translate) -> tuple[str | None, str, str | None]:
    """``(target SQL or None, reason, warning or None)`` for the default of column ``c`` of type ``type_``."""
    if c.default is None:
        return None, "", None
    d, note = src.source.read_default(t, c, options)
    if d is None:
        return None, note or "no default (the source has none)", note
    read = d
    if src.name == dst.name and d.sql is not None and d.kind != "zero_date":  # the same engine: as written
        return dst.target.render_default(type(d)("expr", sql=d.sql), type_), "kept as it is", None
    d, note = coerce(d, type_, c.default or "")
    if d is not None and d.kind == "expr" and d.sql is not None and src.name != dst.name:
        translated, why = translate(d.sql)
        d = None if translated is None else type(d)("expr", sql=translated)
        note = None if translated is not None else f"default {c.default} not translated ({why})"
    if d is None:
        if read.kind == "zero_date" and read.sql == "null":  # chosen, and the column's own warning says so
            return None, note or "dropped", None
        return None, note or "dropped", note
    sql = dst.target.render_default(d, type_)
    if sql is None:
        why = f"default {c.default} has no equivalent in the target: dropped"
        return None, why, why
    same = "kept as it is" if src.name == dst.name else _REASONS.get(d.kind, "the same value")
    return sql, note or same, note


_REASONS = {"now": "the current moment", "today": "the current date", "time_now": "the current time",
            "epoch_now": "the current Unix time", "uuid": "a new UUID", "expr": "the expression, translated"}


def translate_default(raw: str | None, t, *, source: str = "sqlite", target: str = "postgresql"
                      ) -> tuple[str | None, str | None]:
    """A source's default expression as the target's SQL for a column of type ``t``: ``(sql or None, note)``."""
    from golive.dialects import get_dialect
    from golive.model.schema import Column, Table

    src, dst = get_dialect(source), get_dialect(target)
    column = Column(name="c", default=raw)
    d, note = src.source.read_default(Table(name="t", columns=[column]), column, None)
    if d is None:
        return None, note
    d, note = coerce(d, t, raw or "")
    return (dst.target.render_default(d, t) if d is not None else None), note

"""A source's column default as a target's SQL, through the neutral ``golive.model.defaults.Default``."""

from __future__ import annotations

from golive.model.defaults import coerce


def translate_default(raw: str | None, t, *, source: str = "sqlite", target: str = "postgresql"
                      ) -> tuple[str | None, str | None]:
    """A source's default expression as the target's SQL for a column of type ``t``: ``(sql or None, note)``."""
    from golive.dialects import get_dialect
    from golive.model.schema import Column, Table

    src, dst = get_dialect(source), get_dialect(target)
    column = Column(name="c", default=raw)
    d, note = src.source.read_default(Table(name="t", columns=[column]), column)
    if d is None:
        return None, note
    d, note = coerce(d, t, raw or "")
    return (dst.target.render_default(d, t) if d is not None else None), note

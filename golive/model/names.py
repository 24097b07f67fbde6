"""Target names from source names: case mode, the target's length limit, no collisions (neutral)."""

from __future__ import annotations

import hashlib
import re

from golive.model.plan import Renamed


def snake_case(name: str) -> str:
    """``createdAt`` -> ``created_at``, ``InvoiceLine`` -> ``invoice_line``, ``HTTPServer`` -> ``http_server``."""
    s = re.sub(r"[^\w]+", "_", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"_+", "_", s).strip("_").lower()
    return s or name


def fit_identifier(name: str, limit: int = 63, *, chars: bool = False) -> str:
    """Shorten ``name`` to ``limit`` bytes (or characters) deterministically: a prefix plus 8 hex of its SHA-1."""
    size = len(name) if chars else len(name.encode("utf-8"))
    if not limit or size <= limit:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    if chars:
        return f"{name[: limit - 9]}_{digest}"
    prefix = name.encode("utf-8")[: limit - 9].decode("utf-8", "ignore")
    return f"{prefix}_{digest}"


class Namer:
    """Turns source names into target names: case mode, the target's length limit, and no collisions.

    One ``Namer`` per namespace (relations of a schema; columns of a table; constraints of a schema).
    ``fold``: the target compares names case-insensitively (MySQL with lower_case_table_names=1), so
    ``Users`` and ``users`` collide.
    """

    def __init__(self, mode: str, kind: str, renamed: list[Renamed], limit: int = 63, *, chars: bool = False,
                 fold: bool = False):
        self.mode, self.kind, self.renamed, self.limit, self.chars, self.fold = mode, kind, renamed, limit, chars, fold
        self.used: dict[str, str] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self.fold else name

    def __call__(self, source: str, *, derived: bool = False, base: str | None = None, why: str = "") -> str:
        """The target name of ``source`` (``base``: the name to start from when it is not ``source`` itself, and
        ``why``: the reason, e.g. a schema-qualified name into a target without schemas)."""
        start = base if base is not None else source
        want = snake_case(start) if self.mode == "snake" and not derived else start
        name = fit_identifier(want, self.limit, chars=self.chars)
        reason = [why] if why and start != source else []
        if want != start and not derived:
            reason.append("snake_case")
        if name != want:
            reason.append(f"longer than {self.limit} {'characters' if self.chars else 'bytes'}")
        base, n = name, 2
        while self._key(name) in self.used:
            suffix = f"_{n}"
            name = fit_identifier(base, self.limit - len(suffix), chars=self.chars) + suffix
            n += 1
        if name != base:
            reason.append(f"collides with {self.used[self._key(base)]!r}")
        self.used[self._key(name)] = source
        if reason and not derived:
            self.renamed.append(Renamed(kind=self.kind, source=source, target=name, reason=", ".join(reason)))
        elif name != want and derived:
            self.renamed.append(Renamed(kind=self.kind, source=want, target=name, reason=", ".join(reason)))
        return name

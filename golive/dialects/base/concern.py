"""How a dialect names its concerns: ``Implementation`` ("module:Class", loaded on first use), ``Unsupported`` (one
readable error), and ``Concern``, the base of every implementation."""

from __future__ import annotations

import importlib

from golive.errors import ConfigError



class Implementation:
    """A concern's implementation class, named ``"module:Class"``; imported and built (``Class(dialect)``) on first
    use, then kept on the dialect instance."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.attr = ""

    def __set_name__(self, owner, name: str) -> None:
        self.attr = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        module, cls = self.spec.split(":")
        impl = getattr(importlib.import_module(module), cls)(obj)
        obj.__dict__[self.attr] = impl  # later reads find it without this descriptor
        return impl


class Unsupported:
    """A concern the engine does not have: using it is one readable error (``what``: "read", "write", "back up"…)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        raise ConfigError(f"golive does not {self.what} {obj.title} databases")


class Concern:
    """Base of every implementation: it knows its dialect (settings, and the other concerns of its engine)."""

    def __init__(self, dialect) -> None:  # a golive.dialects.base.dialect.Dialect
        self.dialect = dialect

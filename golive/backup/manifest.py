"""The manifest: what a backup holds and how to check it, as JSON next to its objects (``<ID>/manifest.json``).

Its models live in ``golive.model.backup``, below both this capability and the engines' ``backup.py`` modules
(which fill in its tables and tool); they are named here for the capability's callers.
"""

from golive.model.backup import FORMAT, Encryption, Manifest, ObjectEntry, TableEntry, Tool, Verification

__all__ = ["FORMAT", "Encryption", "Manifest", "ObjectEntry", "TableEntry", "Tool", "Verification"]

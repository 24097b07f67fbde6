"""SQLite, as a migration source and for backups: ``dialect.py`` (settings), ``session.py`` (opening the file),
``types.py`` (declared types and stored values into neutral types), ``source.py``, ``checksums.py``, ``backup.py``."""

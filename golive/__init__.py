"""golive: move an app's database and uploads from development to production, and keep them safe.

The engine (this package) is plain Python: dialects, type mapping, planning, copying, storage.
It never imports Prefect; the orchestration lives in the top-level ``tasks`` and ``flows`` packages.
"""

__version__ = "0.1.0"

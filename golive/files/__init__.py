"""Files: an uploads folder to S3-compatible object storage (or a ``file:///dir``), verified; then rewrite
the database's file paths.

Plain Python, no Prefect (the orchestration is in ``tasks/files.py`` and ``flows/``). Modules:

- ``storage``   destinations: ``s3://bucket/prefix`` through boto3 (endpoint, region, addressing style) and
                ``file:///dir``; error translation (transient vs terminal); size limits.
- ``scan``      walks the source folder: relative paths become keys; symlinks, unreadable files, names
                that are not valid keys and over-size files become report lines, never silent skips.
- ``manifest``  golive's record of what was uploaded and verified (SQLite, one per source+destination),
                rebuilt from a bucket listing when missing; this is what makes re-runs and resumes cheap.
- ``sync``      plan (scan + manifest), upload one batch (verify each object), summarize; and
                ``upload_folder``, the whole job without Prefect (for scripts and the demo).
- ``verify``    ``golive verify files``: missing / different / extra, like ``rclone check``.
- ``db`` and ``rewrite``  ``golive rewrite-paths``: a path column to object keys or URLs, by primary-key
                batches, reversible through the ``_golive_path_map`` table.
"""

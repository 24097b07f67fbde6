"""Migrating a database: any source golive reads into any target it writes.

    plan.py       the frozen plan (neutral: tables, columns with neutral types, keys, chunks)
    planning.py   build it: the source dialect introspects, profiles and decides; the target names types
    copy.py       copy one chunk exactly once (a source's ChunkReader into a target's ChunkWriter)
    readahead.py  read the first chunks while Prefect starts up
    target.py     prepare, keys and indexes, foreign keys, views (dispatched to the target dialect)
    schedule.py   in what order chunks, keys and foreign keys run
    state.py      bookkeeping in the target (runs, chunks), for exactly-once copies and resume
    report.py     the run report and its invariants (rows read = written + rejected)
    defaults.py   column defaults in neutral form

The engines themselves live in ``golive/dialects/`` (one module per database, split by concern).
"""

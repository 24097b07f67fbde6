"""The standard suite: every registered dialect through the same tests (alembic's ``testing/suite``, prefect-aws's
block standard tests). A new engine registered in ``golive.dialects.DIALECTS`` is picked up here; give the suite a
database of it in ``database`` below.

Per dialect, for each concern it supports: the contract is complete (no method left ``NotImplementedError``), it
connects and names a driver error in one line, a source introspects, profiles and reads every row in chunks, a
target renders every neutral type and receives a copy that validation finds equal, a backup restores equal, and
the report's checks run.
"""

from __future__ import annotations

import inspect
import sqlite3
import uuid

import pytest

from golive.dialects import DIALECTS, all_dialects, get_dialect
from golive.dialects import base
from golive.errors import GoliveError
from golive.model.types import CT, TargetType
from golive.urls import parse_url

ENGINES = sorted(DIALECTS)
#: concern attribute -> its contract class
CONTRACTS = {"session": base.Session, "source": base.Source, "target": base.Target, "checksums": base.Checksums,
             "backup": base.Backup, "health": base.Health, "maintenance": base.Maintenance, "release": base.Release,
             "capture": base.Capture, "archive": base.Archive}

#: portable DDL every engine runs as it is, and rows for it
TABLE = ("CREATE TABLE std_items (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(10,2), "
         "note VARCHAR(200))")
ROWS = [(i, f"item {i}", round(i * 1.25, 2), None if i % 7 else f"note {i}") for i in range(1, 1001)]


def _abstract(contract: type) -> set[str]:
    """The methods a contract leaves to each engine (``raise NotImplementedError``)."""
    out = set()
    for name, fn in inspect.getmembers(contract, inspect.isfunction):
        if name.startswith("_") and name != "__init__":
            continue
        try:
            src = inspect.getsource(fn)
        except OSError:
            continue
        if "raise NotImplementedError" in src:
            out.add(name)
    return out


@pytest.fixture
def database(request, tmp_path, pg_url, mysql_admin_url):
    """A fresh, empty database of the engine (a URL), dropped afterwards."""
    engine = request.param
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'std.db'}"
        return
    if engine == "postgresql":
        yield pg_url
        return
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs

    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database")
    name = "golive_std_" + uuid.uuid4().hex[:8]
    conn = pymysql.connect(**kw, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def _fill(url: str) -> None:
    """The standard table with its rows, written with the engine's own driver (not golive)."""
    u = parse_url(url)
    if u.dialect == "sqlite":
        conn = sqlite3.connect(u.path)
        conn.execute(TABLE)
        conn.executemany("INSERT INTO std_items VALUES (?, ?, ?, ?)", ROWS)
        conn.commit()
        conn.close()
        return
    conn = get_dialect(u.engine).connect(u, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(TABLE)
            cur.executemany("INSERT INTO std_items VALUES (%s, %s, %s, %s)", ROWS)
    finally:
        conn.close()


# ---------------------------------------------------------------------- the contract, without a database


@pytest.mark.parametrize("engine", ENGINES)
def test_every_supported_concern_implements_its_whole_contract(engine):
    d = get_dialect(engine)
    assert d.title and d.url_schemes and d.session is not None
    for concern, contract in CONTRACTS.items():
        if not d.supports(concern):
            with pytest.raises(GoliveError, match=f"golive does not .* {d.title} databases"):
                getattr(d, concern)
            continue
        impl = getattr(d, concern)
        assert isinstance(impl, contract), f"{engine}.{concern} is not a {contract.__name__}"
        missing = sorted(m for m in _abstract(contract) if getattr(type(impl), m) is getattr(contract, m))
        assert not missing, f"{engine}.{concern} leaves {missing} to NotImplementedError"


def test_registry_names_every_dialect_once_and_suggests_the_closest():
    names = [d.name for d in all_dialects()]
    assert sorted(names) == ENGINES
    schemes = [s for d in all_dialects() for s in d.url_schemes]
    assert len(schemes) == len(set(schemes))
    with pytest.raises(GoliveError, match="Did you mean 'mysql'"):
        get_dialect("mysq")


@pytest.mark.parametrize("engine", [e for e in ENGINES if get_dialect(e).can_write])
def test_a_target_renders_every_neutral_type(engine):
    target = get_dialect(engine).target
    for ct in CT:
        t = TargetType(ct=ct, length=10 if ct in (CT.VARCHAR, CT.BITS) else None, values=["a", "b"],
                       element=CT.INTEGER if ct == CT.ARRAY else None, native="text" if ct == CT.NATIVE else None)
        assert target.type_sql(t), f"{engine}: {ct} has no type"


# ---------------------------------------------------------------------- on a real database of each engine


@pytest.mark.parametrize("database", ENGINES, indirect=True, ids=ENGINES)
def test_connects_and_names_a_driver_error_in_one_line(database):
    url = parse_url(database)
    d = get_dialect(url.engine)
    _fill(database)
    conn = d.connect(url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM std_items")
        assert cur.fetchone()[0] == len(ROWS)
        with pytest.raises(Exception) as raised:
            conn.cursor().execute("SELECT no_such_column FROM std_items")
        err = d.session.translate_error(raised.value, "reading std_items")
        assert isinstance(err, GoliveError) and "\n" not in str(err) and str(err).startswith("reading std_items")
    finally:
        conn.close()


@pytest.mark.parametrize("database", [e for e in ENGINES if get_dialect(e).can_read], indirect=True,
                         ids=[e for e in ENGINES if get_dialect(e).can_read])
def test_a_source_introspects_profiles_and_reads_every_row_in_chunks(database, mysql_admin_url):
    from golive.config import MigrateOptions
    from golive.migrate.planning import build_plan

    url = parse_url(database)
    _fill(database)
    src = get_dialect(url.engine).source
    conn = src.connect(url)
    try:
        schema = src.introspect(conn, url, MigrateOptions())
        t = next(t for t in schema.tables if (t.local_name or t.name) == "std_items")
        assert [c.name for c in t.columns] == ["id", "name", "amount", "note"] and t.primary_key == ["id"]
        counts, profiles = src.profile(url, [t], deep=False, workers=1, options=MigrateOptions())
        assert counts[t.name] == len(ROWS) and t.name in profiles
        chunking, _, chunks = src.chunks(conn, t, counts[t.name], 300)
        assert len(chunks) >= 3
    finally:
        conn.close()
    # every row, once, through the reader the copy uses (planned for a MySQL target of its own: every source renders
    # the wire format's lines for it, whose rows the reader counts)
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs

    kw = connect_kwargs(parse_url(mysql_admin_url))
    kw.pop("database")
    name = "golive_std_" + uuid.uuid4().hex[:8]
    admin = pymysql.connect(**kw, autocommit=True)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        plan = build_plan(url, parse_url(mysql_admin_url.rsplit("/", 1)[0] + "/" + name), MigrateOptions(chunk_rows=300))
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
    tp = next(t for t in plan.tables if t.source.endswith("std_items"))
    reader = src.chunk_reader(url, plan, tp)
    try:
        got = [(len(blob), n) for ch in tp.chunks for blob, n in reader.batches(ch)]
        if reader.counts_rows:
            assert sum(n for _, n in got) == len(ROWS)
        else:  # a complete stream the target counts (PostgreSQL's binary COPY): every chunk yielded bytes
            assert all(size for size, _ in got) and len(got) >= len(tp.chunks)
    finally:
        reader.close()


@pytest.mark.parametrize("database", [e for e in ENGINES if get_dialect(e).can_write], indirect=True,
                         ids=[e for e in ENGINES if get_dialect(e).can_write])
def test_a_target_receives_a_copy_that_validation_finds_equal(database, tmp_path):
    """SQLite (the standard table) into this target through golive's own engine, chunk by chunk; then the content
    comparison on both sides' checksums."""
    from golive.config import MigrateOptions
    from golive.migrate import copy as copying, planning, target as tgt
    from golive.validation import check_range, prepare
    from golive.validation.options import ValidateOptions

    source = f"sqlite:///{tmp_path / 'src.db'}"
    _fill(source)
    s, d = parse_url(source), parse_url(database)
    opts = MigrateOptions(chunk_rows=300)
    plan = planning.build_plan(s, d, opts)
    tgt.prepare(d, plan, opts)
    read = 0
    for tp in plan.tables:
        for ch in tp.chunks:
            res = copying.copy_chunk(s, d, plan.context(), tp, ch)
            assert res.rows_read == res.rows_written and not res.rows_rejected
            read += res.rows_read
        tgt.finish_table(d, plan.schema_of(tp), tp)
    tgt.complete(d, plan.run_key, True)
    assert read == len(ROWS)
    setup = prepare.prepare(s, d, ValidateOptions(output_dir=str(tmp_path / "v")), plan=plan, run_key=plan.run_key)
    for spec in setup.specs:
        for no in range(max(1, len(spec.ranges))):
            got = check_range(s, d, spec, no)
            assert got.match, got.differences
    assert setup.source_rows["std_items"] == len(ROWS)


@pytest.mark.parametrize("database", [e for e in ENGINES if get_dialect(e).supports("backup")], indirect=True,
                         ids=[e for e in ENGINES if get_dialect(e).supports("backup")])
def test_a_backup_restores_equal(database, tmp_path, request):
    from golive.backup import BackupOptions, RestoreOptions, backup_database, restore_backup

    _fill(database)
    url = parse_url(database)
    to = f"file://{tmp_path / 'backups'}"
    result = backup_database(database, to, BackupOptions(name="std"))
    assert {t.name.split(".")[-1]: t.rows for t in result.manifest.tables}["std_items"] == len(ROWS)
    if url.engine == "sqlite":
        other = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        other = request.getfixturevalue("pg_url") if url.engine == "postgresql" else None
        if other is None:  # another MySQL database on the same server
            other = database + "_r"
            conn = get_dialect("mysql").connect(url, autocommit=True, database=False)
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{url.database}_r`")
            conn.close()
            request.addfinalizer(lambda: _drop_mysql(url, f"{url.database}_r"))
        else:
            conn = get_dialect("postgresql").connect(parse_url(other), autocommit=True)
            conn.execute("DROP TABLE IF EXISTS std_items")
            conn.close()
    restored = restore_backup(result.url, other, RestoreOptions())
    assert restored.ok, restored.problems
    o = parse_url(other)
    conn = get_dialect(o.engine).connect(o)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*), sum(id) FROM std_items")
        assert tuple(cur.fetchone()) == (len(ROWS), sum(r[0] for r in ROWS))
    finally:
        conn.close()


def _drop_mysql(url, name: str) -> None:
    conn = get_dialect("mysql").connect(url, autocommit=True, database=False)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.mark.parametrize("database", [e for e in ENGINES if get_dialect(e).supports("health")], indirect=True,
                         ids=[e for e in ENGINES if get_dialect(e).supports("health")])
def test_the_report_checks_run(database):
    from golive.health.report import collect

    _fill(database)
    rep = collect(database)
    assert rep.checks, "no check ran"
    assert not [c for c in rep.checks if c.error], [(c.id, c.error) for c in rep.checks if c.error]
    assert any(s.name.endswith("std_items") for s in rep.sizes)

"""The sequence declared once (``STEPS``), the state it passes along (serialisable), and each engine's ``Release``
concern: every declared method implemented, its lint rules read without a database."""

from __future__ import annotations

import inspect

import pytest

from golive.dialects import all_dialects, get_dialect
from golive.dialects.base import Release
from golive.model.release import TableInfo
from golive.release.model import ReleaseOptions, ReleaseReport, Touch
from golive.release.sqltext import parse_name
from golive.release.state import ReleaseState
from golive.release.steps import STEPS, drive


def test_the_steps_in_order():
    assert [s.name for s in STEPS] == ["precheck", "lint", "begin-release", "backup", "migrate", "validate", "health",
                                       "rollback-plan", "rollback", "restore", "health", "conclude", "notify"]
    health = [s for s in STEPS if s.name == "health"]
    assert [s.args for s in health] == [("release",), ("rollback",)]


def _state(**fields) -> ReleaseState:
    return ReleaseState(id="20261202T120000Z-abcd", db="postgresql://app:pw@db/app", clock=0.0,
                        options=ReleaseOptions(migrations="sql:m", backup_to="file:///tmp/b"),
                        report=ReleaseReport(release_id="20261202T120000Z-abcd", database="postgresql://app:***@db/app",
                                             migrations="sql:m", kind="sql"), **fields)


def test_drive_calls_what_holds_and_stops_migrating_after_a_failure():
    from golive.release.model import Failure, Migration

    pending = [Migration(kind="sql", version=v, name="x", path="p", checksum="c") for v in ("001", "002")]
    state = _state(status={"pending": pending, "migrations": pending})
    calls = []

    def call(step, state, *args):
        calls.append(step.name + "".join(f":{getattr(a, 'version', a)}" for a in args))
        if step.name == "begin-release":
            state.went_ahead = True
        if step.name == "migrate":  # the first migration fails: the second never runs, the rollback does
            state.report.failed = Failure(step="migrate", message="boom")
        if step.name == "rollback-plan":
            from golive.release.model import Rollback

            state.report.rollback = Rollback(method="restore", why="default")
        return state

    drive(state, call)
    assert calls == ["precheck", "lint", "begin-release", "backup", "migrate:001", "validate", "health:release",
                     "rollback-plan", "restore", "conclude", "notify"]


def test_the_state_is_serialisable():
    state = _state(touch=Touch(changed=[("public", "t")], created={("public", "n")}, renamed=[(("public", "t"),
                                                                                               ("public", "u"))]),
                   existing=[TableInfo(schema_name="public", name="t", bytes=10, rows=1, has_rows=True)],
                   before_counts=[("public", "t", 1)], before_schema=[("public", "t", "r", "id integer", "", "")])
    back = ReleaseState.model_validate_json(state.model_dump_json())
    assert back.touch == state.touch and back.touch.now_named(("public", "t")) == ("public", "u")
    assert back.existing_by_key[("public", "t")].bytes == 10
    assert back.before_counts == state.before_counts and back.before_schema == state.before_schema
    assert back.model_dump(exclude={"db"}) == state.model_dump(exclude={"db"})


def _abstract(name: str) -> bool:
    member = Release.__dict__[name]
    return inspect.isfunction(member) and "raise NotImplementedError" in inspect.getsource(member)


@pytest.mark.parametrize("dialect", [d for d in all_dialects() if d.supports("release")], ids=lambda d: d.name)
def test_every_release_method_is_implemented(dialect):
    impl = type(dialect.release)
    missing = [n for n in Release.__dict__ if _abstract(n) and impl.__dict__.get(n) is None]
    assert not missing, missing
    assert dialect.release.journal_ddl and dialect.release.history_ddl and dialect.release.prisma_provider


class Facts:
    """The live database as the lint rules see it, without one: column types given."""

    def __init__(self, dialect: str, types: dict, version_num: int = 150000) -> None:
        self.dialect, self.types, self.version_num = dialect, types, version_num

    def coltype(self, table, column):
        return self.types.get(column)

    def column(self, text):
        return parse_name(text, self.dialect)[1]


def _rules(dialect: str, action: str, types: dict | None = None, statement: str = "", **kw) -> list[str]:
    release = get_dialect(dialect).release
    return [h.rule for h in release.alter_hits(action, ("s", "t"), statement or action, Facts(dialect, types or {}, **kw))]


def test_mysql_rules_know_which_alter_copies_the_table():
    assert _rules("mysql", "MODIFY status ENUM('a','c')", {"status": "enum('a','b')"}) == ["mysql-enum-reorder"]
    assert _rules("mysql", "MODIFY status ENUM('a','b','c')", {"status": "enum('a','b')"}) == []
    assert _rules("mysql", "MODIFY name VARCHAR(60)", {"name": "varchar(50)"}) == []  # same length prefix: INPLACE
    assert _rules("mysql", "MODIFY name VARCHAR(100)", {"name": "varchar(50)"}) == ["mysql-copy-alter"]
    assert _rules("mysql", "MODIFY name VARCHAR(100)", {"name": "varchar(50)"},
                  "ALTER TABLE t MODIFY name VARCHAR(100), ALGORITHM=INPLACE, LOCK=NONE") == []
    assert _rules("mysql", "CHANGE `Name` title VARCHAR(50)", {"Name": "varchar(50)"}) == ["rename"]
    assert _rules("mysql", "ADD FULLTEXT INDEX ft (body)") == ["mysql-copy-alter"]
    assert _rules("mysql", "DROP COLUMN note") == ["drop-column"]
    assert get_dialect("mysql").release.index_hits(("s", "t"), concurrently=False) == []


def test_postgresql_rules_know_which_alter_rewrites_the_table():
    assert _rules("postgresql", "ALTER COLUMN n TYPE bigint", {"n": "integer"}) == ["alter-type-rewrite"]
    assert _rules("postgresql", "ALTER COLUMN name TYPE varchar(50)", {"name": "character varying(20)"}) == []
    assert _rules("postgresql", 'ALTER COLUMN "Name" TYPE text', {"Name": "character varying(20)"}) == []
    assert _rules("postgresql", "ADD COLUMN t uuid DEFAULT gen_random_uuid()") == ["volatile-default"]
    assert _rules("postgresql", "ADD COLUMN f boolean DEFAULT false") == []
    assert _rules("postgresql", "ADD COLUMN f boolean DEFAULT false", version_num=100000) == ["volatile-default"]
    assert _rules("postgresql", "ADD CONSTRAINT c CHECK (n > 0) NOT VALID") == []
    pg = get_dialect("postgresql").release
    assert [h.rule for h in pg.index_hits(("s", "t"), concurrently=False)] == ["index-not-concurrent"]
    assert pg.needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (a)") and not pg.needs_autocommit("VACUUMED")
    assert pg.script_is_atomic(["CREATE TABLE A (ID INT)", "INSERT INTO A VALUES (1)"])
    assert not pg.script_is_atomic(["BEGIN", "CREATE TABLE A (ID INT)", "COMMIT"])
    assert pg.lock_timeout_setting(2.5) == "lock_timeout = 2.5 s"
    assert get_dialect("mysql").release.lock_timeout_setting(2.5) == "lock_wait_timeout = 3 s"

"""Alembic and Prisma folders: an app's own alembic.ini/env.py (the generic template ``alembic init`` writes) and
``prisma/migrations`` plus ``_prisma_migrations`` written by hand exactly as Prisma lays them out."""

from __future__ import annotations

import hashlib
import re
import textwrap
import uuid

from .conftest import pg_digest, pg_exec, pg_rows, run_engine, run_flow, write

REV = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade():
{up}


def downgrade():
{downgrade}
'''


def alembic_app(root, revisions: list[tuple[str, str, str, str]]):
    """An app folder with alembic.ini + migrations/env.py from ``alembic init`` and the given revisions
    (rev, doc, upgrade body, downgrade body)."""
    from alembic import command
    from alembic.config import Config

    root.mkdir(parents=True, exist_ok=True)
    command.init(Config(str(root / "alembic.ini")), str(root / "migrations"))
    down = None
    for rev, doc, up, dn in revisions:
        body = REV.format(doc=doc, rev=rev, down=down, down_repr=repr(down), up=textwrap.indent(up, "    "),
                          downgrade=textwrap.indent(dn, "    "))
        (root / "migrations" / "versions" / f"{rev}_{doc.split()[0].lower()}.py").write_text(body)
        down = rev
    return root


def test_alembic_clean_release_lints_offline_sql_and_records_checksums(prefect_api, pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE users (id bigint PRIMARY KEY, email text); "
                   "INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 500) g")
    app = alembic_app(tmp_path / "app", [
        ("a1", "Add posts", "op.create_table('posts', sa.Column('id', sa.Integer, primary_key=True), "
                            "sa.Column('title', sa.Text))", "op.drop_table('posts')"),
        ("b2", "Index emails", "op.add_column('users', sa.Column('name', sa.Text))\n"
                               "op.create_index('users_email', 'users', ['email'])",
         "op.drop_index('users_email', 'users')\nop.drop_column('users', 'name')"),
    ])
    state, rep = run_flow(pg_db, migrations=f"alembic:{app}", backup_to=f"file://{tmp_path}/b")
    assert state.is_completed(), rep["statement"]
    assert [r["version"] for r in rep["runs"]] == ["a1", "b2"] and all(r["transactional"] for r in rep["runs"])
    # the lint read Alembic's offline --sql output: the index on the existing table is found (small: a warning)
    idx = [f for f in rep["findings"] if f["rule"] == "index-not-concurrent"]
    assert len(idx) == 1 and idx[0]["severity"] == "warning" and idx[0]["table"] == "public.users"
    assert "users_email" in idx[0]["sql"]
    assert pg_rows(pg_db, "SELECT version_num FROM alembic_version") == [("b2",)]
    ledger = pg_rows(pg_db, "SELECT version, checksum FROM _golive.migrations WHERE kind = 'alembic' ORDER BY 1")
    files = {p.name.split("_")[0]: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (app / "migrations" / "versions").glob("*.py")}
    assert ledger == [("a1", files["a1"]), ("b2", files["b2"])]

    # a failing revision: PostgreSQL's transactional DDL leaves nothing; nothing else was applied -> exit 1
    before = pg_digest(pg_db)
    (app / "migrations" / "versions" / "c3_broken.py").write_text(REV.format(
        doc="Broken", rev="c3", down="b2", down_repr="'b2'",
        up="    op.add_column('users', sa.Column('age', sa.Integer))\n    op.execute('SELECT 1/0')",
        downgrade="    op.drop_column('users', 'age')"))
    rep = run_engine(pg_db, migrations=f"alembic:{app}", backup_to=f"file://{tmp_path}/b", rollback="down")
    assert rep.exit_code == 1 and rep.rollback.method == "nothing-to-undo", rep.statement
    assert "division by zero" in rep.runs[0].error and rep.runs[0].left_nothing
    assert pg_digest(pg_db) == before and pg_rows(pg_db, "SELECT version_num FROM alembic_version") == [("b2",)]

    # drift: an applied revision file edited afterwards
    p = next((app / "migrations" / "versions").glob("a1_*.py"))
    p.write_text(p.read_text().replace("sa.Text", "sa.String(200)"))
    rep = run_engine(pg_db, migrations=f"alembic:{app}", dry_run=True)
    assert rep.exit_code == 2 and any(c.id == "drift" and "a1 (add_posts)" in c.message for c in rep.prechecks)


PRISMA_PG = """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);"""

INIT = """-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
"""

POSTS = """-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" TEXT NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"""


def prisma_folder(root, migrations: dict[str, str], provider: str = "postgresql"):
    files = {"migrations/migration_lock.toml": "# Please do not edit this file manually\n# It should be added in your "
                                               f"version-control system (e.g., Git)\nprovider = \"{provider}\"\n"}
    files.update({f"migrations/{name}/migration.sql": sql for name, sql in migrations.items()})
    return write(root / "prisma", files)


def test_prisma_release_writes_prisma_migrations_as_prisma_does(prefect_api, pg_db, tmp_path):
    prisma = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240201000000_posts": POSTS})
    state, rep = run_flow(pg_db, migrations=f"prisma:{prisma}", backup_to=f"file://{tmp_path}/b")
    assert state.is_completed(), rep["statement"]
    assert [r["version"] for r in rep["runs"]] == ["20240101000000_init", "20240201000000_posts"]
    cols = pg_rows(pg_db, "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                          "WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position")
    pg_exec(pg_db, "CREATE SCHEMA ref", "SET search_path = ref", PRISMA_PG.replace("_prisma_migrations", "ref._prisma_migrations"))
    ref = pg_rows(pg_db, "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
                         "WHERE table_schema = 'ref' AND table_name = '_prisma_migrations' ORDER BY ordinal_position")
    pg_exec(pg_db, "DROP SCHEMA ref CASCADE")
    assert cols == ref
    rows = pg_rows(pg_db, "SELECT id, checksum, migration_name, logs, rolled_back_at, applied_steps_count, "
                          "finished_at >= started_at FROM _prisma_migrations ORDER BY started_at")
    assert [r[2] for r in rows] == ["20240101000000_init", "20240201000000_posts"]
    for (mid, checksum, name, logs, rolled_back, steps, finished), script in zip(rows, (INIT, POSTS)):
        assert uuid.UUID(mid).version == 4 and re.fullmatch(r"[0-9a-f]{64}", checksum)
        assert checksum == hashlib.sha256(script.encode()).hexdigest()
        assert logs is None and rolled_back is None and steps == 1 and finished
    assert pg_rows(pg_db, 'SELECT count(*) FROM "User"') == [(0,)]

    # drift: migration.sql of an applied migration changed (CRLF endings alone are not drift, as in Prisma)
    init = prisma / "migrations" / "20240101000000_init" / "migration.sql"
    init.write_bytes(INIT.replace("\n", "\r\n").encode())
    assert run_engine(pg_db, migrations=f"prisma:{prisma}", dry_run=True).exit_code == 0
    init.write_text(INIT.replace('"name" TEXT', '"name" VARCHAR(100)'))
    rep = run_engine(pg_db, migrations=f"prisma:{prisma}", dry_run=True)
    assert rep.exit_code == 2 and any(c.id == "drift" and "20240101000000_init" in c.message for c in rep.prechecks)
    init.write_text(INIT)

    # a failed migration recorded in _prisma_migrations blocks new ones (Prisma's P3009)
    pg_exec(pg_db, f"INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('{uuid.uuid4()}', "
                   f"'{'0' * 64}', '20240301000000_tags', 'boom')")
    prisma_folder(tmp_path, {"20240301000000_tags": 'CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY);\n'})
    rep = run_engine(pg_db, migrations=f"prisma:{prisma}", backup_to=f"file://{tmp_path}/b")
    assert rep.exit_code == 2 and any("P3009" in c.message for c in rep.prechecks if c.status == "fail")


def test_prisma_refuses_a_database_without_history_that_is_not_empty(pg_db, tmp_path):
    pg_exec(pg_db, "CREATE TABLE legacy (id int)")
    prisma = prisma_folder(tmp_path, {"20240101000000_init": INIT})
    rep = run_engine(pg_db, migrations=f"prisma:{prisma}", backup_to=f"file://{tmp_path}/b")
    assert rep.exit_code == 2 and any("P3005" in c.message for c in rep.prechecks if c.status == "fail")
    rep = run_engine(pg_db, migrations=f"prisma:{prisma}", dry_run=True)
    assert pg_rows(pg_db, "SELECT to_regclass('_prisma_migrations') IS NULL") == [(True,)]

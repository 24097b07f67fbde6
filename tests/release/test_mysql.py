"""Releases on MariaDB 10.11: non-transactional DDL failing half-way is restored from the backup (a Prisma project
whose ``_prisma_migrations`` was written by hand as Prisma writes it), a clean ``sql:`` release with its
history, and the MySQL lint rules (COPY alters, ENUM reordering) sized by the live tables."""

from __future__ import annotations

import hashlib
import uuid

from .conftest import my_digest, my_exec, my_rows, run_engine, run_flow, write
from .test_tools import prisma_folder

PRISMA_MY = """CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"""

INIT = """-- CreateTable
CREATE TABLE `users` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `email` VARCHAR(191) NOT NULL,
    `plan` ENUM('free', 'pro') NOT NULL DEFAULT 'free',

    UNIQUE INDEX `users_email_key`(`email`),
    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
"""

BROKEN = """-- AlterTable
ALTER TABLE `users` ADD COLUMN `status` VARCHAR(20) NULL;

-- CreateTable
CREATE TABLE `tags` (
    `id` INTEGER NOT NULL AUTO_INCREMENT,
    `name` VARCHAR(50) NOT NULL,

    PRIMARY KEY (`id`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

INSERT INTO `tags` (`name`) VALUES ('a'), ('b');

-- AddForeignKey
ALTER TABLE `users` ADD CONSTRAINT `users_tag_fkey` FOREIGN KEY (`tagId`) REFERENCES `tags`(`id`);
"""


def prisma_app(my_db: str) -> None:
    """A database Prisma migrated: its table, the init migration recorded, some rows."""
    my_exec(my_db, INIT, PRISMA_MY,
            "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count) "
            f"VALUES ('{uuid.uuid4()}', '{hashlib.sha256(INIT.encode()).hexdigest()}', NOW(3), "
            "'20240101000000_init', NOW(3), 1)",
            "INSERT INTO users (email) SELECT CONCAT('u', seq, '@x.io') FROM seq_1_to_3000")


def test_non_transactional_failure_half_way_is_restored_from_the_backup(prefect_api, my_db, tmp_path):
    prisma_app(my_db)
    before = my_digest(my_db)
    prisma = prisma_folder(tmp_path, {"20240101000000_init": INIT, "20240301000000_tags": BROKEN}, provider="mysql")
    state, rep = run_flow(my_db, migrations=f"prisma:{prisma}", backup_to=f"file://{tmp_path}/b", rollback="down")
    assert state.is_failed() and rep["exit_code"] == 1, rep["statement"]
    run = rep["runs"][0]
    assert run["version"] == "20240301000000_tags" and run["transactional"] is False
    assert run["left_nothing"] is False and run["statements"] == 3 and "statement 4" in run["error"]
    assert "the 3 statement(s) before it stay applied" in run["error"]
    assert rep["rollback"]["method"] == "restore" and "stopped half-way" in rep["rollback"]["why"]
    assert rep["rollback"]["ok"], rep["rollback"]
    assert my_digest(my_db) == before  # _prisma_migrations included: the failed row is gone with the rest
    assert my_rows(my_db, "SELECT state FROM _golive_releases") == [("rolled-back",)]


def test_clean_sql_release_on_mariadb(my_db, tmp_path, app):
    my_exec(my_db, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO items SELECT seq, CONCAT('n', seq) FROM seq_1_to_500")
    mig = write(tmp_path / "m", {
        "001_sku.sql": "ALTER TABLE items ADD COLUMN sku VARCHAR(32) NULL, ALGORITHM=INSTANT;\n"
                       "ALTER TABLE items MODIFY name VARCHAR(40);\n",
        "002_idx.sql": "CREATE INDEX items_sku ON items (sku);\n",
    })
    app.set(my_db, "SELECT id, sku FROM items LIMIT 1")
    rep = run_engine(my_db, migrations=f"sql:{mig}", backup_to=f"file://{tmp_path}/b", health_urls=[app.health])
    assert rep.exit_code == 0, rep.statement
    assert [r.transactional for r in rep.runs] == [False, False]
    assert not [f for f in rep.findings if f.rule not in ("no-lock-timeout",)], rep.findings  # VARCHAR(20->40) is INPLACE
    assert my_rows(my_db, "SELECT version, success FROM _golive_migrations ORDER BY version") == [("001", 1), ("002", 1)]
    assert rep.health[0].ok and any("row counts of 1 of 1" in c for c in rep.validation["checks"])


def test_mysql_lint_rules_use_live_sizes(my_db, tmp_path):
    my_exec(my_db, "CREATE TABLE big (id INT PRIMARY KEY, kind ENUM('a','b','c'), n INT, note VARCHAR(100))",
            "INSERT INTO big SELECT seq, 'a', seq, REPEAT('x', 90) FROM seq_1_to_20000",
            "CREATE TABLE small (id INT PRIMARY KEY, n INT)", "INSERT INTO small VALUES (1, 1)", "ANALYZE TABLE big")
    mig = write(tmp_path / "m", {"001_changes.sql": "\n".join([
        "ALTER TABLE big MODIFY n BIGINT;",                       # type change: COPY
        "ALTER TABLE big MODIFY kind ENUM('c','a','b');",         # reordered ENUM
        "ALTER TABLE big MODIFY kind ENUM('a','b','c','d');",     # appended: fine
        "ALTER TABLE small MODIFY n BIGINT;",                     # COPY, but a small table: warning
        "ALTER TABLE big DROP COLUMN note;",                      # data loss
        "ALTER TABLE big ADD COLUMN extra INT, ALGORITHM=INSTANT;",
        "RENAME TABLE small TO tiny;",
        "UPDATE big SET n = n + 1;",
    ])})
    rep = run_engine(my_db, migrations=f"sql:{mig}", dry_run=True, large_table="500kB")
    got = [(f.rule, f.severity, f.line) for f in rep.findings]
    assert ("mysql-copy-alter", "error", 1) in got and ("mysql-enum-reorder", "error", 2) in got
    assert ("mysql-copy-alter", "warning", 4) in got and ("drop-column", "error", 5) in got
    assert ("rename", "error", 7) in got and ("unbatched-dml", "error", 8) in got
    assert not [g for g in got if g[2] in (3, 6)], got
    assert rep.exit_code == 2 and "would be refused" in rep.statement


def test_alembic_on_mariadb_clean_then_a_failing_revision_is_restored_from_the_backup(my_db, tmp_path):
    """An app's own Alembic folder (``alembic init``'s env.py) on MariaDB: a clean release, then a revision that
    fails after its first operation (MySQL commits DDL at once) is restored from the backup."""
    from .test_tools import REV, alembic_app

    my_exec(my_db, "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100))",
            "INSERT INTO users SELECT seq, CONCAT('u', seq) FROM seq_1_to_400")
    app = alembic_app(tmp_path / "app", [
        ("a1", "Add posts", "op.create_table('posts', sa.Column('id', sa.Integer, primary_key=True), "
                            "sa.Column('title', sa.String(200)))", "op.drop_table('posts')"),
        ("b2", "Index emails", "op.create_index('users_email', 'users', ['email'])",
         "op.drop_index('users_email', 'users')"),
    ])
    rep = run_engine(my_db, migrations=f"alembic:{app}", backup_to=f"file://{tmp_path}/b")
    assert rep.exit_code == 0, rep.statement
    assert [r.version for r in rep.runs] == ["a1", "b2"] and not any(r.transactional for r in rep.runs)
    assert my_rows(my_db, "SELECT version_num FROM alembic_version") == [("b2",)]
    assert my_rows(my_db, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                          "AND INDEX_NAME = 'users_email'") == [(1,)]

    before = my_digest(my_db)
    (app / "migrations" / "versions" / "c3_broken.py").write_text(REV.format(
        doc="Broken", rev="c3", down="b2", down_repr="'b2'",
        up="    op.add_column('users', sa.Column('age', sa.Integer))\n    op.execute('SELECT * FROM no_such_table')",
        downgrade="    op.drop_column('users', 'age')"))
    rep = run_engine(my_db, migrations=f"alembic:{app}", backup_to=f"file://{tmp_path}/b")
    assert rep.exit_code == 1, rep.statement
    assert "no_such_table" in rep.runs[0].error and not rep.runs[0].left_nothing
    assert rep.rollback.method == "restore" and rep.rollback.ok, rep.rollback
    assert my_digest(my_db) == before  # the column Alembic added before failing is gone
    assert my_rows(my_db, "SELECT version_num FROM alembic_version") == [("b2",)]

"""Deliberately unhealthy databases: bloated tables and indexes (mass UPDATE/DELETE), a duplicate index, an
unused index, a sequence (or AUTO_INCREMENT) at 95 % of int4, materialized views, soft-deleted rows.

Tables are small (tens of thousands of rows): bloat shows at that size, and the suite stays fast. On
PostgreSQL autovacuum is off for these tables, so a CI server with autovacuum on cannot tidy them up
between the set-up and the report.
"""

from __future__ import annotations

import psycopg
import pymysql

from golive.dialects.mysql.session import connect_kwargs
from golive.urls import parse_url

POSTS = 40_000
OLD_SOFT_DELETED = POSTS // 10  # deleted 40 days ago: purged
YOUNG_SOFT_DELETED = POSTS // 10  # deleted 5 days ago: kept
SEQ_AT = 2_040_109_465  # 95.0 % of 2,147,483,647

#: thresholds for tables this small (the defaults are for production sizes)
SMALL = {"min_bloat_bytes": 100_000, "min_table_bloat_bytes": 100_000, "min_free_bytes": 8_000_000}

PG_SETUP = f"""
CREATE TABLE posts (id serial PRIMARY KEY, title text NOT NULL, body text, n int, deleted_at timestamptz)
  WITH (autovacuum_enabled = false);
INSERT INTO posts (title, body, n, deleted_at)
  SELECT 'title ' || g, repeat('x', 100), g,
         CASE WHEN g % 10 = 0 THEN now() - interval '40 days' WHEN g % 10 = 1 THEN now() - interval '5 days' END
  FROM generate_series(1, {POSTS}) g;
CREATE INDEX posts_n ON posts (n);
CREATE INDEX posts_title ON posts (title);
CREATE TABLE events (id bigserial PRIMARY KEY, payload text) WITH (autovacuum_enabled = false);
INSERT INTO events (payload) SELECT repeat('e', 80) FROM generate_series(1, {POSTS});
CREATE TABLE counters (id serial PRIMARY KEY, label text);
SELECT setval('counters_id_seq', {SEQ_AT});
CREATE MATERIALIZED VIEW post_counts AS SELECT n % 10 AS bucket, count(*) AS c FROM posts GROUP BY 1 WITH NO DATA;
CREATE MATERIALIZED VIEW post_buckets AS SELECT n % 100 AS bucket, count(*) AS c FROM posts GROUP BY 1;
CREATE UNIQUE INDEX post_buckets_bucket ON post_buckets (bucket);
ANALYZE;
"""

PG_BLOAT = """
CREATE INDEX posts_n_dup ON posts (n);
UPDATE posts SET n = n + 1;
UPDATE posts SET n = n - 1;
DELETE FROM events WHERE id > 4000;
INSERT INTO posts (title, body, n) SELECT 'late ' || g, 'y', g FROM generate_series(1, 500) g;
"""


def build_pg(url: str) -> None:
    """The unhealthy PostgreSQL scenario; statistics flushed and the used index used."""
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in PG_SETUP.split(";\n"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT * FROM posts WHERE n = 5").fetchall()  # posts_n is used (before its duplicate exists)
        conn.execute("SELECT * FROM posts WHERE id = 5").fetchall()  # and the primary key; posts_title is not
        conn.execute("RESET enable_seqscan")
        for stmt in PG_BLOAT.split(";\n"):
            if stmt.strip():
                conn.execute(stmt)
    # closing the session flushed its statistics (dead tuples, scans) to the cumulative statistics
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE posts")
        conn.execute("ANALYZE events")


def my_conn(url: str, autocommit: bool = True):
    return pymysql.connect(**connect_kwargs(parse_url(url)), autocommit=autocommit)


def build_mysql(url: str) -> None:
    """The unhealthy MariaDB scenario: a fragmented table (a contiguous mass DELETE frees whole extents, which
    is what data_free shows), a table without a primary key, a duplicate and a left-prefix index, an
    AUTO_INCREMENT at 95 % of INT, soft-deleted rows."""
    conn = my_conn(url)
    with conn.cursor() as cur:
        for stmt in [
            "CREATE TABLE posts (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(100) NOT NULL, body TEXT, n INT, "
            "deleted_at DATETIME NULL, KEY k_n (n), KEY k_n_title (n, title), KEY k_title (title), "
            "KEY k_title_dup (title)) ENGINE=InnoDB",
            f"INSERT INTO posts (title, body, n, deleted_at) SELECT CONCAT('title ', seq), REPEAT('x', 200), seq, "
            f"CASE WHEN seq % 10 = 0 THEN NOW() - INTERVAL 40 DAY WHEN seq % 10 = 1 THEN NOW() - INTERVAL 5 DAY END "
            f"FROM seq_1_to_{POSTS}",
            "CREATE TABLE logs (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(400)) ENGINE=InnoDB",
            "INSERT INTO logs (payload) SELECT REPEAT('l', 300) FROM seq_1_to_60000",
            "DELETE FROM logs WHERE id <= 48000",
            "CREATE TABLE imports (line INT, raw TEXT) ENGINE=InnoDB",
            "INSERT INTO imports VALUES (1, 'a'), (2, 'b')",
            "CREATE TABLE counters (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(20)) ENGINE=InnoDB "
            f"AUTO_INCREMENT={SEQ_AT + 1}",
            "INSERT INTO counters (label) VALUES ('x')",
        ]:
            cur.execute(stmt)
    conn.close()


def wait_mysql_purge(url: str, table: str, min_free: int, timeout: float = 30) -> int:
    """Wait until InnoDB's purge has freed the deleted rows' pages (data_free grows); return data_free."""
    import time

    conn = my_conn(url)
    give_up = time.monotonic() + timeout
    free = 0
    try:
        while time.monotonic() < give_up:
            with conn.cursor() as cur:
                cur.execute(f"ANALYZE TABLE `{table}`")
                cur.fetchall()
                cur.execute("SELECT data_free FROM information_schema.tables WHERE table_schema = DATABASE() "
                            "AND table_name = %s", (table,))
                free = cur.fetchone()[0]
            if free >= min_free:
                return free
            time.sleep(0.5)
        return free
    finally:
        conn.close()

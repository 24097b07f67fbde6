"""A concurrent writer: a thread that commits small transactions in a loop, as an app would, with the same
lock timeout as maintenance, and records how long each statement took and any lock timeout it hit."""

from __future__ import annotations

import random
import threading
import time


class Writer(threading.Thread):
    """Insert a post, update another, soft-delete a third (now), commit; again until stopped."""

    def __init__(self, url: str, engine: str, lock_timeout_s: float, table: str = "posts") -> None:
        super().__init__(daemon=True, name="gmt-writer")
        self.url, self.engine, self.lock_timeout_s, self.table = url, engine, lock_timeout_s, table
        self.stop = threading.Event()
        self.commits = 0
        self.commit_times: list[float] = []
        self.max_statement_s = 0.0
        self.errors: list[str] = []

    def _connect(self):
        if self.engine == "postgresql":
            import psycopg

            conn = psycopg.connect(self.url)
            conn.execute(f"SET lock_timeout = '{int(self.lock_timeout_s * 1000)}ms'")
            conn.commit()
            return conn
        from maintenance.scenario import my_conn

        conn = my_conn(self.url, autocommit=False)
        with conn.cursor() as cur:
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {max(int(self.lock_timeout_s), 1)}")
            cur.execute(f"SET SESSION lock_wait_timeout = {max(int(self.lock_timeout_s), 1)}")
        return conn

    def _timed(self, cur, sql, args=()):
        t0 = time.perf_counter()
        cur.execute(sql, args)
        self.max_statement_s = max(self.max_statement_s, time.perf_counter() - t0)

    def run(self) -> None:
        conn = self._connect()
        now = "now()" if self.engine == "postgresql" else "NOW()"
        t = self.table
        try:
            while not self.stop.is_set():
                try:
                    with conn.cursor() as cur:
                        self._timed(cur, f"INSERT INTO {t} (title, body, n) VALUES (%s, %s, %s)",
                                    ("writer", "w", random.randint(1, 1000)))
                        # never a row soft-deleted long ago (every tenth): those are purge's
                        self._timed(cur, f"UPDATE {t} SET body = %s WHERE id = %s",
                                    ("u", random.randint(1, 3000) * 10 + random.randint(1, 9)))
                        self._timed(cur, f"UPDATE {t} SET deleted_at = {now} WHERE id = %s AND deleted_at IS NULL",
                                    (random.randint(30001, 39000),))
                    t0 = time.perf_counter()
                    conn.commit()
                    self.max_statement_s = max(self.max_statement_s, time.perf_counter() - t0)
                    self.commits += 1
                    self.commit_times.append(time.time())
                except Exception as exc:  # recorded: the test fails on any
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    conn.rollback()
                time.sleep(0.01)
        finally:
            conn.close()

    def __enter__(self) -> "Writer":
        self.start()
        deadline = time.monotonic() + 10
        while self.commits < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(timeout=30)

    def commits_between(self, t0: float, t1: float) -> int:
        return sum(1 for c in self.commit_times if t0 <= c <= t1)

"""Hostile input through the CLI: every case ends in its exit code and its one line, never a traceback; what golive
chooses to copy of something unusual arrives equal (read back from PostgreSQL and MariaDB, or the bucket).

The catalogue, with each case's expected outcome, is docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest

MB = 1 << 20


def check_output(res) -> None:
    """What golive printed holds no traceback and no Python exception name."""
    assert "Traceback" not in res.all, res
    assert "(run with --traceback for details)" not in res.all, res


def one_error_line(res) -> str:
    """The one ``error:`` line on stderr."""
    check_output(res)
    errors = [x for x in res.err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, res
    return errors[0]


def status_line(res, says: str) -> str:
    """The run's one closing line on stdout (``FAILED: 12 rows written …``), found by what it says."""
    check_output(res)
    found = [x for x in res.out.splitlines() if says in x]
    assert len(found) == 1, res
    return found[0]


@pytest.fixture(scope="module")
def pg_db(pg_admin_url):
    """One PostgreSQL database for the module's cases that need a target that answers."""
    import psycopg

    from conftest import _with_db

    name = "golive_chaos_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def my_db(mysql_admin_url):
    """One MariaDB database for the module."""
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    name = "golive_chaos_" + uuid.uuid4().hex[:8]
    kw = {**connect_kwargs(parse_url(mysql_admin_url)), "database": None}
    with pymysql.connect(**kw, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield mysql_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with pymysql.connect(**kw, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


# ---------------------------------------------------------------- SQLite files that are not what they claim

def _app(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"{i:04d}" * 50) for i in range(2000)])
    db.commit()
    db.close()
    return path


def _truncated(d: Path) -> Path:
    data = _app(d / "app.db").read_bytes()
    (d / "truncated.db").write_bytes(data[: len(data) // 2])
    return d / "truncated.db"


def _corrupt_page(d: Path) -> Path:
    data = bytearray(_app(d / "app.db").read_bytes())
    data[4 * 4096 + 8: 5 * 4096] = (bytes(range(256)) * 16)[8:]  # a leaf page of t overwritten, the schema intact
    (d / "page.db").write_bytes(bytes(data))
    return d / "page.db"


def _write(name: str, content: bytes):
    def make(d: Path) -> Path:
        (d / name).write_bytes(content)
        return d / name
    return make


def _encrypted_body(d: Path) -> Path:
    data = _app(d / "app.db").read_bytes()
    (d / "cipher.db").write_bytes(data[:100] + hashlib.sha256(b"k").digest() * ((len(data) - 100) // 32 + 1))
    return d / "cipher.db"


def _directory(d: Path) -> Path:
    (d / "dir.db").mkdir()
    return d / "dir.db"


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "fifo.db")
    return d / "fifo.db"


def _sqlite(make, dry_run: bool = True):
    def argv(d: Path, pg: str) -> list:
        return ["migrate", "db", "--source", make(d), "--target", pg, *(["--dry-run"] if dry_run else [])]
    return argv


QUICK = [
    # (case, its command line (made in a scratch folder d, with a PostgreSQL database pg), exit code, the line says)
    ("sqlite-truncated", _sqlite(_truncated), 2, "truncated.db: database disk image is malformed"),
    ("sqlite-corrupt-page", _sqlite(_corrupt_page, dry_run=False), 2,
     "page.db: table t (chunk 0): database disk image is malformed (the file is damaged"),
    ("sqlite-random-bytes", _sqlite(_write("random.db", hashlib.sha512(b"x").digest() * 128)), 2,
     "random.db: not a SQLite database (wrong file header)"),
    ("sqlite-encrypted-body", _sqlite(_encrypted_body), 2, "cipher.db: database disk image is malformed"),
    ("sqlite-zero-bytes", _sqlite(_write("zero.db", b"")), 2, "zero.db: an empty file"),
    ("sqlite-directory", _sqlite(_directory), 2, "dir.db: is a directory, not a SQLite database file"),
    ("sqlite-fifo", _sqlite(_fifo), 2, "fifo.db: not a regular file (a FIFO, socket or device)"),
]


# ---------------------------------------------------------------- names and values

#: table (and column) names as apps and ORMs make them, or as a hostile schema could
NAMES = ["q\"s'semi;dash--tick`dot.space %s?{x}100%\ttab", "123", "select", "Order", "ÄRGER", "ärger",
         "l" * 70 + "a", "l" * 70 + "b", "é" * 40]


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    """Tables named as NAMES (each with a column of its own name holding that name, and a unique index on it),
    ``vals``: one unusual value per row, ``big``: a 10 MB text and a 12 MB BLOB."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    db = sqlite3.connect(path)
    q = lambda n: '"' + n.replace('"', '""') + '"'  # noqa: E731
    for n in NAMES:
        db.execute(f"CREATE TABLE {q(n)} (id INTEGER PRIMARY KEY, {q(n)} TEXT, {q(n + '_2')} INTEGER)")
        db.execute(f"CREATE UNIQUE INDEX {q('ix ' + n)} ON {q(n)} ({q(n)})")
        db.execute(f"INSERT INTO {q(n)} VALUES (1, ?, 2)", (n,))
    db.execute('CREATE TABLE twins (id INTEGER PRIMARY KEY, "Ä" TEXT, "ä" TEXT)')  # one column to MySQL
    db.execute("INSERT INTO twins VALUES (1, 'upper', 'lower')")
    db.execute(f'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES {q(NAMES[0])}(id))')
    db.execute("INSERT INTO kids VALUES (1, 1)")
    db.execute("CREATE TABLE vals (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, t TEXT, r REAL, d DATE)")
    rows = [(1, "plain", "plain", 1.5, "2024-02-29"),
            (2, "nul", "a\x00b", None, None),
            (3, "bad-utf8", None, None, None),
            (4, "nan-text", None, "NaN", None),
            (5, "infinity-text", None, "Infinity", None),
            (6, "infinity-real", None, float("inf"), None),
            (7, "minus-infinity-real", None, float("-inf"), None),
            (8, "year-0", None, None, "0000-01-01"),
            (9, "year-10000", None, None, "10000-01-01"),
            (10, "emoji-and-rtl", "😀 \u202eabc \u200b", None, None)]
    db.executemany("INSERT INTO vals VALUES (?, ?, ?, ?, ?)", rows)
    db.execute("UPDATE vals SET t = CAST(X'6162FF63' AS TEXT) WHERE id = 3")
    db.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, b BLOB)")
    db.execute("INSERT INTO big VALUES (1, ?, ?)", (BIG_TEXT, BIG_BLOB))
    db.commit()
    db.close()
    return path


BIG_TEXT = ("0123456789abcdef" * (MB // 16)) * 10  # 10 MB
BIG_BLOB = hashlib.sha256(b"blob").digest() * (12 * MB // 32)  # 12 MB


def _migrate(golive, source: Path, target: str, tmp_path: Path, *options: str):
    res = golive("migrate", "db", "--source", source, "--target", target, "--report", tmp_path / "r.json",
                 "--rejects", tmp_path / "rejects.jsonl", "--drop-existing", *options, timeout=240)
    report = json.loads((tmp_path / "r.json").read_text())
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    return res, report, {(r["table"], r["key"]["id"]): r for r in rejects}


def test_hostile_names_and_values_into_postgresql(golive, hostile_db, pg_db, tmp_path):
    import psycopg

    res, report, rejected = _migrate(golive, hostile_db, pg_db, tmp_path)
    assert res.code == 1, res
    assert status_line(res, "rows written").startswith("FAILED")
    targets = {t["source"]: t["target"] for t in report["tables"]}
    long = [n for n in NAMES if len(n.encode()) > 63]
    assert {r["source"] for r in report["renamed"]} >= set(long)
    assert all(len(targets[n].encode()) <= 63 for n in long) and len({targets[n] for n in long}) == len(long)
    # the rows golive rejected, each with its reason; nothing else is missing
    assert set(rejected) == {("vals", 2), ("vals", 3), ("vals", 8)}, rejected
    assert "NUL" in rejected["vals", 2]["reason"] and "UTF-8" in rejected["vals", 3]["reason"]
    with psycopg.connect(pg_db) as conn:
        for n in NAMES:
            t = targets[n]
            cols = [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                                               "AND attnum > 0 ORDER BY attnum", (psycopg.sql.Identifier(t)
                                                                                  .as_string(conn),))]
            row = conn.execute(psycopg.sql.SQL("SELECT * FROM {}").format(psycopg.sql.Identifier(t))).fetchall()
            assert row == [(1, n, 2)], (n, t, row)
            assert cols[0] == "id" and len(cols) == 3
        got = dict(conn.execute("SELECT kind, row(t, r::text, d::text)::text FROM vals").fetchall())
        assert got["plain"] == "(plain,1.5,2024-02-29)"
        assert got["nan-text"] == "(,NaN,)" and got["infinity-text"] == "(,Infinity,)"
        assert got["infinity-real"] == "(,Infinity,)" and got["minus-infinity-real"] == "(,-Infinity,)"
        assert got["year-10000"] == "(,,10000-01-01)"  # PostgreSQL's dates go to 5874897 AD
        assert conn.execute("SELECT t FROM vals WHERE kind = 'emoji-and-rtl'").fetchone()[0] == "😀 \u202eabc \u200b"
        t, b = conn.execute("SELECT t, b FROM big").fetchone()
        assert t == BIG_TEXT and bytes(b) == BIG_BLOB
        assert conn.execute('SELECT parent FROM kids').fetchone()[0] == 1
        assert conn.execute('SELECT "Ä", "ä" FROM twins').fetchone() == ("upper", "lower")


def test_hostile_names_and_values_into_mariadb(golive, hostile_db, my_db, tmp_path):
    import pymysql

    from golive.dialects.mysql.session import connect_kwargs
    from golive.urls import parse_url

    # what MySQL decides for itself: names over 64 characters, case twins, values it cannot store (the rest of the
    # names went through the same code into PostgreSQL)
    mine = [NAMES[0], "ÄRGER", "ärger", "l" * 70 + "a", "l" * 70 + "b", "twins", "vals", "big"]
    res, report, rejected = _migrate(golive, hostile_db, my_db, tmp_path, "--tables", ",".join(mine))
    assert res.code == 1, res
    assert status_line(res, "rows written").startswith("FAILED")
    targets = {t["source"]: t["target"] for t in report["tables"]}
    assert ("vals", 3) in rejected and "UTF-8" in rejected["vals", 3]["reason"], rejected
    conn = pymysql.connect(**connect_kwargs(parse_url(my_db)))
    try:
        with conn.cursor() as cur:
            for n in [n for n in NAMES if n in mine]:
                t = targets[n]
                cur.execute(f"SELECT * FROM `{t.replace('`', '``')}`")
                assert cur.fetchall() == ((1, n, 2),), (n, t)
            cur.execute("SELECT kind, t, r, CAST(d AS CHAR) FROM vals")
            got = {r[0]: r[1:] for r in cur.fetchall()}
            assert got["plain"] == ("plain", 1.5, "2024-02-29")
            assert got["emoji-and-rtl"][0] == "😀 \u202eabc \u200b"
            # MySQL has no NaN or infinite doubles, and DATE ends in 9999: rejected with the server's reason
            for kind, key in (("nan-text", 4), ("infinity-text", 5), ("infinity-real", 6), ("minus-infinity-real", 7),
                              ("year-10000", 9)):
                assert kind not in got and rejected["vals", key]["reason"], (kind, got.get(kind))
            # a NUL byte and year 0 MariaDB can store: equal, or rejected with the reason
            assert got["nul"] == ("a\x00b", None, None) if "nul" in got else rejected["vals", 2]["reason"]
            assert got["year-0"] == (None, None, "0000-01-01") if "year-0" in got else rejected["vals", 8]["reason"]
            cur.execute("SELECT md5(t), length(t), md5(b), length(b) FROM big")  # a row over max_allowed_packet
            assert cur.fetchone() == (hashlib.md5(BIG_TEXT.encode()).hexdigest(), len(BIG_TEXT),
                                      hashlib.md5(BIG_BLOB).hexdigest(), len(BIG_BLOB))
            cur.execute("SELECT * FROM twins")  # "Ä" and "ä" are one name to MySQL: one of them renamed
            assert cur.fetchall() == ((1, "upper", "lower"),)
    finally:
        conn.close()


# ---------------------------------------------------------------- upload folders

def test_hostile_upload_folder(golive, s3, bucket, s3_endpoint, tmp_path):
    up = tmp_path / "uploads"
    (up / "...").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the folder")
    files = {"empty.bin": b"", ".../dots.txt": b"three dots", "..\\..\\win.txt": b"backslashes",
             "..a": b"two dots then a", "-rf": b"a dash", "name with spaces & ü.txt": b"spaces"}
    for rel, data in files.items():
        (up / rel).write_bytes(data)
    with open(up / "sparse.bin", "wb") as fh:  # 12 MB, no disk blocks: goes up in parts
        fh.truncate(12 * MB)
    os.symlink(outside, up / "link-out")
    os.symlink("../../..", up / "link-up")
    (up / "new\nline.txt").write_bytes(b"x")
    (up / os.fsdecode(b"bad\xffname.txt")).write_bytes(b"x")
    res = golive("migrate", "files", "--source", up, "--dest", f"s3://{bucket}/media", "--endpoint-url",
                 s3_endpoint, "--multipart-threshold-mb", "5", "--workers", "2", "--report", tmp_path / "r.json",
                 timeout=120)
    assert res.code == 1, res
    line = status_line(res, "problem(s)")
    assert "uploaded 7 files" in line and "4 problem(s)" in line, line
    problems = {p["path"]: p["kind"] for p in json.loads((tmp_path / "r.json").read_text())["problems"]}
    assert problems == {"link-out": "symlink", "link-up": "symlink", "new\\nline.txt": "invalid-name",
                        "bad\\xffname.txt": "invalid-name"}, problems
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(keys) == {f"media/{rel}" for rel in [*files, "sparse.bin"]}, keys
    for rel, data in files.items():
        assert s3.get_object(Bucket=bucket, Key=f"media/{rel}")["Body"].read() == data
    body = s3.get_object(Bucket=bucket, Key="media/sparse.bin")["Body"].read()
    assert len(body) == 12 * MB and body.count(0) == 12 * MB


# ---------------------------------------------------------------- golive.toml

GOOD = """\
[source]
database = "sqlite:///app.db"
uploads = "uploads"
[target]
database = "postgresql://app@127.0.0.1:1/app"
bucket = "s3://media/uploads"
"""
REWRITE = """
[[rewrite]]
table = "images"
column = "path"
template = "s3://media/{key}"
"""


def _toml(text: str | bytes, *command: str):
    def argv(d: Path, pg: str) -> list:
        (d / "golive.toml").write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["go-live", *(command or ["--dry-run"]), "--config", d / "golive.toml"]
    return argv


QUICK += [
    ("toml-unknown-key", _toml(GOOD.replace("[target]", "[target]\nbukcet = 'x'")), 2,
     "target.bukcet: Extra inputs are not permitted"),
    ("toml-wrong-type", _toml(GOOD + "[migrate]\nworkers = 'four'\n"), 2,
     "migrate.workers: Input should be a valid integer"),
    ("toml-duplicate-rewrite", _toml(GOOD + REWRITE + REWRITE), 2, "rewrite: images.path is listed twice"),
    ("toml-duplicate-key", _toml(GOOD + "[source]\nuploads = 'x'\n"), 2, "not valid TOML"),
    ("toml-bucket-traversal", _toml(GOOD.replace("s3://media/uploads", "s3://media/../../etc")), 2,
     "target.bucket: destination 's3://media/../../etc': the prefix has a '.' or '..' segment"),
    ("toml-backup-traversal", _toml(GOOD + "[backup]\nto = 's3://backups/app/../other'\n"), 2,
     "backup.to: destination 's3://backups/app/../other': the prefix has a '.' or '..' segment"),
    ("toml-not-utf8", _toml(GOOD.replace("app.db", "\xe4pp.db").encode("latin-1")), 2,
     "golive.toml: not UTF-8 (byte 0xe4"),
    ("toml-byte-order-mark", _toml(b"\xef\xbb\xbf" + GOOD.encode(), "status"), 0, None),
]


# ---------------------------------------------------------------- backup IDs that are paths

def _backup(*args: str):
    def argv(d: Path, pg: str) -> list:
        return [a.replace("PG", pg) for a in args] + ["--endpoint-url", "http://127.0.0.1:1"]
    return argv


QUICK += [
    ("backup-id-dotdot", _backup("restore", "--from", "file:///tmp/backups/../../etc", "--to", "PG"), 2,
     "names no backup: add /<ID> or /latest"),
    ("backup-prefix-dotdot", _backup("restore", "--from", "s3://backups/app/../20261202T031500.123Z-app", "--to",
                                     "PG"), 2, "the prefix has a '.' or '..' segment"),
    ("backup-latest-dotdot", _backup("backups", "verify", "s3://backups/app/../../latest"), 2,
     "the prefix has a '.' or '..' segment"),
    ("backup-relative-path", _backup("backups", "verify", "../../etc/20261202T031500.123Z-app"), 2,
     "is not a backup URL"),
    ("backup-dot", _backup("backups", "list", "--at", "s3://backups/./app"), 2, "the prefix has a '.' or '..' segment"),
    ("files-dest-dotdot", lambda d, pg: ["migrate", "files", "--source", d, "--dest", "s3://media/../other/x"], 2,
     "destination 's3://media/../other/x': the prefix has a '.' or '..' segment"),
]


# ---------------------------------------------------------------- release folders

def _release(files: dict[str, bytes], *options: str):
    def argv(d: Path, pg: str) -> list:
        (d / "migrations").mkdir()
        for name, data in files.items():
            (d / "migrations" / name).write_bytes(data)
        return ["release", "--db", pg, "--migrations", f"sql:{d / 'migrations'}", *options]
    return argv


QUICK += [
    ("release-same-number", _release({"1_a.sql": b"SELECT 1;", "001_b.sql": b"SELECT 2;"}), 2,
     "001_b.sql and 1_a.sql have the same number"),
    ("release-not-utf8", _release({"1_a.sql": b"SELECT 1;\nSELECT '\xe4';"}), 2,
     "1_a.sql: not UTF-8 (byte 0xe4 on line 2); save it as UTF-8"),
    ("release-lint-not-utf8", _release({"1_a.sql": b"SELECT '\xe4';"}, "--lint-only"), 2, None),
]


# ---------------------------------------------------------------- the quick cases, run at once

def _run(args: list, cwd: Path, timeout: float = 120):
    import subprocess
    import sys

    from conftest import CliResult

    return CliResult(subprocess.run([sys.executable, "-m", "golive", *map(str, args)], capture_output=True, text=True,
                                    timeout=timeout, cwd=str(cwd)))


@pytest.fixture(scope="module")
def quick(prefect_api, pg_db, tmp_path_factory) -> dict:
    """Every quick case (refused before any work starts) run at once, three at a time: case -> result."""
    from concurrent.futures import ThreadPoolExecutor

    def one(case):
        name, argv = case[0], case[1]
        d = tmp_path_factory.mktemp(name)
        return name, _run(argv(d, pg_db), d)

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(one, QUICK))


@pytest.mark.parametrize("case, code, says", [(c[0], c[2], c[3]) for c in QUICK], ids=[c[0] for c in QUICK])
def test_refused_in_one_line(quick, case, code, says):
    res = quick[case]
    if says is None:  # a report on stdout; on stderr at most the one line saying the outcome
        check_output(res)
        assert res.code == code and len([x for x in res.err.splitlines() if x.strip()]) <= 1, res
        return
    line = one_error_line(res)
    assert res.code == code and says in line, line

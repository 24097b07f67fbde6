"""MySQL / MariaDB bulk loads: one chunk streamed into ``LOAD DATA LOCAL INFILE``, strictly.

* **Loading.** Each chunk is streamed into ``LOAD DATA LOCAL INFILE`` straight from the source's batches
  (PyMySQL asks golive for the "file" by name; no file, no FIFO, nothing on disk), inside one transaction
  that also records the chunk in ``_golive_chunks``, so a chunk lands exactly once. Values that need a
  conversion are read into user variables and set (``SET c = UNHEX(@c)``). A server without
  ``local_infile`` is said so and loaded with multi-row INSERTs instead.
* **Strict.** The session's ``sql_mode`` is strict, and because LOAD DATA LOCAL behaves as IGNORE (errors
  become warnings and values change silently), the warnings are read after every load: any warning is a
  refusal, the chunk is redone row by row, and the row is rejected with the server's reason.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from contextlib import contextmanager

from golive.dialects.mysql.bookkeeping import MySQLBookkeeping
from golive.dialects.mysql.session import connect as open_session, qi, translate_error
from golive.model.plan import ChunkPlan, MigrationPlan, TablePlan
from golive.model.results import ChunkResult, Refused
from golive.model.types import CT
from golive.urls import DatabaseURL

log = logging.getLogger(__name__)


#: strict: nothing is truncated or converted silently (MySQL's non-strict mode does both)
STRICT = ("STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO,"
          "NO_ENGINE_SUBSTITUTION")
#: MySQL to MySQL keeps zero dates as the source has them
STRICT_KEEP_ZERO = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
LOAD_SETTINGS = {"time_zone": "+00:00", "foreign_key_checks": 0, "unique_checks": 1, "max_error_count": 64,
                 "character_set_client": "utf8mb4"}


def _settings(plan: MigrationPlan) -> dict:
    return dict(LOAD_SETTINGS, sql_mode=STRICT_KEEP_ZERO if plan.source_dialect == "mysql" else STRICT)


def connect(url: DatabaseURL, plan: MigrationPlan | None = None, **kw):
    """A session of the target: a chunk's load in the plan's strict mode; the DDL sessions after the load (keys,
    foreign keys, views) keep zero dates, so an ALTER TABLE of a table with a zero-date default (MySQL to MySQL)
    is not refused (no row is written in them)."""
    settings = _settings(plan) if plan is not None else {"time_zone": "+00:00", "sql_mode": STRICT_KEEP_ZERO}
    return open_session(url, settings=settings, role="target", **kw)


# ---------------------------------------------------------------------- streaming LOAD DATA LOCAL INFILE

_streams: dict[str, object] = {}
_streams_lock = threading.Lock()


def _install_stream_loader() -> None:
    """Teach PyMySQL to answer a LOAD DATA LOCAL request for ``golive-stream:<id>`` from an iterator of bytes
    (PyMySQL reads the file the server names back in ``connections._send_local_file``; others pass through)."""
    import pymysql.connections as pc

    if getattr(pc._send_local_file, "_golive", False):
        return
    original = pc._send_local_file

    def send(filename, conn):
        name = filename.decode() if isinstance(filename, bytes) else filename
        with _streams_lock:
            source = _streams.pop(name, None)
        if source is None:
            return original(filename, conn)
        for blob in source:  # the caller sends the empty packet that ends the file
            for i in range(0, len(blob), 1 << 20):
                conn.write_packet(blob[i:i + (1 << 20)])

    send._golive = True
    pc._send_local_file = send


def column_list(tp: TablePlan) -> tuple[str, str]:
    """The LOAD DATA column list and its SET clause (values that need a conversion go through @variables)."""
    cols, sets = [], []
    for i, c in enumerate(x for x in tp.columns if not x.generated_sql):
        conv = _conversion(c)
        if conv is None:
            cols.append(qi(c.target))
        else:
            var = f"@v{i}"
            cols.append(var)
            sets.append(f"{qi(c.target)} = {conv % var}")
    return ", ".join(cols), (" SET " + ", ".join(sets)) if sets else ""


def _conversion(c) -> str | None:
    ct = c.type.ct
    st = c.sql_type.upper()
    if st.startswith("BIT"):
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.BINARY or (ct == CT.GEOMETRY and "BLOB" in st):
        return "UNHEX(%s)"
    if ct == CT.GEOMETRY:
        return "ST_GeomFromWKB(UNHEX(%s))"
    if ct == CT.BITS:
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.NATIVE and st.startswith(("BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB")):
        return "UNHEX(%s)"
    if ct == CT.NATIVE and st.startswith("BIT"):
        return "CAST(CONV(%s, 2, 10) AS UNSIGNED)"
    if ct == CT.NATIVE and st.split("(")[0] in ("GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT",
                                                 "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"):
        return "ST_GeomFromWKB(UNHEX(%s))"
    return None


_ROW_RE = re.compile(r"\bat row (\d+)", re.I)
_COL_RE = re.compile(r"column [`'\"]?(?:[^`'\"]+[`'\"]?\.[`'\"]?)*([^`'\".]+)[`'\"]? at row", re.I)


class ChunkWriter:
    """One chunk's session on MySQL: bookkeeping, LOAD DATA in one transaction, warnings as refusals."""

    def __init__(self, target: DatabaseURL, plan: MigrationPlan, tp: TablePlan, chunk: ChunkPlan, conn=None):
        """``conn``: a session of the caller's (opened with ``connect(…, local_infile=True)``), whose transaction
        the caller manages (online migration's batches); else one of its own."""
        self.plan, self.tp, self.chunk = plan, tp, chunk
        self.what = f"copying {tp.source} chunk {chunk.no}"
        self.conn = conn if conn is not None else connect(target, plan, local_infile=True)
        self.book = MySQLBookkeeping(self.conn)
        self.cols, self.sets = column_list(tp)
        # MySQL to MySQL, an ENUM keeps its labels: the only value the load can truncate in it is the ENUM's ''
        # error value (stored by an app in non-strict mode), which the load stores as the same '' (code 1265)
        self.error_value_cols = ({c.target.lower() for c in tp.columns if c.sql_type.upper().startswith("ENUM(")}
                                 if plan.source_dialect == "mysql" else set())
        self._depth = 0
        self._n = 0
        with self.conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.local_infile")
            self.infile = bool(int(cur.fetchone()[0]))
        _install_stream_loader()

    def done(self) -> dict | None:
        try:
            prev = self.book.chunk_done(self.plan.run_key, self.tp.source, self.chunk.no)
            self.conn.commit()
        except Exception as exc:
            raise translate_error(exc, self.what) from None
        return prev

    @contextmanager
    def transaction(self):
        self._depth += 1
        self._n += 1
        savepoint = f"golive_{self._n}"
        try:
            with self.conn.cursor() as cur:
                cur.execute("BEGIN" if self._depth == 1 else f"SAVEPOINT {savepoint}")
            try:
                yield
            except BaseException:
                with self.conn.cursor() as cur:
                    cur.execute("ROLLBACK" if self._depth == 1 else f"ROLLBACK TO SAVEPOINT {savepoint}")
                raise
            if self._depth == 1:
                self.conn.commit()
            else:
                with self.conn.cursor() as cur:
                    cur.execute(f"RELEASE SAVEPOINT {savepoint}")
        except Refused:
            raise
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        finally:
            self._depth -= 1

    def load(self, batches) -> int:
        """LOAD DATA the lines (streamed); any warning is a refusal naming the row."""
        if not self.infile:
            return self._insert(batches)
        name = f"golive-stream:{uuid.uuid4().hex}"
        with _streams_lock:
            _streams[name] = batches
        sql = (f"LOAD DATA LOCAL INFILE '{name}' INTO TABLE {qi(self.tp.target)} CHARACTER SET utf8mb4 "
               f"FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '''' ESCAPED BY '' LINES TERMINATED BY '\\n' "
               f"({self.cols}){self.sets}")
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                n = cur.rowcount
                warnings = self._warnings(cur)
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        finally:
            with _streams_lock:
                _streams.pop(name, None)
        if warnings:
            level, code, message = warnings[0]
            raise _refusal(message)
        return n

    def _warnings(self, cur) -> list[tuple]:
        """The load's warnings, but for the ENUM error value copied as itself; every warning when some went
        unshown (over ``max_error_count``), so the row-by-row path decides."""
        cur.execute("SHOW WARNINGS")
        shown = [tuple(r) for r in cur.fetchall()]
        if not shown or not self.error_value_cols:
            return shown
        left = [w for w in shown if not (w[1] == 1265 and (m := _COL_RE.search(w[2] or ""))
                                         and m.group(1).lower() in self.error_value_cols)]
        if left:
            return left
        cur.execute("SHOW COUNT(*) WARNINGS")
        total = int(cur.fetchone()[0])
        return shown if total > len(shown) else []

    def _insert(self, batches) -> int:
        """Without local_infile: the wire lines parsed and inserted in multi-row INSERTs (slower, as strict)."""
        rows = [r for blob in batches for r in parse_wire(blob)]
        if not rows:
            return 0
        placeholders = []
        for c in (x for x in self.tp.columns if not x.generated_sql):
            conv = _conversion(c)
            placeholders.append(conv % "%s" if conv else "%s")
        names = ", ".join(qi(c.target) for c in self.tp.columns if not c.generated_sql)
        sql = f"INSERT INTO {qi(self.tp.target)} ({names}) VALUES ({', '.join(placeholders)})"
        n = 0
        try:
            with self.conn.cursor() as cur:
                for i in range(0, len(rows), 500):
                    try:
                        n += cur.executemany(sql, rows[i:i + 500]) or 0
                    except Exception as exc:
                        refusal = _refused_or(exc, self.what)
                        if isinstance(refusal, Refused) and len(rows) == 1:
                            raise refusal
                        raise Refused(getattr(refusal, "reason", str(refusal)), line=None) from None
                    warnings = self._warnings(cur)
                    if warnings:
                        raise _refusal(warnings[0][2], offset=i)
        except Refused:
            raise
        except Exception as exc:
            raise _refused_or(exc, self.what) from None
        return n

    def record(self, result: ChunkResult, digest: str) -> None:
        self.book.record_chunk(self.plan.run_key, self.tp.source, self.chunk.no, result.rows_read,
                               result.rows_written, result.rejects, result.seconds, result.converted, digest)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _refusal(message: str, offset: int = 0) -> Refused:
    m = _ROW_RE.search(message or "")
    col = _COL_RE.search(message or "")
    return Refused(message, row=(int(m.group(1)) + offset) if m else None, column=col.group(1) if col else None)


#: MySQL error codes that mean "this row's data": the chunk is redone row by row
_DATA_CODES = {1048, 1062, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1416, 1452, 3140, 4025, 1690, 1105, 1300,
               1301, 3819, 4078}


def _refused_or(exc: BaseException, what: str):
    args = getattr(exc, "args", ())
    code = args[0] if args and isinstance(args[0], int) else 0
    if code in _DATA_CODES:
        return _refusal(str(args[1]) if len(args) > 1 else str(exc))
    return translate_error(exc, what)


def parse_wire(blob: bytes) -> list[tuple]:
    """The wire format's rows (quoted fields, '' for a quote, bare NULL) as tuples of str/None."""
    out, row, i, n = [], [], 0, len(blob)
    text = blob.decode("utf-8")
    n = len(text)
    while i < n:
        if text[i] == "'":
            j = i + 1
            buf = []
            while True:
                k = text.index("'", j)
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == "'":
                    buf.append("'")
                    j = k + 2
                    continue
                i = k + 1
                break
            row.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in ",\n":
                j += 1
            word = text[i:j]
            row.append(None if word == "NULL" else word)
            i = j
        if i < n and text[i] == ",":
            i += 1
        elif i < n and text[i] == "\n":
            out.append(tuple(row))
            row = []
            i += 1
    if row:
        out.append(tuple(row))
    return out

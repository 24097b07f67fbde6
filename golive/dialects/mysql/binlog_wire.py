"""The binlog read off the wire for the catch-up: the copied tables' changed keys, their queries, the transactions'
ends, without the library's objects.

``mysql-replication`` builds a packet wrapper and an event object for every event, and (about five events a
change: GTID, table map, rows, XID, and a BEGIN on MySQL) that was most of the MariaDB catch-up's time. golive
needs little of an event: a row event's table and key columns, a query's text (DDL, statement writes, XA), where
each transaction ends. ``events`` sends ``COM_BINLOG_DUMP`` itself (non-blocking: the server ends the stream at
the binlog's end), reads the packets off PyMySQL's socket and yields those, the keys read from the row images'
bytes with each table map's layout worked out once.

What it cannot read exactly it does not guess: a partial JSON update, a key column of a type other than an integer
or a string, a column whose size it cannot tell, row images that do not end where their event ends. It raises
``Unsupported`` and the caller reads the same range with the library (``binlog.read_changes``), which decodes every
column. A compressed event (MariaDB ``log_bin_compress``, a MySQL 8 transaction payload) stops the run with the
fix: the library would skip it, and its changes with it (the pre-check refuses those settings up front).

The protocol, as MySQL's and MariaDB's replication documentation give it: a binlog event is a 19-byte header
(timestamp, type, server id, size, the position after it, flags), its body, and a CRC32 when the server's
``binlog_checksum`` says so; a table map numbers a table definition for the row events that follow it.
"""

from __future__ import annotations

import random
import struct

from golive.errors import TerminalError
from golive.model.capture import Change, SchemaChanged

COM_BINLOG_DUMP = 0x12
NON_BLOCK = 0x01
QUERY, ROTATE, XID, TABLE_MAP = 2, 4, 16, 19
ROWS = {23: "write", 24: "update", 25: "delete", 30: "write", 31: "update", 32: "delete"}
#: events whose bytes this reader does not read (the library does): a partial JSON update (MySQL 8)
UNREADABLE = {39}
#: compressed events, which no reader golive has reads: a MySQL 8 transaction payload
#: (``binlog_transaction_compression``), MariaDB's compressed query and row events (``log_bin_compress``)
COMPRESSED = {40, 165, 166, 167, 168, 169, 170, 171}
COMPRESSED_FIX = ("the source's binlog holds compressed events (log_bin_compress on MariaDB, "
                  "binlog_transaction_compression on MySQL), whose rows golive cannot read: turn it off "
                  "(SET GLOBAL log_bin_compress = OFF, or binlog_transaction_compression = OFF, and in my.cnf), then "
                  "run the same command with --drop-existing")
#: (type) -> bytes of a value: integers, floats, dates and old times
_FIXED = {1: 1, 2: 2, 9: 3, 3: 4, 8: 8, 4: 4, 5: 8, 13: 1, 10: 3, 11: 3, 12: 8, 7: 4}
_INTS = {1, 2, 3, 8, 9}
_STRINGS = {15, 254}  # VARCHAR, STRING (CHAR, BINARY)
_LENGTHED = {245, 252, 255}  # JSON, BLOB, GEOMETRY: a length of metadata bytes, then the value
_DECIMAL_BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
_HEADER = struct.Struct("<IBIIIH")


class Unsupported(Exception):
    """An event or a column this reader does not read: the library reads the range instead."""


def _packed(b: bytes, at: int) -> tuple[int, int]:
    """A length-encoded integer at ``at``: (value, the offset after it)."""
    first = b[at]
    if first < 251:
        return first, at + 1
    size = {252: 2, 253: 3, 254: 8}.get(first)
    if size is None:
        raise Unsupported(f"a length byte {first} in a table map")
    return int.from_bytes(b[at + 1:at + 1 + size], "little"), at + 1 + size


class TableMap:
    """A table map's layout: each column's width (0: its length comes first, in ``size_of[i]`` bytes), and how the
    key columns are read. ``layout`` is None when a column's size cannot be told (the library reads that table)."""

    __slots__ = ("schema", "table", "count", "names", "widths", "size_of", "types")

    def __init__(self, body: bytes):
        self.schema, at = _name(body, 8)
        self.table, at = _name(body, at)
        self.count, at = _packed(body, at)
        types = list(body[at:at + self.count])
        at += self.count
        meta_len, at = _packed(body, at)
        meta, at = body[at:at + meta_len], at + meta_len
        at += (self.count + 7) // 8  # the nullable columns
        widths, size_of, m = [], [], 0
        for i, t in enumerate(types):
            w, size = None, 0
            if t in _FIXED:
                w = _FIXED[t]
                m += 1 if t in (4, 5) else 0
            elif t in (17, 18, 19):  # TIMESTAMP2, DATETIME2, TIME2: then (fsp + 1) // 2 bytes
                w, m = {17: 4, 18: 5, 19: 3}[t] + (meta[m] + 1) // 2, m + 1
            elif t == 15:  # VARCHAR: its maximum length in bytes says 1 or 2 length bytes
                w, size, m = 0, (int.from_bytes(meta[m:m + 2], "little") > 255) + 1, m + 2
            elif t == 254:  # STRING; ENUM and SET travel as one, their real type in the metadata
                real, low = meta[m], meta[m + 1]
                if real in (247, 248):
                    types[i], w = real, low
                else:  # CHAR: its maximum length in bytes, the high bits kept in the real type's byte
                    longest = ((((real << 8) >> 4) & 0x300) ^ 0x300) + low
                    w, size = 0, 2 if longest > 255 else 1
                m += 2
            elif t in _LENGTHED:
                w, size, m = 0, meta[m], m + 1
            elif t == 246:  # NEWDECIMAL: 4 bytes per 9 digits, fewer for the rest
                whole, frac = meta[m] - meta[m + 1], meta[m + 1]
                w, m = (whole // 9 + frac // 9) * 4 + _DECIMAL_BYTES[whole % 9] + _DECIMAL_BYTES[frac % 9], m + 2
            elif t == 16:  # BIT: bits, bytes
                w, m = (meta[m + 1] * 8 + meta[m] + 7) // 8, m + 2
            elif t == 6:  # NULL
                w = 0
                size = 0
            widths.append(w)
            size_of.append(size)
        self.widths, self.size_of, self.types = widths, size_of, types
        self.names = _column_names(body, at, self.count)


def _name(body: bytes, at: int) -> tuple[str, int]:
    n = body[at]
    return body[at + 1:at + 1 + n].decode("utf-8", "replace"), at + 2 + n


def _column_names(body: bytes, at: int, count: int) -> list[str] | None:
    """The columns' names from the optional metadata (``binlog_row_metadata = FULL``), else None."""
    while at < len(body):
        kind = body[at]
        size, at = _packed(body, at + 1)
        if kind == 4:  # COLUMN_NAME
            names, p, end = [], at, at + size
            while p < end:
                n, p = _packed(body, p)
                names.append(body[p:p + n].decode("utf-8", "replace"))
                p += n
            return names if len(names) == count else None
        at += size
    return None


class Reader:
    """Keys of the copied tables' row events (and the children an ON UPDATE CASCADE moved), with the layouts and
    each present-columns bitmap's steps worked out once.

    ``cascades``: the capture's ON UPDATE CASCADE foreign keys; for an update of a parent's referenced columns,
    ``children(fk, new values)`` finds the children (the binlog does not show them)."""

    def __init__(self, database: str, tables: dict, check_columns, *, cascades=(), children=None):
        self.database, self.tables, self.check_columns = database, tables, check_columns
        self.children = children
        self.by_parent: dict[str, list] = {}
        for fk in cascades:
            self.by_parent.setdefault(fk["parent"], []).append(fk)
        self.maps: dict[int, TableMap | None] = {}
        self.parsed: dict[bytes, TableMap | None] = {}  # a table map's bytes repeat in every transaction
        self.plans: dict[tuple, tuple] = {}
        self.wanted: dict[str, tuple] = {}

    def table_map(self, body: bytes) -> None:
        table_id = int.from_bytes(body[:6], "little")
        try:
            tm = self.parsed[body]
        except KeyError:
            schema, _ = _name(body, 8)
            tm = TableMap(body) if schema == self.database else None
            if tm is not None and tm.table not in self.tables:
                tm = None
            if len(self.parsed) > 10_000:
                self.parsed.clear()
            self.parsed[body] = tm
        self.maps[table_id] = tm

    def rows(self, etype: int, body):
        """``(table, [Change])`` of a row event of a copied table, else None."""
        tm = self.maps.get(int.from_bytes(body[:6], "little"))
        if tm is None:
            return None
        at = 8
        if etype >= 30:  # v2: extra data, its length counting its own two bytes
            at += int.from_bytes(body[8:10], "little")
        n, at = _packed(body, at)
        spec = self.tables[tm.table]
        if n != tm.count:
            raise Unsupported("a row event and its table map disagree")
        self.check_columns(tm.table, n, tm.names, spec)
        cols, bits, charsets, fks = self._wanted(tm.table, spec)
        update = ROWS[etype] == "update"
        nb = (n + 7) // 8
        images = [body[at:at + nb]]
        at += nb
        if update:
            images.append(body[at:at + nb])
            at += nb
        steps = [self._steps(tm, bytes(bm), cols, charsets, "charsets" in spec) for bm in images]
        pairs = _read_rows(body, at, steps, len(cols), bits)
        t, deleted, nkey = tm.table, ROWS[etype] == "delete", len(spec["key"])
        out = []
        for old, new in pairs:
            out.append(Change(table=t, key=new[:nkey], deleted=deleted))
            if update and old[:nkey] != new[:nkey]:  # the key changed: the old row is gone
                out.append(Change(table=t, key=old[:nkey], deleted=True))
        for fk, slots in fks if update else ():
            for old, new in pairs:
                if [old[j] for j in slots] != [new[j] for j in slots]:
                    out.extend(self.children(fk, [new[j] for j in slots]))
        return t, out

    def _wanted(self, table: str, spec: dict) -> tuple:
        """The columns read from a table's images: its key's, then the referenced columns of the ON UPDATE CASCADE
        foreign keys it is the parent of; with their UNSIGNED bits and character sets, and each such key's slots."""
        got = self.wanted.get(table)
        if got is None:
            cols, bits = list(spec["key"]), list(spec["unsigned"])
            charsets = list(spec.get("charsets") or [None] * len(cols))
            fks = []
            for fk in self.by_parent.get(table, []):
                ref = fk["ref_at"]
                for i, b, cs in zip(ref, fk.get("ref_unsigned") or [0] * len(ref),
                                    fk.get("ref_charsets") or [None] * len(ref)):
                    if i not in cols:
                        cols.append(i)
                        bits.append(b)
                        charsets.append(cs)
                fks.append((fk, [cols.index(i) for i in ref]))
            got = self.wanted[table] = (cols, bits, charsets, fks)
        return got

    def _steps(self, tm: TableMap, bitmap: bytes, cols: list, charsets: list, known: bool) -> tuple:
        """For one present-columns bitmap: the null bitmap's bytes, ``[(width, length bytes, slot, how)]`` and the
        same for an image without NULLs (``_program``)."""
        k = (id(tm), bitmap)
        got = self.plans.get(k)
        if got is not None:
            return got
        slots = {c: j for j, c in enumerate(cols)}
        steps = []
        for i in range(tm.count):
            if not bitmap[i >> 3] & (1 << (i & 7)):
                continue
            w, slot, how = tm.widths[i], slots.get(i, -1), None
            if w is None:
                raise Unsupported(f"column {i + 1} of {tm.table}: a type whose size this reader does not know")
            if slot >= 0:
                t = tm.types[i]
                if t in _INTS:
                    how = "int"
                elif t in _STRINGS:
                    how = _encoding(charsets[slot], known)
                else:
                    raise Unsupported(f"a key column of {tm.table}: a type this reader does not decode")
            steps.append((w, tm.size_of[i] if not w else 0, slot, how))
        if len(self.plans) > 10_000:
            self.plans.clear()
        got = self.plans[k] = ((len(steps) + 7) // 8, steps, _program(steps))
        return got


def _program(steps: list) -> list[tuple]:
    """The steps of an image without NULLs, runs of fixed-size columns that are not key columns joined into one
    skip: ``(bytes to skip, length bytes, key slot, how)``."""
    out: list[list] = []
    for w, size, slot, how in steps:
        if slot < 0 and w and out and out[-1][2] < 0 and out[-1][0] and not out[-1][1]:
            out[-1][0] += w
        else:
            out.append([w, size if not w else 0, slot, how])
    return [tuple(x) for x in out]


def _encoding(charset: str | None, known: bool) -> str | None:
    """How a string key's bytes become its value: its character set's codec; None: the bytes (a binary column)."""
    if not known:  # a capture begun by an older golive: utf-8, as the library reads a key without metadata
        return "utf-8"
    if charset is None or charset.lower() == "binary":
        return None
    from pymysql.charset import charset_by_name

    cs = charset_by_name(charset)
    return cs.encoding if cs is not None else "utf-8"


def _read_rows(body, at: int, images: list, nkey: int, unsigned: list) -> list[tuple[tuple, tuple]]:
    """``[(values before, values after)]`` of a row event's images: the ``nkey`` wanted columns' values."""
    out, end = [], len(body)
    frombytes = int.from_bytes
    while at < end:
        pair = []
        for nbytes, steps, program in images:
            nulls = frombytes(body[at:at + nbytes], "little")
            at += nbytes
            key = [None] * nkey
            if not nulls:  # the usual image: no NULL, fixed runs skipped at once
                steps = program
            for j, (w, size, slot, how) in enumerate(steps):
                if nulls and nulls >> j & 1:
                    continue
                if size:
                    w = frombytes(body[at:at + size], "little")
                    at += size
                if slot >= 0:
                    raw = body[at:at + w]
                    if how == "int":
                        v = frombytes(raw, "little", signed=True)
                        bits = unsigned[slot]
                        key[slot] = v + (1 << bits) if bits and v < 0 else v
                    elif how is None:
                        key[slot] = bytes(raw)
                    else:
                        key[slot] = str(raw, how, "ignore")
                at += w
            pair.append(tuple(key))
        out.append((pair[0], pair[-1]))
    if at != end:  # the widths were wrong: never a guessed key
        raise Unsupported("a row event's images did not end where the event ends")
    return out


def events(conn, file: str, pos: int, reader: Reader, *, checksum: bool):
    """The stream from ``file:pos`` on an open connection: ``("rows", table, timestamp, changes, file, pos)``,
    ``("query", text, schema, file, pos)``, ``("end", file, pos)``; the position is the one after the event.
    Other events only move the position."""
    name = file.encode()
    conn._write_bytes(struct.pack("<i", len(name) + 11) + bytes([COM_BINLOG_DUMP])
                      + struct.pack("<IHI", pos, NON_BLOCK, random.randint(1 << 24, (1 << 32) - 2)) + name)
    conn._next_seq_id = 1
    conn._sock.settimeout(conn._read_timeout)
    rfile = conn._rfile

    def read(n: int) -> bytes:
        data = rfile.read(n)
        if len(data) < n:
            from pymysql.err import OperationalError

            raise OperationalError(2013, "Lost connection to server during query")
        return data

    tail = 4 if checksum else 0
    unpack = _HEADER.unpack_from
    while True:
        head = read(4)
        size = head[0] | head[1] << 8 | head[2] << 16
        packet = read(size)
        while size == 0xFFFFFF:  # an event over 16 MB comes in several packets
            head = read(4)
            size = head[0] | head[1] << 8 | head[2] << 16
            packet += read(size)
        first = packet[0]
        if first == 0xFE and len(packet) < 9:  # EOF: the end of the binlog (non-blocking)
            return
        if first == 0xFF:
            from pymysql.err import raise_mysql_exception

            raise_mysql_exception(packet)
        ts, etype, _, esize, log_pos, _flags = unpack(packet, 1)
        body = memoryview(packet)[20:1 + esize - tail]
        if etype in ROWS:
            got = reader.rows(etype, body)
            if got is not None:
                yield "rows", got[0], ts, got[1], file, log_pos or pos
        elif etype == QUERY:
            schema_len, vars_len = body[8], int.from_bytes(body[11:13], "little")
            at = 13 + vars_len
            schema = bytes(body[at:at + schema_len]).decode("utf-8", "replace")
            query = bytes(body[at + schema_len + 1:]).decode("utf-8", "replace")
            yield "query", query, schema, file, log_pos or pos
        elif etype == XID:
            yield "end", file, log_pos or pos
        elif etype == TABLE_MAP:
            reader.table_map(bytes(body))
        elif etype == ROTATE:
            file = bytes(body[8:]).decode()
            pos = int.from_bytes(body[:8], "little")
            if ts:
                reader.maps.clear()
            continue
        elif etype in UNREADABLE:
            raise Unsupported(f"a binlog event of type {etype}")
        elif etype in COMPRESSED:  # never skipped: the changes in it would be lost
            raise TerminalError(COMPRESSED_FIX)
        if log_pos:
            pos = log_pos


def checksum_on(conn) -> bool:
    """Whether the server checksums its events; if so, tells it golive reads them with their checksum."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.binlog_checksum")
        value = cur.fetchone()[0]
        on = (value.decode() if isinstance(value, bytes) else str(value or "NONE")).upper() != "NONE"
        if on:
            cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
        cur.execute("SET @mariadb_slave_capability = 4")
    return on


__all__ = ["Reader", "SchemaChanged", "Unsupported", "checksum_on", "events"]

"""PostgreSQL's continuous archive: ``pg_receivewal`` through a physical slot, ``pg_basebackup``, archive recovery.

* **The slot.** ``golive_archive_<name>``, physical, created with ``immediately_reserve``: from its creation the
  server keeps every WAL segment the receiver has not confirmed, so a receiver that is down (killed, restarting,
  the archiver's host rebooting) loses nothing: started again, it resumes where it stopped. The price: a slot nobody
  reads fills the server's disk (``forget`` drops it).
* **The receiver.** ``pg_receivewal --slot --status-interval=1`` (not ``--synchronous``: an fsync after every
  message cost about 9 % of a core at 1000 commits/s, bench/pitr_bench.py): it reports the position it has written
  into the spool at least once a second, so the server's ``pg_stat_replication.write_lsn`` for its
  ``application_name`` is what the spool file holds (``received``); a flush stores the partial segment from that
  file, so what it proves is in the bucket, not in the spool. The slot's ``restart_lsn`` only moves with the
  receiver's *flush* position (a complete segment, fsynced before it is renamed), so what an OS crash could take
  from the spool's partial segment the slot still holds, and the receiver streams that segment again from its start. PostgreSQL 15's pg_receivewal, started with an empty spool, begins at the start of the
  segment of the slot's ``restart_lsn`` (checked: a slot created with ``immediately_reserve`` has the last
  checkpoint's redo position, so the first segment streamed is at or before any later base's); with files in the
  spool, at the start of the newest partial segment, or after the newest complete one (``WalReceiver.resumes_at``).
  Checked: killed with SIGKILL mid-segment and started again, it streams that segment again from its start, and
  what was committed while it was down comes from the slot. SIGINT stops it cleanly (exit 0). ``--no-loop``: a
  lost connection ends it, and the capability (which restarts receivers) sees it die.
* **head.** The server's clock, then ``pg_current_wal_insert_lsn()``: a commit stamped before that clock has its
  commit record inserted before that position (``pg_current_wal_lsn()`` is the position *written*, which a commit
  record still in the WAL buffers is past).
* **The base.** ``pg_basebackup -D - -Ft -X fetch``: one tar on stdout (the whole cluster, with the WAL that makes
  it consistent), streamed into the sink as ``base.tar``. Its start and end positions come from ``-v``'s lines.
  The first segment is computed from the start position (``pg_walfile_name`` names the segment *before* a position
  on a segment boundary: wrong for a start).
* **The restore.** The tar extracted into a data directory (owned by ``postgres``, 0700), the segments in a
  directory next to it read by ``restore_command = 'cp …'``, ``recovery.signal``, ``recovery_target_time`` and
  ``recovery_target_action = 'promote'``, started with the same major version's ``pg_ctl``. When the archive has no
  commit after the target, PostgreSQL 15 stops with "recovery ended before configured recovery target was reached":
  everything archived is before the target, so it is started again to replay everything (the caller checked the
  target is inside the recovery window). The server listens on 127.0.0.1 and a socket in the data directory
  (mode 0700: only ``postgres`` and root reach it), where golive connects with ``trust`` (one line prepended to the
  base's ``pg_hba.conf``: TCP keeps the base's rules).
* **A restore that replays everything is checked.** PostgreSQL ends recovery at the first unreadable record and
  promotes there, without a word, so a gap or a damaged segment would give an older database that looks fine.
  Before starting: the segments must follow each other (``next_segment``) from the base on. After: the replay must
  have ended in the last segment holding data (the log's "invalid record … at X" / "redo done at X"), else one line
  naming where it stopped and why. A target before the base's end is not an error to PostgreSQL: it stops at the
  first commit after the base's consistent point (the caller keeps targets inside the recovery window).

Passwords reach the tools in ``PGPASSWORD`` only, never on a command line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from golive.dialects.base.archive import Archive, Receiver
from golive.dialects.postgresql.cluster import (_as_postgres, _bin_for, _chown_postgres, _free_port, _log_tail,
                                                _message, _postmaster_pid, _reachable_by_postgres, _socket_conninfo,
                                                _socket_url, _utc, _worst_line, stop_cluster)
from golive.dialects.postgresql.backup import connect, find_tool, libpq_dsn, server_major, tool_major
from golive.dialects.postgresql.session import translate_error
from golive.errors import ConfigError, GoliveError, TargetNotEmpty, TerminalError
from golive.model.archive import Spooled
from golive.model.backup import Pumped, alive as _alive, first_line
from golive.runtime import die_with_parent
from golive.urls import DatabaseURL, mask

log = logging.getLogger(__name__)

SLOT_PREFIX = "golive_archive_"
BASE_OBJECT = "base.tar"
DEFAULT_SEGMENT = 16 * 1024 * 1024
MARKER_TABLE = "golive_pitr_marker"
#: a segment's file name: timeline, log, segment (8 hex digits each)
_SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
#: how long a restore may take to start and replay (seconds)
RECOVERY_TIMEOUT = 3600
#: the lines of our own settings block in postgresql.auto.conf
_BLOCK_START = "# golive archive restore: settings below\n"


# ---------------------------------------------------------------- positions and segment names

def lsn_int(position: str) -> int:
    m = _LSN_RE.match(position.strip())
    if not m:
        raise ValueError(f"not a PostgreSQL WAL position: {position!r}")
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def segment_name(lsn: int, timeline: int, segment_size: int = DEFAULT_SEGMENT) -> str:
    """The segment holding ``lsn`` (``XLByteToSeg``, not ``pg_walfile_name``'s previous-segment rule)."""
    per = 0x100000000 // segment_size
    seg = lsn // segment_size
    return f"{timeline:08X}{seg // per:08X}{seg % per:08X}"


def segment_start(name: str, segment_size: int = DEFAULT_SEGMENT) -> int:
    """The position a segment begins at."""
    per = 0x100000000 // segment_size
    return (int(name[8:16], 16) * per + int(name[16:24], 16)) * segment_size


def slot_name(name: str) -> str:
    slot = SLOT_PREFIX + name
    if not re.fullmatch(r"[a-z0-9_]{1,63}", slot):
        raise ConfigError(f"archive name {name!r}: PostgreSQL slot names take lower-case letters, digits and _ only "
                          f"(and {SLOT_PREFIX}<name> must fit in 63 characters)")
    return slot


class WalReceiver(Receiver):
    """``pg_receivewal`` into the spool, through the archive's slot."""

    def __init__(self, cmd: list[str], env: dict, spool: Path, *, engine: "PostgresArchive", url: DatabaseURL,
                 slot: str) -> None:
        self.cmd = cmd
        self.env = env
        self.spool = spool
        self.engine, self.url, self.slot = engine, url, slot
        self.proc: subprocess.Popen | None = None
        self._err = None
        #: the segment the last ``start`` streams first (pg_receivewal's own rule, computed alike)
        self.resumes_at: str | None = None

    def start(self) -> None:
        if self.alive():
            return
        self.resumes_at = self._resumes_at()
        if self._err is not None:
            self._err.close()
        # stderr in an unnamed file: a pipe nobody reads would stop the tool once full
        self._err = tempfile.TemporaryFile()
        # killed with golive (the thread that starts it must outlive it: the capability's own loop)
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._err, preexec_fn=die_with_parent())

    def _resumes_at(self) -> str | None:
        """Where pg_receivewal begins: the newest partial segment again, or the one after the newest complete one;
        with an empty spool (its segments stored and removed, or the spool lost), the segment of the slot's
        ``restart_lsn``: what the receiver confirmed last, so nothing is skipped while the slot lives."""
        held = self.engine.spooled(self.spool)
        newest = [p.name for p in held.complete][-1:] + ([held.partial.name[:24]] if held.partial else [])
        if newest:
            top = max(newest, key=self.engine.segment_key)
            return top if held.partial is not None and held.partial.name[:24] == top else self.engine.next_segment(top)
        try:  # the server down: pg_receivewal says so itself, in last_error, when it dies
            conn = connect(self.url)
        except GoliveError:
            return None
        try:
            row = conn.execute("SELECT restart_lsn::text, (SELECT timeline_id FROM pg_control_checkpoint()) "
                               "FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)).fetchone()
        except Exception:  # noqa: BLE001 - as above
            return None
        finally:
            conn.close()
        if not row or row[0] is None:
            return None
        at = segment_name(lsn_int(row[0]), int(row[1]), self.engine.segment_size)
        log.info("the spool %s is empty: pg_receivewal starts at the slot's restart_lsn %s (segment %s)",
                 self.spool, row[0], at)
        return at

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT (pg_receivewal's documented stop: it flushes and exits), then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        except ProcessLookupError:
            pass

    def last_error(self) -> str:
        if self._err is None:
            return ""
        try:
            size = self._err.seek(0, os.SEEK_END)
            self._err.seek(max(0, size - 4096))
            text = self._err.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return mask("\n".join(lines[-5:]))


# ---------------------------------------------------------------- the concern

class PostgresArchive(Archive):
    """WAL archived by ``pg_receivewal`` through a slot; bases by ``pg_basebackup``; restores by archive recovery."""

    log_name = "WAL"
    needs = ("wal_level = replica (or logical), max_wal_senders > 0, max_replication_slots > 0, a role with "
             "REPLICATION (or superuser), and a pg_hba.conf line allowing it to connect for replication")
    #: a physical archive: ``restore`` recovers a data directory of its own (``to_dir``), left running
    restores_to_dir = True

    def __init__(self, dialect) -> None:
        super().__init__(dialect)
        #: the server's wal_segment_size, learnt from it (identity, receiver) or from a spool's partial file
        self.segment_size = DEFAULT_SEGMENT

    # ------------------------------------------------------------ readiness and identity

    def check_ready(self, url: DatabaseURL) -> None:
        conn = connect(url)
        try:
            settings = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_level', 'max_wal_senders', 'max_replication_slots', 'wal_segment_size')").fetchall())
            rolsuper, rolrepl, user = conn.execute(
                "SELECT rolsuper, rolreplication, rolname FROM pg_roles WHERE rolname = current_user").fetchone()
            major = server_major(conn)
        except Exception as exc:
            raise translate_error(exc, f"checking {url.masked} for archiving") from None
        finally:
            conn.close()
        level = settings.get("wal_level")
        if level not in ("replica", "logical"):
            raise ConfigError(f"wal_level is {level} on {url.masked}: set wal_level = replica in postgresql.conf "
                              "and restart PostgreSQL")
        if int(settings.get("max_wal_senders") or 0) < 1:
            raise ConfigError(f"max_wal_senders is 0 on {url.masked}: set max_wal_senders = 10 in postgresql.conf "
                              "and restart PostgreSQL")
        if int(settings.get("max_replication_slots") or 0) < 1:
            raise ConfigError(f"max_replication_slots is 0 on {url.masked}: set max_replication_slots = 10 in "
                              "postgresql.conf and restart PostgreSQL")
        if not (rolsuper or rolrepl):
            raise ConfigError(f"role {user} has no REPLICATION privilege: run ALTER ROLE {user} REPLICATION as a "
                              "superuser, or archive as a role that has it")
        self._replication_connection(url)
        for tool in ("pg_receivewal", "pg_basebackup"):
            find_tool(tool, major)  # ConfigError naming what was found and what to install

    def _replication_connection(self, url: DatabaseURL) -> None:
        """pg_hba.conf must let the role in for replication (a line naming ``replication``, not a database)."""
        import psycopg

        dsn, env = libpq_dsn(url)
        try:
            conn = psycopg.connect(dsn, replication="true", autocommit=True, connect_timeout=10,
                                   password=url.password_text, application_name="golive")
        except psycopg.OperationalError as exc:
            text = str(exc)
            m = re.search(r"FATAL:\s+(.*)", text)
            reason = mask(m.group(1).strip() if m else first_line(text))
            if "pg_hba.conf" in text or "replication connection" in text:
                raise ConfigError(f"{url.masked}: the server refuses replication connections from here "
                                  f"({reason}): add a line 'host replication {url.user or 'USER'} "
                                  "<your address> scram-sha-256' to pg_hba.conf and reload") from None
            raise ConfigError(f"{url.masked}: a replication connection failed: {reason}") from None
        try:
            conn.execute("IDENTIFY_SYSTEM")
        except psycopg.Error as exc:
            raise ConfigError(f"{url.masked}: a replication connection failed: {first_line(mask(str(exc)))}") from None
        finally:
            conn.close()

    def identity(self, url: DatabaseURL) -> dict:
        conn = connect(url)
        try:
            system, tli = conn.execute("SELECT s.system_identifier, c.timeline_id FROM pg_control_system() s, "
                                       "pg_control_checkpoint() c").fetchone()
            version = conn.execute("SHOW server_version").fetchone()[0]
            size = int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0])
        except Exception as exc:
            raise translate_error(exc, f"identity of {url.masked}") from None
        finally:
            conn.close()
        self.segment_size = size
        return {"system": str(system), "server_version": version, "timeline": tli, "wal_segment_size": size}

    # ------------------------------------------------------------ streaming

    def receiver(self, url: DatabaseURL, spool: Path, *, name: str, start: str | None = None) -> WalReceiver:
        slot = slot_name(name)
        conn = connect(url)
        try:
            major = server_major(conn)
            self.segment_size = int(conn.execute(
                "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0])
            row = conn.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row and row[0] == "lost":
                raise TerminalError(f"the replication slot {slot} on {url.masked} lost WAL the archive had not "
                                    "received (max_slot_wal_keep_size): the archive has a gap; forget it and start "
                                    "again with a new base backup")
            if not row:
                # reserve at once: from now on no WAL is recycled before the receiver confirmed it
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
                log.info("created the replication slot %s on %s", slot, url.masked)
        except Exception as exc:
            raise translate_error(exc, f"replication slot {slot} on {url.masked}") from None
        finally:
            conn.close()
        tool = find_tool("pg_receivewal", major)
        dsn, env = libpq_dsn(url)
        dsn += ("&" if "?" in dsn else "?") + f"application_name={slot}"
        cmd = [tool.path, "-D", str(spool), "--slot", slot, "--status-interval=1", "--no-loop",
               "--no-password", "-d", dsn]
        return WalReceiver(cmd, env, Path(spool), engine=self, url=url, slot=slot)

    def spooled(self, spool: Path) -> Spooled:
        complete, partial = [], []
        for p in Path(spool).iterdir():
            if _SEGMENT_RE.match(p.name) and p.is_file():
                complete.append(p)
            elif p.name.endswith(".partial") and _SEGMENT_RE.match(p.name[:-8]) and p.is_file():
                partial.append(p)
        complete.sort(key=lambda p: self.segment_key(p.name))
        partial.sort(key=lambda p: self.segment_key(p.name))
        return Spooled(complete=complete, partial=partial[-1] if partial else None)

    def partial_bytes(self, path: Path, *, start: int = 0) -> tuple[bytes, str]:
        """The file's bytes from ``start`` to where its data ends: after its last non-zero byte (pg_receivewal pads
        the file to the segment size; a lower bound of the true end: a record may end in zeros, stored by the next
        flush or with the complete segment). A restore pads the joined pieces to the segment size again."""
        data = Path(path).read_bytes()
        size = len(data)
        if size >= 1 << 20 and size & (size - 1) == 0:
            self.segment_size = size
        held = len(data.rstrip(b"\0"))
        first = segment_start(Path(path).name[:24], self.segment_size)
        if held <= start:
            return b"", lsn_text(first + start)
        return data[start:held], lsn_text(first + held)

    def head(self, url: DatabaseURL) -> tuple[dt.datetime, str]:
        conn = connect(url)
        try:
            # the clock first: a commit stamped before it has its commit record inserted before the position read
            # next. The insert position, not pg_current_wal_lsn() (written out): a commit record still in the WAL
            # buffers counts too (its commit may be acknowledged a moment later)
            clock = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        except Exception as exc:
            raise translate_error(exc, f"WAL position of {url.masked}") from None
        finally:
            conn.close()
        return _utc(clock), lsn

    def received(self, url: DatabaseURL, spool: Path, *, name: str) -> str | None:
        """The receiver's write position as the server saw it (what the spool file holds: reported at least once a
        second, ``--status-interval=1``); when it is not streaming, the slot's ``restart_lsn`` (what it confirmed
        last), if the spool holds anything."""
        slot = slot_name(name)
        conn = connect(url)
        try:
            row = conn.execute("SELECT write_lsn::text FROM pg_stat_replication WHERE application_name = %s "
                               "AND write_lsn IS NOT NULL ORDER BY write_lsn DESC LIMIT 1", (slot,)).fetchone()
            if row:
                return row[0]
            row = conn.execute("SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                               (slot,)).fetchone()
        except Exception as exc:
            raise translate_error(exc, f"archive position on {url.masked}") from None
        finally:
            conn.close()
        held = self.spooled(spool)
        if row and row[0] and (held.complete or held.partial):
            return row[0]
        return None

    def position_key(self, position: str) -> tuple:
        return (lsn_int(position),)

    def segment_key(self, segment: str) -> tuple:
        name = segment[:24]
        if not _SEGMENT_RE.match(name):
            raise ValueError(f"not a WAL segment name: {segment!r}")
        return (int(name[0:8], 16), int(name[8:16], 16), int(name[16:24], 16))

    def next_segment(self, segment: str) -> str:
        """The next segment on the same timeline (a timeline switch is not followed)."""
        tli, log_, seg = self.segment_key(segment)
        per = 0x100000000 // self.segment_size
        seg += 1
        if seg >= per:
            log_, seg = log_ + 1, 0
        return f"{tli:08X}{log_:08X}{seg:08X}"

    # ------------------------------------------------------------ base backup

    def base_backup(self, url: DatabaseURL, sink, *, name: str) -> dict:
        conn = connect(url)
        try:
            major = server_major(conn)
            version = conn.execute("SHOW server_version").fetchone()[0]
            superuser = conn.execute("SELECT rolname FROM pg_roles WHERE oid = 10").fetchone()[0]
            self.segment_size = int(conn.execute(
                "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'").fetchone()[0])
        except Exception as exc:
            conn.close()
            raise translate_error(exc, f"base backup of {url.masked}") from None
        try:
            tool = find_tool("pg_basebackup", major)
            dsn, env = libpq_dsn(url)
            # -X fetch: the WAL that makes the copy consistent goes into the same tar (-X stream cannot, to stdout)
            cmd = [tool.path, "-D", "-", "-Ft", "-X", "fetch", "--checkpoint=fast", "-v", "--no-password",
                   "-d", dsn]
            writer = sink.open(BASE_OBJECT, "pg_basebackup")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    preexec_fn=die_with_parent())
            pumped = Pumped(proc, writer, "pg_basebackup")
            text = mask(pumped.join().decode("utf-8", "replace"))
            rc = proc.wait()
            if pumped.errors or rc != 0:
                writer.abort()
                if pumped.errors:
                    raise pumped.errors[0]
                raise TerminalError(f"pg_basebackup of {url.masked} failed (exit {rc}): "
                                    f"{first_line(text) or 'no message'}")
            try:
                entry = writer.close()
            except BaseException:
                writer.abort()
                raise
            end_time = _utc(conn.execute("SELECT clock_timestamp()").fetchone()[0])
        except GoliveError:
            raise
        except Exception as exc:
            raise translate_error(exc, f"base backup of {url.masked}") from None
        finally:
            conn.close()
        m_start = re.search(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)", text)
        m_end = re.search(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)", text)
        if not (m_start and m_end):
            raise TerminalError(f"pg_basebackup of {url.masked}: its output names no start and end position "
                                f"({first_line(text) or 'no output'})")
        start, timeline, end = m_start.group(1), int(m_start.group(2)), m_end.group(1)
        return {"start": start, "end": end, "end_time": end_time,
                "first_segment": segment_name(lsn_int(start), timeline, self.segment_size),
                "server_version": version, "tool": tool, "objects": [entry], "tables": [],
                "details": {"database": url.database or "postgres", "timeline": timeline, "superuser": superuser,
                            "wal_segment_size": self.segment_size, "format": "pg_basebackup -Ft -X fetch"}}

    # ------------------------------------------------------------ restore

    def restore(self, base: dict, base_files: dict[str, Path], segments: list[Path], target: dt.datetime | None,
                *, to_url: DatabaseURL | None = None, to_dir: Path | None = None, port: int | None = None,
                workdir: Path) -> dict:
        if (to_url is None) == (to_dir is None):
            raise ConfigError("a PostgreSQL archive restores into a database (to_url) or a data directory (to_dir)")
        details = base.get("details") or {}
        database = details.get("database") or "postgres"
        superuser = details.get("superuser") or "postgres"
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if to_url is not None:
            self._check_empty(to_url)
        data = Path(to_dir) if to_dir is not None else workdir / "data"
        if data.exists() and any(data.iterdir()):
            raise ConfigError(f"{data} is not empty: restore into a new or empty directory")
        port = port or _free_port()
        _reachable_by_postgres(workdir)
        data.mkdir(parents=True, exist_ok=True)
        _reachable_by_postgres(data.parent)  # (the data directory itself becomes postgres's)
        os.chmod(data, 0o700)
        self._extract(Path(base_files[BASE_OBJECT]), data)
        self.segment_size = int(details.get("wal_segment_size") or self.segment_size)
        last = self._check_continuous(base, segments)
        wal = workdir / "wal"
        self._place_segments(segments, wal, self.segment_size)
        bin_dir = _bin_for(data)
        log_file = data / "golive-restore.log"
        self._configure(data, wal, port, target)
        _chown_postgres(data, recursive=True)
        _chown_postgres(wal, recursive=True)
        where = str(data) if to_dir is not None else to_url.masked
        try:
            reached, replayed_all = self._recover(bin_dir, data, log_file, port, superuser, target, wal, last)
            if to_url is not None:
                self._copy_database(data, port, superuser, database, to_url)
                stop_cluster(data)
        except BaseException:
            stop_cluster(data, mode="immediate")
            raise
        out = {"reached": reached, "where": where, "port": port, "data_dir": str(data), "log": str(log_file)}
        if replayed_all:
            out["note"] = ("no commit after the target in the archive: PostgreSQL stopped short of it, so everything "
                           "archived was replayed")
        if to_dir is not None:
            # golive's own way in: the socket in the data directory, trusted (TCP keeps the base's rules)
            out["url"] = _socket_url(data, port, superuser, database).raw
            out["tcp_url"] = f"postgresql://{superuser}@127.0.0.1:{port}/{database}"
        return out

    def stop_restored(self, to_dir: Path) -> None:
        stop_cluster(to_dir)

    def _check_empty(self, url: DatabaseURL) -> None:
        from golive.dialects.postgresql.backup import is_empty

        conn = connect(url, role="target")
        try:
            existing = is_empty(conn)
        except Exception as exc:
            raise translate_error(exc, f"restore into {url.masked}") from None
        finally:
            conn.close()
        if existing:
            raise TargetNotEmpty(f"target {url.masked} is not empty (it has {', '.join(existing)}): restore into an "
                                 "empty database")

    @staticmethod
    def _extract(tar_path: Path, data: Path) -> None:
        try:
            with tarfile.open(tar_path) as tar:
                try:
                    tar.extractall(data, filter="data")
                except TypeError:  # a Python without extraction filters
                    tar.extractall(data)  # noqa: S202 - pg_basebackup's own tar, its hash checked by the caller
        except (tarfile.TarError, OSError) as exc:
            raise TerminalError(f"the base backup {tar_path.name} does not extract: {exc}") from None
        if not (data / "PG_VERSION").exists():
            raise TerminalError(f"the base backup {tar_path.name} holds no PostgreSQL data directory (no PG_VERSION)")

    def _check_continuous(self, base: dict, segments: list[Path]) -> tuple[str, tuple | None] | None:
        """No segment missing between the base and the last segment given (a restore that replays everything
        would otherwise stop at the gap and promote, silently older); returns the last segment holding data, and the
        partial segment's name and how many bytes of it hold data."""
        names: dict[str, Path] = {}
        tail = None
        for p in segments:
            p = Path(p)
            name = p.name[:-8] if p.name.endswith(".partial") else p.name
            if not _SEGMENT_RE.match(name):
                continue
            if p.name.endswith(".partial"):
                try:
                    with open(p, "rb") as fh:
                        held = len(fh.read().rstrip(b"\0"))
                    if not held:
                        continue  # nothing received into it yet
                    tail = (name, held)
                except OSError as exc:
                    raise TerminalError(f"segment {p.name} is not readable: {exc}") from None
            names.setdefault(name, p)
        if not names:
            return None
        ordered = sorted(names, key=self.segment_key)
        timeline = int((base.get("details") or {}).get("timeline") or 1)
        end = base.get("end")
        if end:
            after_base = self.next_segment(segment_name(lsn_int(end), timeline, self.segment_size))
            first = next((n for n in ordered if int(n[:8], 16) == timeline), None)
            if first is not None and self.segment_key(first) > self.segment_key(after_base):
                raise TerminalError(f"the archive has no WAL segment {after_base} (its first after the base is "
                                    f"{first}): the base cannot be rolled forward")
        for a, b in zip(ordered, ordered[1:]):
            if a[:8] == b[:8] and self.next_segment(a) != b:
                raise TerminalError(f"WAL segment {self.next_segment(a)} is missing from the archive (between {a} "
                                    f"and {b}): a restore past {a} is not possible")
        first = base.get("first_segment")
        if first and self.segment_key(ordered[-1]) < self.segment_key(first):
            return None  # nothing after the base: its own WAL is all there is to replay
        return ordered[-1], tail

    def _check_replayed_to(self, text: str, last: tuple[str, tuple | None] | None) -> None:
        """Recovery without a stop point ends where the WAL stops reading: it must be in the last segment that holds
        data, or a damaged segment cut the replay short (PostgreSQL promotes there all the same)."""
        if last is None:
            return
        last, tail = last
        restored = bool(re.search(rf'restored log file "{last}"', text))
        found = [lsn_int(m.group(1)) for ln in text.splitlines()
                 if re.search(r"redo done at|invalid record|incorrect|invalid magic|contrecord|invalid resource", ln)
                 for m in re.finditer(r"\b([0-9A-F]{1,8}/[0-9A-F]{1,8})\b", ln)]
        end = max(found) if found else None
        stopped = segment_name(end, int(last[:8], 16), self.segment_size) if end is not None else None
        short = stopped is not None and self.segment_key(stopped)[1:] < self.segment_key(last)[1:]
        if short and restored and tail and tail[0] == last and tail[1] <= 1 << 16 \
                and self.next_segment(stopped) == last:
            short = False  # the partial holds only the start of a record begun before it: nothing whole is lost
        if short:
            lines = [_message(ln) for ln in text.splitlines()
                     if re.search(r"invalid record|incorrect|invalid magic|contrecord|invalid resource", ln)]
            why = f" ({lines[-1]})" if lines else ""
            raise TerminalError(f"recovery stopped at {lsn_text(end)} in segment {stopped}, short of the archive's "
                                f"last segment {last}: a segment is damaged{why}")
        if not restored:
            raise TerminalError(f"recovery ended{f' at {lsn_text(end)}' if end is not None else ''} without reading "
                                f"the archive's last segment {last}")

    @staticmethod
    def _place_segments(segments: list[Path], wal: Path, segment_size: int = 16 << 20) -> None:
        """The segments where ``restore_command`` finds them; a partial one (``<segment>.partial``) under its
        segment's name, unless a complete segment of that name is there."""
        wal.mkdir(parents=True, exist_ok=True)
        complete = {Path(p).name for p in segments if _SEGMENT_RE.match(Path(p).name)}
        for p in segments:
            p = Path(p)
            name = p.name
            if name.endswith(".partial"):
                name = name[:-8]
                if name in complete:
                    continue
            if not _SEGMENT_RE.match(name) and not name.endswith(".history"):
                continue
            dest = wal / name
            if dest.exists():
                dest.unlink()
            if p.name.endswith(".partial") and p.stat().st_size < segment_size:
                shutil.copyfile(p, dest)  # stored as far as it held data: recovery reads whole-size segments
                os.truncate(dest, segment_size)
                continue
            try:
                os.link(p, dest)
            except OSError:
                shutil.copyfile(p, dest)

    @staticmethod
    def _configure(data: Path, wal: Path, port: int, target: dt.datetime | None) -> None:
        """recovery.signal and our settings, last in postgresql.auto.conf (the last setting wins); anything that
        would clash with the original server or stop this one from starting here is turned off."""
        for stale in ("postmaster.pid", "postmaster.opts", "standby.signal"):
            (data / stale).unlink(missing_ok=True)
        (data / "recovery.signal").write_text("")
        if not (data / "postgresql.conf").exists():  # Debian keeps it in /etc/postgresql: not in the base
            (data / "postgresql.conf").write_text("# written by golive: the base had no postgresql.conf\n")
        if not (data / "pg_ident.conf").exists():
            (data / "pg_ident.conf").write_text("")
        hba = data / "pg_hba.conf"
        rules = hba.read_text() if hba.exists() else (
            "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
        # golive's own connections: the socket in the data directory, which only postgres (and root) can reach
        hba.write_text("local all all trust  # golive restore (socket in the 0700 data directory)\n" + rules)
        auto = data / "postgresql.auto.conf"
        text = auto.read_text() if auto.exists() else ""
        text = text.split(_BLOCK_START)[0]
        (data / "golive-auto.conf.orig").write_text(text)
        settings = {
            "restore_command": f"cp {shlex.quote(str(wal))}/%f %p",
            "recovery_target_action": "promote",
            "port": str(port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(data),
            "unix_socket_permissions": "0700",
            "archive_mode": "off",
            "primary_conninfo": "",
            "primary_slot_name": "",
            "hot_standby": "on",
            "ssl": "off",
            "logging_collector": "off",
            "log_destination": "stderr",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] ",
            "cluster_name": "golive_restore",
        }
        if target is not None:
            settings["recovery_target_time"] = _utc(target).isoformat()
        lines = ["{} = '{}'".format(k, v.replace("'", "''")) for k, v in settings.items()]
        auto.write_text(text + ("" if not text or text.endswith("\n") else "\n") + _BLOCK_START
                        + "\n".join(lines) + "\n")

    @staticmethod
    def _drop_target(data: Path) -> None:
        auto = data / "postgresql.auto.conf"
        lines = [ln for ln in auto.read_text().splitlines(True) if not ln.startswith("recovery_target_time")]
        auto.write_text("".join(lines))

    def _recover(self, bin_dir: Path, data: Path, log_file: Path, port: int, superuser: str,
                 target: dt.datetime | None, wal: Path, last: tuple | None) -> tuple[str, bool]:
        offset = 0
        for attempt in (1, 2):
            offset = log_file.stat().st_size if log_file.exists() else 0
            outcome = self._start_and_wait(bin_dir, data, log_file, port, superuser, offset)
            text = _log_tail(log_file, offset)
            denied = [ln for ln in text.splitlines() if ln.startswith("cp: ") and "No such file" not in ln]
            if denied:  # restore_command could not read a segment: PostgreSQL takes that as the end of the WAL
                raise TerminalError(f"recovery of {data} could not read the WAL: {denied[0]}")
            if outcome == "promoted":
                reached = self._reached(text)
                if "recovery stopping" not in reached:
                    self._check_replayed_to(text, last)
                return reached, attempt == 2
            if attempt == 1 and target is not None and "recovery ended before configured recovery target" in text:
                # no commit after the target in the archive: everything archived is before it, replay all of it
                log.info("no commit after %s in the archive: replaying all of it", target.isoformat())
                self._drop_target(data)
                continue
            raise TerminalError(f"recovery of {data} failed: {_worst_line(text) or 'the server stopped'}")
        raise TerminalError(f"recovery of {data} failed: {_worst_line(_log_tail(log_file, offset))}")

    @staticmethod
    def _start_and_wait(bin_dir: Path, data: Path, log_file: Path, port: int, superuser: str, offset: int) -> str:
        """Start the server (no waiting in pg_ctl: a recovery may end before it accepts connections) and poll until
        it left recovery ("promoted") or stopped ("stopped")."""
        import psycopg

        started = subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log_file), "-W",
                                               "start"]), capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise TerminalError(f"pg_ctl could not start the restored cluster in {data}: "
                                f"{first_line(started.stderr) or _worst_line(_log_tail(log_file, offset))}")
        conninfo = _socket_conninfo(data, port, superuser, "postgres")
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        seen_pid = None
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            pid = _postmaster_pid(data)
            if pid:
                seen_pid = pid
            if seen_pid and not _alive(seen_pid):
                return "stopped"
            if not seen_pid and time.monotonic() - t0 > 30:
                return "stopped"
            if seen_pid:
                try:
                    with psycopg.connect(conninfo, autocommit=True) as conn:
                        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                            return "promoted"
                except psycopg.Error:
                    pass
            time.sleep(0.2)
        raise TerminalError(f"recovery of {data} did not finish in {RECOVERY_TIMEOUT} s")

    @staticmethod
    def _reached(text: str) -> str:
        lines = text.splitlines()
        for pattern in (r"recovery stopping (before|after) ", r"archive recovery complete",
                        r"redo done at"):
            found = [ln for ln in lines if re.search(pattern, ln)]
            if found:
                reached = _message(found[0]).removeprefix("LOG: ")
                last = [ln for ln in lines if "last completed transaction was at log time" in ln]
                if last and "recovery stopping" not in reached:
                    reached += "; " + _message(last[-1]).removeprefix("LOG: ")
                return reached
        return "recovered"

    @staticmethod
    def _copy_database(data: Path, port: int, superuser: str, database: str, to_url: DatabaseURL) -> None:
        """pg_dump -Fc of the archived database from the recovered cluster, pg_restore --no-owner into ``to_url``."""
        major = int((data / "PG_VERSION").read_text().strip().split(".")[0])
        dump_tool = find_tool("pg_dump", major)
        restore_tool = find_tool("pg_restore", tool_major(dump_tool))
        dump_file = data.parent / "golive-archive.dump"
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        proc = subprocess.run([dump_tool.path, "-Fc", "-Z0", "--no-password", "-f", str(dump_file), "-d",
                               _socket_conninfo(data, port, superuser, database)],
                              capture_output=True, env=env, preexec_fn=die_with_parent())
        if proc.returncode != 0:
            raise TerminalError(f"pg_dump of the recovered {database} failed (exit {proc.returncode}): "
                                f"{first_line(proc.stderr.decode('utf-8', 'replace')) or 'no message'}")
        try:
            dsn, env = libpq_dsn(to_url)
            proc = subprocess.run([restore_tool.path, "--exit-on-error", "--no-owner", "--no-privileges",
                                   "--no-password", "-d", dsn, str(dump_file)], capture_output=True, env=env,
                                  preexec_fn=die_with_parent())
            if proc.returncode != 0:
                raise TerminalError(f"pg_restore into {to_url.masked} failed (exit {proc.returncode}): "
                                    f"{first_line(mask(proc.stderr.decode('utf-8', 'replace'))) or 'no message'}")
        finally:
            dump_file.unlink(missing_ok=True)

    # ------------------------------------------------------------ markers, checks, cleanup

    def write_marker(self, url: DatabaseURL) -> dt.datetime:
        conn = connect(url)
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id bigserial PRIMARY KEY, "
                         "at timestamptz NOT NULL DEFAULT clock_timestamp(), note text)")
            at = conn.execute(f"INSERT INTO {MARKER_TABLE} (note) VALUES ('golive archive') RETURNING at").fetchone()[0]
        except Exception as exc:
            raise translate_error(exc, f"marker in {url.masked}") from None
        finally:
            conn.close()
        return _utc(at)

    def markers(self, url: DatabaseURL) -> list[dt.datetime]:
        conn = connect(url)
        try:
            if conn.execute("SELECT to_regclass(%s)", (MARKER_TABLE,)).fetchone()[0] is None:
                return []
            return [_utc(r[0]) for r in conn.execute(f"SELECT at FROM {MARKER_TABLE} ORDER BY at").fetchall()]
        except Exception as exc:
            raise translate_error(exc, f"markers in {url.masked}") from None
        finally:
            conn.close()

    def integrity(self, url: DatabaseURL) -> list[str]:
        """``pg_amcheck`` of every table and B-tree index (installing amcheck first when the role may)."""
        from golive.dialects.postgresql.tools import env_for

        conn = connect(url)
        try:
            major = server_major(conn)
            superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        except Exception as exc:
            raise translate_error(exc, f"integrity check of {url.masked}") from None
        finally:
            conn.close()
        tool = find_tool("pg_amcheck", major)
        args, env = env_for(url)
        cmd = [tool.path, "--no-password", *args]
        if superuser:
            cmd.append("--install-missing")
        proc = subprocess.run(cmd, capture_output=True, env=env, preexec_fn=die_with_parent(), timeout=3600)
        out = mask((proc.stdout + proc.stderr).decode("utf-8", "replace"))
        problems = [ln.strip() for ln in out.splitlines() if ln.strip()]
        if "amcheck is not installed" in out:  # not checked is not sound: one line saying how to check
            return [f"{url.masked} was not checked: the amcheck extension is not installed there and this role may "
                    "not install it (CREATE EXTENSION amcheck as a superuser, or check as one)"]
        if proc.returncode != 0 and not problems:
            problems = [f"pg_amcheck exited with {proc.returncode}"]
        return problems

    def forget(self, url: DatabaseURL, *, name: str) -> list[str]:
        slot = slot_name(name)
        conn = connect(url)
        try:
            for _ in range(50):  # a receiver just stopped: its walsender lets go of the slot in a moment
                row = conn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                                   (slot,)).fetchone()
                if row is None:
                    return []
                if row[0] is None:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return [f"dropped the replication slot {slot} on {url.masked}"]
                time.sleep(0.1)
            raise TerminalError(f"the replication slot {slot} on {url.masked} is in use by process {row[0]} (a "
                                "running archiver): stop it first")
        except GoliveError:
            raise
        except Exception as exc:
            raise translate_error(exc, f"dropping the slot {slot} on {url.masked}") from None
        finally:
            conn.close()

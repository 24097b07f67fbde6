"""What point-in-time recovery asks of an engine: a continuous archive of its change log (``golive.archive``).

The capability (``golive.archive``) owns the bucket: the layout, compression, encryption, the archive's manifest,
the recovery window, retention and drills. The engine only deals with local files and its own server:

    check_ready     settings and grants the archive needs, one line each naming the fix
    identity        which server this is (a restore never mixes two servers' logs)
    receiver        the server's own tool streaming its log into a local spool directory (pg_receivewal,
                    mariadb-binlog --raw), restarted by the capability when it dies, resuming where it stopped
    spooled         what the spool holds: complete segments (ready to store, then removed) and the partial one
    partial_bytes   the part of the partial segment that is safe to store now (whole records)
    head            the server's clock and log position now: once the spool reached that position, every
                    commit before that moment is archived (how the RPO is measured, on the server's clock)
    base_backup     a base the log is replayed onto, written into the ``ObjectSink`` it is given
    restore         base + log segments (local files) -> the database as it was at a moment
    markers         golive's marker table: a row written at a known moment, read back after a drill's restore
    integrity       the engine's own check of a restored database (pg_amcheck, CHECK TABLE)
    forget          remove what the archive added to the server (PostgreSQL: its replication slot)

Positions are the engine's text (PostgreSQL ``0/16B3748``, MySQL ``binlog.000003:1234``) and sort by
``position_key``. Segment names are the engine's file names (``000000010000000000000003``, ``binlog.000003``) and
sort by ``segment_key``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern

if TYPE_CHECKING:
    from pathlib import Path

    from golive.model.archive import Spooled
    from golive.model.backup import ObjectSink
    from golive.urls import DatabaseURL


class Receiver:
    """The engine's log-streaming tool, running in the background into a spool directory."""

    def start(self) -> None:
        """Start the tool (again): it resumes where the spool (and, for PostgreSQL, the slot) says."""
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the tool and wait for it (idempotent)."""
        raise NotImplementedError

    def last_error(self) -> str:
        """The tool's last stderr lines (passwords masked): why it died."""
        return ""


class Archive(Concern):
    """A continuous archive of this engine's change log, for restores to any moment."""

    #: what the log is called in messages ("WAL", "binlog")
    log_name: str = "log"
    #: the settings and grants the archive needs, for the README and ``check_ready``'s messages (one line)
    needs: str = ""
    #: ``restore`` can recover into a data directory of its own (a physical archive: PostgreSQL); else it restores
    #: into a database (``to_url``) only
    restores_to_dir: bool = False

    def check_ready(self, url: "DatabaseURL") -> None:
        """Raise ``ConfigError`` (one line: the missing setting or grant and how to fix it) unless the server can be
        archived; return quietly when it can."""
        raise NotImplementedError

    def identity(self, url: "DatabaseURL") -> dict:
        """``{"system": <the server's unique id>, "server_version": ..., **engine extras}``: recorded once per
        archive; a later run against another server is refused."""
        raise NotImplementedError

    def receiver(self, url: "DatabaseURL", spool: "Path", *, name: str, start: str | None = None) -> Receiver:
        """The tool streaming the log into ``spool`` (created by the caller, kept across runs).

        Args:
            name: the archive's name (PostgreSQL: its slot is ``golive_archive_<name>``, created when missing).
            start: where to begin when the spool is empty and nothing else says (MySQL: the base backup's position;
                PostgreSQL: ignored, the slot says).
        """
        raise NotImplementedError

    def spooled(self, spool: "Path") -> "Spooled":
        """Complete segments in ``spool`` (oldest first) and the partial one, if any."""
        raise NotImplementedError

    def partial_bytes(self, path: "Path", *, start: int = 0) -> tuple[bytes, str]:
        """The bytes of the partial segment ``path`` from offset ``start`` (where the last flush's stopped) to where it
        is safe to store now (whole records), and the position they end at. Nothing before ``start`` is read again:
        each flush stores only what arrived since the last one. A restore gets the pieces joined, as
        ``<segment>.partial`` (PostgreSQL pads it to the segment size itself)."""
        raise NotImplementedError

    def head(self, url: "DatabaseURL") -> tuple[dt.datetime, str]:
        """The server's clock (aware, UTC) and the end of its log now, read together."""
        raise NotImplementedError

    def received(self, url: "DatabaseURL", spool: "Path", *, name: str) -> str | None:
        """The position up to which the spool (complete and partial segments) durably holds the log; None when
        nothing was received yet. (PostgreSQL asks the server what its receiver flushed; MySQL reads the spool.)"""
        raise NotImplementedError

    def position_key(self, position: str) -> tuple:
        raise NotImplementedError

    def segment_key(self, segment: str) -> tuple:
        """Sort key of a segment name."""
        raise NotImplementedError

    def next_segment(self, segment: str) -> str:
        """The name of the segment after ``segment`` (a missing one between two stored ones is a gap)."""
        raise NotImplementedError

    def base_backup(self, url: "DatabaseURL", sink: "ObjectSink", *, name: str) -> dict:
        """A base backup into objects opened on ``sink``.

        Returns:
            ``{"start": pos, "end": pos, "end_time": aware datetime on the server's clock (the earliest moment a
            restore from it reaches), "first_segment": the segment the replay starts in, "tables": [...],
            "server_version": ..., "tool": Tool, "objects": [...], "details": {...}}``
        """
        raise NotImplementedError

    def restore(self, base: dict, base_files: dict[str, "Path"], segments: list["Path"], target: dt.datetime | None,
                *, to_url: "DatabaseURL | None" = None, to_dir: "Path | None" = None, port: int | None = None,
                workdir: "Path") -> dict:
        """Restore the base (``base``: what ``base_backup`` returned, from the manifest; ``base_files``: its objects,
        downloaded and checked) and replay ``segments`` (complete and partial segment files, decompressed, in
        order, named as the engine named them) up to ``target`` (None: everything).

        PostgreSQL: a data directory at ``to_dir``, recovered and left running on ``port``; or, with ``to_url``, a
        recovered cluster in ``workdir`` dumped into that database and stopped. MySQL: ``to_url`` only.

        Returns details: ``{"reached": what recovery reports it reached, "where": masked URL or directory,
        "url": with ``to_dir``, the URL of the archived database in the recovered cluster, ...}``.
        Raises ``GoliveError`` (one line) when recovery cannot reach ``target`` or a segment is unreadable.
        """
        raise NotImplementedError

    def stop_restored(self, to_dir: "Path") -> None:
        """Stop the server ``restore`` left running on ``to_dir`` (engines with ``restores_to_dir``)."""

    def write_marker(self, url: "DatabaseURL") -> dt.datetime:
        """Insert a row into golive's marker table (created when missing), stamped with the server's clock; return
        that time."""
        raise NotImplementedError

    def markers(self, url: "DatabaseURL") -> list[dt.datetime]:
        """The marker rows of a (restored) database; [] when it has no marker table."""
        raise NotImplementedError

    def integrity(self, url: "DatabaseURL") -> list[str]:
        """The engine's own integrity check of a restored database: the problems found ([] when sound)."""
        return []

    def forget(self, url: "DatabaseURL", *, name: str) -> list[str]:
        """Remove what the archive added to the server; one line per thing removed."""
        return []
